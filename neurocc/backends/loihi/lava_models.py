"""neurocc's Lava LIF with the reset semantics of :mod:`neurocc.ir.numerics.reset` (worker only:
importing this module imports Lava).

Loihi 2 neurons are programmable (microcode); in Lava's simulator a neuron model is a process
model. ``NeuroccLIF`` is Lava's ``LIF`` process with two more parameters, ``semantics`` (reset mode
``zero``/``subtract``/``none``, ``reset_timing``, ``reset_now``, ``fire_at_threshold``,
``bias_start``) and ``bias_u`` (a per-neuron bias on the current, or None), and
``PyNeuroccLifModelBitAcc`` is Lava's bit-accurate ``PyLifModelBitAcc`` (same u/v update, same
registers) whose spike and reset are neurocc's integer rule, step by step (Lava step t = 1, 2, ...)::

    bias, bias_u = 0, 0 while t <= bias_start  (the layer's bias starts with its delayed input;
                                             t counts from 1 again every ``period`` steps when the
                                             worker runs samples back to back: worker.run_series)
    r, v_in = reset.pre(v, vth << 6)       (the previous step's spike for snnTorch's timings)
    v = v_in;  Lava's subthr_dynamics(a_in)  (u ← wrap24(...), v ← sat24(...): unchanged)
        with bias_u: its shifted input a << 6 is wrap32(wrap32(a << 6) + bias_u)
    z, v = reset.post(v, r, vth << 6)      (subtract, zero, none, at the node's timing; with
                                            ``multi_spike`` z is the spike count ⌊v / vth<<6⌋,
                                            sent on s_out as a graded payload: Loihi 2's graded spikes)

so a ``loihi2`` run equals the emulator bit for bit (tests/test_reset_semantics_backends.py). What a
chip run needs: a Loihi 2 microcode neuron with the same steps (subtract is one
``v ← v − vth`` on the spike branch; ``bias_u`` one add to u; the bias start a step counter or
the bias fed as a synaptic input from an always-on unit with the layer's latency); Lava-on-Loihi (lava-loihi, Intel INRC) is not installed
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
from neurocc.ir.numerics.core import wrap
from neurocc.ir.types import ResetMode, ResetTiming


class NeuroccLIF(LIF):
    """Lava's LIF process plus ``semantics`` (a dict, see the module docstring)."""

    def __init__(self, *, semantics: dict[str, Any], bias_u: np.ndarray | None = None, **kwargs: Any) -> None:
        super().__init__(semantics=dict(semantics), bias_u=bias_u, **kwargs)


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
                                         fire_at_threshold=bool(s.get("fire_at_threshold", False)),
                                         multi_spike=bool(s.get("multi_spike", False)))
        self.bias_start = int(s.get("bias_start", 0))
        self.period = int(s.get("period", 0))   # steps per sample when samples run back to back (0: one)
        bu = proc_params.get("bias_u", None)
        self.bias_u = None if bu is None else np.asarray(bu, np.int64)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        step = (self.time_step - 1) % self.period + 1 if self.period else self.time_step
        on = step > self.bias_start
        if not on:
            self.effective_bias = np.zeros_like(self.effective_bias)
        vth = np.asarray(self.effective_vth, np.int64)
        r, v_in = reset.pre(np.asarray(self.v, np.int64), vth, self.sem)
        self.v[:] = v_in
        if self.bias_u is not None and on:
            self._subthr_with_bias_u(a_in_data)
        else:
            self.subthr_dynamics(activation_in=a_in_data)
        z, v, _ = reset.post(np.asarray(self.v, np.int64), r, vth, self.sem)
        self.v[:] = v
        if self.sem.multi_spike:   # a spike count per neuron: a graded payload on s_out (int32, 24 bits)
            z = z.astype(np.int32)
        self.s_out_buff = z
        self.s_out.send(z)


    def _subthr_with_bias_u(self, a_in: np.ndarray) -> None:
        """Lava's subthr_dynamics on the shifted input wrap32(wrap32(a << 6) + bias_u) (its own
        shift set to 0 for this call; the int32 add to the decayed current wraps as before)."""
        a6, _ = wrap(np.asarray(a_in, np.int64) << self.act_shift, 32)
        a6, _ = wrap(a6 + self.bias_u, 32)
        shift, self.act_shift = self.act_shift, 0
        try:
            self.subthr_dynamics(activation_in=a6.astype(np.int32))
        finally:
            self.act_shift = shift


MODEL_MAP = {NeuroccLIF: PyNeuroccLifModelBitAcc}
