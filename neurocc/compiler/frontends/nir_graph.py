"""The structure of a NIR graph as neurocc reads it: nested graphs flattened (``outer.inner``),
the sample's batch dimension of 1 dropped from Inputs, cycle-closing edges given ``delay=1``
(:func:`mark_back_edges`), a canonical node order (:func:`canonical_order`), and the metadata
keys neurocc writes (reset modes, spike semantics, ``dt``/``method``). See
:mod:`neurocc.compiler.frontends.nir` for the rules.
"""
from __future__ import annotations

import heapq
import re
from typing import Any

import numpy as np

from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Edge

RESET_KEY = "neurocc.reset"
SPIKING_KEY = "neurocc.spiking"  # {node: {reset_timing, reset_now, fire_at_threshold, multi_spike, v_min}}
DT_KEY = "neurocc.dt"
METHOD_KEY = "neurocc.method"


def graph_metadata(graph: Any) -> dict[str, Any]:
    meta = getattr(graph, "metadata", None)
    return dict(meta) if isinstance(meta, dict) else {}


def recorded_resets(graph: Any, prefix: str) -> dict[str, str]:
    """Reset modes recorded by write_nir in (possibly nested) graph metadata."""
    import nir

    out = {prefix + k: str(v) for k, v in (graph_metadata(graph).get(RESET_KEY) or {}).items()}
    for n, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            out.update(recorded_resets(node, f"{prefix}{n}."))
    return out


def flatten(graph: Any, prefix: str, where: str) -> tuple[dict[str, Any], list[Edge], set[str]]:
    """Flat nodes (names prefixed), edges, and the inner Input/Output names to bypass."""
    import nir

    nodes: dict[str, Any] = {}
    edges: list[Edge] = []
    passthrough: set[str] = set()
    ends: dict[str, tuple[str, str]] = {}
    for n, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_pass = flatten(node, f"{prefix}{n}.", where)
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise ModelLoadError(f"subgraph '{prefix}{n}' has {len(ins)} Input and {len(outs)} Output nodes; "
                                     "neurocc connects a subgraph by name only when it has one of each",
                                     where=where, fix="address its nodes as 'subgraph.node' in the edges")
            ends[n] = (f"{prefix}{n}.{ins[0]}", f"{prefix}{n}.{outs[0]}")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            passthrough |= sub_pass | set(ends[n])
        else:
            nodes[prefix + n] = node
    for src, dst in graph.edges:
        s = ends[src][1] if src in ends else prefix + src
        d = ends[dst][0] if dst in ends else prefix + dst
        for end in (s, d):
            if end not in nodes:
                raise ModelLoadError(f"edge {src} -> {dst} names unknown node '{end}'", where=where,
                                     fix="the file is inconsistent; re-export it")
        edges.append(Edge(s, d))
    return nodes, edges, passthrough


def drop_batch_dim(nodes: dict[str, Any], edges: list[Any]) -> dict[str, Any]:
    """Input shapes ``(1, *s)`` read as ``s`` when every successor declares its input as ``s``."""
    import nir

    out = dict(nodes)
    for n, node in nodes.items():
        shape = np.atleast_1d(node.input_type.get("input")) if isinstance(node, nir.Input) else None
        if shape is None or len(shape) < 2 or int(shape[0]) != 1:
            continue
        succ = [nodes[e.dst] for e in edges if e.src == n]
        declared = [np.atleast_1d((getattr(m, "input_type", None) or {}).get("input", [])) for m in succ]
        if succ and all(len(d) == len(shape) - 1 and np.array_equal(d, shape[1:]) for d in declared):
            out[n] = nir.Input(input_type={"input": np.array(shape[1:])})
    return out


def _natural(name: str) -> tuple[tuple[int, object], ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p)


def canonical_order(names: list[str], edges: list[Edge]) -> list[str]:
    """Topological order over the delay-0 edges, ties broken by natural name order ("2" < "10").

    It depends only on the node and edge sets, so a graph read from memory and the same graph
    read back from a file (HDF5 lists groups alphabetically) get the same node order and digest.
    """
    indeg = {n: 0 for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for e in edges:
        if e.delay == 0:
            indeg[e.dst] += 1
            succ[e.src].append(e.dst)
    heap = [(_natural(n), n) for n, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        _, n = heapq.heappop(heap)
        out.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, (_natural(m), m))
    return out + sorted((n for n in names if n not in set(out)), key=_natural)


def mark_back_edges(order: list[str], edges: list[Edge], starts: list[str]) -> list[Edge]:
    """Give ``delay=1`` to every edge that closes a cycle in a depth-first search.

    The search starts from ``starts`` (the Input nodes), then from any node not yet reached; it
    takes start nodes and each node's successors in natural name order ("2" < "10"), so the
    result depends only on the edge set, not on the order the file lists nodes or edges.
    """
    succ: dict[str, list[int]] = {n: [] for n in order}
    for i, e in enumerate(edges):
        succ.setdefault(e.src, []).append(i)
    for lst in succ.values():
        lst.sort(key=lambda i: _natural(edges[i].dst))
    order = sorted(order, key=_natural)
    starts = sorted(starts, key=_natural)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[int] = set()
    for root in [*starts, *order]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ.get(root, [])))]
        while stack:
            node, it = stack[-1]
            i = next(it, None)
            if i is None:
                state[node] = 2
                stack.pop()
                continue
            dst = edges[i].dst
            if state.get(dst) == 1:
                back.add(i)
            elif dst not in state:
                state[dst] = 1
                stack.append((dst, iter(succ.get(dst, []))))
    return [Edge(e.src, e.dst, 1 if i in back else 0) for i, e in enumerate(edges)]
