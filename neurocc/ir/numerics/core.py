"""THE fixed-point arithmetic of neurocc: rounding, shifts, wrap, saturation, decays, weights.

Every integer rule any part of neurocc applies lives here, once: the quantize pass calls these
functions to make integer parameters, the emulator calls them to execute a quantized graph, and
the integer backends (Lava, ONNX) are checked bit for bit against that emulator. Nothing else
may re-implement a rounding or overflow rule. All functions are vectorised over numpy arrays
and compute in int64 (exact for every value a 24/32-bit register can hold times a 13-bit
factor), so callers never meet numpy's silent int32 overflow by accident.

The numerics *profiles* (``loihi``, ``int8``, ``spinnaker``) name the bit widths and rules of
one chip family; ``targets.yaml`` selects one by name (:func:`get_profile`); they are in
:mod:`neurocc.ir.numerics.profiles` and documented in ``docs/numerics.md``.
"""
from __future__ import annotations

import numpy as np

from neurocc.ir.types import Rounding

I64 = np.int64
DECAY_BITS = 12                  # decays are 12-bit fractions: factor / 4096
DECAY_ONE = 1 << DECAY_BITS
STATE_SHIFT = 6                  # loihi/int8: state LSBs per weight (and threshold) LSB = 2**6
U24_MAX = 1 << 23                # 2**23: the 24-bit bound of u and v
V24_LIM = (1 << 23) - 1          # v saturates at ±(2**23 − 1) (Lava: -2**23 never occurs)


# --------------------------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------------------------
def round_to_int(x: np.ndarray | float, rounding: Rounding | str = Rounding.NEAREST_EVEN) -> np.ndarray:
    """float → int64 with ``rounding``: toward_zero (trunc), floor, nearest_even (numpy.rint).

    Raises ValueError for NaN or infinite values (they have no integer).
    """
    a = np.asarray(x, np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("cannot round NaN or infinite values to integers")
    r = Rounding(rounding)
    if r is Rounding.TOWARD_ZERO:
        return np.trunc(a).astype(I64)
    if r is Rounding.FLOOR:
        return np.floor(a).astype(I64)
    return np.rint(a).astype(I64)


def div_pow2(x: np.ndarray | int, k: np.ndarray | int, rounding: Rounding | str = Rounding.FLOOR) -> np.ndarray:
    """Integer ``x / 2**k`` (k >= 0, scalar or per element) rounded by ``rounding``.

    * ``floor``: ``x >> k`` (two's-complement arithmetic shift);
    * ``toward_zero``: ``sign(x) · (|x| >> k)`` (Loihi's decay products, C and ONNX integer Div);
    * ``nearest_even``: round half to even on the exact quotient.
    """
    x = np.asarray(x, I64)
    k = np.asarray(k, I64)
    if np.any(k < 0):
        raise ValueError("div_pow2 needs k >= 0; use shift() for a signed exponent")
    r = Rounding(rounding)
    if r is Rounding.FLOOR:
        return x >> k
    if r is Rounding.TOWARD_ZERO:
        return np.sign(x) * (np.abs(x) >> k)
    q = x >> k                                  # floor
    rem = x - (q << k)                          # 0 <= rem < 2**k
    half = np.where(k > 0, np.left_shift(I64(1), np.maximum(k - 1, 0)), 0)
    up = (rem > half) | ((rem == half) & (k > 0) & (q & 1).astype(bool))
    return q + up


def trunc_shift(x: np.ndarray | int, k: int | np.ndarray) -> np.ndarray:
    """Loihi's sign-magnitude right shift ``sign(x) · (|x| >> k)``: x / 2**k rounded toward zero."""
    return div_pow2(x, k, Rounding.TOWARD_ZERO)


def shift(x: np.ndarray | int, k: int | np.ndarray, right_rounding: Rounding | str = Rounding.FLOOR) -> np.ndarray:
    """``x · 2**k`` for a signed exponent ``k`` (scalar or per element).

    ``k >= 0``: exact left shift (int64). ``k < 0``: ``x / 2**-k`` rounded by ``right_rounding``;
    ``floor`` is Lava's ``np.right_shift`` (``weight_exp`` on the dendritic sum, negative
    ``bias_exp``); ``toward_zero`` is ONNX's integer Div (the int8 profile's weight shift).
    """
    x = np.asarray(x, I64)
    k = np.asarray(k, I64)
    left = x << np.maximum(k, 0)
    if not np.any(k < 0):
        return left
    right = div_pow2(x, np.maximum(-k, 0), right_rounding)
    return np.where(k >= 0, left, right)


# --------------------------------------------------------------------------------------------
# Overflow
# --------------------------------------------------------------------------------------------
def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """(min, max) of a ``bits``-wide register."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _in_range(x: np.ndarray, lo: float, hi: float) -> bool:
    """Fast test (two reductions, no temporaries) that every element lies in [lo, hi]."""
    return x.size == 0 or (x.min() >= lo and x.max() <= hi)


def wrap(x: np.ndarray | int, bits: int, signed: bool = True) -> tuple[np.ndarray, int]:
    """Two's-complement wrap to ``bits`` (``((x + 2**(b−1)) mod 2**b) − 2**(b−1)``); returns
    (wrapped array, number of elements that were out of range). Integer input is computed in
    int64; float64 input holding integers (the emulator's fast representation) stays float64
    and is exact below 2**53."""
    x = np.asarray(x) if np.asarray(x).dtype.kind == "f" else np.asarray(x, I64)
    lo, hi = int_range(bits, signed)
    if _in_range(x, lo, hi):
        return x, 0
    n = int(np.count_nonzero((x < lo) | (x > hi)))
    if x.dtype.kind == "f":
        return np.mod(x - lo, float(1 << bits)) + lo, n
    m = I64(1) << bits
    return ((x - lo) & (m - 1)) + lo, n


def saturate(x: np.ndarray | int, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """Clip to [lo, hi]; returns (clipped array, number of elements clipped). int64, or float64
    for float input holding integers."""
    x = np.asarray(x) if np.asarray(x).dtype.kind == "f" else np.asarray(x, I64)
    if _in_range(x, lo, hi):
        return x, 0
    n = int(np.count_nonzero((x < lo) | (x > hi)))
    return np.clip(x, lo, hi), n


def saturate_bits(x: np.ndarray | int, bits: int, signed: bool = True) -> tuple[np.ndarray, int]:
    """Clip to the range of a ``bits``-wide register (see :func:`saturate`)."""
    return saturate(x, *int_range(bits, signed))


def lava_wrap24(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Lava 0.10's 24-bit "wrap" of the current ``u`` (``PyLifModelBitAcc``), off-by-one included::

        x >  2**23 → x − 2**24        (so +2**23 itself is kept)
        x <= −2**23 → x + 2**24        (so −2**23 becomes +2**23)

    One correction only (a value more than 2**24 out stays out, exactly as Lava). Returns
    (array, number of corrected elements); int64, or float64 for float input holding integers.
    """
    x = np.asarray(x) if np.asarray(x).dtype.kind == "f" else np.asarray(x, I64)
    if _in_range(x, -U24_MAX + 1, U24_MAX):
        return x, 0
    hi = x > U24_MAX
    lo = x <= -U24_MAX
    n = int(np.count_nonzero(hi)) + int(np.count_nonzero(lo))
    return np.where(hi, x - 2 * U24_MAX, np.where(lo, x + 2 * U24_MAX, x)), n


# --------------------------------------------------------------------------------------------
# Decays and neuron helpers (loihi and int8 share these formulas)
# --------------------------------------------------------------------------------------------
def decay(x: np.ndarray, factor: np.ndarray | int, bits: int = DECAY_BITS) -> np.ndarray:
    """``sign(p) · (|p| >> bits)`` with ``p = x · factor``: Loihi's decay multiply, truncated
    toward zero (so −1 decays to 0, never sticks at −1 as a floor shift would).

    Integer ``x`` is computed in int64. Float64 ``x`` holding integers is computed as
    ``trunc(x · (factor · 2**−bits))``, which is the same number: ``factor · 2**−bits`` is exact
    (a 13-bit integer times a power of two), and for |x| < 2**31 the product ``x · factor`` has at most
    44 significant bits, so it is exact in float64 and ``trunc`` is exactly the toward-zero
    quotient. (A hypothesis test checks the two forms agree.)
    """
    x = np.asarray(x)
    if x.dtype.kind == "f":
        return np.trunc((x * factor) * 2.0 ** -bits)
    return trunc_shift(np.asarray(x, I64) * np.asarray(factor, I64), bits)


def current_decay_factor(du: np.ndarray | int) -> np.ndarray:
    """Lava's current factor ``4096 − (du + 1)`` (``ds_offset = 1``): du = 0 still decays by
    1/4096, du = 4095 forgets u every step, du = −1 means no decay."""
    return DECAY_ONE - (np.asarray(du, I64) + 1)


def voltage_decay_factor(dv: np.ndarray | int) -> np.ndarray:
    """Lava's voltage factor ``4096 − dv`` (``dm_offset = 0``): dv = 0 no leak, 4096 no memory."""
    return DECAY_ONE - np.asarray(dv, I64)


def bias_value(bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
    """Effective bias in state LSBs: ``bias_mant << bias_exp``, or ``bias_mant >> −bias_exp``
    (floor) for a negative exponent. Lava stores ``bias_mant`` as int16 (out-of-range values
    wrap there): callers pass values the node already checked to be 13-bit."""
    return shift(bias_mant, bias_exp, Rounding.FLOOR)


def threshold_value(vth: np.ndarray | int) -> np.ndarray:
    """Effective threshold in state LSBs: ``vth << 6`` (Lava does it in int32: wraps past 2**25)."""
    return wrap(np.asarray(vth, I64) << STATE_SHIFT, 32)[0]


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------
def lava_sign_mode(w: np.ndarray) -> str:
    """Lava's ``determine_sign_mode``: ``excitatory`` if min >= 0 (all-zero too), ``inhibitory``
    if max <= 0, else ``mixed``."""
    w = np.asarray(w)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def lava_weight_drop_bits(sign_mode: str, num_weight_bits: int = 8) -> int:
    """Low weight bits Lava's Dense drops: ``8 − num_weight_bits + (sign_mode == mixed)``."""
    return 8 - int(num_weight_bits) + int(sign_mode == "mixed")


def lava_dense_weights(weight: np.ndarray, num_weight_bits: int = 8, sign_mode: str | None = None) -> np.ndarray:
    """The weights Lava's ``PyDenseModelBitAcc`` really uses (preprocessed once, int64)::

        W0 = trunc(weight)  (Var assignment: float → int32 toward zero)
        sign mode: given, or lava_sign_mode(W0)
        inhibitory: negate; clip to [−256·mixed, 255]; W = (W >> k) << k  (floor, k = drop bits);
        inhibitory: negate back

    So mixed 8-bit weights lose their LSB (3 → 2, −1 → −2, 127 → 126), excitatory weights clip
    to [0, 255], inhibitory to [−255, 0].
    """
    w = np.trunc(np.asarray(weight)).astype(I64) if np.asarray(weight).dtype.kind == "f" else np.asarray(weight, I64)
    mode = sign_mode or lava_sign_mode(w)
    mixed, inh = mode == "mixed", mode == "inhibitory"
    if inh:
        w = -w
    w = np.clip(w, -256 * int(mixed), 255)
    k = lava_weight_drop_bits(mode, num_weight_bits)
    if k > 0:
        w = (w >> k) << k
    elif k < 0:  # num_weight_bits > 8 (+mixed): numpy shifts by a negative count give 0
        w = np.zeros_like(w)
    return -w if inh else w


def quantize_weights(w: np.ndarray, bits: int = 8, *, signed: bool = True,
                     rounding: Rounding | str = Rounding.NEAREST_EVEN,
                     max_exp: int | None = None) -> tuple[np.ndarray, int]:
    """Per-tensor mantissa/exponent: ``w ≈ w_int · 2**exp`` with ``w_int`` in ``bits`` bits.

    ``exp`` is the smallest exponent for which the largest |w| still fits the mantissa range
    (so the mantissa uses its full range); ``max_exp`` caps it. Returns (int64 array, exp).
    An all-zero tensor gives (zeros, 0).
    """
    w = np.asarray(w, np.float64)
    lo, hi = int_range(bits, signed)
    amax = float(np.max(np.abs(w))) if w.size else 0.0
    if amax == 0.0:
        return np.zeros(w.shape, I64), 0
    exp = int(np.ceil(np.log2(amax / hi)))
    while True:  # guard the rounding edge (e.g. 127.6 rounds to 128)
        q = round_to_int(w / 2.0 ** exp, rounding)
        if (q.min() >= lo and q.max() <= hi) or (max_exp is not None and exp >= max_exp):
            break
        exp += 1
    if max_exp is not None and exp > max_exp:
        exp = max_exp
        q = round_to_int(w / 2.0 ** exp, rounding)
    return np.clip(q, lo, hi), exp


def mantissa_exponent(x: np.ndarray, mant_bits: int, exp_min: int, exp_max: int,
                      rounding: Rounding | str = Rounding.NEAREST_EVEN) -> tuple[np.ndarray, np.ndarray]:
    """Per element ``x ≈ mant · 2**exp`` with a signed ``mant_bits`` mantissa and the smallest
    exponent in [exp_min, exp_max] that fits (Loihi's bias: 13-bit mantissa, 3-bit exponent).
    Values too large for ``exp_max`` saturate. Returns (mant, exp) as int64 arrays."""
    x = np.asarray(x, np.float64)
    lo, hi = int_range(mant_bits, True)
    exp = np.full(x.shape, exp_min, I64)
    mant = round_to_int(x / 2.0 ** exp, rounding)
    for e in range(exp_min + 1, exp_max + 1):
        bad = (mant < lo) | (mant > hi)
        if not np.any(bad):
            break
        exp = np.where(bad, e, exp)
        mant = np.where(bad, round_to_int(x / 2.0 ** e, rounding), mant)
    return np.clip(mant, lo, hi), exp


def pow2_factor(w: np.ndarray, max_k: int = 30) -> int:
    """Largest k <= max_k such that every element of integer ``w`` is a multiple of 2**k."""
    w = np.asarray(w, I64)
    nz = w[w != 0]
    if nz.size == 0:
        return 0
    low = np.bitwise_or.reduce(nz & -nz)   # OR of lowest set bits: its lowest bit is the answer
    return min(int(low & -low).bit_length() - 1, max_k)
