"""neurocc's Lava LIF with the reset semantics of :mod:`neurocc.ir.numerics.reset` (worker only:
importing this module imports Lava).

Loihi 2 neurons are programmable (microcode); in Lava's simulator a neuron model is a process
model. ``NeuroccLIF`` is Lava's ``LIF`` process with one more parameter, ``semantics`` (reset mode
``zero``/``subtract``/``none``, ``reset_timing``, ``reset_now``, ``fire_at_threshold``), and
``PyNeuroccLifModelBitAcc`` is Lava's bit-accurate ``PyLifModelBitAcc`` (same u/v update, same
registers) whose spike and reset are neurocc's integer rule, step by step::

    r, v_in = reset.pre(v, vth << 6)       (the previous step's spike for snnTorch's timings)
    v = v_in;  Lava's subthr_dynamics(a_in)  (u ← wrap24(...), v ← sat24(...): unchanged)
    z, v = reset.post(v, r, vth << 6)      (subtract, zero, none, at the node's timing)

so a ``loihi2`` run equals the emulator bit for bit (tests/test_reset_semantics_backends.py). What a
chip run needs: a Loihi 2 microcode neuron with the same three steps (subtract is one
``v ← v − vth`` on the spike branch); Lava-on-Loihi (lava-loihi, Intel INRC) is not installed
here, so that is documented, not tested.
"""
from __future__ import annotations

import types
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifModelBitAcc
from lava.proc.lif.process import LIF

from neurocc.ir.numerics import reset
from neurocc.ir.types import ResetMode, ResetTiming


class NeuroccLIF(LIF):
    """Lava's LIF process plus ``semantics`` (a dict, see the module docstring)."""

    def __init__(self, *, semantics: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(semantics=dict(semantics), **kwargs)


@implements(proc=NeuroccLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyNeuroccLifModelBitAcc(PyLifModelBitAcc):
    """PyLifModelBitAcc with neurocc's spike/reset rule (module docstring)."""

    implements_process = None  # set by @implements (the inherited LIF would make Lava refuse the subclass)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        s = dict(proc_params["semantics"])
        self.sem = types.SimpleNamespace(reset=ResetMode(s.get("reset", "zero")),
                                         reset_timing=ResetTiming(s.get("reset_timing", "after_spike")),
                                         reset_now=bool(s.get("reset_now", False)),
                                         fire_at_threshold=bool(s.get("fire_at_threshold", False)))

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        vth = np.asarray(self.effective_vth, np.int64)
        r, v_in = reset.pre(np.asarray(self.v, np.int64), vth, self.sem)
        self.v[:] = v_in
        self.subthr_dynamics(activation_in=a_in_data)
        z, v, _ = reset.post(np.asarray(self.v, np.int64), r, vth, self.sem)
        self.v[:] = v
        self.s_out_buff = z
        self.s_out.send(z)


MODEL_MAP = {NeuroccLIF: PyNeuroccLifModelBitAcc}
