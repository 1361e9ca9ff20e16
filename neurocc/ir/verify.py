"""Well-formedness of a graph: every problem found at once, each naming its node.

Checks: edges name existing nodes; Input nodes have no incoming and Output nodes no outgoing
edges; every other node has an input; delays are >= 0; each node's own parameters are
consistent; shapes propagate from the Inputs without mismatch (all inputs of a node agree);
every cycle contains a delayed edge and a stateful node; node names are printable UTF-8 (no NUL);
a quantized graph names its numerics profile and contains no float neuron kinds.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from neurocc.errors import GraphError
from neurocc.ir.nodes import Input, Output
from neurocc.ir.types import Shape

if TYPE_CHECKING:
    from neurocc.ir.graph import Graph


def infer_shapes(graph: "Graph") -> tuple[dict[str, Shape], list[str]]:
    """Propagate shapes from the Inputs in step order. Returns (shapes, problems)."""
    shapes: dict[str, Shape] = {}
    problems: list[str] = []
    try:
        order = graph.order()
    except GraphError as err:
        return shapes, [err.what + f" ({err.where})"]
    # Nodes inside cycles may be reached through a delayed edge first: iterate to a fixed point.
    for _ in range(2):
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, Input):
                shapes[name] = node.shape
                continue
            known = [(e.src, shapes[e.src]) for e in graph.in_edges(name) if e.src in shapes]
            if not known:
                own = node.own_shape()
                if own is not None and name not in shapes:
                    try:
                        shapes[name] = node.out_shape(own)
                    except ValueError:
                        pass
                continue
            in_shapes = {s for _, s in known}
            if len(in_shapes) > 1:
                msg = f"node '{name}' ({node.kind}): its inputs disagree on shape: " + ", ".join(
                    f"'{src}' gives {s}" for src, s in known)
                if msg not in problems:
                    problems.append(msg)
                continue
            (ins,) = in_shapes
            own = node.own_shape()
            if own is not None and tuple(own) != tuple(ins):
                msg = (f"node '{name}' ({node.kind}) expects input shape {tuple(own)} but "
                       f"'{known[0][0]}' gives {ins}")
                if msg not in problems:
                    problems.append(msg)
                continue
            try:
                shapes[name] = node.out_shape(ins)
            except ValueError as err:
                msg = f"node '{name}' ({node.kind}): {err}"
                if msg not in problems:
                    problems.append(msg)
    return shapes, problems


def problems(graph: "Graph") -> list[str]:
    """Every problem with ``graph`` (empty list when it is well formed)."""
    found: list[str] = []
    names = set(graph.nodes)
    if not graph.inputs:
        found.append("the graph has no Input node")
    if not graph.outputs:
        found.append("the graph has no Output node")
    for e in graph.edges:
        for end in (e.src, e.dst):
            if end not in names:
                found.append(f"edge {e.src} -> {e.dst} names unknown node '{end}'")
        if e.delay < 0:
            found.append(f"edge {e.src} -> {e.dst} has negative delay {e.delay}")
    if len(set(graph.edges)) != len(graph.edges):
        found.append("the graph has duplicate edges")
    found.extend(name_problems(graph.nodes))
    for name, node in graph.nodes.items():
        for p in node.check():
            found.append(f"node '{name}' ({node.kind}): {p}")
        ins, outs = graph.in_edges(name), graph.out_edges(name)
        if isinstance(node, Input) and ins:
            found.append(f"Input node '{name}' has incoming edges from {[e.src for e in ins]}")
        if isinstance(node, Output) and outs:
            found.append(f"Output node '{name}' has outgoing edges to {[e.dst for e in outs]}")
        if not isinstance(node, Input) and not ins:
            found.append(f"node '{name}' ({node.kind}) has no input edge")
        if graph.numerics is not None and node.state_vars and not node.quantized and node.kind != "Delay":
            found.append(f"node '{name}' ({node.kind}) is a float neuron in a graph quantized for "
                         f"'{graph.numerics}'")
    if found:
        return found
    found.extend(_cycle_problems(graph))
    if found:
        return found
    _, shape_problems = infer_shapes(graph)
    return found + shape_problems


def name_problems(names: Iterable[str]) -> list[str]:
    """Node names become JSON keys, ``.npz`` member names and backend labels: no control characters
    (NUL included), valid UTF-8 (no lone surrogates from undecodable bytes), at most 256 characters."""
    found = []
    for name in names:
        if not isinstance(name, str):
            found.append(f"node name {name!r} is not text")
            continue
        try:
            name.encode("utf-8")
            bad = any(ord(c) < 32 or ord(c) == 127 for c in name) or len(name) > 256
        except UnicodeEncodeError:
            bad = True
        if bad:
            found.append(f"node name {name[:60]!r} holds a control character (e.g. NUL), bytes that are not UTF-8, "
                         "or more than 256 characters; rename the layer in the model")
    return found


def _cycle_problems(graph: "Graph") -> list[str]:
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    delayed: set[tuple[str, str]] = set()
    for e in graph.edges:
        g.add_edge(e.src, e.dst)
        if e.delay >= 1:
            delayed.add((e.src, e.dst))
    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) == 1:
            (n,) = comp
            if not g.has_edge(n, n):
                continue
        members = sorted(comp, key=list(graph.nodes).index)
        if not any(graph.nodes[n].stateful for n in members):
            out.append(f"cycle through {members} has no stateful node (recurrence must pass a neuron)")
        inner = [(a, b) for a, b in g.subgraph(comp).edges if (a, b) in delayed]
        if not inner:
            out.append(f"cycle through {members} has no edge with delay >= 1; mark the recurrent edge "
                       "with delay=1 (it reads the previous step)")
    return out
