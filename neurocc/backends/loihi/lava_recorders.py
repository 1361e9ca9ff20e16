"""Recorders that hand their recording over in one file (worker only: importing this imports Lava).

Lava's ``Sink``/``Monitor`` keep a recording in a Var, and reading a Var (``Var.get``) sends one
message per value (Lava 0.10 ``PyLoihiProcessModel._get_var``: ~20 µs each here, 6.5 s for the
301,500 values of 450 lanes of the quickstart's readout, ten times the run's 67 steps). These
record the same values at the same phase and write them with ``np.save`` to ``path`` at their
last step (``time_step == buffer``), written to a temporary name and renamed, so the worker reads
one file:

* :class:`NeuroccSpikes` (as ``Sink`` on ``s_out``): an InPort; row ``t − 1`` ← what arrives in
  step t (``run_spk``);
* :class:`NeuroccProbe` (as ``Monitor.probe(var)``): a RefPort on the Var; row ``t − 1`` ← the
  Var read after step t (``run_post_mgmt``, after the neuron's update and reset, as the Monitor).

Recordings are time-first ``(buffer, *shape)`` int32 (a Monitor keeps floats; these are rounded).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class NeuroccSpikes(AbstractProcess):
    """Records what arrives on ``a_in`` for ``buffer`` steps into the file ``path``."""

    def __init__(self, *, shape: tuple[int, ...], buffer: int, path: str) -> None:
        super().__init__(shape=shape, buffer=buffer, path=path)
        self.a_in = InPort(shape=shape)


class NeuroccProbe(AbstractProcess):
    """Records the Var connected to ``ref`` (:meth:`connect_var`) for ``buffer`` steps into ``path``."""

    def __init__(self, *, shape: tuple[int, ...], buffer: int, path: str) -> None:
        super().__init__(shape=shape, buffer=buffer, path=path)
        self.ref = RefPort(shape=shape)

    def connect_var(self, var: Any) -> None:
        self.ref.connect_var(var)


class _Recording(PyLoihiProcessModel):
    """A time-first int32 buffer, saved to ``path`` at step ``buffer``."""

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.buffer, self.path = int(proc_params["buffer"]), str(proc_params["path"])
        self.rows = np.zeros((self.buffer, *proc_params["shape"]), np.int32)

    def keep(self, value: Any) -> None:
        self.rows[self.time_step - 1] = np.rint(np.asarray(value)).astype(np.int32)
        if self.time_step == self.buffer:
            tmp = f"{self.path}.tmp.npy"
            np.save(tmp, self.rows)
            os.replace(tmp, self.path)


@implements(proc=NeuroccSpikes, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNeuroccSpikesModel(_Recording):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def run_spk(self) -> None:
        self.keep(self.a_in.recv())


@implements(proc=NeuroccProbe, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNeuroccProbeModel(_Recording):
    ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, int)

    def post_guard(self) -> bool:
        return True

    def run_post_mgmt(self) -> None:
        self.keep(self.ref.read())


MODEL_MAP = {NeuroccSpikes: PyNeuroccSpikesModel, NeuroccProbe: PyNeuroccProbeModel}
