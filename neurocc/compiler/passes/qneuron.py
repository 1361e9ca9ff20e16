"""The integer neuron of one quantized layer (:mod:`.qlayers`): decays, threshold, biases.

For a layer of scale ``s`` (threshold LSBs per float unit of membrane) and gain ``g``:
``du = rint(4096 · (1 − α_u)) − 1``, ``dv = rint(4096 · (1 − α_v))`` (12-bit), ``vth = rint(s · θ)``
(17-bit, 1..131071), the bias ``64 · s · (b_v + g · b_affine)`` as a 13-bit signed mantissa and
a 3-bit exponent (on netx's grid, exponent 6, for ``loihi``), and on programmable CubaLIF
neurons the Affine bias on the 24-bit current, ``bias_u = rint(64 · s · g · b)``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.compiler.passes.qlimits import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    DECAY_ONE,
    NETX_BIAS_EXP,
    STATE_SHIFT,
    U_LIMIT,
    VTH_MAX,
    rint,
    threshold_of,
)
from neurocc.errors import CompileError
from neurocc.ir.discrete import after_spike_equivalent
from neurocc.ir.nodes import Conv2d, CubaLI, CubaLIF, Node
from neurocc.ir.numerics.core import V24_LIM, mantissa_exponent
from neurocc.ir.qnodes import QLI, QLIF


class NeuronRules:
    """The neuron half of a quantization run (mixed into :class:`.qlayers.Quantizer`, whose
    ``g``, ``shapes``, ``prof``, ``programmable`` and ``current_bias`` it reads)."""

    def _neuron(self, name: str, node: Node, dec: Any, drive: np.ndarray, s: np.ndarray,
                rep: dict[str, Any]) -> Node:
        """The integer neuron; ``s`` is the scale per neuron (the node's shape)."""
        shape = self.shapes[name]
        full = lambda a: np.broadcast_to(np.asarray(a, np.int64), shape).astype(np.int32)
        du = full(DECAY_ONE - 1) if dec.alpha_u is None else full(np.clip(rint(DECAY_ONE * (1 - dec.alpha_u)) - 1, -1, 4095))
        dv = full(DECAY_ONE) if dec.alpha_v is None else full(np.clip(rint(DECAY_ONE * (1 - dec.alpha_v)), 0, DECAY_ONE))
        bias_mant, bias_exp = self._bias(name, node, drive, s)
        rep.update(du=_uniq(du), dv=_uniq(dv), bias_mant=[int(bias_mant.min()), int(bias_mant.max())],
                   bias_exp=_uniq(bias_exp))
        if not node.spiking:
            return QLI(du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp)
        theta = np.broadcast_to(threshold_of(node), shape)
        vth = rint(theta * s)
        bad = (vth > VTH_MAX) | ((vth == 0) & (theta > 0))
        if np.any(bad):
            i = int(np.flatnonzero(bad.ravel())[0])
            t, si = float(theta.ravel()[i]), float(s.ravel()[i])
            raise CompileError(
                f"threshold {t:.6g} × scale {si:.6g} = {t * si:.6g} does not fit the "
                f"17-bit threshold mantissa (1..{VTH_MAX})", where=f"node '{name}' ({node.kind})",
                fix="rescale the layer's weights against its threshold (weights and thresholds differ by more "
                    "than 2^17), or calibrate the layer's scale")
        rep.update(vth=[int(vth.min()), int(vth.max())])
        if not hasattr(node, "reset_timing"):  # Threshold: no reset
            return QLIF(du=du, dv=dv, vth=vth.astype(np.int32), bias_mant=bias_mant, bias_exp=bias_exp)
        # NIR's after-spike form wherever it gives the same spikes (snnTorch Leaky zero): Lava's own LIF,
        # netx and the emulator's fast path then apply; other timings stay (checked by structure_problems)
        node = after_spike_equivalent(node)
        v_min = None  # Sinabs min_v_mem in v's units (θ·s ↔ vth, and v holds vth << 6)
        if node.v_min is not None:
            v_min = np.clip(rint(np.broadcast_to(node.v_min * s, shape) * (1 << STATE_SHIFT)), -V24_LIM, V24_LIM)
        return QLIF(du=du, dv=dv, vth=vth.astype(np.int32), bias_mant=bias_mant, bias_exp=bias_exp,
                    reset=node.reset, reset_timing=node.reset_timing, reset_now=node.reset_now,
                    fire_at_threshold=node.fire_at_threshold, multi_spike=node.multi_spike,
                    v_min=None if v_min is None else v_min.astype(np.int64),
                    bias_u=self._bias_u(name, s, rep))

    def _bias_u(self, name: str, s: np.ndarray, rep: dict[str, Any]) -> np.ndarray | None:
        """int8 CubaLIF: the Affine bias on the current as snnTorch/NIR add it, in u's units
        ``rint(64 · s · g_u · g_v · b)`` (u holds 64 · s per float unit of g_v · u)."""
        cb = self.current_bias.get(name)
        if cb is None:
            return None
        q = rint(64 * s * cb).astype(np.int64)
        if np.abs(q).max(initial=0) >= U_LIMIT:
            raise CompileError(f"the bias on the current, {int(np.abs(q).max())} u LSBs, exceeds the 24-bit current",
                               where=f"node '{name}' (CubaLIF)",
                               fix="calibrate the scale (`--calibration`) or reduce the Affine bias")
        rep["bias_u"] = [int(q.min()), int(q.max())]
        return q

    def _drive(self, name: str, node: Node, dec: Any, gain: np.ndarray, notes: list[str]) -> np.ndarray:
        """Per-neuron constant drive of the membrane in float units per step: b_v + g · b_affine."""
        shape = self.shapes[name]
        drive = np.zeros(shape) if dec.bias_v is None else np.broadcast_to(dec.bias_v, shape).astype(np.float64)
        cuba_gain = 1.0
        if isinstance(node, (CubaLI, CubaLIF)):
            # Loihi adds bias to v, NIR's Cuba adds the Affine bias to u: use u's steady state.
            if np.any(dec.alpha_u >= 1):
                cuba_gain = np.inf
            else:
                cuba_gain = 1.0 / (1.0 - dec.alpha_u)
        on_u = isinstance(node, CubaLIF) and self.programmable   # QLIF.bias_u, exact
        for syn in self.g.predecessors(name):
            b = getattr(self.g.nodes[syn], "bias", None)
            if b is None or not np.any(b):
                continue
            if isinstance(self.g.nodes[syn], Conv2d):
                b = np.asarray(b, np.float64).reshape(-1, *([1] * (len(shape) - 1)))
            if on_u:
                self.current_bias[name] = self.current_bias.get(name, 0.0) + gain * np.broadcast_to(b, shape)
                continue
            if not np.all(np.isfinite(cuba_gain)):
                raise CompileError(f"Affine bias into '{name}' whose current never decays (tau_syn = inf)",
                                   where=f"node '{syn}'", fix="remove the bias or give the current a finite tau_syn")
            drive = drive + gain * np.broadcast_to(b, shape) * cuba_gain
            if isinstance(node, (CubaLI, CubaLIF)):
                notes.append(f"bias of '{syn}' moved from the current to the membrane at its steady state "
                             "g_v·g_u·b/(1 − α_u): exact after the current settles, differs during the transient")
        return drive

    def _bias(self, name: str, node: Node, drive: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-neuron bias in state LSBs, as (mantissa, exponent): 64 · s · (b_v + g · b_affine)."""
        state = drive * 64 * s
        # loihi: on netx's grid (bias_exp 6, i.e. whole weight units; 7 only beyond 4095 << 6) so
        # that the compiled network can be written as a lava-dl network.net
        lo_exp = NETX_BIAS_EXP if self.prof.name == "loihi" else 0
        mant, exp = mantissa_exponent(state, 13, lo_exp, BIAS_EXP_MAX)
        exp = np.where(mant == 0, 0, exp)
        if np.any(np.abs(state) > (BIAS_MANT_MAX + 0.5) * 2 ** BIAS_EXP_MAX):
            raise CompileError(f"bias {float(np.abs(state).max()):.6g} state LSBs exceeds the largest bias "
                               f"{BIAS_MANT_MAX} << {BIAS_EXP_MAX}", where=f"node '{name}' ({node.kind})",
                               fix="reduce v_leak/Affine bias relative to the weights, or calibrate the scale "
                                   "(`--calibration`: the scale is then lowered until the bias fits)")
        return mant.astype(np.int32), exp.astype(np.int32)



def _uniq(a: np.ndarray) -> list[int]:
    u = np.unique(a)
    return [int(x) for x in u] if u.size <= 4 else [int(u.min()), int(u.max())]
