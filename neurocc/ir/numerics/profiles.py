"""Numerics profiles: the integer rules of one chip family, selected by name from targets.yaml.

A :class:`Profile` states its register widths and rules as data (for docs, checks and the
quantize pass) and implements the per-step integer updates of the quantized node kinds as
methods built from :mod:`neurocc.ir.numerics.core`, so the emulator and every integer backend
execute one definition. ``docs/numerics.md`` has the same equations with worked corner cases.

``loihi`` — Lava 0.10 ``PyLifModelBitAcc`` / ``PyDenseModelBitAcc`` / ``PyConvModelFixed``:

* Dense: weights preprocessed once by :func:`~neurocc.ir.numerics.core.lava_dense_weights`;
  binary input (any non-zero counts as 1) sums columns exactly; graded input ``int32(W @ s)``;
  then ``weight_exp`` shifts the **sum** (floor for negative), result cast to int32.
  One step of delay per Dense → neuron edge (``synapse_delay = 1``, an explicit edge delay).
* Conv: no weight clipping, ``weight_exp`` must be 0 (Lava ignores it), output wrapped to
  signed 24 bits.
* LIF (state int32 with 24-bit semantics)::

      u ← lava_wrap24(int32(int32(trunc0(u·(4096 − (du+1)) / 2^12)) + int32(a_in << 6)))
      v ← clip(int32(trunc0(v·(4096 − dv) / 2^12) + u + bias), −(2^23 − 1), 2^23 − 1)
      z = v > (vth << 6);  v ← 0 where z          (strict >, reset to zero, no refractory)

``int8`` — plain integer arithmetic for an edge CPU (every step expressible in ONNX opset 17
with MatMulInteger/ConvInteger → int32, int64 Mul + Div, Where/Clip/Mod):

* weights int8 ([−128, 127], used as is: no LSB loss); accumulator int32 (wraps, counted);
  ``weight_exp`` shifts the sum: left = Mul by 2^k, right = Div by 2^k (**toward zero**);
  no implicit synapse delay.
* LIF: the loihi formulas for decays, input alignment, bias and threshold (so one quantized
  parameter set means the same in both profiles), but ``u`` wraps as a true two's-complement
  24-bit register (``((x + 2^23) mod 2^24) − 2^23``: no off-by-one), ``v`` saturates at
  ±(2^23 − 1); reset to zero or by subtraction (``v ← v − (vth << 6)``); optional refractory
  period: for ``refractory`` steps after a spike ``v`` is held (no update, no spike) while ``u``
  keeps integrating.

``spinnaker`` — SpiNNaker-1 ``IF_curr_exp`` in s16.15 as sPyNNaker 7.4.1 computes it: see
:mod:`neurocc.ir.numerics.spinnaker` (registered at the end of this module).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurocc.errors import TargetsError
from neurocc.ir.numerics import core
from neurocc.ir.types import IntFormat, Overflow, Rounding

I64 = np.int64


@dataclass(frozen=True)
class Profile:
    """Bit widths and rules of one numerics profile (see the module docstring for the equations).

    ``synapse_delay``: steps the quantize pass writes on every synapse → neuron edge.
    ``node_kinds``: kinds a graph quantized for this profile may contain.
    """

    name: str
    summary: str
    weight: IntFormat
    accumulator: IntFormat
    current: IntFormat
    voltage: IntFormat
    synapse_delay: int
    reset_modes: tuple[str, ...]
    refractory: bool
    weight_exp_rounding: Rounding
    node_kinds: frozenset[str] = field(default_factory=frozenset)
    # spike/reset semantics beyond NIR's (neurocc.ir.numerics.reset): snnTorch's timings, v >= vth
    reset_timings: tuple[str, ...] = ("after_spike",)
    fire_at_threshold: bool = False
    v_min: bool = False  # a membrane floor (Sinabs min_v_mem)

    # ---- synapses --------------------------------------------------------------------------
    def dense_weights(self, weight: np.ndarray, num_weight_bits: int = 8) -> np.ndarray:
        """The integer weights the chip really multiplies with (int64)."""
        if self.name == "loihi":
            return core.lava_dense_weights(weight, num_weight_bits)
        return np.asarray(weight, I64)

    def weight_problems(self, weight: np.ndarray, conv: bool = False) -> list[str]:
        """Why ``weight`` cannot be stored by this profile (empty when fine)."""
        w = np.asarray(weight)
        if w.size == 0 or self.name == "loihi" and not conv:
            return []  # Lava's Dense clips and truncates by itself (documented, not an error)
        lo, hi = self.weight.min, self.weight.max
        if self.name == "loihi":
            lo, hi = core.int_range(24)
        if w.min() < lo or w.max() > hi:
            return [f"weights span [{int(w.min())}, {int(w.max())}], outside the {self.name} "
                    f"weight range [{lo}, {hi}]"]
        return []

    def shift_sum(self, acc: np.ndarray, weight_exp: int) -> tuple[np.ndarray, int]:
        """The dendritic sum after ``weight_exp``, cast to the int32 output register.
        Returns (int64 array, int32 wrap count)."""
        a = core.shift(acc, weight_exp, self.weight_exp_rounding) if weight_exp else np.asarray(acc, I64)
        return core.wrap(a, 32)

    def accumulate_wrap(self, acc: np.ndarray) -> tuple[np.ndarray, int]:
        """The raw accumulator register: int32 for graded input (Lava's int32 dot, ONNX's
        MatMulInteger), exact int64 for Lava's binary column sum."""
        return core.wrap(acc, self.accumulator.bits)

    def conv_output(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        """loihi: Lava Conv wraps its output to signed 24 bits; int8: the int32 register."""
        return core.wrap(a, 24 if self.name == "loihi" else 32)

    # ---- neurons ---------------------------------------------------------------------------
    def neuron_input(self, a_in: np.ndarray) -> tuple[np.ndarray, int]:
        """The summed input register of a neuron (Lava sums its in-ports in int32)."""
        return core.wrap(a_in, 32)

    def lif_current(self, u: np.ndarray, a_in: np.ndarray, fu: np.ndarray,
                    bias_u: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
        """One step of ``u`` with factor ``fu = current_decay_factor(du)`` (see the module
        docstring); ``bias_u`` is added with the input before the wrap (loihi, neurocc's Lava
        process model: ``wrap32(wrap32(a << 6) + bias_u)`` is the shifted input). Works on
        int64 or on float64 holding integers (exact, see ``core.decay``).
        Returns (u, u wraps, int32 wraps)."""
        dec = core.decay(u, fu)
        a6 = a_in * (1 << core.STATE_SHIFT)
        if self.name == "loihi":  # Lava: int32 shift, int32 add, then one 24-bit correction
            a6, n1 = core.wrap(a6, 32)
            if bias_u is not None:
                a6, nb = core.wrap(a6 + bias_u, 32)
                n1 += nb
            s, n2 = core.wrap(dec + a6, 32)
            out, n = core.lava_wrap24(s)
            return out, n, n1 + n2
        if bias_u is not None:
            a6 = a6 + bias_u
        out, n = core.wrap(dec + a6, self.current.bits)
        return out, n, 0

    def lif_voltage(self, v: np.ndarray, u: np.ndarray, bias: np.ndarray, fv: np.ndarray) -> tuple[np.ndarray, int, int]:
        """One step of ``v`` before the spike test, ``fv = voltage_decay_factor(dv)``.
        Returns (v, saturations, int32 wraps)."""
        s = core.decay(v, fv) + u
        if bias is not None:
            s = s + bias
        n32 = 0
        if self.name == "loihi":
            s, n32 = core.wrap(s, 32)
        out, n = core.saturate(s, -core.V24_LIM, core.V24_LIM)
        return out, n, n32

    def lif_bias(self, bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
        """Effective bias in state LSBs (``bias_mant << bias_exp``, floor for exp < 0)."""
        return core.wrap(core.bias_value(core.wrap(bias_mant, 16)[0], bias_exp), 32)[0]

    def lif_threshold(self, vth: np.ndarray) -> np.ndarray:
        """Effective threshold in state LSBs (``vth << 6``)."""
        return core.threshold_value(vth)


_ANY = frozenset({"Input", "Output", "Flatten", "Delay", "Add"})

LOIHI = Profile(
    name="loihi",
    summary="Lava 0.10 bit-accurate Loihi (PyLifModelBitAcc, PyDenseModelBitAcc, PyConvModelFixed)",
    weight=IntFormat(9, True, Rounding.FLOOR, Overflow.SATURATE),        # effective [-256, 255]
    accumulator=IntFormat(32, True, Rounding.FLOOR, Overflow.WRAP),
    current=IntFormat(24, True, Rounding.TOWARD_ZERO, Overflow.WRAP),    # Lava's off-by-one wrap
    voltage=IntFormat(24, True, Rounding.TOWARD_ZERO, Overflow.SATURATE),  # ±(2^23 − 1)
    synapse_delay=1,
    reset_modes=("zero", "subtract", "none"),  # subtract/none: neurocc's Lava process model (lava_models.py)
    refractory=False,
    weight_exp_rounding=Rounding.FLOOR,
    node_kinds=_ANY | {"QDense", "QConv2d", "QSumPool2d", "QLIF", "QLI", "QSigmaDelta", "QPlasticDense"},
    reset_timings=("after_spike", "next_step", "next_step_end"),
    fire_at_threshold=True,
)

INT8 = Profile(
    name="int8",
    summary="plain integer arithmetic for edge CPUs (ONNX MatMulInteger/ConvInteger, int64 Mul/Div)",
    weight=IntFormat(8, True, Rounding.NEAREST_EVEN, Overflow.SATURATE),
    accumulator=IntFormat(32, True, Rounding.TOWARD_ZERO, Overflow.WRAP),
    current=IntFormat(24, True, Rounding.TOWARD_ZERO, Overflow.WRAP),    # true two's complement
    voltage=IntFormat(24, True, Rounding.TOWARD_ZERO, Overflow.SATURATE),
    synapse_delay=0,
    reset_modes=("zero", "subtract", "none"),
    refractory=True,
    weight_exp_rounding=Rounding.TOWARD_ZERO,
    node_kinds=_ANY | {"QDense", "QConv2d", "QSumPool2d", "QLIF", "QLI"},
    reset_timings=("after_spike", "next_step", "next_step_end"),
    fire_at_threshold=True,
    v_min=True,
)


PROFILES: dict[str, Profile] = {"loihi": LOIHI, "int8": INT8}
def get_profile(name: str) -> Profile:
    """The profile called ``name`` (``loihi``, ``int8``, ``spinnaker``); TargetsError otherwise."""
    if name not in PROFILES:
        raise TargetsError(f"unknown numerics profile {name!r}", where="numerics",
                           fix=f"use one of: {', '.join(PROFILES)}")
    return PROFILES[name]


from neurocc.ir.numerics.spinnaker import SPINNAKER  # noqa: E402  (the spinnaker profile lives in its own module)

PROFILES["spinnaker"] = SPINNAKER
