"""Quantized node kinds of the ``spinnaker`` numerics (sPyNNaker 7.4.1 ``IF_curr_exp``).

The arithmetic is in :mod:`neurocc.ir.numerics.spinnaker`; the emulator kernels in
:mod:`neurocc.backends.emulator.spinnaker`. A ``spinnaker`` graph is the PyNN network the
backend emits: one :class:`QSpiNNakerDense` per projection pair (source population → neuron
population, conv and pool expanded), one :class:`QSpiNNakerLIF` per population, and on each
synapse → neuron edge the projection's delay in ticks (so the graph's latency is SpiNNaker's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.nodes import Node, Shape
from neurocc.ir.qnodes import QDense


@dataclass(frozen=True, eq=False)
class QSpiNNakerDense(QDense):
    """Synaptic rows of one projection pair, as the ring buffers receive them.

    ``weight`` int32 (n_post, n_pre): the uint16 magnitude ``w_int`` with the receptor as sign
    (> 0 excitatory, < 0 inhibitory, 0 no synapse). Input: the source's spikes (any shape with
    n_pre elements; non-zero = spike). Output ``(2, *post_shape)`` int64 per step:
    ``[Σ_j max(w,0)·s_j, Σ_j max(−w,0)·s_j]``, the sums added to this tick's ring-buffer slots
    (the neuron saturates them at 0xFFFF). A subclass of QDense (``num_weight_bits`` 16) so the
    mapper counts it as the dense connection it is; ``weight_exp`` and ``graded`` are unused (0, False).
    """

    kind: ClassVar[str] = "QSpiNNakerDense"
    quantized: ClassVar[bool] = True
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    num_weight_bits: int = 16
    in_shape: tuple[int, ...] = ()
    post_shape: tuple[int, ...] = ()

    def own_shape(self) -> Shape | None:
        return tuple(self.in_shape) or None

    def out_shape(self, in_shape: Shape) -> Shape:
        if int(np.prod(in_shape)) != self.weight.shape[1]:
            raise ValueError(f"expects {self.weight.shape[1]} inputs, got shape {in_shape}")
        return (2, *self.post_shape)

    def check(self) -> list[str]:
        probs = []
        if self.weight.ndim != 2 or not np.issubdtype(self.weight.dtype, np.integer):
            probs.append(f"weight must be a 2-D integer array, got {self.weight.dtype}{self.weight.shape}")
        elif self.weight.size and np.abs(self.weight).max() > 0xFFFF:
            probs.append(f"weight magnitudes reach {int(np.abs(self.weight).max())}, above uint16 (65535)")
        if int(np.prod(self.post_shape)) != self.weight.shape[0]:
            probs.append(f"post_shape {self.post_shape} does not match {self.weight.shape[0]} weight rows")
        return probs

    def n_synapses(self, in_shape: Shape) -> int:
        return int(np.count_nonzero(self.weight))


@dataclass(frozen=True, eq=False)
class QSpiNNakerLIF(Node):
    """``IF_curr_exp`` on a SpiNNaker-1 core: s16.15 state, u0.32 synaptic decays.

    Per neuron (int32/int64 arrays of the node's shape): ``v_rest``, ``v_reset``, ``v_thresh``,
    ``i_offset``, ``r_m``, ``exp_tc`` (s16.15 bits), ``t_refract`` (ticks); per receptor
    ``decay_exc``/``decay_inh``, ``init_exc``/``init_inh`` (u0.32 bits); per population
    ``shift_exc``/``shift_inh`` (ring-buffer left shifts), ``atoms_per_core`` (neurocc's partition:
    the script sets it with ``set_max_atoms_per_core``). Input ``(2, *shape)``: this tick's
    ring-buffer sums. Per tick see :func:`neurocc.ir.numerics.spinnaker.lif_tick`. ``spiking``
    False makes a readout that outputs V (s16.15 bits) instead of spikes. States ``u_exc``,
    ``u_inh`` (isyn), ``v``, ``ref`` (refractory countdown). ``start_tick``: the tick of the
    population's step 0 (its lag: one tick per projection from the input); before it
    ``i_offset`` and ``v_rest`` are 0, so the neuron rests at V = 0 (the IR's initial state)
    until its first input can arrive, and the bias is integrated as often as in the IR.
    """

    kind: ClassVar[str] = "QSpiNNakerLIF"
    quantized: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("u_exc", "u_inh", "v", "ref")
    v_rest: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    v_thresh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    i_offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    r_m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    exp_tc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_refract: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    decay_exc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    decay_inh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    init_exc: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    init_inh: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shift_exc: int = 0
    shift_inh: int = 0
    is_spiking: bool = True
    atoms_per_core: int = 256
    start_tick: int = 0

    @property
    def spiking(self) -> bool:  # type: ignore[override]
        return bool(self.is_spiking)

    def own_shape(self) -> Shape | None:
        return (2, *self.v_rest.shape)

    def out_shape(self, in_shape: Shape) -> Shape:
        if tuple(in_shape) != (2, *self.v_rest.shape):
            raise ValueError(f"expects ring-buffer input (2, {', '.join(map(str, self.v_rest.shape))}), got {in_shape}")
        return tuple(self.v_rest.shape)

    def check(self) -> list[str]:
        probs = []
        shapes = {k: a.shape for k, a in self.arrays().items()}
        if len(set(shapes.values())) > 1:
            probs.append("all neuron parameters must have one shape, got " + ", ".join(f"{k}{v}" for k, v in shapes.items()))
        for k, a in self.arrays().items():
            if not np.issubdtype(a.dtype, np.integer):
                probs.append(f"{k} must be integer, got {a.dtype}")
        for k in ("shift_exc", "shift_inh"):
            if not 0 <= getattr(self, k) <= 16:
                probs.append(f"{k} = {getattr(self, k)} is outside 0..16")
        if not 1 <= self.atoms_per_core <= 256:
            probs.append(f"atoms_per_core = {self.atoms_per_core} is outside 1..256 (sPyNNaker's IF_curr_exp limit)")
        return probs

    def n_neurons(self, shape: Shape) -> int:
        return int(np.prod(shape))
