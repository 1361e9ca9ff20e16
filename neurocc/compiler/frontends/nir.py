"""NIR ⇄ neurocc IR.

Reading (:func:`read_nir`) uses ``nir.read(path, type_check=False)`` always (files from older
NIR versions, such as the paper's ``lif_rockpool.nir``, fail NIR's own type check) and then
neurocc's own checks (``Graph.verify``). What the reader decides, since NIR leaves it open:

* **nested graphs are flattened**: node ``inner`` of subgraph ``outer`` becomes ``outer.inner``;
  the subgraph's own Input/Output nodes disappear (their edges are joined). An edge to or from
  the subgraph's name goes to its single Input / comes from its single Output.
* **edge delays**: NIR has none. Edges that close a cycle get ``delay=1`` (the recurrent edge
  reads the previous step, as nirtorch's ``prev_output``); the back edges are those a
  depth-first search finds starting from the Input nodes, taking nodes and successors in
  natural name order (so the choice does not depend on how the file orders them). Every other
  edge has delay 0.
* node order: topological over the delay-0 edges, ties in natural name order; edges sorted by
  their ends' positions. Reading a graph from memory or from its file gives the same digest.
* conv ``padding='same'``/``'valid'`` become integers; ``v_reset`` missing → zeros; neuron
  parameters given as scalars are broadcast to the node's shape here, in the frontend;
* ``Flatten.start_dim``/``end_dim`` count dims **without** the batch (as the exporters write
  them: ``cnn_sinabs.nir`` has ``start_dim=0`` on a (8, 4, 4) input, giving 128).
* an Input whose shape starts with a batch dimension of 1 that its successors do not expect
  (Norse's and Rockpool's exporters write the sample's ``(1, n)``; the next layer declares
  ``(n,)``) is read without it (:func:`~.nir_graph.drop_batch_dim`).
* reset mode: NIR only knows "reset to v_reset". :func:`write_nir` records neurocc's
  ``subtract``/``none`` resets in the graph metadata as ``{"neurocc.reset": {node: "subtract"}}``,
  the other spike semantics of :class:`neurocc.ir.nodes._Spiking` (snnTorch's reset timing,
  Sinabs' ``>=``/multi-spike/``v_min``) as ``{"neurocc.spiking": {node: {field: value}}}``, and the
  graph's ``dt``/``method`` as ``neurocc.dt``/``neurocc.method``; the reader reads them back.
  Other NIR tools ignore these keys (and then simulate reset-to-v_reset).

Writing (:func:`write_nir`) covers every float kind; ANN-only kinds (ReLU, BatchNorm,
MaxPool2d) and quantized kinds cannot be written. ``Add`` nodes are dropped (NIR sums a node's
inputs). Only edges that the reader would mark as recurrent may carry a delay (1).

The parts: :mod:`.nir_file` (opening the file safely), :mod:`.nir_graph` (flattening, delays,
order, metadata keys), :mod:`.nir_nodes` (one node each way), :mod:`.nir_write` (the writer);
this module reads a graph and re-exports the public names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from neurocc.compiler.frontends import Builder, bypass
from neurocc.compiler.frontends.nir_file import read_file
from neurocc.compiler.frontends.nir_graph import (
    DT_KEY,
    METHOD_KEY,
    RESET_KEY,
    SPIKING_KEY,
    canonical_order,
    drop_batch_dim,
    flatten,
    graph_metadata,
    mark_back_edges,
    recorded_resets,
)
from neurocc.compiler.frontends.nir_nodes import NEURON_PARAMS, NIR_NAMES, from_nir_node
from neurocc.compiler.frontends.nir_write import write_nir
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Graph

__all__ = ["DT_KEY", "METHOD_KEY", "NEURON_PARAMS", "NIR_NAMES", "RESET_KEY", "SPIKING_KEY", "canonical_order",
           "mark_back_edges", "read_nir", "write_nir"]


def read_nir(source: Any) -> Graph:
    """Read a NIR file (``.nir``/``.h5``/``.hdf5``) or an in-memory ``nir.NIRGraph`` into a verified Graph."""
    import nir

    if isinstance(source, nir.NIRGraph):
        graph, where, name = source, "<nir.NIRGraph>", "nir"
    else:
        path = Path(source)
        where, name = str(path), path.stem
        graph = read_file(path)
    meta = graph_metadata(graph)
    nodes, edges, passthrough = flatten(graph, "", where)
    nodes, edges = bypass(nodes, edges, passthrough, where)
    nodes = drop_batch_dim(nodes, edges)
    edges = mark_back_edges(list(nodes), edges, [n for n, v in nodes.items() if isinstance(v, nir.Input)])
    resets = recorded_resets(graph, "")
    b = Builder(name=name, source=where)
    order = canonical_order(list(nodes), edges)
    spiking = {str(k): v for k, v in (meta.get(SPIKING_KEY) or {}).items()}
    for n in order:
        node = from_nir_node(n, nodes[n], resets.get(n, "zero"), where)
        b.nodes[n] = node.replace(**dict(spiking[n])) if n in spiking and isinstance(node, ir.Node) else node
    pos = {n: i for i, n in enumerate(order)}
    b.edges = sorted(edges, key=lambda e: (pos[e.src], pos[e.dst]))
    dt = meta.get(DT_KEY)
    method = meta.get(METHOD_KEY)
    return b.finish(dt=float(dt) if dt is not None else None, method=str(method) if method else None)
