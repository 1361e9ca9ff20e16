"""Sigma-delta neurons in fixed point: Lava 0.10's ``fixed_pt`` models and the corrected variant.

One rule, used by the emulator kernel and checked bit for bit against Lava (``lava.proc.sdn``,
``PySigmaDeltaModelFixed``, ``PyDeltaModelFixed``, ``PySigmaModelFixed``). All registers are
int32 as in Lava (``precision=24`` is annotated there but not enforced); every sum here is formed
in int64 and wrapped to int32 with the wraps counted, which is what numpy's int32 arithmetic does
in Lava. ``vth`` and ``bias`` are in state units (Lava multiplies the process arguments by
``2**(spike_exp + state_exp)`` in the constructor; netx's SDNN layers use spike_exp = state_exp = 6).

Modes (one node kind, :class:`neurocc.ir.qnodes_sdn.QSigmaDelta`)::

    sigma_delta:  sigma ← sigma + a_in;  act = relu(sigma + bias)  (unit: no max)
    delta:        act = a_in << input_shift   (netx's SDNN input layer: spike_exp + state_exp)
    sigma:        sigma ← sigma + a_in;  output sigma   (netx ``sigma_output``; no delta)

then, for ``sigma_delta`` and ``delta``, variant ``lava-0.10`` (Lava 0.10.0 as released)::

    delta = act − act_prev + residue
    cum_error: error ← error + delta; s = delta where |error| >= vth else 0; error ← 0 where s ≠ 0
    else:      s = delta where |delta| >= vth else 0                  (>=, the docstring says >)
    residue = delta − s;  act_prev = act;  output s >> state_exp       (floor; the dropped low
                                                                         bits are lost)

variant ``lava-pr875`` (``PySigmaDeltaModelFixedCorrected``, merged in lava after 0.10, PR #875:
feeds back exactly what was sent, so the receiver's sum tracks ``act`` without drift)::

    delta = act − act_prev;  s = delta where |delta| >= vth else 0
    out = s >> state_exp;  act_prev ← act_prev + (out << state_exp)    (no residue, no cum_error)

Graded outputs go to the next Dense/Conv as integer payloads (``num_message_bits`` > 0: Lava's
``int32(W @ s)``).
"""
from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from neurocc.ir.numerics.core import wrap

I64 = np.int64
MODES = ("sigma_delta", "delta", "sigma")
VARIANTS = ("lava-0.10", "lava-pr875")
STATE_VARS = {"sigma_delta": ("sigma", "act", "residue"), "delta": ("act", "residue"), "sigma": ("sigma",)}


def _w32(x: np.ndarray, counts: MutableMapping[str, int], key: str) -> np.ndarray:
    out, n = wrap(x, 32)
    if n:
        counts[key] = counts.get(key, 0) + n
    return out


def init_state(shape: tuple[int, ...], mode: str) -> dict[str, np.ndarray]:
    """Zero registers for ``mode`` (plus ``error`` for cum_error)."""
    return {v: np.zeros(shape, I64) for v in STATE_VARS[mode] + ("error",)}


def sigma_delta_step(st: MutableMapping[str, np.ndarray], a_in: np.ndarray, *, vth: np.ndarray,
                     bias: np.ndarray, state_exp: int, input_shift: int = 0, mode: str = "sigma_delta",
                     relu: bool = True, cum_error: bool = False, variant: str = "lava-0.10",
                     counts: MutableMapping[str, int] | None = None) -> np.ndarray:
    """One step of a sigma-delta neuron (see the module docstring); updates ``st`` in place and
    returns the graded output (int64 holding int32 values). ``counts`` collects int32 wraps."""
    c: MutableMapping[str, int] = counts if counts is not None else {}
    a = np.asarray(a_in, I64)
    if mode == "sigma":
        st["sigma"] = _w32(st["sigma"] + a, c, "sigma_wrap")
        return st["sigma"]
    if mode == "delta":
        act = _w32(a << int(input_shift), c, "act_wrap")
    else:
        st["sigma"] = _w32(st["sigma"] + a, c, "sigma_wrap")
        act = _w32(st["sigma"] + bias, c, "act_wrap")
        if relu:
            act = np.maximum(act, 0)
    if variant == "lava-pr875":
        delta = _w32(act - st["act"], c, "delta_wrap")
        s = np.where(np.abs(delta) >= vth, delta, 0)
        out = s >> int(state_exp)
        st["act"] = _w32(st["act"] + (out << int(state_exp)), c, "act_wrap")
        return out
    delta = _w32(act - st["act"] + st["residue"], c, "delta_wrap")
    if cum_error:
        st["error"] = _w32(st["error"] + delta, c, "error_wrap")
        s = np.where(np.abs(st["error"]) >= vth, delta, 0)
        st["error"] = np.where(s != 0, 0, st["error"])
    else:
        s = np.where(np.abs(delta) >= vth, delta, 0)
    st["residue"] = delta - s
    st["act"] = act
    return s >> int(state_exp)
