"""IR neuron kinds (``Threshold``, ``I``, ``IF``, ``LI``, ``LIF``, ``CubaLI``, ``CubaLIF``): NIR 1.0's
continuous-time equations in each docstring, the shared spike and reset semantics in
:class:`_Spiking`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.node_base import OMIT_DEFAULT, Node
from neurocc.ir.types import ResetMode, ResetTiming, Shape


@dataclass(frozen=True, eq=False)
class _Neuron(Node):
    """Shared shape logic: every array parameter has the node's shape."""

    def own_shape(self) -> Shape | None:
        arrays = list(self.arrays().values())
        return tuple(arrays[0].shape) if arrays else None

    def check(self) -> list[str]:
        shapes = {k: a.shape for k, a in self.arrays().items()}
        if len(set(shapes.values())) > 1:
            return ["all neuron parameters must have one shape, got " + ", ".join(f"{k}{v}" for k, v in shapes.items())]
        probs = []
        for name in ("tau", "tau_mem", "tau_syn"):
            a = self.arrays().get(name)
            if a is not None and a.size and not np.all(a > 0):
                probs.append(f"{name} must be > 0 (seconds), min is {a.min()}")
        return probs


@dataclass(frozen=True, eq=False)
class _Spiking(_Neuron):
    """The spike and reset semantics shared by IF, LIF and CubaLIF (defaults = NIR's).

    One step, after the membrane integration ``v ← α·v + g·in + b`` of the kind::

        fire(v)        = v > θ   (v ≥ θ when ``fire_at_threshold``: Sinabs)
        z              = fire(v) ∈ {0, 1}   (⌊v/θ⌋ where fire(v), else 0, when ``multi_spike``:
                         Sinabs' MultiSpike, a spike count per step)
        after_spike:     v ← v_reset (zero) | v − z·θ (subtract) | v (none), in the same step
        next_step:       r = fire(v[t−1]) is applied during step t after the decay, before the
                         input:  v[t] = α·v[t−1]·(1 − r) + g·in + b  (zero)
                                 v[t] = α·v[t−1] + g·in + b − r·θ    (subtract: θ is not decayed)
        next_step_end:   r = fire(v[t−1]) applied after the input:
                                 v[t] = (1 − r)·(α·v[t−1] + g·in + b)  (zero: the step's input is lost)
                                 subtract as next_step
        reset_now:       (next_step*, snnTorch ``reset_delay=False``) then, in step t,
                         v ← v − (z − r)·θ (subtract) | v − (z − r)·v (zero)
        v_min:           v ← max(v, v_min) last (Sinabs ``min_v_mem``)

    ``v_reset`` is used by ``zero`` with ``after_spike`` only (the snnTorch timings reset to 0).
    ``reset`` is declared by each kind (last, as before these fields existed); the other fields
    are left out of the stored graph and its text/digest when they hold their default.
    """

    reset_timing: ResetTiming = field(default=ResetTiming.AFTER_SPIKE, metadata=OMIT_DEFAULT)
    reset_now: bool = field(default=False, metadata=OMIT_DEFAULT)
    fire_at_threshold: bool = field(default=False, metadata=OMIT_DEFAULT)
    multi_spike: bool = field(default=False, metadata=OMIT_DEFAULT)
    v_min: float | None = field(default=None, metadata=OMIT_DEFAULT)

    def check(self) -> list[str]:
        probs = super().check()
        if self.reset_now and self.reset_timing is ResetTiming.AFTER_SPIKE:
            probs.append("reset_now applies to the next_step timings only")
        return probs


@dataclass(frozen=True, eq=False)
class Threshold(_Neuron):
    """z = H(x − θ): 1 where the input exceeds ``threshold``, else 0. Stateless."""

    kind: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, eq=False)
class I(_Neuron):
    """Integrator: dv/dt = r · I(t). Output v. State ``v``.

    Discrete form (neurocc's convention, as Sinabs and snnTorch, whose exported IF/I graphs
    are trained that way): v[t] = v[t-1] + r · I[t], once per step, independent of dt.
    """

    kind: ClassVar[str] = "I"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    r: np.ndarray = field(default_factory=lambda: np.ones(0))


@dataclass(frozen=True, eq=False)
class IF(_Spiking):
    """Integrate-and-fire: dv/dt = r · I(t); z = v > v_threshold; on z: v ← v_reset
    (``reset=zero``) or v ← v − v_threshold (``reset=subtract``). State ``v``; output z.

    Discrete form (neurocc's convention, as Sinabs and snnTorch): v[t] = v[t-1] + r · I[t] once
    per step, independent of dt (the NIR paper's Sinabs CNN is trained that way; a literal
    dt · r · I makes it silent).
    """

    kind: ClassVar[str] = "IF"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool] = True
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reset: ResetMode = ResetMode.ZERO


@dataclass(frozen=True, eq=False)
class LI(_Neuron):
    """Leaky integrator: τ dv/dt = (v_leak − v) + r · I(t). Output v. State ``v``."""

    kind: ClassVar[str] = "LI"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    tau: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, eq=False)
class LIF(_Spiking):
    """Leaky integrate-and-fire: τ dv/dt = (v_leak − v) + r · I(t); z = v > v_threshold;
    on z: v ← v_reset (``reset=zero``) or v ← v − v_threshold (``reset=subtract``).
    State ``v``; output z.
    """

    kind: ClassVar[str] = "LIF"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool] = True
    tau: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reset: ResetMode = ResetMode.ZERO


@dataclass(frozen=True, eq=False)
class CubaLI(_Neuron):
    """Current-based leaky integrator: τ_syn du/dt = −u + w_in · I(t);
    τ_mem dv/dt = (v_leak − v) + r · u. Output v. States ``u`` (current), ``v``.
    """

    kind: ClassVar[str] = "CubaLI"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    tau_syn: np.ndarray = field(default_factory=lambda: np.ones(0))
    tau_mem: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w_in: np.ndarray = field(default_factory=lambda: np.ones(0))


@dataclass(frozen=True, eq=False)
class CubaLIF(_Spiking):
    """Current-based LIF: τ_syn du/dt = −u + w_in · I(t); τ_mem dv/dt = (v_leak − v) + r · u;
    z = v > v_threshold; on z: v ← v_reset or v ← v − v_threshold (``reset``).
    States ``u`` (current), ``v``; output z. The current is updated before the membrane.
    """

    kind: ClassVar[str] = "CubaLIF"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    spiking: ClassVar[bool] = True
    tau_syn: np.ndarray = field(default_factory=lambda: np.ones(0))
    tau_mem: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w_in: np.ndarray = field(default_factory=lambda: np.ones(0))
    reset: ResetMode = ResetMode.ZERO


NEURON_KINDS = ("Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")
