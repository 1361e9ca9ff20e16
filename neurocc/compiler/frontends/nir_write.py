"""Writing a float neurocc graph as a NIR 1.0 HDF5 file (:func:`write_nir`), atomically.

ANN-only and quantized kinds cannot be written; ``Add`` nodes are dropped (NIR sums a node's
inputs); only edges that the reader would mark as recurrent may carry a delay (1). neurocc's
``subtract``/``none`` resets, the other spike semantics and the graph's ``dt``/``method`` go into
the graph metadata, which the reader reads back (:mod:`neurocc.compiler.frontends.nir`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from neurocc._files import atomic_path
from neurocc.compiler.frontends import bypass
from neurocc.compiler.frontends.nir_graph import (
    DT_KEY,
    METHOD_KEY,
    RESET_KEY,
    SPIKING_KEY,
    mark_back_edges,
)
from neurocc.compiler.frontends.nir_nodes import to_nir_node
from neurocc.errors import GraphError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.types import ResetMode


def write_nir(graph: Graph, path: str | Path) -> None:
    """Write a float graph as a NIR 1.0 HDF5 file (atomically: temp file, then rename)."""
    import nir

    _check_writable(graph)
    shapes = graph.shapes()
    nodes, edges = bypass(dict(graph.nodes), list(graph.edges),
                          {n for n, v in graph.nodes.items() if isinstance(v, ir.Add)}, f"graph '{graph.name}'")
    _check_delays(graph.name, list(nodes), edges, [n for n in nodes if isinstance(nodes[n], ir.Input)])
    nir_nodes = {}
    for n, node in nodes.items():
        preds = [e.src for e in edges if e.dst == n]
        nir_nodes[n] = to_nir_node(node, shapes[preds[0]] if preds else shapes[n], shapes[n])
    metadata: dict[str, Any] = {}
    resets = {n: v.reset.value for n, v in nodes.items() if getattr(v, "reset", ResetMode.ZERO) != ResetMode.ZERO}
    if resets:
        metadata[RESET_KEY] = resets
    spiking = {n: _spiking_semantics(v) for n, v in nodes.items() if _spiking_semantics(v)}
    if spiking:
        metadata[SPIKING_KEY] = spiking
    if graph.dt is not None:
        metadata[DT_KEY] = float(graph.dt)
    if graph.method is not None:
        metadata[METHOD_KEY] = graph.method.value
    out = nir.NIRGraph(nodes=nir_nodes, edges=[(e.src, e.dst) for e in edges], metadata=metadata,
                       type_check=False)
    with atomic_path(Path(path)) as tmp:
        nir.write(str(tmp), out)


def _spiking_semantics(node: ir.Node) -> dict[str, Any]:
    """The spike/reset fields of an IF/LIF/CubaLIF that differ from NIR's defaults (issue 12)."""
    if not isinstance(node, ir._Spiking):
        return {}
    default = {"reset_timing": "after_spike", "reset_now": False, "fire_at_threshold": False, "multi_spike": False,
               "v_min": None}
    got = {k: getattr(node, k) for k in default}
    got["reset_timing"] = got["reset_timing"].value
    return {k: v for k, v in got.items() if v != default[k]}


def _check_writable(graph: Graph) -> None:
    bad = [f"'{n}' ({v.kind})" for n, v in graph.nodes.items() if v.ann_only or v.quantized]
    if graph.numerics is not None or bad:
        raise GraphError("these nodes cannot be written to NIR: " + (", ".join(bad) or "quantized graph"),
                         where=f"graph '{graph.name}'",
                         fix="NIR holds float spiking graphs: export a spiking model, or compile the ANN "
                             "(`neurocc compile MODEL --calibration cal.npz -o DIR` converts it) and export "
                             "the converted float graph: `neurocc export-nir DIR/float_graph.json out.nir`")
    slash = [n for n in graph.nodes if "/" in n]
    if slash:
        raise GraphError("node names with '/' cannot be HDF5 group names: " + ", ".join(slash),
                         where=f"graph '{graph.name}'", fix="rename these nodes (use '.' instead of '/')")


def _check_delays(name: str, order: list[str], edges: list[Edge], starts: list[str]) -> None:
    expected = mark_back_edges(order, [Edge(e.src, e.dst) for e in edges], starts)
    bad = [f"{e.src} -> {e.dst} has delay {e.delay}, NIR reading would give {x.delay}"
           for e, x in zip(edges, expected) if e.delay != x.delay]
    if bad:
        raise GraphError("NIR has no edge delays; only edges that close a cycle can carry delay 1",
                         where=f"graph '{name}'", problems=bad,
                         fix="export the float graph before passes that add synaptic delays, or model "
                             "the delay with a Delay node")
