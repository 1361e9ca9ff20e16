"""Unit and property tests of neurocc.ir.numerics (expected values worked out by hand from
Lava 0.10's source as restated in lava-loihi.md §2, not taken from the code under test)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neurocc.errors import TargetsError
from neurocc.ir import numerics as nm
from neurocc.ir.types import Rounding

ints = st.integers(-(1 << 40), 1 << 40)


# ---- rounding -------------------------------------------------------------------------------
def test_round_to_int_modes():
    x = np.array([2.5, -2.5, 1.7, -1.7, 0.5, -0.5])
    assert nm.round_to_int(x, "toward_zero").tolist() == [2, -2, 1, -1, 0, 0]
    assert nm.round_to_int(x, "floor").tolist() == [2, -3, 1, -2, 0, -1]
    assert nm.round_to_int(x, "nearest_even").tolist() == [2, -2, 2, -2, 0, 0]
    with pytest.raises(ValueError):
        nm.round_to_int(np.array([np.nan]))


def test_trunc_vs_floor_shift():
    # ONNX integer Div: [-7,-1,5,1000]/4 -> [-1,0,1,250] (nir-onnx.md §4.1)
    assert nm.trunc_shift(np.array([-7, -1, 5, 1000]), 2).tolist() == [-1, 0, 1, 250]
    assert nm.div_pow2(np.array([-7, -1, 5, 1000]), 2, "floor").tolist() == [-2, -1, 1, 250]
    assert nm.div_pow2(np.array([-6, -2, 6, 10, 2]), 2, "nearest_even").tolist() == [-2, 0, 2, 2, 0]


@given(x=ints, k=st.integers(0, 20), mode=st.sampled_from(list(Rounding)))
def test_div_pow2_matches_exact_rational(x, k, mode):
    q = Fraction(x, 1 << k)
    want = {Rounding.FLOOR: q.__floor__(), Rounding.TOWARD_ZERO: int(q), Rounding.NEAREST_EVEN: round(q)}[mode]
    assert int(nm.div_pow2(x, k, mode)) == want


def test_shift_signed_exponent():
    # Lava: weight_exp / bias_exp < 0 is an arithmetic (floor) right shift
    assert nm.shift(np.array([5, -5, 5, -5]), np.array([2, 2, -1, -1])).tolist() == [20, -20, 2, -3]
    assert nm.shift(np.array([-5]), -1, "toward_zero").tolist() == [-2]


# ---- overflow -------------------------------------------------------------------------------
def test_lava_wrap24_off_by_one():
    # +2^23 stays, -2^23 becomes +2^23 (lava-loihi.md §2.6), 2^23+1 -> -2^23+1
    x = np.array([2**23, -(2**23), 2**23 + 1, -(2**23) - 1, 5])
    y, n = nm.lava_wrap24(x)
    assert y.tolist() == [2**23, 2**23, -(2**23) + 1, 2**23 - 1, 5]
    assert n == 3


def test_true_wrap_has_no_off_by_one():
    y, n = nm.wrap(np.array([2**23, -(2**23), 2**23 - 1]), 24)
    assert y.tolist() == [-(2**23), -(2**23), 2**23 - 1] and n == 1


@given(x=st.lists(ints, min_size=1, max_size=20), bits=st.integers(2, 40))
def test_wrap_range_and_congruence(x, bits):
    a = np.array(x, np.int64)
    y, n = nm.wrap(a, bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert y.min() >= lo and y.max() <= hi
    assert np.all((y - a) % (1 << bits) == 0)
    assert n == int(np.sum((a < lo) | (a > hi)))
    yf, nf = nm.wrap(a.astype(np.float64), bits)           # the emulator's float64 representation
    if np.abs(a).max() < 2**52:
        assert np.array_equal(yf, y) and nf == n


@given(x=st.lists(ints, min_size=1, max_size=20), bits=st.integers(2, 40))
def test_saturate_range(x, bits):
    a = np.array(x, np.int64)
    y, n = nm.saturate_bits(a, bits)
    lo, hi = nm.int_range(bits)
    assert y.min() >= lo and y.max() <= hi
    assert np.array_equal(y[(a >= lo) & (a <= hi)], a[(a >= lo) & (a <= hi)])
    assert n == int(np.sum((a < lo) | (a > hi)))


# ---- decays ---------------------------------------------------------------------------------
def test_du_zero_still_decays():
    # du = 0 -> factor 4096 - 1: u = 64 gives 63, 62, 61 (lava-loihi.md §2.6)
    u, seq = np.array([64]), []
    for _ in range(3):
        u = nm.decay(u, nm.current_decay_factor(0))
        seq.append(int(u[0]))
    assert seq == [63, 62, 61]
    assert nm.current_decay_factor(-1) == 4096 and nm.voltage_decay_factor(0) == 4096
    assert nm.current_decay_factor(4095) == 0 and nm.voltage_decay_factor(4096) == 0


def test_decay_truncates_toward_zero():
    # -1 * 4000 / 4096 = -0.98: toward zero gives 0, a floor shift would stick at -1
    assert nm.decay(np.array([-1, 1, -4097]), 4000).tolist() == [0, 0, -4000]  # -4000.98 -> -4000


@given(x=st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=30), f=st.integers(0, 4096))
def test_decay_float_form_equals_integer_form(x, f):
    a = np.array(x, np.int64)
    assert np.array_equal(nm.decay(a.astype(np.float64), np.float64(f)), nm.decay(a, f))


def test_bias_and_threshold():
    assert nm.bias_value(np.array([5, -5, 3]), np.array([-1, -1, 6])).tolist() == [2, -3, 192]
    assert int(nm.threshold_value(25)) == 1600


# ---- weights --------------------------------------------------------------------------------
def test_lava_mixed_lsb_loss_and_clipping():
    w = np.array([3, -1, 127, -128, 2])
    assert nm.lava_sign_mode(w) == "mixed"
    assert nm.lava_dense_weights(w).tolist() == [2, -2, 126, -128, 2]
    assert nm.lava_dense_weights(np.array([0, 300, 7])).tolist() == [0, 255, 7]          # excitatory
    assert nm.lava_dense_weights(np.array([0, -300, -7])).tolist() == [0, -255, -7]       # inhibitory
    assert nm.lava_dense_weights(np.array([3.9, -1.5, 2.0])).tolist() == [2, -2, 2]       # float -> trunc
    assert nm.lava_dense_weights(np.array([5, 6, 7]), num_weight_bits=6).tolist() == [4, 4, 4]
    assert nm.lava_dense_weights(np.array([[0, 0]])).tolist() == [[0, 0]]


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=40), st.integers(2, 12))
def test_quantize_weights_fits_and_is_close(w, bits):
    w = np.array(w)
    q, e = nm.quantize_weights(w, bits)
    lo, hi = nm.int_range(bits)
    assert q.min() >= lo and q.max() <= hi
    if np.abs(w).max() > 0:
        assert np.abs(q * 2.0**e - w).max() <= 2.0**e / 2 + 1e-12


def test_mantissa_exponent_bias():
    m, e = nm.mantissa_exponent(np.array([100000.0, -3.0, 5000.0]), 13, 0, 7)
    assert m.tolist() == [3125, -3, 2500] and e.tolist() == [5, 0, 1]


def test_pow2_factor():
    assert nm.pow2_factor(np.array([4, 8, -12])) == 2
    assert nm.pow2_factor(np.array([0, 0])) == 0
    assert nm.pow2_factor(np.array([3, 4])) == 0


# ---- profiles -------------------------------------------------------------------------------
def test_profiles_by_name():
    lo, i8 = nm.get_profile("loihi"), nm.get_profile("int8")
    assert lo.synapse_delay == 1 and i8.synapse_delay == 0
    # issue 12: the loihi numerics subtract too (neurocc's reset rule; loihi2 runs it as a Lava process
    # model); loihi1's target still lists zero only
    assert set(lo.reset_modes) == {"zero", "subtract", "none"} and "subtract" in i8.reset_modes
    assert not lo.refractory and i8.refractory
    with pytest.raises(TargetsError, match="unknown numerics profile"):
        nm.get_profile("tpu")


def test_weight_exp_on_the_sum():
    # weights [3, 2] with weight_exp -2, both inputs active: Lava delivers (3+2)>>2 = 1, not 0+0
    acc = np.array([3 + 2])
    assert nm.get_profile("loihi").shift_sum(acc, -2)[0].tolist() == [1]
    assert nm.get_profile("loihi").shift_sum(np.array([-5]), -2)[0].tolist() == [-2]   # floor
    assert nm.get_profile("int8").shift_sum(np.array([-5]), -2)[0].tolist() == [-1]    # toward zero (ONNX Div)


def test_int8_profile_rejects_wide_weights():
    assert nm.get_profile("int8").weight_problems(np.array([[200]]))
    assert not nm.get_profile("int8").weight_problems(np.array([[-128, 127]]))
