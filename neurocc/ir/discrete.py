"""Discretisation of the float neuron kinds: per-step coefficients from time constants.

ONE definition, used by the float reference simulator (the emulator on a float graph), the
quantize pass, the edge-cpu float32 backend and ``neurocc.nn``; the discretize pass records
``dt`` and the method on the graph.

Per-step update of every float neuron kind (``x`` = the summed input of the step)::

    current (CubaLI, CubaLIF):   u ← α_u · u + g_u · x
    membrane:                    v ← α_v · v + g_v · in + b_v     in = u (Cuba*) or x (others)
    spike (IF, LIF, CubaLIF):    z = v > v_threshold;  v ← v_reset (zero) or v − v_threshold
                                 (NIR's order; snnTorch's and Sinabs' variants: nodes._Spiking)
    Threshold:                   z = x > threshold (stateless)

with, for a time constant τ (``tau``, ``tau_mem``; ``tau_syn`` for the current):

=========  =====================  =====================  ================
method     α                      g_v (input gain)       b_v (leak drive)
=========  =====================  =====================  ================
euler      1 − dt/τ               r · dt/τ               v_leak · dt/τ
exact      exp(−dt/τ)             r · (1 − α)            v_leak · (1 − α)
=========  =====================  =====================  ================

and ``g_u = w_in · dt/τ_syn`` (euler) or ``w_in · (1 − α_u)`` (exact). ``exact`` solves each
ODE exactly with its input held over the step (zero-order hold, per variable).

IF and I have no time constant: they integrate **per step**, ``v ← v + r · x`` (α_v = 1,
g_v = r, whatever dt and method). This is what the exporters that write IF do (Sinabs,
snnTorch, Lava-dl: ``r = 1`` means "add the input once per step"); the literal Euler form
``dt · r`` would make the NIR paper's spiking CNN (thresholds 1, dt = 1e-4) silent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocc.ir.nodes import I, IF, LI, LIF, CubaLI, CubaLIF, Node, Threshold
from neurocc.ir.types import Method

NEURON_TYPES = (I, IF, LI, LIF, CubaLI, CubaLIF, Threshold)


@dataclass(frozen=True)
class Decays:
    """Per-step coefficients of one neuron node (arrays of the node's shape, float64).

    ``alpha_u``/``gain_u`` are None for kinds without a current. ``alpha_v``/``gain_v``/``bias_v``
    are None for ``Threshold`` (stateless). See the module docstring for the update equations.
    """

    alpha_u: np.ndarray | None
    gain_u: np.ndarray | None
    alpha_v: np.ndarray | None
    gain_v: np.ndarray | None
    bias_v: np.ndarray | None


TAU_RTOL = 2.0 ** -21   # τ within 4 float32 ULPs of dt counts as τ = dt (time constants are often float32)


def same_as_dt(tau: np.ndarray, dt: float) -> np.ndarray:
    """Where τ equals dt up to float32 rounding (|τ − dt| ≤ :data:`TAU_RTOL` · dt)."""
    return np.abs(np.asarray(tau, np.float64) - dt) <= TAU_RTOL * dt


def _alpha(tau: np.ndarray, dt: float, method: Method) -> tuple[np.ndarray, np.ndarray]:
    """(α, 1 − α-equivalent factor h) for one time constant: Euler h = dt/τ, exact h = 1 − e^(−dt/τ).
    Euler with τ equal to dt up to float32 rounding (:func:`same_as_dt`) is h = 1, α = 0 exactly
    (no memory: snnTorch's ``beta = 0``), not a tiny negative α."""
    tau = np.asarray(tau, np.float64)
    if method is Method.EULER:
        h = np.where(same_as_dt(tau, dt), 1.0, dt / tau)
        return 1.0 - h, h
    alpha = np.exp(-dt / tau)
    return alpha, 1.0 - alpha


def decay_factors(node: Node, dt: float, method: Method | str = Method.EULER) -> Decays:
    """The per-step coefficients of float neuron ``node`` at step ``dt`` (seconds) with ``method``.

    This is THE discretisation: the float reference simulator and the quantize pass both call it.
    Raises ValueError for a node that is not a float neuron kind.
    """
    method = Method(method)
    if isinstance(node, Threshold):
        return Decays(None, None, None, None, None)
    if isinstance(node, (IF, I)):
        r = np.asarray(node.r, np.float64)
        return Decays(None, None, np.ones_like(r), r, np.zeros_like(r))
    if isinstance(node, (LI, LIF)):
        a, h = _alpha(node.tau, dt, method)
        return Decays(None, None, a, node.r * h, node.v_leak * h)
    if isinstance(node, (CubaLI, CubaLIF)):
        au, hu = _alpha(node.tau_syn, dt, method)
        av, hv = _alpha(node.tau_mem, dt, method)
        return Decays(au, node.w_in * hu, av, node.r * hv, node.v_leak * hv)
    raise ValueError(f"{node.kind} is not a float neuron kind")


def delay_steps(delay_s: np.ndarray, dt: float | None) -> np.ndarray:
    """A ``Delay`` node's delays in seconds → whole steps at ``dt``: ``rint(τ / dt)`` (int64).

    Without a dt (an undiscretised graph) every delay is 0 steps.
    """
    d = np.asarray(delay_s, np.float64)
    if not d.size or not dt:
        return np.zeros(d.shape, np.int64)
    return np.rint(d / dt).astype(np.int64)


def after_spike_equivalent(node: Node) -> Node:
    """``node`` with NIR's ``after_spike`` reset timing where that gives the same spikes, else ``node``.

    snnTorch's ``next_step`` zero reset (``v[t] = α·(1 − r)·v[t−1] + g·x``, r = the spike of
    step t−1) equals resetting v to 0 right after the spike of step t−1 (α·0 = 0), so the spikes
    are identical; only the recorded membrane differs in the spike's own step (snnTorch keeps the
    value above θ, NIR's form holds 0). ``reset=none`` has no reset to time. Other cases (subtract:
    θ would decay; ``next_step_end`` zero: the step's input is lost; ``reset_now``) are returned
    unchanged, so a backend without snnTorch's timings refuses them.
    """
    from neurocc.ir.types import ResetMode, ResetTiming

    timing = getattr(node, "reset_timing", ResetTiming.AFTER_SPIKE)
    if timing is ResetTiming.AFTER_SPIKE or node.reset_now:
        return node
    if node.reset is ResetMode.NONE or (node.reset is ResetMode.ZERO and timing is ResetTiming.NEXT_STEP
                                        and not np.any(node.v_reset)):
        return node.replace(reset_timing=ResetTiming.AFTER_SPIKE)
    return node
