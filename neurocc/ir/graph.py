"""The immutable graph: named nodes, directed edges with integer delays, and timing facts.

Execution model (shared by the float reference simulator, the emulator and every backend):
one step t evaluates the nodes in :meth:`Graph.order`; a node's input is the sum over its
incoming edges of the source's output from ``t − delay`` (zero before the run starts). An edge
with ``delay == 0`` is read in the same step, so every cycle must contain an edge with
``delay >= 1`` and a stateful node (checked by :func:`neurocc.ir.verify.problems`). NIR has no
edge delays: the NIR frontend gives each edge that closes a cycle ``delay = 1`` (the previous
step's output, as nirtorch does), and the Loihi numerics give every synapse → neuron edge one
step (Lava's Dense delay).

The graph also records what NIR leaves out and backends need: ``dt`` (seconds per step), the
discretisation ``method`` and, once quantized, the ``numerics`` profile name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from neurocc.errors import GraphError
from neurocc.ir.nodes import Input, Node, Output
from neurocc.ir.types import Method, Shape


@dataclass(frozen=True)
class Edge:
    """``src`` feeds ``dst``; ``dst`` at step t reads ``src``'s output of step t − ``delay``."""

    src: str
    dst: str
    delay: int = 0


@dataclass(frozen=True, eq=False)
class Graph:
    """Named nodes (insertion order kept) and edges. Passes return new graphs; never mutate."""

    nodes: Mapping[str, Node]
    edges: tuple[Edge, ...] = ()
    dt: float | None = None
    method: Method | None = None
    numerics: str | None = None
    name: str = "graph"

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", types.MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "edges", tuple(e if isinstance(e, Edge) else Edge(*e) for e in self.edges))
        if self.method is not None:
            object.__setattr__(self, "method", Method(self.method))
        if self.dt is not None:
            object.__setattr__(self, "dt", float(self.dt))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as its fields with ``nodes`` a plain dict (a mappingproxy does not pickle): graphs
        travel to Ray workers (the accuracy-budget search, ``plan``)."""
        return (type(self), (dict(self.nodes), self.edges, self.dt, self.method, self.numerics, self.name))

    # ----- construction helpers -----------------------------------------------------------------
    @classmethod
    def chain(cls, *named: tuple[str, Node], **kw: object) -> "Graph":
        """A feed-forward chain ``a → b → c`` of (name, node) pairs."""
        nodes = dict(named)
        names = list(nodes)
        return cls(nodes, tuple(Edge(a, b) for a, b in zip(names, names[1:])), **kw)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> "Graph":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_node(self, name: str, node: Node) -> "Graph":
        nodes = dict(self.nodes)
        nodes[name] = node
        return self.replace(nodes=nodes)

    # ----- queries --------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    @property
    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    @cached_property
    def _in_edges(self) -> dict[str, list[Edge]]:
        d: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        for e in self.edges:
            d.setdefault(e.dst, []).append(e)
        return d

    @cached_property
    def _out_edges(self) -> dict[str, list[Edge]]:
        d: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        for e in self.edges:
            d.setdefault(e.src, []).append(e)
        return d

    def in_edges(self, name: str) -> list[Edge]:
        return self._in_edges.get(name, [])

    def out_edges(self, name: str) -> list[Edge]:
        return self._out_edges.get(name, [])

    def predecessors(self, name: str) -> list[str]:
        return [e.src for e in self.in_edges(name)]

    def successors(self, name: str) -> list[str]:
        return [e.dst for e in self.out_edges(name)]

    def order(self) -> list[str]:
        """Evaluation order within one step: topological over the edges with delay 0.

        Ties are broken by insertion order, so the order is deterministic. Raises GraphError
        when the zero-delay edges form a cycle (a cycle needs a delayed edge).
        """
        return self._order

    @cached_property
    def _order(self) -> list[str]:
        pos = {n: i for i, n in enumerate(self.nodes)}
        indeg = {n: 0 for n in self.nodes}
        for e in self.edges:
            if e.delay == 0 and e.dst in indeg and e.src in indeg:
                indeg[e.dst] += 1
        ready = sorted((n for n, d in indeg.items() if d == 0), key=pos.__getitem__)
        out: list[str] = []
        import heapq

        heap = [(pos[n], n) for n in ready]
        heapq.heapify(heap)
        while heap:
            _, n = heapq.heappop(heap)
            out.append(n)
            for e in self.out_edges(n):
                if e.delay == 0 and e.dst in indeg:
                    indeg[e.dst] -= 1
                    if indeg[e.dst] == 0:
                        heapq.heappush(heap, (pos[e.dst], e.dst))
        if len(out) != len(self.nodes):
            stuck = [n for n in self.nodes if n not in out]
            raise GraphError(
                "the graph has a cycle with no delayed edge, so no step order exists",
                where=f"graph '{self.name}', nodes {', '.join(stuck)}",
                fix="give one edge of the cycle delay >= 1 (the recurrent edge reads the previous step)",
            )
        return out

    def shapes(self) -> dict[str, Shape]:
        """Output shape of every node, inferred from the Input shapes (GraphError on mismatch)."""
        shapes, problems = self._shapes
        if problems:
            raise GraphError("shapes do not fit", where=f"graph '{self.name}'", problems=problems,
                             fix="check the layer sizes named above against their inputs")
        return dict(shapes)

    @cached_property
    def _shapes(self) -> tuple[dict[str, Shape], list[str]]:
        from neurocc.ir.verify import infer_shapes

        return infer_shapes(self)

    def in_shape(self, name: str) -> Shape:
        preds = self.predecessors(name)
        shapes = self.shapes()
        return shapes[preds[0]] if preds else shapes[name]

    def verify(self) -> "Graph":
        """Raise one GraphError listing every problem; return self when well formed."""
        from neurocc.ir.verify import problems

        found = problems(self)
        if found:
            raise GraphError(f"graph '{self.name}' is not well formed ({len(found)} problem(s))",
                             problems=found, fix="see each problem above; every one names its node")
        return self

    # ----- summaries --------------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, object]]:
        """Per node: kind, input/output shapes, parameters, neurons, synapses."""
        shapes = self.shapes()
        rows: dict[str, dict[str, object]] = {}
        for n in self.order():
            node = self.nodes[n]
            preds = self.predecessors(n)
            ins = shapes[preds[0]] if preds else shapes[n]
            rows[n] = {
                "kind": node.kind,
                "in_shape": ins,
                "out_shape": shapes[n],
                "params": node.n_params(),
                "neurons": node.n_neurons(shapes[n]),
                "synapses": node.n_synapses(ins),
            }
        return rows

    def input_delays(self) -> dict[str, int]:
        """Fewest steps from any Input to each node it reaches (the sum of edge delays on the
        shortest path): the first step at which a node can see input."""
        import heapq

        dist = {n: 0 for n in self.inputs}
        heap = [(0, n) for n in self.inputs]
        while heap:
            d, n = heapq.heappop(heap)
            if d > dist.get(n, d):
                continue
            for e in self.out_edges(n):
                if e.dst not in dist or d + e.delay < dist[e.dst]:
                    dist[e.dst] = d + e.delay
                    heapq.heappush(heap, (d + e.delay, e.dst))
        return dist

    def recurrent_edges(self) -> list[Edge]:
        """Edges that close a cycle (those with delay >= 1 whose dst reaches their src)."""
        out = []
        for e in self.edges:
            if e.delay >= 1 and self._reaches(e.dst, e.src):
                out.append(e)
        return out

    def _reaches(self, a: str, b: str) -> bool:
        seen, stack = set(), [a]
        while stack:
            n = stack.pop()
            if n == b:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(self.successors(n))
        return False

    def text(self) -> str:
        """A stable, human-readable dump; identical graphs give identical text."""
        lines = [f"graph {self.name} dt={self.dt!r} method={_v(self.method)} numerics={self.numerics}"]
        for n, node in self.nodes.items():
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in node.stored_params().items())
            lines.append(f"  {n} = {node.kind}({params})")
        for e in self.edges:
            lines.append(f"  {e.src} -> {e.dst}" + (f" [delay {e.delay}]" if e.delay else ""))
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        """sha256 over the text dump (which includes a hash of every array's bytes)."""
        return hashlib.sha256(self.text().encode()).hexdigest()


def _v(x: object) -> object:
    return getattr(x, "value", x)


def _fmt(v: object) -> str:
    if isinstance(v, np.ndarray):
        h = hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:12]
        shape = "x".join(str(s) for s in v.shape) or "scalar"
        if v.size <= 4:
            return f"{v.dtype}[{shape}]{np.array2string(v.ravel(), separator=',')}"
        return f"{v.dtype}[{shape}]#{h}"
    return repr(_v(v))


def merge_edges(edges: Iterable[Edge]) -> tuple[Edge, ...]:
    """Deduplicate edges while keeping order."""
    seen: dict[Edge, None] = {}
    for e in edges:
        seen.setdefault(e, None)
    return tuple(seen)


__all__ = ["Edge", "Graph", "merge_edges", "field"]
