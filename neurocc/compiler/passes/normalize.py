"""normalize: fold BatchNorm and Scale into synapses and drop identities (a pure Graph → Graph pass).

Rewrites, applied until nothing changes (so the pass is idempotent):

* **BatchNorm after a synapse** (``Conv2d``/``Conv1d``/``Affine``/``Linear`` whose only consumer
  is the BatchNorm): with ``s = γ / sqrt(var + eps)`` per channel c (axis 0 of the output),

      W'[c, ...] = s[c] · W[c, ...]        b'[c] = s[c] · (b[c] − mean[c]) + β[c]

  which is exact algebra (``Linear`` becomes ``Affine``: b = 0 before folding). Computed in
  float64, stored in the synapse's dtype. A BatchNorm anywhere else is a CompileError naming
  it (every one at once).
* **Scale next to a synapse**: after it (``y = s ⊙ (W x + b)``: rows of W and b scaled by s) or
  before it (``W (s ⊙ x)``: columns of W scaled by s; exact for convolutions too, since zero
  padding commutes with scaling). Convolutions need s constant over each channel's positions.
  A Scale that cannot be folded is kept.
* **AvgPool2d right after a Conv2d** (its only consumer; dilation 1, no pool padding): one Conv2d
  (:func:`fold_avgpool`), so "Conv → AvgPool → neuron" (average pooling of currents, snnTorch
  tutorials) has a weight layer in front of the neuron on every target.
* **Identities**: ``Add`` with one input, ``Scale`` of all ones and ``Flatten`` that does not
  change the shape are removed; the edge ``a → id → b`` becomes ``a → b`` with the delays added.

Every other node is kept unchanged. The result is verified (``Graph.verify``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Add, Affine, AvgPool2d, BatchNorm, Conv2d, Flatten, Linear, Node, Scale

SYNAPSES = (Affine, Linear, Conv2d)  # Conv1d subclasses Conv2d


@dataclass(frozen=True)
class _Work:
    """A mutable-free working copy: nodes in order plus edges."""

    nodes: dict[str, Node]
    edges: tuple[Edge, ...]

    def ins(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.dst == name]

    def outs(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.src == name]


def normalize(graph: Graph) -> Graph:
    """Return ``graph`` with BatchNorm/Scale folded and identities removed (see module doc)."""
    _reject_unfoldable_batchnorm(graph)
    work = _Work(dict(graph.nodes), graph.edges)
    while True:
        shapes = graph.replace(nodes=work.nodes, edges=work.edges).shapes()
        step = _fold_one(work, shapes) or _drop_one_identity(work, shapes)
        if step is None:
            break
        work = step
    return graph.replace(nodes=work.nodes, edges=work.edges).verify()


# ----- BatchNorm -------------------------------------------------------------------------------
def _bn_source(work: _Work | Graph, name: str) -> str | None:
    """The synapse a BatchNorm can fold into, or None."""
    ins = [e for e in work.edges if e.dst == name]
    if len(ins) != 1 or ins[0].delay != 0:
        return None
    src = ins[0].src
    node = work.nodes[src]
    consumers = [e for e in work.edges if e.src == src]
    return src if isinstance(node, SYNAPSES) and len(consumers) == 1 else None


def _reject_unfoldable_batchnorm(graph: Graph) -> None:
    problems = []
    for name, node in graph.nodes.items():
        if isinstance(node, BatchNorm) and _bn_source(graph, name) is None:
            preds = graph.predecessors(name)
            what = ", ".join(f"'{p}' ({graph.nodes[p].kind})" for p in preds) or "nothing"
            problems.append(f"BatchNorm '{name}' follows {what}, not a Conv2d/Linear that feeds only it")
    if problems:
        raise CompileError(
            "BatchNorm can only be folded into the convolution or linear layer right before it",
            where=f"graph '{graph.name}'", problems=problems,
            fix="put each BatchNorm directly after a Conv2d/Linear layer (conv → BN → ReLU), or fold "
                "it into the neighbouring layer before export (torch.ao.nn.intrinsic / fuse_modules)")


def fold_batchnorm(syn: Node, bn: BatchNorm) -> Node:
    """The synapse ``syn`` followed by ``bn`` as one synapse (float64 algebra, see module doc)."""
    s = np.asarray(bn.weight, np.float64) / np.sqrt(np.asarray(bn.var, np.float64) + bn.eps)
    w = np.asarray(syn.weight, np.float64)  # type: ignore[attr-defined]
    b = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
    w2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    b2 = s * (b - np.asarray(bn.mean, np.float64)) + np.asarray(bn.bias, np.float64)
    dtype = np.result_type(syn.weight.dtype, np.float32)  # type: ignore[attr-defined]
    if isinstance(syn, Linear):
        return Affine(weight=w2.astype(dtype), bias=b2.astype(dtype))
    return syn.replace(weight=w2.astype(dtype), bias=b2.astype(dtype))


# ----- Scale -----------------------------------------------------------------------------------
def _per_row(scale: np.ndarray, syn: Node, shape: tuple[int, ...]) -> np.ndarray | None:
    """``scale`` broadcast to ``shape`` and reduced to one value per channel (axis 0), or None
    when a convolution's channel is not scaled uniformly over its positions."""
    full = np.broadcast_to(np.asarray(scale, np.float64), shape)
    if isinstance(syn, Conv2d):
        flat = full.reshape(shape[0], -1)
        if not np.all(flat == flat[:, :1]):
            return None
        return flat[:, 0]
    return full.reshape(-1)


def fold_scale_after(syn: Node, scale: np.ndarray, out_shape: tuple[int, ...]) -> Node | None:
    """``s ⊙ syn(x)`` as one synapse, or None if it cannot be expressed."""
    s = _per_row(scale, syn, out_shape)
    if s is None:
        return None
    w = np.asarray(syn.weight, np.float64)  # type: ignore[attr-defined]
    b = np.asarray(getattr(syn, "bias", np.zeros(w.shape[0])), np.float64)
    w2, b2 = w * s.reshape((-1,) + (1,) * (w.ndim - 1)), b * s
    dtype = syn.weight.dtype  # type: ignore[attr-defined]
    if isinstance(syn, Linear):
        return Linear(weight=w2.astype(dtype))
    return syn.replace(weight=w2.astype(dtype), bias=b2.astype(dtype))


def fold_scale_before(syn: Node, scale: np.ndarray, in_shape: tuple[int, ...]) -> Node | None:
    """``syn(s ⊙ x)`` as one synapse, or None if it cannot be expressed."""
    s = _per_row(scale, syn, in_shape)
    if s is None:
        return None
    w = np.asarray(syn.weight, np.float64)  # type: ignore[attr-defined]
    if isinstance(syn, Conv2d):
        groups, cin_g = syn.groups, w.shape[1]
        cout_g = w.shape[0] // groups
        idx = (np.arange(w.shape[0])[:, None] // cout_g) * cin_g + np.arange(cin_g)[None, :]
        w2 = w * s[idx].reshape(w.shape[:2] + (1,) * (w.ndim - 2))
    else:
        w2 = w * s[None, :]
    return syn.replace(weight=w2.astype(syn.weight.dtype))  # type: ignore[attr-defined]


# ----- the rewrite loop ------------------------------------------------------------------------
def fold_avgpool(conv: Conv2d, pool: AvgPool2d) -> Conv2d | None:
    """Conv2d (stride s, dilation 1) then AvgPool2d(k, stride t, no padding) as one Conv2d:
    kernel K + s·(k − 1), stride s·t, same padding and bias, W'[λ] = Σ_{s·i + κ = λ} W[κ] / k²
    per spatial axis (exact algebra: both are linear; output sizes agree). None if not foldable."""
    if conv.weight.ndim != 4 or tuple(conv.dilation) != (1, 1) or any(pool.padding):
        return None
    w = np.asarray(conv.weight, np.float64)
    co, ci, kh, kw = w.shape
    (sh, sw), (ph, pw) = conv.stride, pool.kernel_size
    out = np.zeros((co, ci, kh + sh * (ph - 1), kw + sw * (pw - 1)))
    for i in range(ph):
        for j in range(pw):
            out[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw] += w
    out /= ph * pw
    stride = (sh * pool.stride[0], sw * pool.stride[1])
    return conv.replace(weight=out.astype(conv.weight.dtype), stride=stride)


def _merge(work: _Work, keep: str, drop: str, new_node: Node, keep_is_first: bool) -> _Work:
    """Replace ``keep`` by ``new_node`` and remove ``drop``, which sits next to it on one edge."""
    nodes = {n: (new_node if n == keep else v) for n, v in work.nodes.items() if n != drop}
    edges: list[Edge] = []
    for e in work.edges:
        if keep_is_first:   # keep → drop → X  becomes  keep → X
            if e.src == keep and e.dst == drop:
                continue
            edges.append(Edge(keep, e.dst, e.delay) if e.src == drop else e)
        else:               # X → drop → keep  becomes  X → keep
            if e.src == drop and e.dst == keep:
                continue
            edges.append(Edge(e.src, keep, e.delay) if e.dst == drop else e)
    return _Work(nodes, tuple(edges))


def _fold_one(work: _Work, shapes: dict[str, tuple[int, ...]]) -> _Work | None:
    for name, node in work.nodes.items():
        if isinstance(node, BatchNorm):
            src = _bn_source(work, name)
            if src is not None:
                return _merge(work, src, name, fold_batchnorm(work.nodes[src], node), True)
        ins, outs = work.ins(name), work.outs(name)
        if isinstance(node, AvgPool2d) and len(ins) == 1 and ins[0].delay == 0 \
                and type(work.nodes[ins[0].src]) is Conv2d and len(work.outs(ins[0].src)) == 1:
            folded = fold_avgpool(work.nodes[ins[0].src], node)
            if folded is not None:
                return _merge(work, ins[0].src, name, folded, True)
        if not isinstance(node, Scale):
            continue
        if len(ins) == 1 and ins[0].delay == 0 and isinstance(work.nodes[ins[0].src], SYNAPSES) \
                and len(work.outs(ins[0].src)) == 1:
            folded = fold_scale_after(work.nodes[ins[0].src], node.scale, shapes[ins[0].src])
            if folded is not None:
                return _merge(work, ins[0].src, name, folded, True)
        if len(outs) == 1 and outs[0].delay == 0 and isinstance(work.nodes[outs[0].dst], SYNAPSES) \
                and len(work.ins(outs[0].dst)) == 1 and len(ins) >= 1:
            folded = fold_scale_before(work.nodes[outs[0].dst], node.scale, shapes[name])
            if folded is not None:
                return _merge(work, outs[0].dst, name, folded, False)
    return None


def _is_identity(node: Node, n_in: int, in_shape: tuple[int, ...] | None,
                 out_shape: tuple[int, ...] | None) -> bool:
    if isinstance(node, Add):
        return n_in == 1
    if isinstance(node, Scale):
        return bool(np.all(node.scale == 1)) and n_in >= 1
    if isinstance(node, Flatten):
        return in_shape is not None and in_shape == out_shape
    return False


def _drop_one_identity(work: _Work, shapes: dict[str, tuple[int, ...]]) -> _Work | None:
    for name, node in work.nodes.items():
        ins = work.ins(name)
        in_shape = shapes.get(ins[0].src) if ins else None
        if not ins or not _is_identity(node, len(ins), in_shape, shapes.get(name)):
            continue
        outs = work.outs(name)
        edges = [e for e in work.edges if name not in (e.src, e.dst)]
        edges += [Edge(i.src, o.dst, i.delay + o.delay) for i in ins for o in outs]
        if len(set(edges)) != len(edges):  # a → id → b beside a → b: the sum needs both paths
            continue
        nodes = {n: v for n, v in work.nodes.items() if n != name}
        return _Work(nodes, tuple(edges))
    return None
