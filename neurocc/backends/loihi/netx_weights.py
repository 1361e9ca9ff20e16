"""netx's weight re-quantization followed by Lava's Dense preprocessing, restated in numpy.

lava-dl 0.6 ``netx.utils.optimize_weight_bits`` rescales every dense matrix of a netx file and
picks ``num_weight_bits`` and ``weight_exp``; Lava 0.10's ``PyDenseModelBitAcc`` then clips and
drops low bits by the sign mode **it** derives (research note lava-loihi.md §2.2, §5.3). The two
disagree on some matrices (netx calls ``max == 0`` mixed, Lava inhibitory), and netx zeroes
matrices whose values exceed 255. :mod:`.netx_exact` lets a dense layer be written only when
:func:`netx_dense_effect` of the file's weights reproduces the graph's per-synapse values exactly.
"""
from __future__ import annotations

import numpy as np

from neurocc.ir.numerics.core import lava_dense_weights
from neurocc.ir.qnodes import QDense


def netx_weight_bits(w: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """(weights, num_weight_bits, weight_exp) as netx's ``optimize_weight_bits`` makes them from
    the integer matrix ``w`` of the file; None where netx crashes (all-zero matrix: 255/0)::

        clip to [−256, 254] if (max > 254 and min < 0) or (min < −256 and max > 0)
        mode: INH if max < 0, EXC if min >= 0, else MIXED (s = 1)
        scale = min(127/max, −128/min) | −256/min | 255/max;  sb = floor(log2 scale) + s
        n = largest n ≤ 8 with 2**n | every weight (0 if none), minus s
        num_weight_bits = 8 − sb − n; weight_exp = −sb; weights = w << sb (0 for sb < 0)
    """
    w = np.asarray(w, np.int64)
    mx, mn = int(w.max()), int(w.min())
    if (mx > 254 and mn < 0) or (mn < -256 and mx > 0):
        w = np.clip(w, -256, 254)
        mx, mn = int(w.max()), int(w.min())
    if mx == 0 and mn == 0:
        return None
    signed = int(not (mx < 0 or mn >= 0))
    if signed:
        scale = min(127 / mx if mx else np.inf, -128 / mn)
    else:
        scale = -256 / mn if mx < 0 else 255 / mx
    sb = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    shifted = w << sb if sb >= 0 else np.zeros_like(w)
    return shifted, 8 - sb - n, -sb


def netx_dense_effect(w: np.ndarray, w_rec: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """What Lava computes from a netx ``dense`` (or ``dense_rec``) layer's file weights: per
    matrix the weights Lava's Dense really uses, and the shared exponent applied to the sum.
    ``dense_rec`` optimises ``hstack(w, w_rec)`` once; Lava re-derives each matrix's sign mode."""
    both = w if w_rec is None else np.hstack([w, w_rec])
    opt = netx_weight_bits(both)
    if opt is None:
        return None
    shifted, nwb, exp = opt
    eff = lava_dense_weights(shifted[:, : w.shape[1]], nwb)
    eff_rec = None if w_rec is None else lava_dense_weights(shifted[:, w.shape[1]:], nwb)
    return eff, eff_rec, exp


def same_values(eff: np.ndarray, exp: int, want: np.ndarray) -> bool:
    """``eff · 2**exp == want`` element-wise, exactly (``want`` integer)."""
    if exp >= 0:
        return bool(np.array_equal(eff.astype(np.int64) << exp, want))
    return bool(np.array_equal(eff.astype(np.int64), want.astype(np.int64) << -exp))


def graph_dense_values(node: QDense) -> tuple[np.ndarray | None, str]:
    """The integer per-synapse values ``W'·2**weight_exp`` the graph computes, or (None, why)."""
    eff = lava_dense_weights(node.weight, node.num_weight_bits)
    e = int(node.weight_exp)
    if e >= 0:
        return eff << e, ""
    if np.any(eff % (1 << -e)):
        return None, (f"weight_exp={e} with effective weights that are not multiples of {1 << -e}: "
                      "netx re-quantizes weights to integers (no fractional weights)")
    return eff >> -e, ""
