"""The integer sigma-delta neuron kind (SDNN): Lava's ``SigmaDelta``, ``Delta`` and ``Sigma``.

One node definition for all three (``mode``); its arithmetic is one rule in
:mod:`neurocc.ir.numerics.sigma_delta` (bit-exact with Lava 0.10 ``fixed_pt``, or the corrected
``lava-pr875`` variant), executed by one emulator kernel (:mod:`neurocc.backends.emulator.sigma_delta`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.numerics.sigma_delta import MODES, VARIANTS
from neurocc.ir.qnodes import _QNeuron


@dataclass(frozen=True, eq=False)
class QSigmaDelta(_QNeuron):
    """Integer sigma-delta neuron with graded output, per neuron (int32 registers)::

        sigma_delta: sigma ← sigma + a;  act = max(sigma + bias, 0) (relu) | sigma + bias
        delta:       act = a << input_shift                       (an SDNN input layer)
        sigma:       sigma ← sigma + a; output sigma              (a sigma read-out layer)
        delta coding (lava-0.10): d = act − act_prev + residue; s = d where |d| >= vth else 0;
                     residue = d − s; act_prev = act; output s >> state_exp (floor)

    ``vth`` and ``bias`` are in state units (netx: vThMant·2**12, bias·2**12); ``state_exp``
    (netx: 6) is the output shift; ``variant`` names the numerics rule (``lava-0.10`` or
    ``lava-pr875``, which feeds back the bits the output shift drops). The synapse that follows
    must be ``graded``. States ``sigma``, ``act``, ``residue`` (those of the mode).
    """

    kind: ClassVar[str] = "QSigmaDelta"
    state_vars: ClassVar[tuple[str, ...]] = ("sigma", "act", "residue")
    vth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    state_exp: int = 6
    input_shift: int = 0
    mode: str = "sigma_delta"
    relu: bool = True
    cum_error: bool = False
    variant: str = "lava-0.10"

    def check(self) -> list[str]:
        probs = super().check()
        if self.mode not in MODES:
            probs.append(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.variant not in VARIANTS:
            probs.append(f"variant {self.variant!r} is not one of {', '.join(VARIANTS)}")
        if not 0 <= self.state_exp <= 31 or not 0 <= self.input_shift <= 31:
            probs.append(f"state_exp {self.state_exp} and input_shift {self.input_shift} must be in 0..31")
        if self.vth.size and self.vth.min() < 0:
            probs.append(f"vth must be >= 0, min is {int(self.vth.min())}")
        return probs
