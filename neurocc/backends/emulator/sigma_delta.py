"""Emulator kernel of :class:`~neurocc.ir.qnodes_sdn.QSigmaDelta`: runs
:func:`neurocc.ir.numerics.sigma_delta.sigma_delta_step` (the one rule) per step."""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator.kernels import Kernel
from neurocc.ir.numerics.sigma_delta import STATE_VARS, init_state, sigma_delta_step


class SigmaDelta(Kernel):
    """Graded sigma-delta neuron: int64 state holding int32 values; output int64 payloads."""

    stateful = True
    needs_profile = True

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        n = self.node
        shape = self.out_shape
        self.vth = np.broadcast_to(np.asarray(n.vth, np.int64), shape)
        self.bias = np.broadcast_to(np.asarray(n.bias, np.int64), shape)
        self.record_vars = STATE_VARS[n.mode]
        self.out_dtype = np.int64

    def reset(self, batch: int) -> None:
        self.state = init_state((batch, *self.out_shape), self.node.mode)

    def step(self, x: np.ndarray) -> np.ndarray:
        n = self.node
        return sigma_delta_step(self.state, x, vth=self.vth, bias=self.bias, state_exp=n.state_exp,
                                input_shift=n.input_shift, mode=n.mode, relu=n.relu, cum_error=n.cum_error,
                                variant=n.variant, counts=self.events)
