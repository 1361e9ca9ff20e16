"""THE integer spike/reset rule of QLIF for every reset mode and timing (the integer form of
:class:`neurocc.ir.nodes._Spiking`). Used by the emulator; the edge-cpu graph writes the same
operations in ONNX. Values are integers (int64, or float64 holding integers < 2**53).

One step, with ``vth`` the scaled threshold (``vth << 6``) and ``fire(v) = v > vth``
(``v >= vth`` when ``fire_at_threshold``)::

    before the voltage update (:func:`pre`):
        r    = fire(v[t−1])                      (next_step timings, reset ≠ none; else none)
        v_in = 0 where r, else v[t−1]            (next_step + zero: the decayed old v is 0)
    v = profile.lif_voltage(v_in, u, bias)       (24-bit saturated)
    after it (:func:`post`):
        next_step*, subtract:   v ← sat24(v − r·vth)
        next_step_end, zero:    v ← 0 where r
        z = fire(v)
        reset_now (snnTorch reset_delay=False): d = z − r;  v ← sat24(v − d·vth) (subtract)
                                                 | sat24(v − d·v) (zero)
        after_spike:            v ← v − vth (subtract) | 0 (zero) where z;  none: v kept
        multi_spike (Sinabs MultiSpike; after_spike only):
                                n = ⌊v / vth⌋ where fire(v), else 0 (a spike count, sent as a
                                graded payload);  v ← v − n·vth (subtract) | 0 where n > 0 (zero)
        v_min (int8):           v ← max(v, v_min), last

The periodic reset of a whole layer (netx's ``reset_interval``, Lava's ``LIFReset``;
:func:`periodic_due`): u and v are set to 0 before the update of step t (counted from 1) when t
is one of the layer's reset steps ``o + k·P`` (k ≥ 0), with ``o`` = the first step ≥ 1 with
``o ≡ reset_offset (mod interval)`` and the period ``P`` by ``reset_schedule``:

    lava: P = interval        Lava's CPU model (``t mod interval == reset_offset mod interval``)
    chip: P = interval + 1    the Loihi 2 recording of lava-dl's PilotNet-LIF (docs/frontends.md)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir.numerics.core import V24_LIM, saturate
from neurocc.ir.types import ResetMode, ResetTiming


RESET_SCHEDULES = ("lava", "chip")


def periodic_first(interval: int, offset: int) -> int:
    """The first reset step o ≥ 1 (counted from 1) with ``o ≡ offset (mod interval)``."""
    return offset % interval or interval


def periodic_period(interval: int, schedule: str) -> int:
    """Steps between two resets: ``interval`` (``lava``) or ``interval + 1`` (``chip``)."""
    if schedule not in RESET_SCHEDULES:
        raise ValueError(f"reset_schedule {schedule!r} is not one of {RESET_SCHEDULES}")
    return interval + (schedule == "chip")


def periodic_due(t: int, interval: int, offset: int, schedule: str = "lava") -> bool:
    """Whether step ``t`` (counted from 1) starts with the periodic reset of u and v; never
    without an interval (``interval`` 0)."""
    if not interval:
        return False
    o = periodic_first(interval, offset)
    return t >= o and (t - o) % periodic_period(interval, schedule) == 0


def _fire(v: np.ndarray, vth: np.ndarray, node: Any) -> np.ndarray:
    return v >= vth if node.fire_at_threshold else v > vth


def early(node: Any) -> bool:
    """Whether the node's reset is computed from the previous step's membrane (snnTorch's order)."""
    return node.reset_timing is not ResetTiming.AFTER_SPIKE and node.reset is not ResetMode.NONE


def pre(v_prev: np.ndarray, vth: np.ndarray, node: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """(r, v_in): the previous step's spike for next_step timings (None otherwise) and the membrane
    the voltage update starts from."""
    if not early(node):
        return None, v_prev
    r = _fire(v_prev, vth, node)
    if node.reset is ResetMode.ZERO and node.reset_timing is ResetTiming.NEXT_STEP:
        return r, np.where(r, 0, v_prev).astype(v_prev.dtype)
    return r, v_prev


def post(v: np.ndarray, r: np.ndarray | None, vth: np.ndarray, node: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """(z, new v, saturation count) after the voltage update ``v`` of this step."""
    sub, zero = node.reset is ResetMode.SUBTRACT, node.reset is ResetMode.ZERO
    nsat = 0
    if r is not None:
        if sub:
            v, nsat = saturate(v - r * vth, -V24_LIM, V24_LIM)
        elif zero and node.reset_timing is ResetTiming.NEXT_STEP_END:
            v = np.where(r, 0, v).astype(v.dtype)
        z = _fire(v, vth, node)
        if node.reset_now:
            d = z.astype(v.dtype) - r
            v, n = saturate(v - d * vth if sub else v - d * v, -V24_LIM, V24_LIM)
            nsat += n
        return z, _floor(v, node), nsat
    z = _fire(v, vth, node)
    if getattr(node, "multi_spike", False):
        return _multi(v, z, vth, node)
    if z.any() and node.reset is not ResetMode.NONE:
        v = np.where(z, v - vth if sub else 0, v).astype(v.dtype)
    return z, _floor(v, node), nsat


def _multi(v: np.ndarray, z: np.ndarray, vth: np.ndarray, node: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Sinabs MultiSpike: ``n = ⌊v / vth⌋`` where ``z`` (v > 0 there, vth >= 1: floor = trunc),
    the reset by ``n·vth`` (subtract: 0 <= v − n·vth < vth, no saturation) or to 0 (zero)."""
    n = np.where(z, v // np.maximum(vth, 1), 0).astype(v.dtype)
    if node.reset is ResetMode.SUBTRACT:
        v = v - n * vth
    elif node.reset is ResetMode.ZERO:
        v = np.where(z, 0, v).astype(v.dtype)
    return n, _floor(v, node), 0


def _floor(v: np.ndarray, node: Any) -> np.ndarray:
    """``v ← max(v, v_min)`` (QLIF ``v_min``, integer, in v's units), last; unchanged without one."""
    v_min = getattr(node, "v_min", None)
    return v if v_min is None else np.maximum(v, v_min).astype(v.dtype)


def semantics_problems(node: Any, where: str, target: str, profile: Any) -> list[str]:
    """Spike/reset semantics of a float neuron that ``profile`` cannot compute exactly."""
    from neurocc.ir.discrete import after_spike_equivalent

    if not hasattr(node, "reset_timing"):
        return []
    found = []
    if node.reset_timing.value not in profile.reset_timings:
        node = after_spike_equivalent(node)
    if node.reset_timing.value not in profile.reset_timings and node.reset.value in getattr(
            profile, "reset_modes", (node.reset.value,)):  # (an unavailable reset mode is reported as such)
        what = ("reset_delay=False" if node.reset_now else f"reset '{node.reset.value}' with snnTorch's timing "
                f"'{node.reset_timing.value}' (the reset of a spike acts in the next step)")
        found.append(f"{where}: {what} is not available on target '{target}' (its neurons reset right after the "
                     "spike); fix: compile for loihi2, edge-cpu or edge-cpu-f32, or use snnTorch Leaky with "
                     "reset_mechanism='zero', whose spikes this target reproduces")
    if node.fire_at_threshold and not profile.fire_at_threshold:
        found.append(f"{where}: spikes at v >= threshold (Sinabs) but {profile.name} fires at v > threshold; fix: "
                     "compile for loihi2, edge-cpu or edge-cpu-f32")
    if node.multi_spike and not getattr(profile, "multi_spike", False):
        found.append(f"{where}: several spikes per step (Sinabs MultiSpike) need graded spikes, which target "
                     f"'{target}' does not send (binary spikes only); fix: compile for loihi2 or edge-cpu, or build "
                     "the layer with spike_fn=sinabs.activation.SingleSpike (and retrain)")
    if node.multi_spike and node.reset_timing.value != "after_spike":
        found.append(f"{where}: several spikes per step (MultiSpike) with the reset timing "
                     f"'{node.reset_timing.value}' have no integer rule; fix: reset right after the spike (Sinabs' own)")
    if node.v_min is not None and not getattr(profile, "v_min", False):
        found.append(f"{where}: min_v_mem = {node.v_min:g} (a membrane floor) is not in the integer numerics; fix: "
                     "min_v_mem=None (and retrain), or compile for edge-cpu or edge-cpu-f32")
    return found
