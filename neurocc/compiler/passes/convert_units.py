"""Units of the ANN → SNN conversion (:mod:`.convert`): what one SNN signal unit stands for in ANN
units, per element, and the synapse rescaling that follows from them::

    W'[o, i] = W[o, i] · u_in[i] / u_out[o]          b'[o] = b[o] / u_out[o]

A transparent node (Flatten, pools, Add, Scale) maps units through (an average pool divides by
k²); a branch whose unit differs from what its consumer needs gets a one-to-one scaling synapse
(:func:`scaler`).
"""
from __future__ import annotations

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import (
    Add,
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    Node,
    Output,
    Scale,
    SumPool2d,
)

TRANSPARENT = (Flatten, AvgPool2d, SumPool2d, Add, Scale)
SYNAPSES = (Affine, Linear, Conv2d)


def full(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lam = np.asarray(lam, np.float64).reshape(-1)
    if lam.size == 1:
        return np.full(shape, float(lam[0]))
    return np.broadcast_to(lam.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()


def _channels(u: np.ndarray, name: str) -> np.ndarray:
    flat = u.reshape(u.shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-12, atol=0):
        raise CompileError("scales differ across positions of one channel", where=f"node '{name}'",
                           fix="use per_channel=False, or keep Flatten after the last convolution")
    return flat[:, 0]


def _pool_factor(node: Node) -> float:
    return float(np.prod(node.kernel_size)) if isinstance(node, AvgPool2d) else 1.0  # type: ignore[attr-defined]


def _backmap(node: Node, name: str, u_out: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """The unit a transparent node needs on its input to give ``u_out`` on its output."""
    if isinstance(node, Flatten):
        return u_out.reshape(in_shape)
    if isinstance(node, (AvgPool2d, SumPool2d)):
        return full(_channels(u_out, name) * _pool_factor(node), in_shape)
    return u_out


def _forward(node: Node, name: str, u_in: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(node, Flatten):
        return u_in.reshape(out_shape)
    if isinstance(node, (AvgPool2d, SumPool2d)):
        return full(_channels(u_in, name) / _pool_factor(node), out_shape)
    return u_in


def units(g: Graph, lam: dict[str, np.ndarray], in_scale: float
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """(unit of each node's output, unit each node expects on its input)."""
    shapes, req = g.shapes(), {}
    for n in reversed(g.order()):
        wants = [lam[c] if c in lam else _backmap(g.nodes[c], c, req[c], shapes[n])
                 for c in g.successors(n) if c in lam or (isinstance(g.nodes[c], TRANSPARENT) and c in req)]
        if isinstance(g.nodes[n], (*SYNAPSES, *TRANSPARENT)) and n not in lam and wants:
            if any(not np.allclose(w, wants[0], rtol=1e-9) for w in wants[1:]):
                raise CompileError("one layer feeds spiking layers with different scales", where=f"node '{n}'",
                                   fix="give each ReLU its own Conv2d/Linear layer")
            req[n] = wants[0]
    unit: dict[str, np.ndarray] = {}
    in_unit: dict[str, np.ndarray | None] = {}
    for n in g.order():
        node, preds = g.nodes[n], g.predecessors(n)
        if isinstance(node, Input):
            in_unit[n], unit[n] = None, np.full(shapes[n], in_scale)
        elif n in lam:
            in_unit[n] = unit[n] = lam[n]
        elif isinstance(node, Output):
            in_unit[n], unit[n] = None, unit[preds[0]]
        elif isinstance(node, SYNAPSES):
            in_unit[n] = unit[preds[0]]
            unit[n] = req.get(n, np.ones(shapes[n]))
        else:
            u_in = _backmap(node, n, req[n], g.in_shape(n)) if n in req else unit[preds[0]]
            in_unit[n], unit[n] = u_in, _forward(node, n, u_in, shapes[n])
    return unit, in_unit


def rescale(node: Node, name: str, u_in: np.ndarray, u_out: np.ndarray) -> Node:
    """``W' = W · u_in / u_out`` (per input / output element), ``b' = b / u_out``."""
    w = np.asarray(node.weight, np.float64)  # type: ignore[attr-defined]
    dtype = node.weight.dtype  # type: ignore[attr-defined]
    if isinstance(node, Conv2d):
        ci, co = _channels(u_in, name), _channels(u_out, name)
        cout_g, cin_g = w.shape[0] // node.groups, w.shape[1]
        idx = (np.arange(w.shape[0])[:, None] // cout_g) * cin_g + np.arange(cin_g)[None, :]
        w2 = w * (ci[idx] / co[:, None]).reshape(w.shape[:2] + (1,) * (w.ndim - 2))
        return node.replace(weight=w2.astype(dtype), bias=(node.bias / co).astype(dtype))
    ui, uo = u_in.reshape(-1), u_out.reshape(-1)
    w2 = (w * ui[None, :] / uo[:, None]).astype(dtype)
    if isinstance(node, Affine):
        return node.replace(weight=w2, bias=(node.bias / uo).astype(dtype))
    return node.replace(weight=w2)


def scaler(factor: np.ndarray, name: str) -> Node:
    """A one-to-one synapse multiplying by ``factor`` (shape of the signal)."""
    if factor.ndim == 1:
        return Linear(weight=np.diag(factor).astype(np.float32))
    if factor.ndim == 3:
        c = _channels(factor, name)
        return Conv2d(weight=np.diag(c)[:, :, None, None].astype(np.float32), bias=np.zeros(len(c), np.float32),
                      input_shape=factor.shape[1:])
    return Scale(scale=factor.astype(np.float32))
