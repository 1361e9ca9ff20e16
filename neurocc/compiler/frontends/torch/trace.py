"""torch.fx tracing of a step-function ``nn.Module`` into a verified float Graph.

A model is read as a **step function**: ``forward(x, *state)`` computes one time step; the first
argument is the graph input (named ``input``), further arguments are neuron state that only
neuron modules may consume, and the first returned value is the graph output (``output``).
The model is traced with ``torch.fx`` by a tracer that keeps neuron modules as leaves, so each
layer becomes one IR node named after the module (``fc1``, ``features.0``; functions such as
``x + y`` → Add get the fx node's name); if tracing fails, an ``nn.Sequential`` is read layer by
layer. Parameters are read from the modules (:mod:`.modules`), never from a traced op graph.
Every unsupported layer/operation is collected and reported in one :class:`ModelLoadError`.
"""
from __future__ import annotations

import operator
from typing import Any

from neurocc.compiler.frontends import Builder
from neurocc.compiler.frontends.torch.modules import (
    DEFAULT_DT,
    ann_node,
    flatten_node,
    is_neuron,
    is_passthrough,
    is_pool,
    neuron_factory,
    neuron_outputs,
    neuron_problems,
    recurrent_factory,
)
from neurocc.compiler.frontends.torch.timeloop import step_graph
from neurocc.errors import ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Edge, Graph

STATE = object()  # marker: a value that is neuron state, not a tensor of the graph
FAILED = object()  # marker: a value whose producer was already reported as unsupported
INPUT_SHAPE_FIX = "pass --input-shape C,H,W (Python: input_shape=(C, H, W)), without the batch dimension"


def from_module(model: Any, *, input_shape: tuple[int, ...] | None = None, dt: float | None = None,
                source: str | None = None) -> Graph:
    """Read an in-memory ``torch.nn.Module`` (a step function) into a verified Graph.

    ``source`` names where the model came from (its file) in error messages; default: the
    model's class name. The graph is named after the class either way.
    """
    from torch import fx

    from neurocc.compiler.frontends.torch.sinabs import unwrap

    model = unwrap(model).eval()  # sinabs.from_model's Network → its spiking_model
    name = type(model).__name__
    where = source or name
    dt = _graph_dt(model, dt, where)

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return is_neuron(m) or is_passthrough(m) or is_pool(m) or super().is_leaf_module(m, qualname)

    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # fx raises many types on untraceable Python (TraceError, TypeError...)
        from torch import nn

        if isinstance(model, nn.Sequential):
            return _from_sequential(model, input_shape, dt, name, where)
        raise ModelLoadError(
            f"torch.fx cannot trace {name}.forward ({type(err).__name__}: {err})", where=where,
            fix="write forward as one time step with no Python control flow on tensors (state passed "
                "in and returned explicitly), or build the model as nn.Sequential") from None
    try:
        graph = step_graph(graph, is_neuron, dict(model.named_modules()))
    except ValueError as err:
        raise ModelLoadError(f"{name}.forward loops over time but cannot be read as one step: {err}", where=where,
                             fix="write the loop body with each layer called once per step (as snnTorch's "
                                 "tutorials do), or write forward as one time step") from None
    return _Converter(model, name, where, dt).run(graph, input_shape)


def _graph_dt(model: Any, dt: float | None, where: str) -> float | None:
    from neurocc import nn as nnc

    own = {m.dt for m in model.modules() if isinstance(m, nnc._Neuron)}
    if len(own) > 1 or (own and dt is not None and dt not in own):
        raise ModelLoadError(f"the neuron modules use different time steps {sorted(own | ({dt} - {None}))}",
                             where=where, fix="give every neurocc.nn module the same dt (and pass that dt)")
    if own:
        return own.pop()
    has_neurons = any(is_neuron(m) for m in model.modules())
    return dt if dt is not None else (DEFAULT_DT if has_neurons else None)


class _Converter:
    """Walks an fx graph, mapping values to IR node names; collects every unsupported thing."""

    def __init__(self, model: Any, name: str, where: str, dt: float | None) -> None:
        self.modules = dict(model.named_modules())
        self.name = name
        self.b = Builder(name=name, source=where)
        self.dt = dt
        self.values: dict[Any, Any] = {}
        self.problems: list[str] = []

    def run(self, graph: Any, input_shape: tuple[int, ...] | None) -> Graph:
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if not placeholders:
            raise ModelLoadError(f"{self.name}.forward takes no input", where=self.b.source,
                                 fix="write forward(x, *state): x is one time step of the input")
        shape = input_shape or self._guess_shape(placeholders[0])
        self.b.add("input", ir.Input(shape=tuple(int(s) for s in shape)))
        self.values[placeholders[0]] = "input"
        for n in placeholders[1:]:
            self.values[n] = STATE
        for n in graph.nodes:
            if n.op != "placeholder":
                self._visit(n)
        if self.problems:
            raise ModelLoadError(f"{len(self.problems)} unsupported layer(s)/operation(s) in {self.name}",
                                 where=self.b.source,
                                 problems=self.problems,
                                 fix="replace them with supported layers (Linear, Conv1d/2d, BatchNorm, ReLU, "
                                     "AvgPool2d, MaxPool2d, Flatten, Dropout, +, neurocc.nn / snnTorch "
                                     "Leaky/Synaptic/RLeaky/RSynaptic neurons) or export the model to NIR yourself")
        return self.b.finish(dt=self.dt, method="euler" if self.dt is not None else None)

    def _guess_shape(self, x: Any) -> tuple[int, ...]:
        from torch import nn

        from neurocc import nn as nnc

        for user in x.users:
            m = self.modules.get(user.target) if user.op == "call_module" else None
            if isinstance(m, nn.Linear):
                return (m.in_features,)
            if isinstance(m, nn.BatchNorm1d):
                return (m.num_features,)
            if isinstance(m, nnc._Neuron):
                return tuple(m.shape)
        raise ModelLoadError(f"the input shape of {self.name} cannot be inferred from its first layer",
                             where=self.b.source, fix=INPUT_SHAPE_FIX)

    def _tensor(self, arg: Any, n: Any) -> str | None:
        v = self.values.get(arg)
        if isinstance(v, str):
            return v
        if v is FAILED:
            return None
        what = "neuron state (membrane/current)" if v is STATE else f"{arg!r}"
        self.problems.append(f"{n.name}: uses {what} as a layer input; neurocc graphs carry spikes/"
                             "activations between layers only")
        return None

    def _visit(self, n: Any) -> None:
        if n.op == "output":
            out = n.args[0]
            out = out[0] if isinstance(out, (tuple, list)) else out
            v = self.values.get(out)
            # a neuron returning (spk, mem...) as the model's result (output=True on the last neuron)
            src = v[0] if isinstance(v, tuple) else self._tensor(out, n)
            if src:
                self.b.add("output", ir.Output(), src)
            return
        self.values[n] = FAILED
        if n.op == "call_module":
            self._module(n, self.modules[n.target])
        elif n.op == "call_function" and n.target is operator.getitem:
            v = self.values.get(n.args[0])
            if isinstance(v, tuple):
                self.values[n] = v[0] if n.args[1] == 0 else STATE
            elif v is not FAILED:
                self.problems.append(f"{n.name}: indexing {n.args[0]} is not supported")
        else:
            self._function(n)

    def _module(self, n: Any, m: Any) -> None:
        src = self._tensor(n.args[0], n) if n.args else None
        extra = [a for a in list(n.args[1:]) + list(n.kwargs.values()) if a is not None]
        if any(self.values.get(a) is not STATE for a in extra if hasattr(a, "op")) or (extra and not is_neuron(m)):
            self.problems.append(f"{n.target} ({type(m).__name__}): called with extra arguments")
        node = None
        if not (is_passthrough(m) or is_neuron(m)):
            try:
                node = ann_node(m)
            except ValueError as err:
                self.problems.append(f"{n.target} ({type(m).__name__}): {err}")
                return
            if node is None:
                self.problems.append(f"{n.target} ({type(m).__module__}.{type(m).__name__}): no neurocc equivalent")
                return
        bad = neuron_problems(m) if is_neuron(m) else []
        self.problems += [f"{n.target} ({type(m).__name__}): {p}" for p in bad]
        if src is None or bad:
            return
        if is_passthrough(m):
            self.values[n] = src
        elif is_neuron(m):
            self.b.add(n.target, neuron_factory(m, self.dt), src)
            rec = recurrent_factory(m)
            if rec is not None:  # RLeaky/RSynaptic: spikes of step t−1 through R back into the neuron
                self.b.add(f"{n.target}.recurrent", rec)
                # the delay sits before R, so that R(spk[−1] = 0) = R's bias already acts in step 0, as in snnTorch
                self.b.edges += [Edge(n.target, f"{n.target}.recurrent", 1), Edge(f"{n.target}.recurrent", n.target)]
            k = neuron_outputs(m)
            self.values[n] = (n.target,) + (STATE,) * (k - 1) if k > 1 else n.target
        else:
            self.values[n] = self.b.add(n.target, node, src)

    def _function(self, n: Any) -> None:
        import torch
        import torch.nn.functional as F

        t, args = n.target, n.args
        name = getattr(t, "__name__", str(t))
        if t in (operator.add, torch.add) or (n.op == "call_method" and t == "add"):
            srcs = [self._tensor(a, n) for a in args[:2]]
            if all(srcs) and len(set(srcs)) == 2 and not n.kwargs:
                self.values[n] = self.b.add(n.name, ir.Add(), *srcs)
            elif all(srcs):
                self.problems.append(f"{n.name}: add of {args} (only the sum of two different tensors)")
            return
        if t in (torch.relu, F.relu) or (n.op == "call_method" and t == "relu"):
            src = self._tensor(args[0], n)
            if src:
                self.values[n] = self.b.add(n.name, ir.ReLU(), src)
            return
        if t is F.dropout or (n.op == "call_method" and t in ("contiguous",)):
            self.values[n] = self._tensor(args[0], n) or FAILED
            return
        if t is torch.flatten or (n.op == "call_method" and t == "flatten"):
            src = self._tensor(args[0], n)
            start = args[1] if len(args) > 1 else n.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else n.kwargs.get("end_dim", -1)
            try:
                if src:
                    self.values[n] = self.b.add(n.name, flatten_node(int(start), int(end)), src)
            except ValueError as err:
                self.problems.append(f"{n.name}: {err}")
            return
        self.problems.append(f"{n.name}: {n.op} {name} has no neurocc equivalent")


def _from_sequential(model: Any, input_shape: tuple[int, ...] | None, dt: float | None, name: str,
                     where: str) -> Graph:
    """Fallback when fx cannot trace: read nn.Sequential children in order (nested ones flattened)."""
    from torch import fx

    g = fx.Graph()
    x = g.placeholder("x")
    for qual, m in model.named_modules():
        if qual and (is_neuron(m) or not list(m.children())):
            x = g.call_module(qual, (x,))
            if is_neuron(m) and neuron_outputs(m) > 1:
                x = g.call_function(operator.getitem, (x, 0))
    g.output(x)
    return _Converter(model, name, where, dt).run(g, input_shape)
