"""PyTorch → neurocc IR.

A model is read as a **step function**: ``forward(x, *state)`` computes one time step; the first
argument is the graph input (named ``input``), further arguments are neuron state that only
neuron modules may consume, and the first returned value is the graph output (``output``).
The model is traced with ``torch.fx`` by a tracer that keeps neuron modules as leaves, so each
layer becomes one IR node named after the module (``fc1``, ``features.0``); if tracing fails, an
``nn.Sequential`` is read layer by layer. Parameters are read from the modules, never from a
traced op graph.

Layers: Linear → Affine (Linear without bias), Conv1d/Conv2d, BatchNorm1d/2d → BatchNorm (folded
later by ``normalize``), ReLU, AvgPool2d, MaxPool2d, Flatten (torch dims count the batch: minus
one), Dropout/Identity dropped, ``x + y`` → Add. Neurons: :mod:`neurocc.nn` ``LIF``/``CubaLIF``/
``IF`` (1:1, graph ``dt`` = the modules' dt) and snnTorch ``Leaky``/``Synaptic`` mapped as
snnTorch's own NIR exporter does, at ``dt`` (argument, default 1e-3), method ``euler``::

    Leaky(β, θ)        → LIF(τ = dt/(1−β), r = τ/dt, v_leak = 0, v_threshold = θ)
    Synaptic(α, β, θ)  → CubaLIF(τ_syn = dt/(1−α), τ_mem = dt/(1−β), r = τ_mem/dt, w_in = τ_syn/dt)

Forward Euler at that dt gives back ``v ← β·v + x`` (and ``u ← α·u + x; v ← β·v + u``).
Step ordering (see docs/frontends.md): snnTorch computes the reset of step t from the previous
step's membrane (``reset_delay=True``) and applies it during step t; the IR resets right after
the spike of the same step. For ``Leaky`` with reset "zero" the spikes are identical. For
"subtract", snnTorch gives ``v_t = β·v_{t−1} + x_t − θ·z_{t−1}`` while the IR gives
``v_t = β·(v_{t−1} − θ·z_{t−1}) + x_t`` (the subtracted θ also decays): they differ by
``(1−β)·θ`` per spike; with ``reset_delay=False`` they agree unless the membrane is still above
threshold after the subtraction. ``Synaptic`` with reset "zero" zeroes the whole next-step
membrane (the input of that step is lost); the IR keeps it.

``.pt2`` archives (``torch.export.save``) are read at the aten level (ANN layers only: the
neuron modules are gone after export). Whole pickled modules (``torch.save(model)``) execute code
when loaded and are refused unless ``trust_pickle=True``.
"""
from __future__ import annotations

import importlib
import operator
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.compiler.frontends import Builder
from neurocc.errors import ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Graph
from neurocc.ir.types import Shape

DEFAULT_DT = 1e-3
STATE = object()  # marker: a value that is neuron state, not a tensor of the graph
FAILED = object()  # marker: a value whose producer was already reported as unsupported


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().copy() if hasattr(t, "detach") else np.asarray(t)


def _ints(x: Any, n: int) -> tuple[int, ...]:
    t = tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x,)))
    return t * n if len(t) == 1 else t


# --------------------------------------------------------------------------------------------
# Module → IR node
# --------------------------------------------------------------------------------------------
def _conv_padding(m: Any) -> tuple[int, ...]:
    nd = m.weight.ndim - 2
    if m.padding == "valid":
        return (0,) * nd
    if m.padding == "same":
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        if any(t % 2 for t in total):
            raise ValueError("padding='same' with an even kernel pads asymmetrically; use explicit padding")
        return tuple(t // 2 for t in total)
    return _ints(m.padding, nd)


def ann_node(m: Any) -> ir.Node | None:
    """The IR node for a torch.nn ANN layer; None if ``m`` is not one. ValueError if unsupported settings."""
    import torch.nn as nn

    if isinstance(m, nn.Linear):
        if m.bias is None:
            return ir.Linear(weight=_np(m.weight))
        return ir.Affine(weight=_np(m.weight), bias=_np(m.bias))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            raise ValueError(f"padding_mode={m.padding_mode!r} (only 'zeros')")
        nd = m.weight.ndim - 2
        cls = ir.Conv1d if nd == 1 else ir.Conv2d
        bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        return cls(weight=_np(m.weight), bias=bias, stride=_ints(m.stride, nd), padding=_conv_padding(m),
                   dilation=_ints(m.dilation, nd), groups=m.groups)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None:
            raise ValueError("track_running_stats=False (no running statistics to fold)")
        ones = np.ones(m.num_features, np.float32)
        return ir.BatchNorm(mean=_np(m.running_mean), var=_np(m.running_var),
                            weight=_np(m.weight) if m.affine else ones,
                            bias=_np(m.bias) if m.affine else np.zeros_like(ones), eps=float(m.eps))
    if isinstance(m, nn.ReLU):
        return ir.ReLU()
    if isinstance(m, nn.AvgPool2d):
        k = _ints(m.kernel_size, 2)
        pad = _ints(m.padding, 2)
        if m.ceil_mode or m.divisor_override or (any(pad) and not m.count_include_pad):
            raise ValueError("ceil_mode, divisor_override and count_include_pad=False are not supported")
        return ir.AvgPool2d(kernel_size=k, stride=_ints(m.stride or k, 2), padding=pad)
    if isinstance(m, nn.MaxPool2d):
        k = _ints(m.kernel_size, 2)
        if m.ceil_mode or _ints(m.dilation, 2) != (1, 1) or m.return_indices:
            raise ValueError("ceil_mode, dilation and return_indices are not supported")
        return ir.MaxPool2d(kernel_size=k, stride=_ints(m.stride or k, 2), padding=_ints(m.padding, 2))
    if isinstance(m, nn.Flatten):
        return flatten_node(m.start_dim, m.end_dim)
    return None


def flatten_node(start_dim: int, end_dim: int) -> ir.Flatten:
    """torch's dims count the batch dim; the IR's do not."""
    if start_dim == 0:
        raise ValueError("flattening the batch dimension (start_dim=0) is not a per-sample operation")
    return ir.Flatten(start_dim=start_dim - 1 if start_dim > 0 else start_dim,
                      end_dim=end_dim - 1 if end_dim > 0 else end_dim)


def _passthrough(m: Any) -> bool:
    import torch.nn as nn

    return isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout))


def _snntorch_types() -> tuple[type, ...]:
    try:
        import snntorch

        return (snntorch.Leaky, snntorch.Synaptic)
    except ImportError:
        return ()


def is_neuron(m: Any) -> bool:
    from neurocc import nn as nnc

    return isinstance(m, (nnc._Neuron, *_snntorch_types()))


def neuron_outputs(m: Any) -> int:
    """How many values the module's call returns (1 = spikes only)."""
    from neurocc import nn as nnc

    if isinstance(m, nnc._Neuron):
        return 2
    if getattr(m, "init_hidden", False) and not getattr(m, "output", False):
        return 1
    return 3 if type(m).__name__ == "Synaptic" else 2


def neuron_factory(m: Any, dt: float) -> Any:
    """A function of the node's shape that returns the IR neuron for module ``m``."""
    from neurocc import nn as nnc

    if isinstance(m, nnc._Neuron):
        return lambda shape: _neurocc_neuron(m, shape)
    return lambda shape: _snntorch_neuron(m, shape, dt)


def _neurocc_neuron(m: Any, shape: Shape) -> ir.Node:
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"module shape {tuple(m.shape)} does not match its input {tuple(shape)}")
    p = {k: _np(getattr(m, k)) for k, _ in m.named_buffers(recurse=False)}
    return getattr(ir, type(m).__name__)(**p, reset=m.reset)


def _snntorch_neuron(m: Any, shape: Shape, dt: float) -> ir.Node:
    problems = []
    if m.reset_mechanism not in ("zero", "subtract"):
        problems.append(f"reset_mechanism={m.reset_mechanism!r} (use 'zero' or 'subtract')")
    if m.inhibition or m.state_quant:
        problems.append("inhibition / state_quant are not supported")
    if np.any(_np(m.graded_spikes_factor) != 1):
        problems.append("graded_spikes_factor != 1 is not supported")
    if problems:
        raise ValueError("; ".join(problems))

    def full(t: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(_np(t), np.float64), shape).copy()

    beta = np.clip(full(m.beta), 0, 1)
    if np.any(beta >= 1):
        raise ValueError("beta = 1 (no leak) has no finite time constant; use neurocc.nn.IF")
    tau_mem = dt / (1 - beta)
    common = dict(r=tau_mem / dt, v_leak=np.zeros(shape), v_threshold=full(m.threshold), v_reset=np.zeros(shape),
                  reset=m.reset_mechanism)
    if type(m).__name__ == "Leaky":
        return ir.LIF(tau=tau_mem, **common)
    alpha = np.clip(full(m.alpha), 0, 1)
    if np.any(alpha >= 1):
        raise ValueError("alpha = 1 (no synaptic leak) has no finite time constant")
    tau_syn = dt / (1 - alpha)
    return ir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, w_in=tau_syn / dt, **common)


# --------------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------------
def from_module(model: Any, *, input_shape: tuple[int, ...] | None = None, dt: float | None = None) -> Graph:
    """Read an in-memory ``torch.nn.Module`` (a step function) into a verified Graph."""
    import torch.fx as fx

    model = model.eval()
    name = type(model).__name__
    dt = _graph_dt(model, dt, name)

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return is_neuron(m) or super().is_leaf_module(m, qualname)

    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # fx raises many types on untraceable Python (TraceError, TypeError...)
        import torch.nn as nn

        if isinstance(model, nn.Sequential):
            return _from_sequential(model, input_shape, dt, name)
        raise ModelLoadError(
            f"torch.fx cannot trace {name}.forward ({type(err).__name__}: {err})", where=name,
            fix="write forward as one time step with no Python control flow on tensors (state passed "
                "in and returned explicitly), or build the model as nn.Sequential") from None
    return _Converter(model, name, dt).run(graph, input_shape)


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

    def __init__(self, model: Any, name: str, dt: float | None) -> None:
        self.modules = dict(model.named_modules())
        self.b = Builder(name=name, source=name)
        self.dt = dt
        self.values: dict[Any, Any] = {}
        self.problems: list[str] = []

    def run(self, graph: Any, input_shape: tuple[int, ...] | None) -> Graph:
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if not placeholders:
            raise ModelLoadError("forward takes no input", where=self.b.source, fix="forward(x, *state)")
        shape = input_shape or self._guess_shape(placeholders[0])
        self.b.add("input", ir.Input(shape=tuple(int(s) for s in shape)))
        self.values[placeholders[0]] = "input"
        for n in placeholders[1:]:
            self.values[n] = STATE
        for n in graph.nodes:
            if n.op != "placeholder":
                self._visit(n)
        if self.problems:
            raise ModelLoadError(f"{len(self.problems)} unsupported layer(s)/operation(s)", where=self.b.source,
                                 problems=self.problems,
                                 fix="replace them with supported layers (Linear, Conv1d/2d, BatchNorm, ReLU, "
                                     "AvgPool2d, MaxPool2d, Flatten, Dropout, +, neurocc.nn / snnTorch "
                                     "Leaky/Synaptic neurons) or export the model to NIR yourself")
        return self.b.finish(dt=self.dt, method="euler" if self.dt is not None else None)

    def _guess_shape(self, x: Any) -> tuple[int, ...]:
        import torch.nn as nn
        from neurocc import nn as nnc

        for user in x.users:
            m = self.modules.get(user.target) if user.op == "call_module" else None
            if isinstance(m, nn.Linear):
                return (m.in_features,)
            if isinstance(m, nn.BatchNorm1d):
                return (m.num_features,)
            if isinstance(m, nnc._Neuron):
                return tuple(m.shape)
        raise ModelLoadError("the input shape cannot be inferred from the first layer", where=self.b.source,
                             fix="pass input_shape=(C, H, W) (without the batch dimension)")

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
            src = self._tensor(out, n)
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
        if not (_passthrough(m) or is_neuron(m)):
            try:
                node = ann_node(m)
            except ValueError as err:
                self.problems.append(f"{n.target} ({type(m).__name__}): {err}")
                return
            if node is None:
                self.problems.append(f"{n.target} ({type(m).__module__}.{type(m).__name__}): no neurocc equivalent")
                return
        if src is None:
            return
        if _passthrough(m):
            self.values[n] = src
        elif is_neuron(m):
            self.b.add(n.target, neuron_factory(m, self.dt), src)
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


def _from_sequential(model: Any, input_shape: tuple[int, ...] | None, dt: float | None, name: str) -> Graph:
    """Fallback when fx cannot trace: read nn.Sequential children in order (nested ones flattened)."""
    import torch.fx as fx

    g = fx.Graph()
    x = g.placeholder("x")
    for qual, m in model.named_modules():
        if qual and (is_neuron(m) or not list(m.children())):
            x = g.call_module(qual, (x,))
            if is_neuron(m) and neuron_outputs(m) > 1:
                x = g.call_function(operator.getitem, (x, 0))
    g.output(x)
    return _Converter(model, name, dt).run(g, input_shape)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
PICKLE_FIX = ("save it in a safe form instead: torch.export.save(torch.export.export(model, (x,)), "
              "'model.pt2') (ANN layers), or torch.save(model.state_dict(), 'weights.pt') and load it with "
              "entry='your_package.module:factory' (CLI --entry; any model, SNNs included); or, only if you "
              "made the file yourself, pass trust_pickle=True (CLI --trust-pickle)")


def load_entry(entry: str, weights: str | Path | None, *, input_shape: tuple[int, ...] | None = None,
               dt: float | None = None) -> Graph:
    """Build the model with ``entry`` (``"pkg.module:factory"``), load the state_dict ``weights``, read it."""
    import torch

    mod_name, _, fn_name = entry.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as err:
        raise ModelLoadError(f"cannot import the model factory ({err})", where=entry,
                             fix="give entry as 'package.module:function', importable from the current "
                                 "environment") from None
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"the factory returned a {type(model).__name__}, not a torch.nn.Module", where=entry,
                             fix="the factory must return the (untrained) model")
    if weights is not None:
        state = _load_weights_only(Path(weights))
        if not isinstance(state, dict):
            raise ModelLoadError(f"holds a {type(state).__name__}, not a state_dict", where=str(weights),
                                 fix="save the weights with torch.save(model.state_dict(), path)")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"the weights do not fit the model built by {entry}: {err}", where=str(weights),
                                 fix="use the factory that built the model the weights were saved from") from None
    return from_module(model, input_shape=input_shape, dt=dt)


def _load_weights_only(path: Path) -> Any:
    import pickle

    import torch

    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelLoadError(
                "this file is a whole pickled model (torch.save(model)); loading it needs weights_only=False, "
                "which runs arbitrary code stored in the file, so neurocc refuses it", where=str(path),
                fix=PICKLE_FIX) from None
        raise _corrupt(path, err) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise _corrupt(path, err) from None


def _corrupt(path: Path, err: Exception) -> ModelLoadError:
    return ModelLoadError(f"cannot read this torch file ({type(err).__name__}: {str(err)[:200]}); it is truncated, "
                          "corrupt or not a torch.save file", where=str(path),
                          fix="save the model again and check the copy is complete")


def read_torch_file(path: Path, *, entry: str | None = None, input_shape: tuple[int, ...] | None = None,
                    trust_pickle: bool = False, dt: float | None = None) -> Graph:
    """``.pt``/``.pth``: a state_dict with ``entry``, or (``trust_pickle=True`` only) a pickled module."""
    import torch

    if entry is not None:
        return load_entry(entry, path, input_shape=input_shape, dt=dt)
    if trust_pickle:
        try:
            obj = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as err:  # unpickling runs the file's code: any exception type can come out
            raise _corrupt(path, err) from None
    else:
        obj = _load_weights_only(path)
    if isinstance(obj, torch.nn.Module):
        return from_module(obj, input_shape=input_shape, dt=dt)
    raise ModelLoadError(f"holds a {type(obj).__name__} (weights only?), not a model", where=str(path),
                         fix="pass entry='package.module:factory' naming a function that builds the model; "
                             "the file's state_dict is then loaded into it")


def read_exported(path: Path, *, dt: float | None = None) -> Graph:
    """A ``torch.export.save`` archive (``.pt2``), read at the aten level (ANN layers only)."""
    import torch

    try:
        ep = torch.export.load(path)
    except Exception as err:  # torch.export.load raises zip/pickle/runtime errors on bad archives
        raise _corrupt(path, err) from None
    return _Aten(ep, path.stem, str(path), dt).run()


class _Aten:
    """Maps the aten ops of an ExportedProgram to IR nodes (the ANN subset of :func:`ann_node`)."""

    PASS = ("dropout", "clone", "alias", "contiguous", "detach", "identity")

    def __init__(self, ep: Any, name: str, where: str, dt: float | None) -> None:
        self.ep, self.where, self.dt = ep, where, dt
        self.b = Builder(name=name, source=where)
        self.values: dict[Any, Any] = {}
        self.tensors: dict[str, Any] = {}
        self.problems: list[str] = []

    def run(self) -> Graph:
        user = []
        for spec in self.ep.graph_signature.input_specs:
            if spec.kind.name == "USER_INPUT":
                user.append(spec.arg.name)
            else:
                src = self.ep.state_dict if spec.target in self.ep.state_dict else self.ep.constants
                self.tensors[spec.arg.name] = src.get(spec.target)
        for n in self.ep.graph.nodes:
            if n.op == "placeholder":
                if n.name in self.tensors:
                    self.values[n] = _np(self.tensors[n.name])
                elif n.name == user[0]:
                    shape = tuple(int(s) for s in n.meta["val"].shape[1:])
                    self.values[n] = self.b.add("input", ir.Input(shape=shape))
            elif n.op == "output":
                out = n.args[0][0]
                if isinstance(self.values.get(out), str):
                    self.b.add("output", ir.Output(), self.values[out])
            elif n.op == "call_function":
                self._op(n)
        if self.problems:
            raise ModelLoadError(f"{len(self.problems)} unsupported operation(s) in the exported program",
                                 where=self.where, problems=self.problems,
                                 fix="the .pt2 reader supports ANN layers (linear, conv, batch_norm, relu, pooling, "
                                     "flatten, add); for spiking models save a state_dict and use entry=...")
        return self.b.finish(dt=self.dt, method=None)

    def _name(self, n: Any) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        return path if path and path not in self.b.nodes else n.name

    def _op(self, n: Any) -> None:
        op = n.target._overloadpacket.__name__ if hasattr(n.target, "_overloadpacket") else str(n.target)
        args = [self.values.get(a, a) if hasattr(a, "op") else a for a in n.args]
        if op == "getitem" and isinstance(args[0], tuple):
            self.values[n] = args[0][args[1]]
            return
        src = args[0] if args and isinstance(args[0], str) else None
        if src is None:
            self.problems.append(f"{n.name}: aten.{op} on a constant or unsupported value")
            return
        if op in self.PASS:
            self.values[n] = src
            return
        try:
            node = self._node(op, args, n)
        except ValueError as err:
            self.problems.append(f"{n.name}: aten.{op}: {err}")
            return
        if node is None:
            self.problems.append(f"{n.name}: aten.{op} has no neurocc equivalent")
            return
        srcs = [src, args[1]] if op == "add" else [src]
        out = self.b.add(self._name(n), node, *srcs)
        self.values[n] = (out, None, None) if op == "_native_batch_norm_legit_no_training" else out

    def _node(self, op: str, a: list[Any], n: Any) -> ir.Node | None:
        get = lambda i, d: a[i] if len(a) > i else d  # noqa: E731
        if op == "linear":
            return ir.Affine(weight=a[1], bias=a[2]) if get(2, None) is not None else ir.Linear(weight=a[1])
        if op in ("conv1d", "conv2d"):
            nd = a[1].ndim - 2
            pad = get(4, 0)
            if isinstance(pad, str):
                raise ValueError(f"padding={pad!r}: export with integer padding")
            cls = ir.Conv1d if nd == 1 else ir.Conv2d
            bias = get(2, None)
            return cls(weight=a[1], bias=bias if bias is not None else np.zeros(a[1].shape[0], a[1].dtype),
                       stride=_ints(get(3, 1), nd), padding=_ints(pad, nd), dilation=_ints(get(5, 1), nd),
                       groups=int(get(6, 1)))
        if op in ("batch_norm", "_native_batch_norm_legit_no_training"):
            eps = a[7] if op == "batch_norm" else a[6]
            return ir.BatchNorm(weight=a[1], bias=a[2], mean=a[3], var=a[4], eps=float(eps))
        if op in ("relu", "relu_"):
            return ir.ReLU()
        if op in ("avg_pool2d", "max_pool2d"):
            k = _ints(a[1], 2)
            stride, pad = _ints(get(2, None) or k, 2), _ints(get(3, 0), 2)
            if op == "avg_pool2d":
                if get(4, False) or get(6, None) or (any(pad) and not get(5, True)):
                    raise ValueError("ceil_mode, divisor_override, count_include_pad=False are not supported")
                return ir.AvgPool2d(kernel_size=k, stride=stride, padding=pad)
            if _ints(get(4, 1), 2) != (1, 1) or get(5, False):
                raise ValueError("dilation and ceil_mode are not supported")
            return ir.MaxPool2d(kernel_size=k, stride=stride, padding=pad)
        if op == "flatten":
            return flatten_node(int(get(1, 0)), int(get(2, -1)))
        if op in ("view", "reshape", "_unsafe_view") and len(a[1]) == 2:
            self.b.checks.append((self._name(n), int(a[1][1]), op)) if int(a[1][1]) != -1 else None
            return ir.Flatten(start_dim=0, end_dim=-1)
        if op == "add" and isinstance(get(1, None), str) and get(2, 1) == 1:
            return ir.Add()
        return None
