"""The ``spinnaker`` numerics: SpiNNaker-1 ``IF_curr_exp`` as sPyNNaker 7.4.1 computes it.

Number formats (spinnaker.md §3): every neuron quantity (V, V_rest, V_reset, V_thresh,
I_offset, isyn, R_m, exp_TC) is an ``accum`` **s16.15** (int32, 1 LSB = 2⁻¹⁵); the synaptic
``decay`` and ``init`` are ``unsigned long fract`` **u0.32**; weights are **uint16**
magnitudes, one ring-buffer entry per (tick, receptor, neuron) saturating at 0xFFFF, shifted
left by the population's per-receptor ``ring-buffer shift`` s into s16.15 nA.

Host side (Python, sPyNNaker): parameters are encoded ``round_half_even(x · 2¹⁵)``
(:func:`encode_s1615`); weights ``w_int = rint(|w| · 2^(15 − s))`` with
``s = ceil(log2 M)`` (+1 when ``2^s <= M``) from the max expected summed weight ``M`` in nA
(:func:`ring_buffer_shift`, :func:`encode_weights`).

Chip side, once at load (C, ported bit for bit: :func:`kdivk`, :func:`expk`, :func:`expulr`)::

    R_m     = kdivk(tau_m, cm)                       exp_TC = expk(−kdivk(dt, tau_m))
    decay_k = expulr(−kdivk(dt, tau_syn_k))           init_k = ((kdivk(tau_syn_k, dt) · (2³²−1 − decay_k)) >> 15) mod 2³²
    T_refract = ceil(kdivk(tau_refrac, dt))

Per timer tick (:func:`lif_tick`; int32 registers, wrapping; ``mulk(a, b) = (a·b) >> 15``,
floor — GCC's ``accum`` multiply without rounding, see the caveat in docs/backends/spinnaker.md)::

    isyn_k += ((min(rb_k, 0xFFFF) << s_k) · init_k) >> 32          (rb_k = Σ w_int arriving now)
    if refract <= 0:  I = isyn_e − isyn_i + I_offset
                      α = mulk(I, R_m) + V_rest;  V = α − mulk(exp_TC, α − V)
    else:             refract −= 1
    if V >= V_thresh: V = V_reset; refract = T_refract; spike
    isyn_k = (isyn_k · decay_k) >> 32

Sources: sPyNNaker ``neuron_model_lif_impl.h``, ``exp_synapse_utils.h``, ``decay.h``,
``synapse_row.h``; spinn_common ``stdfix-exp.c``/``utils.h``; 7.4.1's Python for the host side.
"""
from __future__ import annotations

import math

import numpy as np

I64 = np.int64
ONE = 1 << 15                 # 1.0 in s16.15
U32 = (1 << 32) - 1           # 1.0ulr (the largest u0.32)
RB_MAX = 0xFFFF               # ring-buffer entry (uint16, saturating)

_EXP_HI = [9708, 26389, 71733, 194991, 530041, 1440801, 3916503, 10646160, 28939262, 78665070, 213833830,
           581260615, 1580030169, 4294967296, 11674931555, 31735754293, 86266724208, 234497268814,
           637429664642, 1732713474316, 4710003551159, 12803117065094, 34802480465680, 94602950235157,
           257157480542844, 699026506411923]
_EXPM1_MID = [0, 260218914, 504671961, 734314346, 950043403, 1152702096, 1343082321, 1521927990, 1689937949,
              1847768698, 1996036966, 2135322113, 2266168400, 2389087112, 2504558555, 2613033936]
_EXP_SERIES = [5294, 4293434720, 2081624032]


# ---- scalar C helpers (parameters are computed once per neuron, so plain ints) -----------------
def encode_s1615(x: np.ndarray | float) -> np.ndarray:
    """sPyNNaker's host encoding of a float to s16.15 bits: ``round_half_even(x · 2¹⁵)`` (int64)."""
    return np.round(np.asarray(x, np.float64) * ONE).astype(I64)


def wrap32(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Two's-complement int32 wrap of int64 values; returns (values, number that wrapped)."""
    x = np.asarray(x, I64)
    y = ((x + (1 << 31)) & U32) - (1 << 31)
    return y, int(np.count_nonzero(y != x))


def kdivk(a: int, b: int) -> int:
    """accum / accum for a >= 0, b > 0: ``(a << 15) // b`` (truncating, as the 64-bit udiv)."""
    if b <= 0 or a < 0:
        raise ValueError(f"kdivk needs a >= 0, b > 0 (got {a}, {b})")
    return (a << 15) // b


def _scale64(x: int, y: int) -> int:
    lo, hi = x & U32, x >> 32
    p = lo * y
    r = (p >> 32) + (1 if (p & U32) >= 0x7FFFFFFF else 0)
    return r + hi * y


def _exp_series(x: int) -> int:
    tmp = (_EXP_SERIES[1] - ((_EXP_SERIES[2] * x) >> 32)) & U32
    tmp = (tmp * x) >> 32
    return (tmp + _EXP_SERIES[0]) & U32


def _expi64(n: int) -> int:
    """spinn_common ``__expi64``: exp(n / 2¹⁵) · 2³² as uint64 (table + series)."""
    z = n >> 15
    f = n - (z << 15)
    if f > 0:
        z += 1
        f = 32768 - f
        t = _EXP_HI[13 + z]
        t -= _scale64(t, _EXPM1_MID[f >> 11])
        y = ((f & 0x7FF) << 17) & U32
        t -= _scale64(t, _exp_series(y))
        return t & ((1 << 64) - 1)
    return _EXP_HI[13 + z]


def expk(n: int) -> int:
    """spinn_common ``expk`` on s16.15 bits ``n`` → s16.15 bits (``__expi64(n) >> 17``)."""
    if n > 363408:
        return (1 << 31) - 1
    if n < -340695:
        return 0
    return _expi64(n) >> 17


def expulr(n: int) -> int:
    """spinn_common ``expulr`` on s16.15 bits ``n`` → u0.32 bits (low 32 bits of ``__expi64``)."""
    if n > 363408:
        return (1 << 31) - 1
    if n < -340695:
        return 0
    return _expi64(n) & U32


def ceil_accum(x: int) -> int:
    """``lif_ceil_accum``: ceil of s16.15 bits as an int."""
    return (x >> 15) + (1 if x & 0x7FFF else 0)


# ---- per-neuron constants, as the core computes them at load ---------------------------------
def lif_constants(tau_m: float, cm: float, tau_refrac: float, dt_ms: float) -> tuple[int, int, int]:
    """(R_m bits, exp_TC bits, T_refract steps) from the PyNN values (ms, nF)."""
    ts, tm = int(encode_s1615(dt_ms)), int(encode_s1615(tau_m))
    r = kdivk(tm, int(encode_s1615(cm)))
    e = expk(-kdivk(ts, tm))
    t_ref = ceil_accum(kdivk(int(encode_s1615(tau_refrac)), ts)) if tau_refrac > 0 else 0
    return r, e, t_ref


def synapse_constants(tau_syn: float, dt_ms: float) -> tuple[int, int]:
    """(decay u0.32, init u0.32) of an exponential synapse (``decay_and_init``)."""
    ts, tau = int(encode_s1615(dt_ms)), int(encode_s1615(tau_syn))
    decay = expulr(-kdivk(ts, tau))
    inv = U32 - decay
    init = ((kdivk(tau, ts) * inv) >> 15) & U32
    return decay, init


def per_neuron(fn, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Apply a scalar constant function element-wise over the unique parameter combinations."""
    arrs = [np.asarray(a, np.float64).ravel() for a in arrays]
    keys = np.stack(arrs, axis=1) if arrs else np.zeros((0, 0))
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    vals = np.array([fn(*row) for row in uniq], dtype=I64).reshape(len(uniq), -1)
    shape = np.asarray(arrays[0]).shape
    return tuple(vals[inv.ravel(), i].reshape(shape) for i in range(vals.shape[1]))


# ---- weights ---------------------------------------------------------------------------------
def ring_buffer_shift(max_summed_weight: float) -> int:
    """sPyNNaker's ``get_ring_buffer_shifts`` for one receptor: ``ceil(log2 M)`` (0 for M <= 1),
    plus 1 when ``2^s <= M`` (the range is 0 to just under 2^s)."""
    w = float(max_summed_weight)
    if w <= 0:
        return 0
    s = int(math.ceil(max(0.0, math.log2(w))))
    return s + 1 if 2.0 ** s <= w else s


def encode_weights(w: np.ndarray, shift: int) -> np.ndarray:
    """uint16 weight magnitudes: ``rint(|w| · 2^(15 − s)) & 0xFFFF`` (int64)."""
    scaled = np.abs(np.asarray(w, np.float64)) * 2.0 ** (15 - shift)
    return np.rint(scaled).astype(I64) & RB_MAX


def decode_weights(w_int: np.ndarray, shift: int) -> np.ndarray:
    """nA value of stored weights: ``w_int · 2^(s − 15)`` (what ``Projection.get('weight')`` reads)."""
    return np.asarray(w_int, np.float64) * 2.0 ** (shift - 15)


# ---- the per-tick update (vectorised over neurons; int64 arrays holding int32 registers) -------
def mulk(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """accum × accum: ``(a · b) >> 15`` (floor), before the int32 cast."""
    return (np.asarray(a, I64) * np.asarray(b, I64)) >> 15


def decay_s1615(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``decay_s1615``: ``(x · d) >> 32`` with x s16.15 and d u0.32 (floor)."""
    return (np.asarray(x, I64) * np.asarray(d, I64)) >> 32


def rb_to_input(rb: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, int]:
    """``synapse_row_convert_weight_to_input``: ``(int32) rb << s`` (wraps only for s >= 16)."""
    return wrap32(np.asarray(rb, I64) << np.asarray(shift, I64))


def lif_tick(st: dict[str, np.ndarray], rb_exc: np.ndarray, rb_inh: np.ndarray, p: dict[str, np.ndarray],
             events: dict[str, int]) -> np.ndarray:
    """One timer tick of ``IF_curr_exp`` (module docstring). ``st`` holds ``u_exc``, ``u_inh``,
    ``v``, ``ref`` (int64, updated in place); ``p`` the constants; ``events`` counts saturations
    (``rb_saturate``) and int32 wraps (``int32_wrap``). Returns the spikes (bool)."""
    def w32(x):
        y, n = wrap32(x)
        if n:
            events["int32_wrap"] = events.get("int32_wrap", 0) + n
        return y
    for k, rb in (("exc", rb_exc), ("inh", rb_inh)):
        sat = rb > RB_MAX
        if sat.any():
            events["rb_saturate"] = events.get("rb_saturate", 0) + int(np.count_nonzero(sat))
            rb = np.minimum(rb, RB_MAX)
        if rb.any():
            inp = w32(np.asarray(rb, I64) << p[f"shift_{k}"])
            st[f"u_{k}"] = w32(st[f"u_{k}"] + decay_s1615(inp, p[f"init_{k}"]))
    free = st["ref"] <= 0
    i_in = w32(w32(st["u_exc"] - st["u_inh"]) + p["i_offset"])
    alpha = w32(w32(mulk(i_in, p["r_m"])) + p["v_rest"])
    v_new = w32(alpha - w32(mulk(p["exp_tc"], w32(alpha - st["v"]))))
    v = np.where(free, v_new, st["v"])
    st["ref"] = np.where(free, st["ref"], st["ref"] - 1)
    z = v >= p["v_thresh"]
    if z.any():
        v = np.where(z, p["v_reset"], v)
        st["ref"] = np.where(z, p["t_refract"], st["ref"])
    st["v"] = v
    for k in ("exc", "inh"):
        st[f"u_{k}"] = decay_s1615(st[f"u_{k}"], p[f"decay_{k}"])
    return z


def s1615_to_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float64) / ONE


__all__ = ["ONE", "RB_MAX", "ceil_accum", "decay_s1615", "decode_weights", "encode_s1615", "encode_weights",
           "expk", "expulr", "kdivk", "lif_constants", "lif_tick", "mulk", "per_neuron", "rb_to_input",
           "ring_buffer_shift", "s1615_to_float", "synapse_constants", "wrap32"]


def _profile():
    from neurocc.ir.numerics.profiles import _ANY, Profile
    from neurocc.ir.types import IntFormat, Overflow, Rounding

    return Profile(
        name="spinnaker",
        summary="sPyNNaker 7.4.1 IF_curr_exp on SpiNNaker 1 (s16.15 accum, u0.32 decays, uint16 ring buffers)",
        weight=IntFormat(16, False, Rounding.NEAREST_EVEN, Overflow.WRAP),      # rint(|w|·scale) & 0xFFFF
        accumulator=IntFormat(16, False, Rounding.FLOOR, Overflow.SATURATE),   # ring-buffer entry
        current=IntFormat(32, True, Rounding.FLOOR, Overflow.WRAP),            # isyn, s16.15
        voltage=IntFormat(32, True, Rounding.FLOOR, Overflow.WRAP),            # V, s16.15
        synapse_delay=1,
        reset_modes=("zero",),
        refractory=True,
        weight_exp_rounding=Rounding.FLOOR,
        node_kinds=_ANY | {"QSpiNNakerDense", "QSpiNNakerLIF"},
    )


SPINNAKER = _profile()
