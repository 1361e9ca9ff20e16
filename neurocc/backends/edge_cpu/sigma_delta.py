"""ONNX lowering of :class:`~neurocc.ir.qnodes_sdn.QSigmaDelta`: one step of
:func:`neurocc.ir.numerics.sigma_delta.sigma_delta_step` (int64 values holding int32 registers;
``wrap32`` = two's-complement Mod; ``>> state_exp`` is a floor shift). State: ``sigma``, ``act``,
``residue`` (int64). ``cum_error`` has no lowering (netx never sets it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocc.ir.types import Rounding

from .intops import i64, shift_right, wrap_bits

if TYPE_CHECKING:
    from .builder import Builder

I64 = np.dtype(np.int64)


def _w32(b: "Builder", x: str) -> str:
    return wrap_bits(b, x, 32, I64)


def sd_state_spec(node, shape: tuple[int, ...]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    return {var: (I64, shape) for var in node.state_vars}


def sd_step(b: "Builder", node, a: str, st: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(graded output int64, new state) for summed input ``a`` (int64)."""
    new = dict(st)
    if node.mode == "sigma":
        new["sigma"] = _w32(b, b.op("Add", [st["sigma"], a]))
        return new["sigma"], new
    if node.mode == "delta":
        act = _w32(b, b.op("Mul", [a, i64(b, 1 << node.input_shift)]))
    else:
        new["sigma"] = _w32(b, b.op("Add", [st["sigma"], a]))
        act = _w32(b, b.op("Add", [new["sigma"], i64(b, np.asarray(node.bias, np.int64))]))
        if node.relu:
            act = b.op("Max", [act, i64(b, 0)], "relu")
    vth = i64(b, np.asarray(node.vth, np.int64))
    if node.variant == "lava-pr875":
        delta = _w32(b, b.op("Sub", [act, st["act"]]))
    else:
        delta = _w32(b, b.op("Add", [b.op("Sub", [act, st["act"]]), st["residue"]]))
    s = b.op("Where", [b.op("GreaterOrEqual", [b.op("Abs", [delta]), vth]), delta, i64(b, 0)], "s")
    out = shift_right(b, s, node.state_exp, Rounding.FLOOR, I64) if node.state_exp else s
    if node.variant == "lava-pr875":
        new["act"] = _w32(b, b.op("Add", [st["act"], b.op("Mul", [out, i64(b, 1 << node.state_exp)])]))
    else:
        new["residue"] = b.op("Sub", [delta, s], "residue")
        new["act"] = act
    return out, new
