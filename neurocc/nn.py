"""Torch step modules to train spiking networks that map 1:1 onto neurocc IR nodes.

Each module advances one time step: ``forward(x, state=None) -> (z, state)``, where ``x`` is
``(batch, *shape)``, ``z`` the binary spikes and ``state`` a tuple of tensors (zeros when
``None``). The update is the IR node's forward-Euler step at ``dt`` (``graph.method = euler``)
written term for term as neurocc's discretisation computes it
(:func:`neurocc.ir.discrete.decay_factors`): ``v ← α·v + g·x + b`` with
``h = dt/τ``, ``α = 1 − h``, ``g = r·h``, ``b = v_leak·h``. Run in float64 (``model.double()``),
the torch forward and the float reference simulation of the imported graph give the same
spikes; in float32 (training) they agree to rounding.

Spikes use NIR's strict test ``z = v > v_threshold``; for training, the backward pass uses a
fast-sigmoid surrogate ``dz/dv = 1 / (1 + slope·|v − θ|)²`` (slope 10).

Reset (after the spike of the same step):
``reset="zero"``: ``v ← v_reset`` (0) where z; ``reset="subtract"``: ``v ← v − θ`` where z.

The torch frontend (:mod:`neurocc.compiler.frontends.torch`) reads ``tau``, ``r``, ``v_leak``,
``v_threshold``, ``w_in`` (per-neuron buffers of ``shape``), ``reset`` and ``dt`` from these
modules; ``neurocc/__init__.py`` does not import this module (torch loads only when used).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

Shape = tuple[int, ...]
State = tuple[torch.Tensor, ...]

SURROGATE_SLOPE = 10.0


class _Spike(torch.autograd.Function):
    """Heaviside forward (z = x > 0), fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad / (1.0 + SURROGATE_SLOPE * x.abs()) ** 2


def spike(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """z = (v > threshold) as 0/1 in v's dtype, differentiable through the surrogate."""
    return _Spike.apply(v - threshold)


def _param(value: Any, shape: Shape, name: str) -> torch.Tensor:
    arr = torch.as_tensor(np.asarray(value, dtype=np.float32))
    try:
        return arr.expand(shape).clone()
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(arr.shape)} does not broadcast to {shape}") from None


def _euler(v: torch.Tensor, x: torch.Tensor, h: torch.Tensor, r: torch.Tensor, v_leak: torch.Tensor) -> torch.Tensor:
    """One Euler step of τ dv/dt = v_leak − v + r·x with h = dt/τ, as decay_factors computes it."""
    return (1.0 - h) * v + (r * h) * x + v_leak * h


def _reset(v: torch.Tensor, z: torch.Tensor, threshold: torch.Tensor, v_reset: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "subtract":
        return v - z * threshold
    return v - z * (v - v_reset)  # = v_reset where z, else v (keeps the surrogate path)


class _Neuron(torch.nn.Module):
    """Shared set-up: per-neuron buffers of ``shape``, ``dt`` (s), reset mode."""

    n_state = 1

    def __init__(self, shape: int | Shape, dt: float, reset: str) -> None:
        super().__init__()
        if reset not in ("zero", "subtract"):
            raise ValueError(f"reset must be 'zero' or 'subtract', got {reset!r}")
        self.shape: Shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dt = float(dt)
        self.reset = reset

    def _buffers_of_shape(self, **values: Any) -> None:
        for name, value in values.items():
            self.register_buffer(name, _param(value, self.shape, name))

    def initial_state(self, x: torch.Tensor) -> State:
        return tuple(torch.zeros_like(x) for _ in range(self.n_state))

    def extra_repr(self) -> str:
        return f"shape={self.shape}, dt={self.dt}, reset={self.reset!r}"


class LIF(_Neuron):
    """Leaky integrate-and-fire, one forward-Euler step (IR ``LIF``).

    State ``(v,)``. Per step, with input current x:

        v ← v + dt/τ · (v_leak − v + r·x)
        z = v > v_threshold
        v ← v_reset (= 0) where z            (reset="zero")
        v ← v − v_threshold where z          (reset="subtract")

    computed as ``v ← (1 − h)·v + (r·h)·x + v_leak·h`` with ``h = dt/τ``. With
    ``tau = dt/(1−β)`` and ``r = 1/(1−β)`` this is snnTorch's ``v ← β·v + x``.
    """

    def __init__(self, shape: int | Shape, tau: Any, dt: float, threshold: Any = 1.0, reset: str = "zero",
                 v_leak: Any = 0.0, r: Any = 1.0) -> None:
        super().__init__(shape, dt, reset)
        self._buffers_of_shape(tau=tau, r=r, v_leak=v_leak, v_threshold=threshold, v_reset=0.0)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        (v,) = state if state is not None else self.initial_state(x)
        v = _euler(v, x, self.dt / self.tau, self.r, self.v_leak)
        z = spike(v, self.v_threshold)
        return z, (_reset(v, z, self.v_threshold, self.v_reset, self.reset),)


class CubaLIF(_Neuron):
    """Current-based LIF, one forward-Euler step (IR ``CubaLIF``); the current is updated first.

    State ``(u, v)``. Per step, with input x:

        u ← u + dt/τ_syn · (−u + w_in·x)
        v ← v + dt/τ_mem · (v_leak − v + r·u)        (u of this step)
        z = v > v_threshold;  reset v as in :class:`LIF`

    computed as ``u ← (1 − h_s)·u + (w_in·h_s)·x``, ``v ← (1 − h_m)·v + (r·h_m)·u + v_leak·h_m``.
    """

    n_state = 2

    def __init__(self, shape: int | Shape, tau_syn: Any, tau_mem: Any, dt: float, threshold: Any = 1.0,
                 reset: str = "zero", w_in: Any = 1.0, r: Any = 1.0, v_leak: Any = 0.0) -> None:
        super().__init__(shape, dt, reset)
        self._buffers_of_shape(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=v_leak, v_threshold=threshold,
                               v_reset=0.0, w_in=w_in)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        u, v = state if state is not None else self.initial_state(x)
        h_syn = self.dt / self.tau_syn
        u = (1.0 - h_syn) * u + (self.w_in * h_syn) * x
        v = _euler(v, u, self.dt / self.tau_mem, self.r, self.v_leak)
        z = spike(v, self.v_threshold)
        return z, (u, _reset(v, z, self.v_threshold, self.v_reset, self.reset))


class IF(_Neuron):
    """Integrate-and-fire, one step (IR ``IF``).

    State ``(v,)``. Per step:

        v ← v + r·x
        z = v > v_threshold;  reset v as in :class:`LIF`

    IF has no time constant: neurocc integrates it once per step whatever ``dt`` (see
    :mod:`neurocc.compiler.passes.discretize`; Sinabs/snnTorch/Lava-dl write ``r = 1`` meaning
    "add the input each step"). ``dt`` is only recorded as the graph's step.
    """

    def __init__(self, shape: int | Shape, threshold: Any = 1.0, reset: str = "zero", r: Any = 1.0,
                 dt: float = 1e-3) -> None:
        super().__init__(shape, dt, reset)
        self._buffers_of_shape(r=r, v_threshold=threshold, v_reset=0.0)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        (v,) = state if state is not None else self.initial_state(x)
        v = v + self.r * x
        z = spike(v, self.v_threshold)
        return z, (_reset(v, z, self.v_threshold, self.v_reset, self.reset),)


__all__ = ["CubaLIF", "IF", "LIF", "spike"]
