"""fuse_pools: fold every sum/average pool that feeds a synapse into that synapse's weights.

Lava's synapses take spikes from neurons only, so under the ``loihi`` numerics a pool between
a neuron and a Conv2d (or a Flatten → Affine/Linear) is folded into that synapse's weights:
each conv tap becomes a k×k block of taps s apart (``W'[.., s·i + a, s·j + b] += f · W[.., i, j]``,
``f = 1`` for a sum pool, ``1/k²`` for an average pool). Exact in float; the function of the
graph is unchanged. Only square, unpadded pools with kernel = stride patterns that keep the
borders identical are folded; others are left in place.
"""
from __future__ import annotations

from typing import Any

from neurocc.ir.graph import Graph


def _pool_params(node: Any) -> tuple[int, int, float] | None:
    """(k, s, factor) of a square, unpadded SumPool2d/AvgPool2d; None when it cannot be fused."""
    from neurocc.ir.nodes import AvgPool2d, SumPool2d

    if not isinstance(node, (SumPool2d, AvgPool2d)) or any(node.padding):
        return None
    (kh, kw), (sh, sw) = node.kernel_size, node.stride
    if kh != kw or sh != sw:
        return None
    return kh, sh, 1.0 / (kh * kw) if isinstance(node, AvgPool2d) else 1.0


def _fused_conv(conv: Any, k: int, s: int, f: float, in_hw: tuple[int, ...]) -> Any:
    """pool(k, s) then ``conv`` as one conv on the pool's input (exact: each conv tap becomes a
    k×k block of taps s apart), or None when borders would differ."""
    import numpy as np

    from neurocc.ir.nodes import Conv1d

    if isinstance(conv, Conv1d) or any(d != 1 for d in conv.dilation):
        return None
    if any(p and not (k == s and n % s == 0) for p, n in zip(conv.padding, in_hw)):
        return None
    co, ci, kh, kw = conv.weight.shape
    w = np.zeros((co, ci, s * (kh - 1) + k, s * (kw - 1) + k))
    for i in range(kh):
        for j in range(kw):
            w[:, :, s * i:s * i + k, s * j:s * j + k] += f * conv.weight[:, :, i, j][..., None, None]
    return conv.replace(weight=w, stride=tuple(s * t for t in conv.stride),
                        padding=tuple(s * p for p in conv.padding), input_shape=tuple(in_hw))


def _fused_dense(dense: Any, k: int, s: int, f: float, in_chw: tuple[int, ...], pooled: tuple[int, ...]) -> Any:
    """pool(k, s) → Flatten → ``dense`` as Flatten → one dense on the unpooled input (exact)."""
    import numpy as np

    c, h, w_ = in_chw
    _, hp, wp = pooled
    w4 = np.asarray(dense.weight, np.float64).reshape(-1, c, hp, wp)
    out = np.zeros((w4.shape[0], c, h, w_))
    for a in range(hp):
        for b in range(wp):
            out[:, :, s * a:s * a + k, s * b:s * b + k] += f * w4[:, :, a, b][..., None, None]
    return dense.replace(weight=out.reshape(w4.shape[0], -1))


def fuse_pools(graph: Graph, opts: Any = None) -> Graph:
    """Fold every sum/average pool that feeds a Conv2d (or a Flatten → Affine/Linear) into that
    synapse's weights, for numerics whose chips cannot run a pool between two synapses (loihi:
    Lava's synapses take spikes from neurons only). Exact in float; the function is unchanged."""
    from neurocc.ir.graph import Edge
    from neurocc.ir.nodes import Affine, Conv2d, Flatten, Linear

    shapes = graph.shapes()
    for name, node in graph.nodes.items():
        pp = _pool_params(node)
        succ, pred = graph.successors(name), graph.predecessors(name)
        if pp is None or len(succ) != 1 or len(pred) != 1:
            continue
        nxt = graph.nodes[succ[0]]
        in_shape, nodes = shapes[pred[0]], dict(graph.nodes)
        if isinstance(nxt, Conv2d):
            new = _fused_conv(nxt, *pp, in_shape[1:])
            target = succ[0]
        elif isinstance(nxt, Flatten) and len(shapes[succ[0]]) == 1 and len(graph.successors(succ[0])) == 1 \
                and isinstance(graph.nodes[graph.successors(succ[0])[0]], (Affine, Linear)):
            target = graph.successors(succ[0])[0]
            new = _fused_dense(graph.nodes[target], *pp, in_shape, shapes[name])
        else:
            continue
        if new is None:
            continue
        nodes[target] = new
        del nodes[name]
        (e_in,), (e_out,) = graph.in_edges(name), graph.out_edges(name)
        edges = [e for e in graph.edges if name not in (e.src, e.dst)]
        edges.append(Edge(e_in.src, e_out.dst, e_in.delay + e_out.delay))
        return fuse_pools(graph.replace(nodes=nodes, edges=tuple(edges)).verify(), opts)
    return graph
