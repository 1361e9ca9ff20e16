"""Quantized (integer) node kinds: what the emulator, Lava and ONNX-integer backends execute.

A quantized graph has ``graph.numerics`` set to a profile name from :mod:`neurocc.ir.numerics`
(``loihi``, ``int8``, ``spinnaker``). The arithmetic of each kind under each profile is defined
once, in ``numerics``; the docstrings below state it. Units: one weight LSB equals one
threshold-mantissa LSB; state registers (``u``, ``v``) hold 2**6 = 64 LSBs per weight LSB
(Loihi's MSB alignment), so a weight ``w`` adds ``w << 6`` to ``u``.

Timing: under the ``loihi`` profile every QDense/QConv2d → neuron edge carries ``delay=1``
(Lava's Dense sends the previous step's accumulation), written explicitly on the edge by the
quantize pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.nodes import OMIT_DEFAULT, Conv2d, Node, Shape, _Pool2d
from neurocc.ir.types import ResetMode, ResetTiming


@dataclass(frozen=True, eq=False)
class QDense(Node):
    """Integer dense synapses (Lava ``Dense``, ``PyDenseModelBitAcc``).

    ``weight`` int32 (out, in). Per step: ``acc = Σ_j W'[:, j] · s[j]`` (binary spikes: any
    non-zero s counts as 1 unless ``graded``), then ``a = acc << weight_exp`` (or arithmetic
    ``>> -weight_exp``, floor) on the **sum**, cast to int32. ``W'`` is ``weight`` after the
    profile's preprocessing (loihi: clip to the sign mode's range and drop the low
    ``8 - num_weight_bits + mixed`` bits, so mixed-sign 8-bit weights lose their LSB).
    """

    kind: ClassVar[str] = "QDense"
    quantized: ClassVar[bool] = True
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    weight_exp: int = 0
    num_weight_bits: int = 8
    graded: bool = False

    def own_shape(self) -> Shape | None:
        return (int(self.weight.shape[1]),)

    def out_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.weight.shape[1],):
            raise ValueError(f"expects input ({self.weight.shape[1]},), got {in_shape}")
        return (int(self.weight.shape[0]),)

    def check(self) -> list[str]:
        probs = []
        if self.weight.ndim != 2:
            probs.append(f"weight must be 2-D, got {self.weight.shape}")
        if not np.issubdtype(self.weight.dtype, np.integer):
            probs.append(f"weight must be integer, got {self.weight.dtype}")
        return probs

    def n_synapses(self, in_shape: Shape) -> int:
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class QConv2d(Conv2d):
    """Integer convolution (Lava ``Conv``, fixed_pt): PyTorch conv semantics on integer
    weights; ``weight_exp`` shifts the sum as in QDense (Lava's Conv ignores it: the quantize
    pass keeps it 0 for loihi); the result wraps to signed 24 bits under ``loihi``.
    """

    kind: ClassVar[str] = "QConv2d"
    quantized: ClassVar[bool] = True
    weight_exp: int = 0
    graded: bool = False

    def check(self) -> list[str]:
        probs = [p for p in super().check() if "bias" not in p]
        if not np.issubdtype(self.weight.dtype, np.integer):
            probs.append(f"weight must be integer, got {self.weight.dtype}")
        return probs


@dataclass(frozen=True, eq=False)
class QSumPool2d(_Pool2d):
    """Integer sum pooling: y = Σ window (exact int32)."""

    kind: ClassVar[str] = "QSumPool2d"
    quantized: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class _QNeuron(Node):
    quantized: ClassVar[bool] = True

    def own_shape(self) -> Shape | None:
        arrays = list(self.arrays().values())
        return tuple(arrays[0].shape) if arrays else None

    def check(self) -> list[str]:
        shapes = {k: a.shape for k, a in self.arrays().items()}
        probs = []
        if len(set(shapes.values())) > 1:
            probs.append("all neuron parameters must have one shape, got " + ", ".join(f"{k}{v}" for k, v in shapes.items()))
        for k, a in self.arrays().items():
            if not np.issubdtype(a.dtype, np.integer):
                probs.append(f"{k} must be integer, got {a.dtype}")
        if getattr(self, "reset_schedule", "lava") not in ("lava", "chip"):
            probs.append(f"reset_schedule must be 'lava' or 'chip', got {self.reset_schedule!r}")
        return probs


@dataclass(frozen=True, eq=False)
class QLIF(_QNeuron):
    """Integer CUBA LIF (Lava ``LIF``, ``PyLifModelBitAcc``), per neuron, under ``loihi``::

        u ← trunc0(u · (4096 − (du + 1)) / 4096) + (a_in << 6)     wrapped to 24 bits
        v ← sat24(trunc0(v · (4096 − dv) / 4096) + u + bias)        bias = bias_mant << bias_exp
        z = v > (vth << 6);   v ← 0 where z                        (``reset=zero``)

    ``du`` −1..4095 (−1: no current decay), ``dv`` 0..4096 (4096: no memory), ``vth`` 0..2**17
    (17-bit mantissa; 2**17 never spikes), ``bias_mant`` 13-bit signed, ``bias_exp`` −7..7
    (negative: floor right shift). ``reset=subtract`` (v ← v − vth<<6) and ``none``, the snnTorch
    ``reset_timing``s, ``reset_now``, ``fire_at_threshold`` (z = v ≥ vth<<6) and ``v_min`` (a
    membrane floor in v's units, Sinabs' ``min_v_mem``: int8 only), ``bias_u`` (a
    constant added to the current every step, ``u ← wrap24(trunc0(u·(4096 − (du + 1))/4096) +
    (a_in << 6) + bias_u)``, in u's units: snnTorch's ``Linear`` bias into a ``Synaptic``; loihi:
    neurocc's Lava process model) only where the profile allows
    them; ``bias_start`` (loihi: the layer's input latency): at the steps t < bias_start counted
    from the run's first step, ``bias`` and ``bias_u`` are 0, so that a layer's bias starts with
    its (Dense-delayed) input, as in the trained model (neurocc's Lava process model);
    ``multi_spike`` (Sinabs ``MultiSpike``, after_spike timing, loihi2 and int8): the output is
    the spike count ``n = ⌊v / (vth << 6)⌋`` where the neuron fires (else 0), an integer sent as a
    graded payload (the synapses it feeds are ``graded``), and the reset subtracts ``n·(vth << 6)``
    (subtract) or writes 0 (zero); their integer rule is :mod:`neurocc.ir.numerics.reset`. ``refractory`` (int8 only; Lava has no bit-accurate refractory): for that
    many steps after a spike v is held at its post-reset value and cannot spike, while u keeps
    integrating; the counter is recorded as ``<node>/ref``. ``reset_interval`` > 0 (Lava's
    ``LIFReset``, netx's ``reset_interval``): at every step t (counted from 1, as Lava does) with
    ``t mod reset_interval == reset_offset mod reset_interval``, u and v are set to 0 before that
    step's update (samples presented back to back); ``reset_schedule`` ``chip`` spaces those
    resets ``reset_interval + 1`` steps apart after the first, as the Loihi 2 chip that
    recorded lava-dl's PilotNet-LIF did (the rule: :func:`neurocc.ir.numerics.reset.periodic_due`).
    The exact arithmetic per profile
    (u wrap, v saturation, int32 registers) is in :mod:`neurocc.ir.numerics.profiles`.
    States ``u``, ``v``.
    """

    kind: ClassVar[str] = "QLIF"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    spiking: ClassVar[bool] = True
    du: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    dv: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    vth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    reset: ResetMode = ResetMode.ZERO
    refractory: int = 0
    reset_interval: int = field(default=0, metadata=OMIT_DEFAULT)
    reset_offset: int = field(default=0, metadata=OMIT_DEFAULT)
    reset_schedule: str = field(default="lava", metadata=OMIT_DEFAULT)   # lava | chip (numerics.reset)
    reset_timing: ResetTiming = field(default=ResetTiming.AFTER_SPIKE, metadata=OMIT_DEFAULT)
    reset_now: bool = field(default=False, metadata=OMIT_DEFAULT)
    fire_at_threshold: bool = field(default=False, metadata=OMIT_DEFAULT)
    v_min: np.ndarray | None = field(default=None, metadata=OMIT_DEFAULT)  # int: v ← max(v, v_min) last
    bias_u: np.ndarray | None = field(default=None, metadata=OMIT_DEFAULT)  # int: added to u each step
    bias_start: int = field(default=0, metadata=OMIT_DEFAULT)   # steps 0..bias_start-1 run without bias/bias_u
    multi_spike: bool = field(default=False, metadata=OMIT_DEFAULT)  # output n = ⌊v/vth<<6⌋ (a graded count)


@dataclass(frozen=True, eq=False)
class QLI(_QNeuron):
    """Integer CUBA leaky integrator: QLIF's u and v updates with no threshold; output v.
    (netx writes it as a dense layer without a neuron group: vth = 2**17, never spikes.)
    """

    kind: ClassVar[str] = "QLI"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    du: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    dv: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    reset_interval: int = field(default=0, metadata=OMIT_DEFAULT)   # as QLIF
    reset_offset: int = field(default=0, metadata=OMIT_DEFAULT)
    reset_schedule: str = field(default="lava", metadata=OMIT_DEFAULT)   # as QLIF
    bias_start: int = field(default=0, metadata=OMIT_DEFAULT)       # as QLIF
