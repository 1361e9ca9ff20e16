"""Stateless node kinds as ONNX ops on a tensor ``(N, *shape)`` (N = batch, or time × batch).

Float (``edge-cpu-f32``): Affine/Linear → MatMul (+ Add), Conv → Conv, pools → sums of strided
slices, Scale → Mul, Flatten → Reshape. Integer (``edge-cpu``): QDense → MatMulInteger (int32
accumulation), QConv2d → ConvInteger, QSumPool2d → exact int32 slice sums; the weight-exponent
shift and the convolution wrap are the sequences in :mod:`.intops`, each naming the
:mod:`neurocc.ir.numerics` function it encodes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocc.ir.nodes import (AvgPool2d, Conv2d, Flatten, Linear, Affine, MaxPool2d, Node, Output, Scale,
                              SumPool2d, Threshold, _Pool2d)
from neurocc.ir.qnodes import QConv2d, QDense, QSumPool2d

from . import intops

if TYPE_CHECKING:
    from .builder import Builder
    from .lower import Ctx


def emit_stateless(b: "Builder", ctx: "Ctx", name: str, node: Node, x: str) -> str:
    """The output of stateless ``node`` for input ``x`` of shape ``(N, *in_shape)``."""
    if isinstance(node, Output):
        return x
    if isinstance(node, Flatten):
        return b.reshape(x, [-1, *ctx.shapes[name]])
    if isinstance(node, QDense):
        return intops.dense(b, ctx, name, node, x)
    if isinstance(node, QConv2d):
        return intops.conv(b, ctx, name, node, x)
    if isinstance(node, QSumPool2d):
        return pool_sum(b, ctx.in_shape(name), node, b.cast(x, np.int32) if ctx.dtype_of_input(name) != np.int32 else x)
    if isinstance(node, (Affine, Linear)):
        y = b.op("MatMul", [x, b.const(np.asarray(node.weight, np.float32).T, f"{name}.weight_t")])
        if isinstance(node, Affine):
            y = b.op("Add", [y, b.const(np.asarray(node.bias, np.float32), f"{name}.bias")])
        return y
    if isinstance(node, Conv2d):  # and Conv1d
        return _conv_float(b, name, node, x)
    if isinstance(node, SumPool2d):
        return pool_sum(b, ctx.in_shape(name), node, x)
    if isinstance(node, MaxPool2d):  # ONNX MaxPool pads with −inf, as the IR
        (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
        return b.op("MaxPool", [x], "maxpool", kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw])
    if isinstance(node, AvgPool2d):
        k = float(np.prod(node.kernel_size))
        return b.op("Div", [pool_sum(b, ctx.in_shape(name), node, x), b.const(np.float32(k), "k")])
    if isinstance(node, Scale):
        return b.op("Mul", [x, b.const(np.asarray(node.scale, np.float32), f"{name}.scale")])
    if isinstance(node, Threshold):
        z = b.op("Greater", [x, b.const(np.asarray(node.threshold, np.float32), f"{name}.threshold")])
        return b.cast(z, np.float32)
    raise NotImplementedError(f"{node.kind} has no ONNX lowering")  # check() reports it first


def _conv_float(b: "Builder", name: str, node: Conv2d, x: str) -> str:
    inputs = [x, b.const(np.asarray(node.weight, np.float32), f"{name}.weight")]
    if np.any(node.bias):
        inputs.append(b.const(np.asarray(node.bias, np.float32), f"{name}.bias"))
    return b.op("Conv", inputs, kernel_shape=list(node.weight.shape[2:]), strides=list(node.stride),
                pads=list(node.padding) * 2, dilations=list(node.dilation), group=node.groups)


def pool_sum(b: "Builder", in_shape: tuple[int, ...], node: _Pool2d, x: str) -> str:
    """y[c,h,w] = Σ_{i<kH, j<kW} x_pad[c, s·h+i, s·w+j]: a sum of kH·kW strided slices.

    Exact in int32 (``numerics``' sum pool is a plain integer sum); in float32 the terms are
    added in row-major window order.
    """
    (c, h, w), (kh, kw), (sh, sw), (ph, pw) = in_shape, node.kernel_size, node.stride, node.padding
    if ph or pw:
        pads = np.array([0, 0, ph, pw, 0, 0, ph, pw], np.int64)
        x = b.op("Pad", [x, b.const(pads, "pads")], mode="constant")
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    terms = []
    for i in range(kh):
        for j in range(kw):
            starts = np.array([i, j], np.int64)
            ends = np.array([i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1], np.int64)
            terms.append(b.op("Slice", [x, b.const(starts, "st"), b.const(ends, "en"),
                                        b.const(np.array([2, 3], np.int64), "ax"),
                                        b.const(np.array([sh, sw], np.int64), "sp")], "win"))
    return b.sum(terms)
