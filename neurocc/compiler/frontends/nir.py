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
  ``(n,)``) is read without it (:func:`_drop_batch_dim`).
* reset mode: NIR only knows "reset to v_reset". :func:`write_nir` records neurocc's
  ``subtract``/``none`` resets in the graph metadata as ``{"neurocc.reset": {node: "subtract"}}``,
  the other spike semantics of :class:`neurocc.ir.nodes._Spiking` (snnTorch's reset timing,
  Sinabs' ``>=``/multi-spike/``v_min``) as ``{"neurocc.spiking": {node: {field: value}}}``, and the
  graph's ``dt``/``method`` as ``neurocc.dt``/``neurocc.method``; the reader reads them back.
  Other NIR tools ignore these keys (and then simulate reset-to-v_reset).

Writing (:func:`write_nir`) covers every float kind; ANN-only kinds (ReLU, BatchNorm,
MaxPool2d) and quantized kinds cannot be written. ``Add`` nodes are dropped (NIR sums a node's
inputs). Only edges that the reader would mark as recurrent may carry a delay (1).
"""
from __future__ import annotations

import heapq
import re
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import atomic_path
from neurocc.compiler.frontends import Builder, NodeFactory, bypass
from neurocc.errors import GraphError, ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.types import ResetMode, Shape

RESET_KEY = "neurocc.reset"
SPIKING_KEY = "neurocc.spiking"  # {node: {reset_timing, reset_now, fire_at_threshold, multi_spike, v_min}}
DT_KEY = "neurocc.dt"
METHOD_KEY = "neurocc.method"

NEURON_PARAMS = {
    "I": ("r",), "IF": ("r", "v_threshold", "v_reset"), "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "Threshold": ("threshold",), "Delay": ("delay",), "Scale": ("scale",),
}
NIR_NAMES = {"Threshold": "threshold", "Delay": "delay", "Scale": "scale"}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def read_nir(source: Any) -> Graph:
    """Read a NIR file (``.nir``/``.h5``/``.hdf5``) or an in-memory ``nir.NIRGraph`` into a verified Graph."""
    import nir

    if isinstance(source, nir.NIRGraph):
        graph, where, name = source, "<nir.NIRGraph>", "nir"
    else:
        path = Path(source)
        where, name = str(path), path.stem
        graph = _read_file(path)
    meta = _metadata(graph)
    nodes, edges, passthrough = _flatten(graph, "", where)
    nodes, edges = bypass(nodes, edges, passthrough, where)
    nodes = _drop_batch_dim(nodes, edges)
    edges = mark_back_edges(list(nodes), edges, [n for n, v in nodes.items() if isinstance(v, nir.Input)])
    resets = _resets(graph, "")
    b = Builder(name=name, source=where)
    order = canonical_order(list(nodes), edges)
    spiking = {str(k): v for k, v in (meta.get(SPIKING_KEY) or {}).items()}
    for n in order:
        node = _convert(n, nodes[n], resets.get(n, "zero"), where)
        b.nodes[n] = node.replace(**dict(spiking[n])) if n in spiking and isinstance(node, ir.Node) else node
    pos = {n: i for i, n in enumerate(order)}
    b.edges = sorted(edges, key=lambda e: (pos[e.src], pos[e.dst]))
    dt = meta.get(DT_KEY)
    method = meta.get(METHOD_KEY)
    return b.finish(dt=float(dt) if dt is not None else None, method=str(method) if method else None)


def _drop_batch_dim(nodes: dict[str, Any], edges: list[Any]) -> dict[str, Any]:
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


def _read_file(path: Path) -> Any:
    import nir

    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    _check_hdf5(path)
    try:
        graph = nir.read(path, type_check=False)
    except (OSError, KeyError, ValueError, TypeError, AssertionError, AttributeError, RuntimeError,
            IndexError, RecursionError, UnicodeDecodeError) as err:
        raise ModelLoadError(
            f"cannot read this NIR file ({type(err).__name__}: {err}); it is truncated, corrupt, or not "
            "a NIR HDF5 file", where=str(path),
            fix="re-export the model to NIR (nir.write) and check the copy is complete") from None
    problems = _non_numeric(graph, "")
    if problems:
        raise ModelLoadError("the NIR file holds text where numbers belong", where=str(path), problems=problems,
                             fix="re-export the model to NIR (nir.write) with numeric parameters")
    return graph


def _check_hdf5(path: Path) -> None:
    """Before nir.read allocates anything: every dataset fits the size budget (:mod:`neurocc._limits`)."""
    import h5py

    from neurocc._limits import check_size

    datasets: list[tuple[str, Any]] = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: datasets.append((name, obj.shape, obj.dtype.itemsize))
                         if isinstance(obj, h5py.Dataset) else None)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"cannot read this NIR file ({type(err).__name__}: {err}); it is truncated, corrupt, "
                             "or not a NIR HDF5 file", where=str(path),
                             fix="re-export the model to NIR (nir.write) and check the copy is complete") from None
    for name, shape, itemsize in datasets:
        check_size(shape or (), itemsize, f"dataset '{name}'", str(path), error=ModelLoadError,
                   fix="check the shapes stored in the file")


def _non_numeric(graph: Any, prefix: str) -> list[str]:
    """Parameters (and input/output shapes) of every node, nested graphs included, that are not numbers."""
    import nir

    problems = []
    for name, node in getattr(graph, "nodes", {}).items():
        if isinstance(node, nir.NIRGraph):
            problems += _non_numeric(node, f"{prefix}{name}.")
            continue
        for key, value in vars(node).items():
            if key in ("metadata", "padding"):  # free-form, and "same"/"valid" padding
                continue
            values = value.values() if isinstance(value, dict) else [value]
            for v in values:
                if isinstance(v, (np.ndarray, str, bytes)) and np.asarray(v).dtype.kind not in "biuf":
                    problems.append(f"node '{prefix}{name}': {key} is {np.asarray(v).dtype} text, not numbers")
    return problems


def _metadata(graph: Any) -> dict[str, Any]:
    meta = getattr(graph, "metadata", None)
    return dict(meta) if isinstance(meta, dict) else {}


def _resets(graph: Any, prefix: str) -> dict[str, str]:
    """Reset modes recorded by write_nir in (possibly nested) graph metadata."""
    import nir

    out = {prefix + k: str(v) for k, v in (_metadata(graph).get(RESET_KEY) or {}).items()}
    for n, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            out.update(_resets(node, f"{prefix}{n}."))
    return out


def _flatten(graph: Any, prefix: str, where: str) -> tuple[dict[str, Any], list[Edge], set[str]]:
    """Flat nodes (names prefixed), edges, and the inner Input/Output names to bypass."""
    import nir

    nodes: dict[str, Any] = {}
    edges: list[Edge] = []
    passthrough: set[str] = set()
    ends: dict[str, tuple[str, str]] = {}
    for n, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_pass = _flatten(node, f"{prefix}{n}.", where)
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


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x)


def _pairs(x: Any, n: int) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(x)).astype(int)
    return tuple(int(v) for v in (np.repeat(a, n) if a.size == 1 else a))


def _padding(pad: Any, weight: np.ndarray, dilation: tuple[int, ...], name: str, where: str) -> tuple[int, ...]:
    nd = weight.ndim - 2
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, str):
        if pad == "valid":
            return (0,) * nd
        total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
        if pad != "same" or any(t % 2 for t in total):
            raise ModelLoadError(f"node '{name}': padding '{pad}' cannot be expressed as symmetric integer "
                                 "padding for this kernel", where=where,
                                 fix="use an odd kernel size or explicit integer padding")
        return tuple(t // 2 for t in total)
    return _pairs(pad, nd)


def _convert(name: str, node: Any, reset: str, where: str) -> ir.Node | NodeFactory:
    """One NIR node → one IR node (or a factory taking the node's input shape)."""
    kind = type(node).__name__
    if kind == "Input":
        shape = node.input_type.get("input")
        if shape is None:
            raise ModelLoadError(f"Input '{name}' has no shape", where=where, fix="give the Input node a shape")
        return ir.Input(shape=tuple(int(s) for s in np.atleast_1d(shape)))
    if kind == "Output":
        shape = node.output_type.get("output")
        return ir.Output(shape=tuple(int(s) for s in np.atleast_1d(shape)) if shape is not None else ())
    if kind == "Affine":
        return ir.Affine(weight=_arr(node.weight), bias=_arr(node.bias))
    if kind == "Linear":
        return ir.Linear(weight=_arr(node.weight))
    if kind in ("Conv1d", "Conv2d"):
        return _conv(name, node, where)
    if kind in ("SumPool2d", "AvgPool2d"):
        cls = ir.SumPool2d if kind == "SumPool2d" else ir.AvgPool2d
        return cls(kernel_size=_pairs(node.kernel_size, 2), stride=_pairs(node.stride, 2),
                   padding=_pairs(node.padding, 2))
    if kind == "Flatten":
        return ir.Flatten(start_dim=int(node.start_dim), end_dim=int(node.end_dim))
    if kind in NEURON_PARAMS:
        return _neuron(kind, node, reset)
    raise ModelLoadError(f"node '{name}' has NIR type {kind}, which neurocc does not read", where=where,
                         fix="neurocc reads the NIR 1.0 primitives; replace this node")


def _conv(name: str, node: Any, where: str) -> ir.Conv2d:
    weight = _arr(node.weight)
    nd = weight.ndim - 2
    cls = ir.Conv1d if nd == 1 else ir.Conv2d
    dilation = _pairs(node.dilation, nd)
    shape = node.input_shape
    bias = _arr(node.bias) if node.bias is not None else np.zeros(weight.shape[0], weight.dtype)
    return cls(weight=weight, bias=bias,
               stride=_pairs(node.stride, nd), dilation=dilation,
               padding=_padding(node.padding, weight, dilation, name, where), groups=int(node.groups),
               input_shape=None if shape is None else _pairs(shape, nd))


def _neuron(kind: str, node: Any, reset: str) -> ir.Node | NodeFactory:
    cls = ir.NODE_KINDS[kind]
    names = NEURON_PARAMS[kind]
    params = {p: _arr(getattr(node, NIR_NAMES.get(kind, p), None)) for p in names}
    if "v_reset" in params and params["v_reset"].ndim == 0 and params["v_reset"].dtype == object:
        params["v_reset"] = np.zeros_like(params["v_threshold"])  # missing → zeros
    extra = {"reset": ResetMode(reset)} if "reset" in {f for f in cls.__dataclass_fields__} else {}
    if len({a.shape for a in params.values()}) == 1 and params[names[0]].ndim > 0:
        return cls(**params, **extra)

    def build(shape: Shape) -> ir.Node:
        return cls(**{k: np.broadcast_to(v, shape).copy() for k, v in params.items()}, **extra)

    return build


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
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
        nir_nodes[n] = _to_nir(node, shapes[preds[0]] if preds else shapes[n], shapes[n])
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


def _to_nir(node: ir.Node, in_shape: Shape, out_shape: Shape) -> Any:
    import nir

    kind = node.kind
    if kind == "Input":
        return nir.Input(input_type={"input": np.array(node.shape)})
    if kind == "Output":
        return nir.Output(output_type={"output": np.array(node.shape or in_shape)})
    if kind == "Affine":
        return nir.Affine(weight=node.weight, bias=node.bias)
    if kind == "Linear":
        return nir.Linear(weight=node.weight)
    if kind in ("Conv1d", "Conv2d"):
        one = kind == "Conv1d"
        pick = (lambda t: int(t[0])) if one else (lambda t: tuple(int(v) for v in t))
        return getattr(nir, kind)(
            input_shape=pick(node.input_shape or in_shape[1:]), weight=node.weight, bias=node.bias,
            stride=pick(node.stride), padding=pick(node.padding), dilation=pick(node.dilation),
            groups=int(node.groups))
    if kind in ("SumPool2d", "AvgPool2d"):
        return getattr(nir, kind)(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                  padding=np.array(node.padding))
    if kind == "Flatten":
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim,
                           end_dim=node.end_dim)
    params = {NIR_NAMES.get(kind, p): getattr(node, p) for p in NEURON_PARAMS[kind]}
    return getattr(nir, kind)(**params)


__all__ = ["mark_back_edges", "read_nir", "write_nir"]
