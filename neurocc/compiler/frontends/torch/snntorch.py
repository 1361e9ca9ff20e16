"""snnTorch 1.0 neurons → IR neurons with snnTorch's exact step order (``Leaky``, ``Synaptic``,
``RLeaky``, ``RSynaptic``).

The equations read from snnTorch 1.0.0's source (``snntorch/_neurons/*.py``), one step, with
``r = H(mem[t−1] − θ)`` recomputed from the stored membrane (``mem_reset``), ``H(x) = x > 0``::

    Leaky      subtract: mem = β·mem + x − r·θ        zero: mem = β·(1 − r)·mem + x
    Synaptic   syn = α·syn + x;  subtract: mem = β·mem + syn − r·θ;
               zero: mem = (1 − r)·(β·mem + syn)      (the whole new membrane; syn is kept)
    RLeaky     as Leaky with x + R(spk[t−1]);  zero: mem = (1 − r)·(β·mem + x + R(spk[t−1]))
    RSynaptic  as Synaptic with syn = α·syn + x + R(spk[t−1])
    all        none: no reset term;  spk = H(mem − θ)
    reset_delay=False additionally: mem −= (spk − r)·θ (subtract) or (spk − r)·mem (zero)

which are the IR's ``reset_timing`` ``next_step`` (Leaky's zero acts before the input) and
``next_step_end`` (Synaptic/RLeaky/RSynaptic zero), ``reset_now`` for ``reset_delay=False``
(:class:`neurocc.ir.nodes._Spiking`). β, α map as snnTorch's NIR exporter does, at ``dt``
with method ``euler``: ``LIF(τ = dt/(1−β), r = τ/dt)``, ``CubaLIF(τ_syn = dt/(1−α),
w_in = τ_syn/dt)`` (Euler gives back ``β·v + x``); β = 1 everywhere → ``IF``.

``R`` is the recurrent weight: ``all_to_all=True`` → the module's ``recurrent`` ``nn.Linear``/
``nn.Conv2d`` (with its bias); ``all_to_all=False`` → ``Scale(V)`` (element-wise). It is a node
``<layer>.recurrent`` fed by the neuron over an edge with ``delay = 1`` and feeding the neuron
(R's input in step 0 is 0, so its bias acts from step 0 on, as snnTorch's ``recurrent(spk=0)``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neurocc.ir import nodes as ir
from neurocc.ir.types import ResetTiming, Shape

KINDS = ("Leaky", "Synaptic", "RLeaky", "RSynaptic")


def snntorch_types() -> tuple[type, ...]:
    try:
        import snntorch
    except ImportError:
        return ()
    return tuple(getattr(snntorch, k) for k in KINDS)


def outputs(m: Any) -> int:
    """How many values the module's call returns (1 = spikes only)."""
    if getattr(m, "init_hidden", False) and not getattr(m, "output", False):
        return 1
    return 3 if type(m).__name__ in ("Synaptic", "RSynaptic") else 2


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64) if hasattr(t, "detach") else np.asarray(t, np.float64)


def problems(m: Any) -> list[str]:
    import torch

    kind = type(m).__name__
    problems = []
    if m.inhibition or m.state_quant:
        problems.append("inhibition / state_quant are not supported (set them off)")
    if np.any(_to_numpy(getattr(m, "graded_spikes_factor", 1.0)) != 1):
        problems.append("graded_spikes_factor != 1 is not supported (graded spikes)")
    probe = m.spike_grad(torch.tensor([-1e-6, 0.0, 1e-6])).detach().tolist()
    if probe != [0.0, 0.0, 1.0]:
        problems.append(f"spike_grad's forward is not the Heaviside step x > 0 (gave {probe} for -1e-6, 0, "
                        "1e-6); use an snntorch.surrogate function")
    if kind == "RSynaptic" and not m.reset_delay:
        problems.append("reset_delay=False: snnTorch 1.0.0's RSynaptic ignores it (its correction is applied to "
                        "a local copy) or fails with init_hidden=True; set reset_delay=True, which is what it "
                        "computes")
    if kind in ("RLeaky", "RSynaptic") and m.all_to_all and not hasattr(m, "recurrent"):
        problems.append("all_to_all=True without linear_features or conv2d_channels/kernel_size")
    return problems


def neuron(m: Any, shape: Shape, dt: float) -> ir.Node:
    """The IR neuron for snnTorch module ``m`` with input ``shape``; ValueError naming what to change."""
    bad = problems(m)
    if bad:
        raise ValueError("; ".join(bad))
    kind = type(m).__name__

    def full(t: Any) -> np.ndarray:
        return np.broadcast_to(_to_numpy(t), shape).copy()

    beta = np.clip(full(m.beta), 0, 1)
    mode = m.reset_mechanism
    synaptic = kind in ("Synaptic", "RSynaptic")
    end = mode == "zero" and kind != "Leaky"
    common = dict(v_threshold=full(m.threshold), reset=mode, reset_now=not m.reset_delay,
                  reset_timing=ResetTiming.NEXT_STEP_END if end else ResetTiming.NEXT_STEP)
    if np.all(beta >= 1) and not synaptic:
        return ir.IF(r=np.ones(shape), v_reset=np.zeros(shape), **common)
    if np.any(beta >= 1):
        raise ValueError("beta = 1 on some neurons only (no finite time constant); use beta < 1 or beta = 1 "
                         "for the whole layer")
    tau_mem = dt / (1 - beta)
    common.update(r=tau_mem / dt, v_leak=np.zeros(shape), v_reset=np.zeros(shape))
    if not synaptic:
        return ir.LIF(tau=tau_mem, **common)
    alpha = np.clip(full(m.alpha), 0, 1)
    if np.any(alpha >= 1):
        raise ValueError("alpha = 1 (no synaptic leak) has no finite time constant; use alpha < 1")
    tau_syn = dt / (1 - alpha)
    return ir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, w_in=tau_syn / dt, **common)


def recurrent(m: Any) -> Callable[[Shape], ir.Node] | None:
    """A factory (of the neuron's shape) for the recurrent node of an RLeaky/RSynaptic; None otherwise."""
    if type(m).__name__ not in ("RLeaky", "RSynaptic"):
        return None
    if m.all_to_all:
        from neurocc.compiler.frontends.torch.modules import ann_node

        rec = m.recurrent
        return lambda shape: ann_node(rec)
    v = m.V
    return lambda shape: ir.Scale(scale=np.broadcast_to(_to_numpy(v), shape).copy())
