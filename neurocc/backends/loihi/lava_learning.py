"""neurocc's Lava learning neuron for three-factor plastic synapses (worker only: importing this
module imports Lava).

Lava 0.10's ``Loihi3FLearningRule`` makes a ``LearningDense`` take its post-synaptic traces
``y1, y2, y3`` from the post neuron every step (ports ``s_in_y1..3``), but Lava's stock learning
neurons (``LearningLIF``) never send them; as in Lava's three-factor tutorial, the neuron model
has to. ``NeuroccLearningLIF`` is neurocc's LIF process (:class:`.lava_models.NeuroccLIF`) with
Lava's learning-neuron ports (``LearningNeuronProcess``: ``a_third_factor_in``, ``s_out_bap``,
``s_out_y1..3``, Vars ``y1..3``) and two more parameters, ``trace_impulses`` and ``trace_taus``
(the plastic synapse's 5-value ``impulses``/``taus``; the last three are the post traces'). Its
model ``PyNeuroccLearningLifModel`` runs the bit-accurate neuron of
:class:`.lava_models.PyNeuroccLifModelBitAcc` (spikes and reset unchanged), then per step::

    r = a_third_factor_in.recv()             (the reward: the graph's reward Input, this step)
    y ← neuron_traces(y, spikes, r)          (neurocc.ir.numerics.learning: the one rule)
    s_out_bap ← spikes;  s_out_y1..3 ← y1..3

so the LearningDense's learning engine sees the same traces as the emulator
(tests/test_plasticity_reward.py). On a Loihi 2 chip the same steps are a microcode neuron (a
12-bit multiply-shift per trace, one add of the third-factor input); lava-loihi is not installed
here, so that is documented, not tested.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed
from lava.magma.core.process.neuron import LearningNeuronProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from neurocc.ir.numerics.learning import neuron_traces

from .lava_models import NeuroccLIF, PyNeuroccLifModelBitAcc


class NeuroccLearningLIF(LearningNeuronProcess, NeuroccLIF):
    """NeuroccLIF with Lava's learning-neuron ports and the post traces' ``trace_impulses`` /
    ``trace_taus`` (module docstring)."""

    def __init__(self, *, shape: tuple[int, ...], trace_impulses: list[int], trace_taus: list[int],
                 **kwargs: Any) -> None:
        super().__init__(shape=shape, learning_rule=None, trace_impulses=[int(i) for i in trace_impulses],
                         trace_taus=[int(t) for t in trace_taus], **kwargs)


@implements(proc=NeuroccLearningLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyNeuroccLearningLifModel(LearningNeuronModelFixed, PyNeuroccLifModelBitAcc):
    """The neuron of PyNeuroccLifModelBitAcc, then the post traces sent to the synapse."""

    implements_process = None  # set by @implements

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.trace_impulses = tuple(proc_params["trace_impulses"])
        self.trace_taus = tuple(proc_params["trace_taus"])

    def run_spk(self) -> None:
        super().run_spk()                       # a_in → u, v, spikes (sent on s_out), self.s_out_buff
        reward = np.asarray(self.a_third_factor_in.recv(), np.int64)
        spikes = np.asarray(self.s_out_buff) != 0
        y = np.stack([self.y1, self.y2, self.y3]).astype(np.int64)
        y = neuron_traces(y, spikes, reward, self.trace_impulses, self.trace_taus, True)
        self.y1[:], self.y2[:], self.y3[:] = y[0], y[1], y[2]
        self.s_out_bap.send(spikes)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)


MODEL_MAP = {NeuroccLearningLIF: PyNeuroccLearningLifModel}
