"""Sinabs 3 layers → IR nodes with Sinabs' exact step (``IAF``, ``IAFSqueeze``, ``LIF``,
``LIFSqueeze``, ``SumPool2d``, ``FlattenTime``/``UnflattenTime``, ``sinabs.from_model`` networks).

Sinabs layers take whole sequences ((B, T, ...) or, for ``*Squeeze``, (B·T, ...)); every layer
between the neurons acts on each step alone, so a Sinabs ``nn.Sequential`` is the same per-step
graph as an snnTorch one. One step of ``sinabs.layers.functional.lif_forward_single``
(Sinabs 3.1.3), τ in steps, ``α = exp(−1/τ)`` (the module's ``alpha_*_calculated``)::

    i = α_syn · (i + x)   (tau_syn given)  |  i = x
    v = α_mem · v + (1 − α_mem) · i        (LIF, norm_input=True)  |  α_mem · v + i  (IAF: α_mem = 1)
    z = ⌊v / θ⌋ if v ≥ θ else 0           (MultiSpike, the default)  |  z = v ≥ θ  (SingleSpike)
    v ← v − z · θ  (MembraneSubtract)      |  v ← 0 where z > 0  (MembraneReset(0))
    v ← max(v, min_v_mem)                  (when min_v_mem is set; from_model's default is −1)

IR form (graph ``dt`` = ``DEFAULT_DT``, method ``euler``; the IR's Euler coefficients give back
α exactly up to float64 rounding): ``IF(r = 1)`` for IAF; ``LIF(τ = dt/(1 − α_mem), r = 1 or
1/(1 − α_mem))``; with tau_syn ``CubaLIF(τ_syn = dt/(1 − α_syn), w_in = α_syn/(1 − α_syn))``
(g_u = α_syn), with ``fire_at_threshold``, ``multi_spike``, ``v_min`` and ``reset_timing =
after_spike`` (Sinabs resets in the spike's own step). ``SumPool2d`` (LPPool2d, p = 1) →
``SumPool2d``. Refused, by module: ``MaxSpike``, other spike functions, ``MembraneReset`` with a
non-zero value (Sinabs adds it to every neuron every step), ``MembraneSubtract`` with a
``subtract_value`` ≠ θ, ``IAF(tau_syn=…)`` (no leak-free current-based IR kind), the recurrent
and adaptive layers (``*Recurrent``, ``ALIF``), ``ExpLeak``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir import nodes as ir
from neurocc.ir.types import Shape


def _sinabs() -> Any | None:
    try:
        import sinabs.layers
    except ImportError:
        return None
    return sinabs


def neuron_types() -> tuple[type, ...]:
    s = _sinabs()
    return (s.layers.LIF,) if s else ()  # IAF, IAFSqueeze, LIFSqueeze, *Recurrent subclass LIF


def other_types() -> tuple[type, ...]:
    """Sinabs spiking layers with no IR form (refused by name)."""
    s = _sinabs()
    return (s.layers.ALIF, s.layers.ExpLeak) if s else ()


def passthrough_types() -> tuple[type, ...]:
    s = _sinabs()
    return (s.layers.FlattenTime, s.layers.UnflattenTime) if s else ()


def unwrap(model: Any) -> Any:
    """A ``sinabs.network.Network`` (what ``from_model`` returns) → its ``spiking_model``."""
    s = _sinabs()
    if s is not None:
        from sinabs.network import Network

        if isinstance(model, Network):
            return model.spiking_model
    return model


def pool_node(m: Any) -> ir.Node | None:
    """``sinabs.layers.SumPool2d`` (and torch's LPPool2d with p = 1) → SumPool2d; None if not one."""
    from torch import nn

    if not isinstance(m, nn.LPPool2d):
        return None
    if float(m.norm_type) != 1.0 or m.ceil_mode:
        raise ValueError(f"LPPool2d with norm_type={m.norm_type}, ceil_mode={m.ceil_mode} (only p=1, floor)")
    k = tuple(int(v) for v in np.broadcast_to(m.kernel_size, 2))
    s = tuple(int(v) for v in np.broadcast_to(m.stride if m.stride is not None else m.kernel_size, 2))
    return ir.SumPool2d(kernel_size=k, stride=s, padding=(0, 0))


def problems(m: Any) -> list[str]:
    """What cannot be translated exactly in Sinabs neuron ``m`` (empty when fine)."""
    from sinabs.activation import MembraneReset, MembraneSubtract, MultiSpike, SingleSpike

    found = []
    if getattr(m, "rec_connect", None) is not None:
        found.append("recurrent Sinabs layers (rec_connect) are not supported; use snnTorch RLeaky or NIR")
    if m.spike_fn not in (MultiSpike, SingleSpike):
        found.append(f"spike_fn={getattr(m.spike_fn, '__name__', m.spike_fn)!r} (supported: SingleSpike, MultiSpike)")
    rf = m.reset_fn
    if isinstance(rf, MembraneReset) and rf.reset_value != 0:
        found.append(f"MembraneReset(reset_value={rf.reset_value}) (Sinabs adds it to every neuron every step); "
                     "use reset_value=0")
    elif isinstance(rf, MembraneSubtract) and rf.subtract_value is not None:
        found.append(f"MembraneSubtract(subtract_value={rf.subtract_value}); use subtract_value=None (θ)")
    elif not isinstance(rf, (MembraneReset, MembraneSubtract)):
        found.append(f"reset_fn={type(rf).__name__} (supported: MembraneSubtract, MembraneReset)")
    if m.alpha_syn_calculated is not None and type(m).__name__.startswith("IAF"):
        found.append("IAF with tau_syn (a current that decays into a membrane that does not) has no IR kind; "
                     "use LIF with tau_syn")
    return found


def neuron(m: Any, shape: Shape, dt: float) -> ir.Node:
    """The IR neuron for Sinabs layer ``m`` with per-step input ``shape``."""
    from sinabs.activation import MembraneReset, MultiSpike

    bad = problems(m)
    if bad:
        raise ValueError("; ".join(bad))

    def full(t: Any) -> np.ndarray:
        arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        return np.broadcast_to(np.asarray(arr, np.float64), shape).copy()

    common = dict(v_threshold=full(m.spike_threshold), v_reset=np.zeros(shape),
                  reset="zero" if isinstance(m.reset_fn, MembraneReset) else "subtract", fire_at_threshold=True,
                  multi_spike=m.spike_fn is MultiSpike,
                  v_min=None if m.min_v_mem is None else float(m.min_v_mem))
    a_mem = full(m.alpha_mem_calculated)
    if np.all(a_mem == 1):
        return ir.IF(r=np.ones(shape), **common)
    if np.any(a_mem >= 1):
        raise ValueError("alpha_mem = 1 on some neurons only; give the layer one kind of leak")
    h = 1 - a_mem
    r = np.ones(shape) if m.norm_input else 1 / h
    common.update(r=r, v_leak=np.zeros(shape))
    if m.alpha_syn_calculated is None:
        return ir.LIF(tau=dt / h, **common)
    a_syn = full(m.alpha_syn_calculated)
    if np.any(a_syn >= 1):
        raise ValueError("alpha_syn = 1 (tau_syn = inf) has no finite time constant")
    return ir.CubaLIF(tau_syn=dt / (1 - a_syn), tau_mem=dt / h, w_in=a_syn / (1 - a_syn), **common)
