"""The register limits of the ``loihi``/``int8`` quantizer (:mod:`.quantize`) and the optional
per-layer statistics (:class:`LayerStats`) that calibration hands it.

Widths: 17-bit threshold mantissa (:data:`VTH_MAX`), 13-bit signed bias mantissa with a 3-bit
exponent (:data:`BIAS_MANT_MAX`, :data:`BIAS_EXP_MAX`), 12-bit decays (fractions of
:data:`DECAY_ONE`), 24-bit current ``u`` (wraps at :data:`U_LIMIT`) and voltage ``v`` (saturates
at :data:`V_LIMIT`); the state registers hold ``2^STATE_SHIFT`` LSBs per weight LSB. Parameters
are rounded half to even (:func:`rint`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocc.ir.nodes import Node
from neurocc.ir.numerics.core import round_to_int
from neurocc.ir.numerics.profiles import Profile
from neurocc.ir.types import Rounding

STATE_SHIFT = 6            # state LSBs per weight LSB: 2**6 (Loihi MSB alignment)
VTH_MAX = (1 << 17) - 1    # 17-bit threshold mantissa
VTH_MIN = 16               # default scaling aims for at least this many threshold LSBs
BIAS_MANT_MAX = (1 << 12) - 1  # 13-bit signed mantissa: -4096..4095
BIAS_EXP_MAX = 7           # 3-bit exponent
NETX_BIAS_EXP = 6          # netx writes bias_mant with bias_exp 6 (loihi targets quantize onto that grid)
EXP_MAX = 7                # largest layer exponent e the default scaling picks
DECAY_ONE = 4096           # decays are 12-bit fractions of 4096
U_LIMIT = 1 << 23          # u wraps at 24 bits
V_LIMIT = (1 << 23) - 1    # v saturates at ±(2^23 − 1)
HEADROOM = 0.5             # calibrated scaling uses at most this fraction of u's and v's range


@dataclass(frozen=True)
class LayerStats:
    """Optional statistics of one layer (keyed by neuron node name), e.g. from calibration.

    ``scale`` fixes ``s`` (threshold LSBs per float unit of membrane) instead of the default
    weight-range rule; for an Input node it makes the input graded, fed as
    ``rint(x · scale)`` integers (spikes otherwise).

    Calibrated scaling (:mod:`neurocc.compiler.calibrate` measures these on the float
    reference): ``u_absmax`` is the largest |synaptic input per step|, ``v_absmax`` the
    largest |membrane| and ``v_negmax`` the largest −v (0 when v never goes below 0), all in
    float membrane units. When given, the layer exponent ``e`` is lowered until
    ``64 · s · u_absmax``, for non-spiking layers such as an integrator readout
    ``64 · s · v_absmax``, and for spiking layers ``64 · s · v_negmax`` (the membrane of a
    converted neuron held below zero has no floor: it integrates its negative input every step
    and would saturate at −(2^23 − 1)) use at most ``HEADROOM`` of the 24-bit registers, and until
    the largest bias fits ``4095 << 7``. ``weight_bits`` overrides the target's weight mantissa
    bits for this layer (the accuracy-budget search lowers it). ``rate`` is recorded only.
    """

    scale: float | None = None
    v_absmax: float | None = None
    rate: float | None = None
    u_absmax: float | None = None
    weight_bits: int | None = None
    v_negmax: float | None = None



def rint(x: np.ndarray | float) -> np.ndarray:
    """``x`` rounded half to even, as integers."""
    return round_to_int(x, Rounding.NEAREST_EVEN)


def threshold_of(node: Node) -> np.ndarray | None:
    """The neuron's float threshold (``v_threshold`` or ``threshold``), None where it has none."""
    t = getattr(node, "v_threshold", getattr(node, "threshold", None))
    return None if t is None else np.asarray(t, np.float64)


def registers(prof: Profile) -> dict[str, Any]:
    """The integer format of every register the layers use (for the report and outside tools)."""
    fmt = lambda f: {"bits": f.bits, "signed": f.signed, "rounding": f.rounding.value,
                     "overflow": f.overflow.value}
    return {"weight": fmt(prof.weight), "accumulator": fmt(prof.accumulator), "u": fmt(prof.current),
            "v": fmt(prof.voltage), "du": {"range": [-1, DECAY_ONE - 1]}, "dv": {"range": [0, DECAY_ONE]},
            "vth": {"range": [0, VTH_MAX]}, "bias_mant": {"range": [-BIAS_MANT_MAX - 1, BIAS_MANT_MAX]},
            "bias_exp": {"range": [0, BIAS_EXP_MAX]}}

