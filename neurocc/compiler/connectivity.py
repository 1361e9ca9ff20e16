"""Connectivity between neuron layers, counted arithmetically (never per synapse).

The mapper sees a graph as **layers** (neuron nodes, which occupy cores, and Input nodes, which
are spike sources) joined by **connections**: each path of synapse nodes (Affine, Linear,
Conv1d/2d, pooling, QDense, QConv2d, QSumPool2d, through Flatten, Add, Scale and Delay) from a
source layer to a neuron layer is one :class:`Conn`. The synapses of a connection are stored at
the postsynaptic layer's cores, as on Loihi and SpiNNaker.

Every count is separable over the axes of the layer's *view shape* ``(C, *spatial)`` (a 1-D layer
``(N,)`` has one axis). A connection is either

* ``full`` (it passes a dense op): every postsynaptic neuron connects to all ``n_pre`` reachable
  presynaptic neurons; or
* ``local`` (only conv / pool / identity ops): per axis ``i`` an :class:`AxisMap` lists, for each
  postsynaptic coordinate ``j``, the presynaptic coordinates it reads. The receptive field of a
  postsynaptic neuron ``(j_0, j_1, ...)`` is the product ``Π_i R_i(j_i)``, so for a box-shaped
  slice ``T = Π_i T_i`` the receptive field is ``Π_i ∪_{j∈T_i} R_i(j)`` and the expanded synapse
  count is ``Π_i Σ_{j∈T_i} |R_i(j)|``. Per-axis tables have ``n_post × width`` entries (``width``
  is the kernel footprint), so the cost grows with the side lengths, not with the neuron count.

Zero weights are absent synapses (:mod:`neurocc.compiler.sparsity`): a ``full`` path through one
dense op (other ops one-to-one) whose weight has zeros carries its CSR pattern (``Conn.sparse``),
and a ``local`` path through one convolution whose kernel has zero taps carries the exact
synapse count of every post neuron (``Conn.syn_counts``); the partition counts those instead.

Composition of ops inside one path is exact per axis (an intermediate position in padding
connects nothing). Two paths between the same pair of layers are counted separately (an upper
bound on fan-in and fan-out where their receptive fields overlap).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from neurocc.compiler.sparsity import SparseRows
from neurocc.ir.discrete import delay_steps
from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Conv2d, Input, Node, Output, _Dense, _Pool2d
from neurocc.ir.qnodes import QDense
from neurocc.ir.types import Shape

IDENTITY_KINDS = ("Flatten", "Add", "Scale", "Delay")


def is_layer(node: Node) -> bool:
    """Neuron nodes occupy cores: any stateful or spiking kind except the Delay buffer."""
    return node.kind != "Delay" and (bool(node.state_vars) or node.spiking)


@dataclass(frozen=True, eq=False)
class AxisMap:
    """Post coordinate → pre coordinates along one axis. ``table`` is ``(n_post, width)`` int64,
    rows sorted, unique, padded with −1; ``None`` means every post coordinate reads all
    ``n_pre`` coordinates (a dense axis, e.g. the channel axis of a groups=1 conv)."""

    n_post: int
    n_pre: int
    table: np.ndarray | None

    def counts(self) -> np.ndarray:
        """|R(j)| for every post coordinate j."""
        if self.table is None:
            return np.full(self.n_post, self.n_pre, np.int64)
        return (self.table >= 0).sum(axis=1).astype(np.int64)

    def pairs(self, block: int) -> np.ndarray:
        """Unique (post block, pre coordinate) pairs encoded as ``blk * n_pre + pre``."""
        if self.table is None:
            nb = -(-self.n_post // block)
            return (np.arange(nb)[:, None] * self.n_pre + np.arange(self.n_pre)[None, :]).ravel()
        blk = np.arange(self.n_post) // block
        enc = blk[:, None] * self.n_pre + self.table
        return np.unique(enc[self.table >= 0])


def identity_map(n: int) -> AxisMap:
    return AxisMap(n, n, np.arange(n, dtype=np.int64)[:, None])


def window_map(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> AxisMap:
    """Conv/pool along one spatial axis: post j reads s·j − p + d·k' for k' < k (inside [0, n_in))."""
    t = s * np.arange(n_out, dtype=np.int64)[:, None] - p + d * np.arange(k, dtype=np.int64)[None, :]
    t[(t < 0) | (t >= n_in)] = -1
    return AxisMap(n_out, n_in, np.sort(t, axis=1)[:, ::-1])


def group_map(c_in: int, c_out: int, groups: int) -> AxisMap:
    """Channel axis of a grouped conv: post channel c reads the input channels of its group."""
    if groups == 1:
        return AxisMap(c_out, c_in, None)
    cin_pg, cout_pg = c_in // groups, c_out // groups
    t = (np.arange(c_out, dtype=np.int64) // cout_pg)[:, None] * cin_pg + np.arange(cin_pg)[None, :]
    return AxisMap(c_out, c_in, t)


def compose(outer: AxisMap, inner: AxisMap) -> AxisMap:
    """``outer`` maps post → mid, ``inner`` maps mid → pre; return post → pre (exact)."""
    if outer.table is None:
        support = _support(inner)
        if support.size == inner.n_pre:
            return AxisMap(outer.n_post, inner.n_pre, None)
        return AxisMap(outer.n_post, inner.n_pre, np.broadcast_to(support, (outer.n_post, support.size)).copy())
    if inner.table is None:
        full = (outer.table >= 0).any(axis=1)
        if full.all():
            return AxisMap(outer.n_post, inner.n_pre, None)
        t = np.where(full[:, None], np.arange(inner.n_pre)[None, :], -1)
        return AxisMap(outer.n_post, inner.n_pre, t)
    got = np.where(outer.table[:, :, None] >= 0, inner.table[np.maximum(outer.table, 0)], -1)
    return AxisMap(outer.n_post, inner.n_pre, _unique_rows(got.reshape(outer.n_post, -1)))


def _support(m: AxisMap) -> np.ndarray:
    if m.table is None:
        return np.arange(m.n_pre, dtype=np.int64)
    return np.unique(m.table[m.table >= 0])


def _unique_rows(t: np.ndarray) -> np.ndarray:
    """Sort each row descending, blank duplicates with −1 and drop all-blank columns."""
    t = np.sort(t, axis=1)
    dup = np.zeros_like(t, dtype=bool)
    dup[:, 1:] = t[:, 1:] == t[:, :-1]
    t[dup] = -1
    t = np.sort(t, axis=1)[:, ::-1]
    width = max(int((t >= 0).sum(axis=1).max(initial=0)), 1)
    return np.ascontiguousarray(t[:, :width])


@dataclass(frozen=True, eq=False)
class Conn:
    """One synapse path ``pre`` → ``post``.

    ``kind='full'``: every post neuron reads ``n_pre`` presynaptic neurons. ``kind='local'``:
    ``axes`` (one :class:`AxisMap` per axis of the post view shape, pre side in the pre view).
    Storage: ``shared_units`` (weights per post channel when a chip stores the conv kernel once
    per core, else None: expanded) and ``dense_in`` (own row length of the dense op nearest the
    post layer, used when the dense weights are stored uncomposed). ``weight_bits`` is the real
    width of a quantized weight op, or None (use the target's). ``delay_steps`` is the path's
    total delay in steps (edge delays plus Delay nodes).
    """

    pre: str
    post: str
    kind: Literal["full", "local"]
    n_pre: int
    axes: tuple[AxisMap, ...]
    ops: tuple[str, ...]
    shared_units: int | None
    dense_in: int | None
    weight_bits: int | None
    delay_steps: int
    sparse: SparseRows | None = None   # non-zero pattern of a sparse dense op (see sparsity.py)
    syn_counts: np.ndarray | None = None  # local path through one conv with zero taps: synapses per post neuron


@dataclass(frozen=True)
class Layer:
    """A neuron layer (or Input source) as the mapper sees it. ``view`` is the (C, *spatial)
    shape slices are boxes of (the node shape, or the unflattened shape for a flat layer fed by
    a local path through Flatten)."""

    name: str
    kind: str
    shape: Shape
    view: Shape
    is_input: bool

    @property
    def n(self) -> int:
        return int(np.prod(self.view, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Network:
    """Layers in a deterministic order (sources first, feed-forward topological) and the
    connections between them."""

    layers: dict[str, Layer]
    conns: tuple[Conn, ...]
    order: tuple[str, ...]

    def into(self, name: str) -> list[Conn]:
        return self._index[0].get(name, [])

    def out_of(self, name: str) -> list[Conn]:
        return self._index[1].get(name, [])

    @cached_property
    def _index(self) -> tuple[dict[str, list[Conn]], dict[str, list[Conn]]]:
        into: dict[str, list[Conn]] = {}
        out: dict[str, list[Conn]] = {}
        for c in self.conns:
            into.setdefault(c.post, []).append(c)
            out.setdefault(c.pre, []).append(c)
        return into, out


def analyse(graph: Graph) -> Network:
    """Find layers and the connections between them (CompileError for ANN-only nodes)."""
    ann = [f"'{n}' ({node.kind})" for n, node in graph.nodes.items() if node.ann_only]
    if ann:
        raise CompileError("the graph still has ANN-only nodes, which no chip core can hold",
                           where=f"graph '{graph.name}'", problems=ann,
                           fix="compile the model first (the convert pass turns ReLU layers into IF neurons)")
    shapes = graph.shapes()
    names = [n for n, node in graph.nodes.items() if is_layer(node) or isinstance(node, Input)]
    pos = {n: i for i, n in enumerate(graph.nodes)}
    paths = [(src, post, ops, delay) for post in names if not isinstance(graph.nodes[post], Input)
             for src, ops, delay in _paths_into(graph, post, pos)]
    views = _views(graph, shapes, names, paths)
    conns = tuple(_build_conn(graph, shapes, views, *p) for p in paths)
    layers = {n: Layer(n, graph.nodes[n].kind, shapes[n], views[n], isinstance(graph.nodes[n], Input))
              for n in names}
    return Network(layers, conns, _layer_order(names, conns))


def _paths_into(graph: Graph, post: str, pos: dict[str, int]) -> list[tuple[str, tuple[str, ...], int]]:
    """Every path of non-layer nodes into ``post``: (source layer, ops pre→post, delay steps)."""
    out: list[tuple[str, tuple[str, ...], int]] = []
    stack: list[tuple[str, tuple[str, ...], int]] = [(post, (), 0)]
    while stack:
        cur, ops, delay = stack.pop()
        for e in reversed(graph.in_edges(cur)):
            node = graph.nodes[e.src]
            d = delay + e.delay + _delay_node_steps(graph, node)
            if is_layer(node) or isinstance(node, Input):
                out.append((e.src, ops, d))
            elif e.src not in ops and not isinstance(node, Output):
                stack.append((e.src, (e.src, *ops), d))
    return sorted(out, key=lambda p: (pos[p[0]], p[1]))


def _delay_node_steps(graph: Graph, node: Node) -> int:
    if node.kind != "Delay" or not node.delay.size:
        return 0
    return int(delay_steps(node.delay, graph.dt).max())


def _views(graph: Graph, shapes: dict[str, Shape], names: list[str], paths: list) -> dict[str, Shape]:
    """A flat layer fed only by local paths through Flatten keeps the unflattened view."""
    views = {n: tuple(shapes[n]) for n in names}
    cands: dict[str, set] = {}
    for src, post, ops, _ in paths:
        if len(shapes[post]) != 1:
            continue
        kinds = [graph.nodes[o].kind for o in ops]
        if "Flatten" not in kinds or any(_is_dense(graph.nodes[o]) for o in ops):
            cands.setdefault(post, set()).add(None)
            continue
        last = ops[max(i for i, k in enumerate(kinds) if k == "Flatten")]
        cands.setdefault(post, set()).add(tuple(shapes[graph.predecessors(last)[0]]))
    for name, found in cands.items():
        if len(found) == 1 and None not in found:
            views[name] = found.pop()
    return views


def _is_dense(node: Node) -> bool:
    return isinstance(node, (_Dense, QDense)) or node.kind in ("QPlasticDense", "PlasticDense")


def _build_conn(graph: Graph, shapes: dict[str, Shape], views: dict[str, Shape],
                pre: str, post: str, ops: tuple[str, ...], delay: int) -> Conn:
    """Compose the ops of one path into per-axis maps (or a full connection)."""
    state: list[AxisMap] | None = None      # None = identity over the pre view so far
    view = views[pre]
    n_full: int | None = None               # set once a dense op makes the path full
    shared, dense_in, bits = None, None, None
    for name in ops:
        node = graph.nodes[name]
        in_shape = shapes[graph.predecessors(name)[0]]
        if _is_dense(node):
            n_full = _reach(state, view) if n_full is None else n_full
            dense_in, shared = int(in_shape[0]), None
            bits = getattr(node, "num_weight_bits", bits) if node.quantized else bits
        elif isinstance(node, (Conv2d, _Pool2d)) and n_full is None:
            maps = _window_maps(node, in_shape, shapes[name])
            state = maps if state is None else [compose(a, b) for a, b in zip(maps, state)]
            shared = (shared or 0) + _kernel_units(node)
            bits = _kernel_bits(node) if isinstance(node, Conv2d) and node.quantized else bits
        elif node.kind in IDENTITY_KINDS or isinstance(node, (Conv2d, _Pool2d)):
            continue
        else:
            raise CompileError(f"node '{name}' ({node.kind}) cannot sit between neuron layers",
                               where=f"path {pre} -> {post}", fix="report this graph to the neurocc developers")
    if n_full is not None or (state is not None and len(state) != len(views[post])):
        n_pre = n_full if n_full is not None else _reach(state, view)
        sparse = _sparse_rows(graph, ops, n_pre, views[post]) if n_full is not None else None
        return Conn(pre, post, "full", n_pre, (), ops, None, dense_in, bits, delay, sparse)
    axes = tuple(state) if state is not None else tuple(identity_map(n) for n in views[post])
    if len(axes) != len(views[post]) or any(a.n_post != n for a, n in zip(axes, views[post])):
        return Conn(pre, post, "full", _reach(state, view), (), ops, None, None, bits, delay)
    counts = _conv_counts(graph, shapes, ops, views[post])
    return Conn(pre, post, "local", int(np.prod(view, dtype=np.int64)), axes, ops, shared, None, bits, delay,
                None, counts)


def _conv_counts(graph: Graph, shapes: dict[str, Shape], ops: tuple[str, ...], post_view: Shape) -> np.ndarray | None:
    """Exact synapses per post neuron of a path through one convolution whose kernel has zero
    taps (others identity): ``count[c, y, x] = Σ_{ky,kx} M[c, ky, kx] · valid_y[y, ky] · valid_x[x, kx]``,
    ``M`` the number of non-zero input-channel weights of tap (ky, kx), ``valid`` whether the tap
    reads inside the input (not padding). None when the kernel has no zero (the footprint is exact)."""
    convs = [o for o in ops if isinstance(graph.nodes[o], Conv2d)]
    if len(convs) != 1 or any(graph.nodes[o].kind not in IDENTITY_KINDS for o in ops if o != convs[0]):
        return None
    node = graph.nodes[convs[0]]
    nz = np.asarray(node.weight) != 0
    if nz.all():
        return None
    in_shape, out_shape = shapes[graph.predecessors(convs[0])[0]], shapes[convs[0]]
    if tuple(out_shape) != tuple(post_view):
        return None
    taps = nz.sum(axis=1).astype(np.float64)                       # (C_out, *kernel)
    for ax, (n_in, n_out, k, s, p, d) in enumerate(zip(in_shape[1:], out_shape[1:], node.weight.shape[2:],
                                                      node.stride, node.padding, node.dilation)):
        t = s * np.arange(n_out)[:, None] - p + d * np.arange(k)[None, :]
        valid = ((t >= 0) & (t < n_in)).astype(np.float64)         # (n_out, k)
        taps = np.tensordot(taps, valid, axes=([1], [1]))          # kernel axis → output axis (appended)
    return np.rint(taps).astype(np.int64).reshape(post_view)


def _sparse_rows(graph: Graph, ops: tuple[str, ...], n_pre: int, post_view: Shape) -> SparseRows | None:
    """The non-zero pattern of the path's one dense op when every other op maps neurons one to
    one (Flatten, Scale, Delay, Add), so its rows are the post neurons and its columns the pre
    neurons; else None (counted as fully connected)."""
    dense = [o for o in ops if _is_dense(graph.nodes[o])]
    if len(dense) != 1 or any(graph.nodes[o].kind not in IDENTITY_KINDS for o in ops if o != dense[0]):
        return None
    w = graph.nodes[dense[0]].weight
    if w.shape != (int(np.prod(post_view, dtype=np.int64)), n_pre):
        return None
    return SparseRows.from_weight(w)


def _reach(state: list[AxisMap] | None, view: Shape) -> int:
    if state is None:
        return int(np.prod(view, dtype=np.int64))
    return int(np.prod([_support(m).size for m in state], dtype=np.int64))


def _window_maps(node: Node, in_shape: Shape, out_shape: Shape) -> list[AxisMap]:
    if isinstance(node, Conv2d):
        ch = group_map(in_shape[0], out_shape[0], node.groups)
        ks, dil = node.weight.shape[2:], node.dilation
    else:
        ch = identity_map(in_shape[0])
        ks, dil = node.kernel_size, (1,) * len(node.kernel_size)
    sp = [window_map(n_in, n_out, k, s, p, d) for n_in, n_out, k, s, p, d in
          zip(in_shape[1:], out_shape[1:], ks, node.stride, node.padding, dil)]
    return [ch, *sp]


def _kernel_units(node: Node) -> int:
    """Weights stored per output channel when the kernel is shared (pooling: one window)."""
    if isinstance(node, Conv2d):
        return int(np.prod(node.weight.shape[1:]))
    return int(np.prod(node.kernel_size))


def _kernel_bits(node: Conv2d) -> int:
    """Real width of an integer kernel: magnitude bits plus a sign bit when any weight is < 0."""
    w = np.asarray(node.weight, dtype=np.int64)
    mag = int(np.abs(w).max(initial=0)).bit_length()
    return max(1, mag + int(bool((w < 0).any())))


def _layer_order(names: list[str], conns: tuple[Conn, ...]) -> tuple[str, ...]:
    """Topological order of the layer graph without its cycle-closing edges (ties: graph order)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(names)
    g.add_edges_from((c.pre, c.post) for c in conns if c.pre != c.post)
    cond = nx.condensation(g)
    pos = {n: i for i, n in enumerate(names)}
    key = {c: min(pos[n] for n in cond.nodes[c]["members"]) for c in cond.nodes}
    order: list[str] = []
    for c in nx.lexicographical_topological_sort(cond, key=key.__getitem__):
        order.extend(sorted(cond.nodes[c]["members"], key=pos.__getitem__))
    return tuple(order)
