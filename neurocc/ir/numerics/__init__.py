"""THE fixed-point arithmetic of neurocc (rounding, shifts, wrap, saturation, decays, weights)
and the numerics profiles (``loihi``, ``int8``, ``spinnaker``) that targets.yaml selects.

Everything is re-exported here: ``from neurocc.ir import numerics; numerics.trunc_shift(...)``.
:mod:`~neurocc.ir.numerics.core` has the primitive rules, :mod:`~neurocc.ir.numerics.profiles`
the per-profile register widths and neuron/synapse updates built from them.
"""
from neurocc.ir.numerics.core import (DECAY_BITS, DECAY_ONE, STATE_SHIFT, U24_MAX, V24_LIM, bias_value,
                                      current_decay_factor, decay, div_pow2, int_range, lava_dense_weights,
                                      lava_sign_mode, lava_weight_drop_bits, lava_wrap24, mantissa_exponent,
                                      pow2_factor, quantize_weights, round_to_int, saturate, saturate_bits,
                                      shift, threshold_value, trunc_shift, voltage_decay_factor, wrap)
from neurocc.ir.numerics.profiles import INT8, LOIHI, PROFILES, Profile, get_profile

__all__ = [
    "DECAY_BITS", "DECAY_ONE", "INT8", "LOIHI", "PROFILES", "Profile", "STATE_SHIFT", "U24_MAX",
    "V24_LIM", "bias_value", "current_decay_factor", "decay", "div_pow2", "get_profile", "int_range",
    "lava_dense_weights", "lava_sign_mode", "lava_weight_drop_bits", "lava_wrap24", "mantissa_exponent",
    "pow2_factor", "quantize_weights", "round_to_int", "saturate", "saturate_bits", "shift",
    "threshold_value", "trunc_shift", "voltage_decay_factor", "wrap",
]
