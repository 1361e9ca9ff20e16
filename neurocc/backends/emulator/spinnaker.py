"""Emulator kernels of the ``spinnaker`` numerics: :class:`~neurocc.ir.qnodes_spinnaker.QSpiNNakerDense`
(ring-buffer sums per receptor) and :class:`~neurocc.ir.qnodes_spinnaker.QSpiNNakerLIF`
(``IF_curr_exp`` tick in s16.15, :func:`neurocc.ir.numerics.spinnaker.lif_tick`).

Synapse sums are exact integers (computed as float64 matrix products of integers below 2⁵³);
the neuron state is int64 holding int32 registers; wraps and ring-buffer saturations are counted
in ``events`` (``int32_wrap``, ``rb_saturate``), never silent.
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator.kernels import Kernel
from neurocc.ir.numerics import spinnaker as S

PARAMS = ("v_rest", "v_reset", "v_thresh", "i_offset", "r_m", "exp_tc", "t_refract", "decay_exc", "decay_inh",
          "init_exc", "init_inh")


class SpinnDense(Kernel):
    """y[:, 0] = W⁺ s, y[:, 1] = W⁻ s (s = input != 0), int64."""

    needs_profile = True

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        w = np.asarray(self.node.weight, np.int64)
        self.w_exc = np.clip(w, 0, None).astype(np.float64).T.copy()
        self.w_inh = np.clip(-w, 0, None).astype(np.float64).T.copy()
        self.out_dtype = np.int64

    def rows(self, x: np.ndarray) -> np.ndarray:
        s = (np.asarray(x).reshape(len(x), -1) != 0).astype(np.float64)
        exc, inh = s @ self.w_exc, s @ self.w_inh
        y = np.stack([exc, inh], axis=1).astype(np.int64)
        return y.reshape(len(x), *self.out_shape)


class SpinnLIF(Kernel):
    """One ``IF_curr_exp`` tick per step (see the module docstring). Output: spikes (uint8), or
    V in s16.15 bits (int64) for a non-spiking readout."""

    stateful = True
    needs_profile = True

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        n = self.node
        self.p = {k: np.asarray(getattr(n, k), np.int64) for k in PARAMS}
        self.p["shift_exc"], self.p["shift_inh"] = int(n.shift_exc), int(n.shift_inh)
        self.spiking = bool(n.is_spiking)
        self.out_dtype = np.uint8 if self.spiking else np.int64
        self.record_vars = n.state_vars
        self.start = int(getattr(n, "start_tick", 0))
        self.idle = {**self.p, "i_offset": np.zeros_like(self.p["i_offset"]), "v_rest": np.zeros_like(self.p["v_rest"])}
        self.tick = 0

    def reset(self, batch: int) -> None:
        shape = (batch, *self.out_shape)
        self.state = {var: np.zeros(shape, np.int64) for var in self.node.state_vars}
        self.tick = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        """One tick; before ``start_tick`` without i_offset and v_rest (the node docstring)."""
        x = np.asarray(x, np.int64)
        ev: dict[str, int] = {}
        z = S.lif_tick(self.state, x[:, 0], x[:, 1], self.p if self.tick >= self.start else self.idle, ev)
        self.tick += 1
        for k, v in ev.items():
            self.count(k, v)
        return z.astype(np.uint8) if self.spiking else self.state["v"].copy()


SPINNAKER_KERNELS = {"QSpiNNakerDense": SpinnDense, "QSpiNNakerLIF": SpinnLIF}
