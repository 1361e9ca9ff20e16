"""Scale rules of the quantize pass (pure functions; the register limits are passed in).

A layer's scale ``s = s0 · 2^e`` is the number of threshold (= weight) LSBs per float unit of
membrane (state registers hold ``64 · s`` LSBs per unit). Three rules choose it:

* :func:`weight_scale`: ``s0`` maps the largest |effective float weight| to the largest
  mantissa ``M`` of its synapse (``M = 2^(b−1) − 1`` signed, ``2^b − 1`` single-sign Loihi):
  ``s0 = min_k M_k / max|W_k|``, over the layer (default) or per output row/channel
  (``per_row``), so every row's largest weight uses the whole mantissa;
* :func:`threshold_exp`: ``e < 0`` when the largest threshold ``θ · s0`` would pass the
  17-bit mantissa; ``e > 0`` (up to ``exp_max``; where the chip applies ``weight_exp``) when the
  smallest positive threshold would have fewer than ``vth_min`` LSBs of resolution;
* :func:`headroom_exp` (calibrated): the largest ``e`` with
  ``64 · s0 · 2^e · u_absmax <= headroom · 2^23`` (synaptic input register),
  ``64 · s0 · 2^e · v_absmax <= headroom · (2^23 − 1)`` for non-spiking layers (an integrator
  readout accumulates T steps of input), ``64 · s0 · 2^e · v_negmax <= headroom · (2^23 − 1)``
  for spiking layers (a converted IF neuron held below zero sinks by its input every step: the
  float membrane has no floor, the chip's saturates) and
  ``64 · s0 · 2^e · max|drive| <= (4095 + ½) · 2^7`` (the 13-bit bias mantissa with its 3-bit
  exponent). ``u_absmax``, ``v_absmax``, ``v_negmax`` come from the float reference on
  calibration data (:mod:`neurocc.compiler.calibrate`). Lowering ``e`` keeps every weight
  mantissa (Lava shifts the summed input by ``weight_exp``); it coarsens u and v to ``1/s``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def weight_scale(weights: dict[str, tuple[np.ndarray, int]], per_row: bool) -> float | np.ndarray:
    """``s0`` from ``{synapse: (effective float weight (rows, ...), largest mantissa)}``: one
    value, or (``per_row``) one per output row; rows without weights take the layer's value."""
    best: np.ndarray | None = None
    for w, mant in weights.values():
        a = np.abs(w).reshape(w.shape[0], -1).max(axis=1, initial=0) if per_row else np.abs(w).max(initial=0)
        r = np.where(a > 0, mant / np.where(a > 0, a, 1.0), np.inf)
        best = r if best is None else np.minimum(best, r)
    if best is None or not np.any(np.isfinite(best)):
        return 1.0
    layer = float(np.min(best))
    if not per_row:
        return layer
    return np.where(np.isfinite(best), best, layer).astype(np.float64)


def per_neuron(s: float | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The scale of every neuron of a layer of ``shape`` (per-row scales go along axis 0)."""
    a = np.asarray(s, np.float64)
    if a.ndim == 0:
        return np.full(shape, float(a))
    return np.broadcast_to(a.reshape(-1, *([1] * (len(shape) - 1))), shape).astype(np.float64)


def per_row(s: float | np.ndarray, ndim: int) -> float | np.ndarray:
    """``s`` shaped to multiply a weight array of ``ndim`` dimensions row by row."""
    a = np.asarray(s, np.float64)
    return float(a) if a.ndim == 0 else a.reshape(-1, *([1] * (ndim - 1)))


def threshold_exp(theta: np.ndarray | None, s_full: np.ndarray, *, allow_raise: bool, vth_max: int,
                  vth_min: int, exp_max: int) -> int:
    """The default layer exponent from the thresholds ``theta`` at per-neuron scale ``s_full``."""
    if theta is None or not np.any(theta > 0):
        return 0
    ts = np.broadcast_to(theta, s_full.shape) * s_full
    hi, lo = float(ts.max()), float(ts[ts > 0].min())
    if hi > vth_max:
        return -math.ceil(math.log2(hi / vth_max))
    if lo < vth_min and allow_raise:
        room = math.floor(math.log2(vth_max / hi))
        return max(0, min(exp_max, room, math.ceil(math.log2(vth_min / lo))))
    return 0


def headroom_exp(s0_max: float, stats: Any, spiking: bool, drive_absmax: float, *, u_limit: float,
                 v_limit: float, bias_max: float, headroom: float) -> tuple[int, dict[str, float]]:
    """(largest exponent that keeps calibrated activity inside the registers, the bound per
    register as a value of ``2^e``); 64 when nothing bounds it."""
    bounds: dict[str, float] = {}
    if stats.u_absmax:
        bounds["u"] = headroom * u_limit / (64 * s0_max * stats.u_absmax)
    if stats.v_absmax and not spiking:
        bounds["v"] = headroom * v_limit / (64 * s0_max * stats.v_absmax)
    if getattr(stats, "v_negmax", None) and spiking:   # the positive side stops at the threshold; this one has no floor
        bounds["v_neg"] = headroom * v_limit / (64 * s0_max * stats.v_negmax)
    if drive_absmax > 0:
        bounds["bias"] = bias_max / (64 * s0_max * drive_absmax)
    if not bounds:
        return 64, {}
    return math.floor(math.log2(min(bounds.values()))), {k: float(v) for k, v in bounds.items()}


def jsonable_scale(s: float | np.ndarray) -> float | list[float]:
    a = np.asarray(s, np.float64)
    return float(a) if a.ndim == 0 else [float(v) for v in a.ravel()]
