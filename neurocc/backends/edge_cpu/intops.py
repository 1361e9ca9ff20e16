"""Integer op sequences: the ONNX encoding of :mod:`neurocc.ir.numerics`, one function per rule.

Each function names the numerics function it mirrors. ONNX facts they rely on (opset 17, ORT
CPU, measured): integer ``Div`` truncates toward zero; ``Mul``/``Add``/``Sub`` on int32 wrap
modulo 2**32; ``Cast`` int64 → int32 keeps the low 32 bits; ``Mod`` with ``fmod=0`` takes the
sign of the divisor; ``MatMulInteger``/``ConvInteger`` accumulate exactly in int32.
``BitShift`` (unsigned only) and ``BitwiseAnd`` (opset 18) are not used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocc.ir import numerics
from neurocc.ir.qnodes import QConv2d, QDense
from neurocc.ir.types import Rounding

if TYPE_CHECKING:
    from .builder import Builder
    from .lower import Ctx

I32_MAX = (1 << 31) - 1
BYTE_FANIN_MAX = I32_MAX // (255 * 255)  # u8 x u8 partial convolutions stay exact in int32


def i64(b: "Builder", v: int | np.ndarray) -> str:
    return b.const(np.asarray(v, np.int64), "k64")


def i32(b: "Builder", v: int | np.ndarray) -> str:
    return b.const(np.asarray(v, np.int32), "k32")


def to_int32(b: "Builder", x: str, dtype: np.dtype) -> str:
    """``numerics.wrap(x, 32)`` for an integer value: Cast keeps the low 32 bits."""
    return x if np.dtype(dtype) == np.int32 else b.cast(x, np.int32)


def spikes_u8(b: "Builder", x: str, dtype: np.dtype) -> str:
    """Binary synapse input: every non-zero value counts as one spike (Lava's binary Dense)."""
    if np.dtype(dtype) == np.uint8:  # a spiking node's own output: already 0/1
        return x
    return b.cast(b.cast(x, np.bool_), np.uint8)


def shift_right(b: "Builder", x: str, k: int, rounding: Rounding, dtype: np.dtype) -> str:
    """``numerics.div_pow2(x, k, rounding)`` for k >= 1 (floor or toward_zero) on int32/int64 x.

    toward_zero: ``Div(x, 2**k)`` (ONNX Div truncates). floor: ``q − (x − q·2**k < 0)`` with
    q the truncated quotient (no intermediate leaves x's range).
    """
    one = (i64 if np.dtype(dtype) == np.int64 else i32)
    m = one(b, 1 << k)
    q = b.op("Div", [x, m], "q")
    if Rounding(rounding) is Rounding.TOWARD_ZERO:
        return q
    if Rounding(rounding) is not Rounding.FLOOR:
        raise NotImplementedError(f"rounding {rounding} of a right shift")
    rem = b.op("Sub", [x, b.op("Mul", [q, m])], "rem")
    neg = b.cast(b.op("Less", [rem, one(b, 0)]), dtype)
    return b.op("Sub", [q, neg], "floor")


def shift_sum(b: "Builder", ctx: "Ctx", acc: str, weight_exp: int, dtype: np.dtype) -> str:
    """``Profile.shift_sum``: ``numerics.shift(acc, weight_exp, profile.weight_exp_rounding)`` then
    ``wrap(·, 32)``. Left shifts are a Mul by 2**k (int32 Mul wraps like ``wrap(acc << k, 32)``);
    right shifts of an int32 value with k >= 31 move to int64 first (2**k has no int32)."""
    if weight_exp == 0:
        return to_int32(b, acc, dtype)
    if weight_exp > 0:
        acc32 = to_int32(b, acc, dtype)
        return b.op("Mul", [acc32, i32(b, numerics.wrap(1 << weight_exp, 32)[0])], "shl")
    k = -weight_exp
    if np.dtype(dtype) == np.int32 and k >= 31:
        acc, dtype = b.cast(acc, np.int64), np.dtype(np.int64)
    return to_int32(b, shift_right(b, acc, k, ctx.profile.weight_exp_rounding, dtype), dtype)


def wrap_bits(b: "Builder", x: str, bits: int, dtype: np.dtype) -> str:
    """``numerics.wrap(x, bits)`` (two's complement, bits < 32 on int32 or int64 x):
    ``Mod(x + 2**(bits−1), 2**bits) − 2**(bits−1)``. On int32 the Add may wrap modulo 2**32,
    which leaves the residue modulo 2**bits unchanged."""
    one = (i64 if np.dtype(dtype) == np.int64 else i32)
    half = one(b, 1 << (bits - 1))
    r = b.op("Mod", [b.op("Add", [x, half]), one(b, 1 << bits)], "mod", fmod=0)
    return b.op("Sub", [r, half], "wrapped")


# --------------------------------------------------------------------------------------------
# Synapses
# --------------------------------------------------------------------------------------------
def _abs_bound(w: np.ndarray) -> int:
    """Largest |Σ_j w[o, j]·s_j| over outputs o for binary s (in exact Python ints)."""
    w2 = np.abs(np.asarray(w, np.int64)).reshape(w.shape[0], -1)
    return int(w2.sum(axis=1).max(initial=0))


def _binary_matmul(b: "Builder", name: str, s: str, w: np.ndarray) -> tuple[str, np.dtype]:
    """Exact ``s (N, in) @ w.T`` for 0/1 spikes ``s`` (uint8) and integer w (out, in).

    Returns (value, dtype): int32 when every sum fits (MatMulInteger, int32 accumulation), else
    an exact int64 MatMul.
    """
    wt = np.ascontiguousarray(np.asarray(w, np.int64).T)
    if _abs_bound(w) > I32_MAX:
        y = b.op("MatMul", [b.cast(s, np.int64), b.const(wt, f"{name}.weight_t")], "acc")
        return y, np.dtype(np.int64)
    k = numerics.pow2_factor(wt, 16)
    for scale, dt in ((0, np.int8), (0, np.uint8), (k, np.int8)):
        ws = wt >> scale
        info = np.iinfo(dt)
        if wt.size == 0 or (ws.min() >= info.min and ws.max() <= info.max):
            y = b.op("MatMulInteger", [s, b.const(ws.astype(dt), f"{name}.weight_t")], "acc")
            if scale:
                y = b.op("Mul", [y, i32(b, 1 << scale)], "acc")
            return y, np.dtype(np.int32)
    y = b.op("MatMul", [b.cast(s, np.int32), b.const(wt.astype(np.int32), f"{name}.weight_t")], "acc")
    return y, np.dtype(np.int32)


def dense(b: "Builder", ctx: "Ctx", name: str, node: QDense, x: str) -> str:
    """QDense (``Kernel QDense``): ``W' = profile.dense_weights(weight, num_weight_bits)`` at emit
    time; binary: exact column sums, graded: ``wrap(W' @ x, 32)`` (int32 MatMul wraps); then
    ``profile.accumulate_wrap`` (int8, or graded) and :func:`shift_sum`."""
    p = ctx.profile
    w = p.dense_weights(node.weight, node.num_weight_bits)
    xdt = ctx.dtype_of_input(name)
    if node.graded:
        wt = np.ascontiguousarray(np.asarray(w, np.int64).T)
        if wt.size and (wt.min() < -(1 << 31) or wt.max() > I32_MAX):
            wt = numerics.wrap(wt, 32)[0]  # only the residue mod 2**32 matters for a wrapped sum
        acc = b.op("MatMul", [to_int32(b, x, xdt), b.const(wt.astype(np.int32), f"{name}.weight_t")], "acc")
        return shift_sum(b, ctx, acc, node.weight_exp, np.dtype(np.int32))
    acc, adt = _binary_matmul(b, name, spikes_u8(b, x, xdt), w)
    if p.name != "loihi" and adt == np.int64:  # accumulate_wrap: the int32 accumulator register
        acc, adt = b.cast(acc, np.int32), np.dtype(np.int32)
    return shift_sum(b, ctx, acc, node.weight_exp, adt)


def _bytes_of(b: "Builder", x32: str) -> list[str]:
    """The 4 unsigned bytes of ``x mod 2**32`` (int32 x) as uint8 tensors, low byte first."""
    u = b.op("Mod", [b.cast(x32, np.int64), i64(b, 1 << 32)], "u32", fmod=0)
    out = []
    for i in range(4):
        q = b.op("Div", [u, i64(b, 1 << (8 * i))]) if i else u
        out.append(b.cast(b.op("Mod", [q, i64(b, 256)], fmod=0), np.uint8))
    return out


def _conv(b: "Builder", node: QConv2d, x: str, w: str) -> str:
    return b.op("ConvInteger", [x, w], "conv", kernel_shape=list(node.weight.shape[2:]),
                strides=list(node.stride), pads=list(node.padding) * 2, dilations=list(node.dilation),
                group=node.groups)


def conv_mod32(b: "Builder", name: str, node: QConv2d, x_parts: list[str]) -> str:
    """``wrap(conv(x, W), 32)`` from byte planes: x = Σ_i 256^i x_i, W mod 2**32 = Σ_j 256^j W_j,
    so conv(x, W) ≡ Σ_{i+j<4} 256^(i+j) conv(x_i, W_j) (mod 2**32); each u8 × u8 ConvInteger is
    exact in int32 and the int32 Mul/Add wrap modulo 2**32."""
    wm = numerics.wrap(np.asarray(node.weight, np.int64), 32)[0] % (1 << 32)
    w_parts = [((wm >> (8 * j)) & 255).astype(np.uint8) for j in range(4)]
    terms = []
    for i, xi in enumerate(x_parts):
        for j, wj in enumerate(w_parts):
            if i + j >= 4 or not wj.any():
                continue
            t = _conv(b, node, xi, b.const(wj, f"{name}.weight_b{j}"))
            terms.append(b.op("Mul", [t, i32(b, 1 << (8 * (i + j)))]) if i + j else t)
    if not terms:  # all-zero weights: a zero output of the right shape
        t = _conv(b, node, x_parts[0], b.const(np.zeros(node.weight.shape, np.uint8), f"{name}.weight_0"))
        return t
    return b.sum(terms)


def conv(b: "Builder", ctx: "Ctx", name: str, node: QConv2d, x: str) -> str:
    """QConv2d (``Kernel QConv``): binary x counts non-zero as 1; ``conv`` exact, then loihi
    ``Profile.conv_output`` = ``wrap(acc, 24)``; int8 ``accumulate_wrap`` (32) and
    :func:`shift_sum`. Fast path: one u8 × s8 ConvInteger when the sums fit int32."""
    p, xdt = ctx.profile, ctx.dtype_of_input(name)
    w = np.asarray(node.weight, np.int64)
    if not node.graded and _abs_bound(w) <= I32_MAX and (w.size == 0 or (w.min() >= -128 and w.max() <= 127)):
        acc = _conv(b, node, spikes_u8(b, x, xdt), b.const(w.astype(np.int8), f"{name}.weight"))
    else:
        parts = [spikes_u8(b, x, xdt)] if not node.graded else _bytes_of(b, to_int32(b, x, xdt))
        acc = conv_mod32(b, name, node, parts)
    if p.name == "loihi":
        return wrap_bits(b, acc, 24, np.dtype(np.int32))
    return shift_sum(b, ctx, acc, node.weight_exp, np.dtype(np.int32))


def conv_problems(node: QConv2d) -> list[str]:
    """Why the byte-plane convolution could be inexact (fan-in too large for int32 partials)."""
    fan_in = int(np.prod(node.weight.shape[1:]))
    if fan_in > BYTE_FANIN_MAX:
        return [f"convolution fan-in {fan_in} exceeds {BYTE_FANIN_MAX}: the exact int32 ConvInteger "
                "decomposition would overflow"]
    return []
