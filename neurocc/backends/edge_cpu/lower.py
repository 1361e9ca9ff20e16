"""What the emitters share: the lowering context (numerics, shapes, value dtypes) and the body
of one time step over a set of nodes (used whole for the step graph and per recurrent block
inside a window graph's Scan).

Value dtypes follow the emulator, so outputs compare element for element: integer graphs carry
spikes as uint8, synapse and leaky-integrator outputs as int32, a sum of several inputs as int64
(it cannot overflow), Delay values as int64, graph inputs as int32; float graphs carry float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from neurocc.ir.discrete import decay_factors
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Delay, Input, Node

from .builder import Builder
from .neurons import StateSpec, emit_neuron, state_spec
from .synapses import emit_stateless

@dataclass(frozen=True, eq=False)
class Ctx:
    """Everything a node lowering needs besides the node: the graph, shapes and numerics."""

    graph: Graph

    @cached_property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.graph.shapes()

    @cached_property
    def profile(self) -> Any:
        from neurocc.ir.numerics import get_profile

        return get_profile(self.graph.numerics) if self.graph.numerics else None

    @property
    def integer(self) -> bool:
        return self.graph.numerics is not None

    def in_shape(self, name: str) -> tuple[int, ...]:
        preds = self.graph.predecessors(name)
        return self.shapes[preds[0]] if preds else self.shapes[name]

    def decays(self, name: str) -> Any:
        node = self.graph.nodes[name]
        needs_dt = any(hasattr(node, k) for k in ("tau", "tau_mem", "tau_syn"))
        return decay_factors(node, self.graph.dt if needs_dt else (self.graph.dt or 1.0), self.graph.method or "euler")

    @cached_property
    def _dtypes(self) -> dict[str, np.dtype]:
        out: dict[str, np.dtype] = {}
        f32, i32 = np.dtype(np.float32), np.dtype(np.int32)
        for _ in range(2):  # pass-through kinds inside cycles see their sources on the 2nd round
            for n in self.graph.order():
                node = self.graph.nodes[n]
                if not self.integer:
                    out[n] = f32
                elif isinstance(node, Input) or node.kind in ("QDense", "QConv2d", "QSumPool2d", "QLI"):
                    out[n] = i32
                elif node.kind == "QLIF":   # spikes; spike counts (multi_spike) as int32, as the emulator
                    out[n] = i32 if node.multi_spike else np.dtype(np.uint8)
                elif isinstance(node, Delay) or node.kind == "QSigmaDelta":
                    out[n] = np.dtype(np.int64)
                else:
                    out[n] = self._sum_dtype(n, out)
        return out

    def _sum_dtype(self, name: str, known: dict[str, np.dtype]) -> np.dtype:
        srcs = [known.get(e.src, np.dtype(np.int32)) for e in self.graph.in_edges(name)]
        if not self.integer:
            return np.dtype(np.float32)
        return srcs[0] if len(srcs) == 1 else np.dtype(np.int64)

    def dtype_of(self, name: str) -> np.dtype:
        """dtype of node ``name``'s output value."""
        return self._dtypes[name]

    def dtype_of_input(self, name: str) -> np.dtype:
        """dtype of the summed input that node ``name`` receives."""
        node = self.graph.nodes[name]
        if isinstance(node, Input):
            return self._dtypes[name]
        return self._sum_dtype(name, self._dtypes)

    def state_spec(self, name: str) -> StateSpec:
        return state_spec(self, name, self.graph.nodes[name])


def is_stateful(node: Node) -> bool:
    return bool(node.state_vars)


def sum_inputs(b: Builder, ctx: Ctx, name: str, parts: list[tuple[str, np.dtype]]) -> str:
    """The summed input of ``name`` (a node receives the SUM of its inputs); several integer
    inputs are added in int64, as the emulator does."""
    if len(parts) == 1:
        return parts[0][0]
    if ctx.integer:
        vals = [v if dt == np.int64 else b.cast(v, np.int64) for v, dt in parts]
    else:
        vals = [v for v, _ in parts]
    return b.sum(vals)


def emit_node(b: Builder, ctx: Ctx, name: str, x: str, state: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(output, new state) of node ``name`` for summed input ``x`` of shape ``(N, *in_shape)``."""
    node = ctx.graph.nodes[name]
    if is_stateful(node):
        return emit_neuron(b, ctx, name, node, x, state)
    if isinstance(node, Input) or node.kind == "Add":
        return x, {}
    return emit_stateless(b, ctx, name, node, x), {}


@dataclass
class Body:
    """One step over ``nodes``: state inputs (key → value name), new states, node values."""

    state_in: dict[str, str] = field(default_factory=dict)
    state_out: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = field(default_factory=dict)


def lag_key(src: str, k: int) -> str:
    """State key of ``src``'s output k steps ago (an edge delay held as explicit state)."""
    return f"{src}@t-{k}"


def body_state_specs(ctx: Ctx, nodes: list[str]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Every state a step over ``nodes`` carries: ``<node>/<var>`` and ``<src>@t-<k>`` lags."""
    inside = set(nodes)
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
    for n in nodes:
        for var, spec in ctx.state_spec(n).items():
            specs[f"{n}/{var}"] = spec
    for src, depth in _lag_depths(ctx.graph, inside).items():
        for k in range(1, depth + 1):
            specs[lag_key(src, k)] = (ctx.dtype_of(src), ctx.shapes[src])
    return specs


def _lag_depths(graph: Graph, inside: set[str]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for e in graph.edges:
        if e.delay >= 1 and e.src in inside and e.dst in inside:
            depth[e.src] = max(depth.get(e.src, 0), e.delay)
    return depth


def emit_body(b: Builder, ctx: Ctx, nodes: list[str], external: dict[str, str],
              state_names: dict[str, str]) -> Body:
    """Emit one step over ``nodes`` (in step order). ``external[n]`` is the summed input that
    ``n`` receives from outside the set this step (graph inputs for Input nodes);
    ``state_names`` maps every key of :func:`body_state_specs` to its input value name."""
    g, inside = ctx.graph, set(nodes)
    body = Body(state_in=dict(state_names), specs=body_state_specs(ctx, nodes))
    for n in nodes:
        parts: list[tuple[str, np.dtype]] = []
        if n in external:
            parts.append((external[n], ctx.dtype_of(n) if isinstance(g.nodes[n], Input) else ext_dtype(ctx, n, inside)))
        for e in g.in_edges(n):
            if e.src not in inside:
                continue
            v = body.values[e.src] if e.delay == 0 else state_names[lag_key(e.src, e.delay)]
            parts.append((v, ctx.dtype_of(e.src)))
        states = {var: state_names[f"{n}/{var}"] for var in ctx.state_spec(n)}
        y, new = emit_node(b, ctx, n, sum_inputs(b, ctx, n, parts), states)
        body.values[n] = y
        body.state_out.update({f"{n}/{var}": v for var, v in new.items()})
    for src, depth in _lag_depths(g, inside).items():
        body.state_out[lag_key(src, 1)] = body.values[src]
        for k in range(2, depth + 1):
            body.state_out[lag_key(src, k)] = state_names[lag_key(src, k - 1)]
    return body


def ext_dtype(ctx: Ctx, name: str, inside: set[str]) -> np.dtype:
    """dtype of the external part of ``name``'s input (the edges from outside ``inside``)."""
    srcs = [ctx.dtype_of(e.src) for e in ctx.graph.in_edges(name) if e.src not in inside]
    if not ctx.integer:
        return np.dtype(np.float32)
    return srcs[0] if len(srcs) == 1 else np.dtype(np.int64)
