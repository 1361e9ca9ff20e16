"""One quantization run of the ``loihi``/``int8`` profiles (:mod:`.quantize`): walk the graph in
step order, one layer per neuron node, and emit the integer graph and its report.

A layer's synapses share its scale ``s = s0 · 2^e`` (:mod:`.qscale` picks ``s0`` and ``e``); the
effective weight ``q · 2^e ≈ s · g · f_in · W`` is emitted so that Lava's Dense preprocessing is
the identity (``weight = q << (8 − b + mixed)``); the neuron itself comes from :mod:`.qneuron`;
synapse → neuron edges get the profile's one-step Dense delay, and biased neurons a
``bias_start`` equal to the latency those delays add.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from neurocc.compiler.passes.qlimits import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    EXP_MAX,
    HEADROOM,
    STATE_SHIFT,
    U_LIMIT,
    V_LIMIT,
    VTH_MAX,
    VTH_MIN,
    LayerStats,
    registers,
    rint,
    threshold_of,
)
from neurocc.compiler.passes.qneuron import NeuronRules
from neurocc.compiler.passes.qscale import (
    headroom_exp,
    per_neuron,
    per_row,
    threshold_exp,
    weight_scale,
)
from neurocc.compiler.passes.qscale import jsonable_scale as _jsonable_scale
from neurocc.compiler.passes.quantize_checks import target_semantics
from neurocc.errors import CompileError
from neurocc.ir.discrete import NEURON_TYPES, decay_factors
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (
    Affine,
    AvgPool2d,
    Conv2d,
    CubaLI,
    CubaLIF,
    Input,
    Linear,
    Node,
    Output,
    SumPool2d,
)
from neurocc.ir.numerics.core import lava_sign_mode, lava_weight_drop_bits
from neurocc.ir.numerics.profiles import Profile
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d
from neurocc.targets import Target

SYNAPSES = (Affine, Linear, Conv2d)


def _weight_shift(q: np.ndarray, bits: int, profile: Profile) -> int:
    """Low bits the chip drops from an emitted weight (loihi: 8 − bits + mixed; int8: none)."""
    return lava_weight_drop_bits(lava_sign_mode(q), bits) if profile.name == "loihi" else 0


class Quantizer(NeuronRules):
    """One quantization run: walks the graph in step order, one layer per neuron node."""

    def __init__(self, graph: Graph, target: Target, profile: Profile, stats: dict[str, LayerStats],
                 per_channel: bool = False, grams: dict[str, np.ndarray] | None = None) -> None:
        self.g, self.target, self.prof, self.stats = graph, target, profile, stats
        self.grams = grams or {}
        self.per_channel = per_channel
        self.lava = profile.name == "loihi"
        # neurons neurocc can program (loihi2's Lava process model, edge-cpu) take bias_u and
        # bias_start; fixed-function ones (loihi1) keep Lava's LIF: bias on v from step 0
        self.programmable = target_semantics(target, profile).reset_modes != ("zero",)
        self.bits = min(int(target.limits.weight_bits), 8)
        self.shapes = graph.shapes()
        self.new: dict[str, Node | None] = {n: None for n in graph.nodes}
        self.unit: dict[str, float] = {}    # float value of one integer unit of each node's output
        self.binary: dict[str, bool] = {}   # output is 0/1 spikes
        self.layers: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.input_scales: dict[str, float] = {}
        self.current_bias: dict[str, np.ndarray] = {}  # int8 CubaLIF: g · b_affine per neuron, on u

    def run(self) -> tuple[Graph, dict[str, Any]]:
        for name, node in self.g.nodes.items():  # spikes are 0/1 whatever the layer's scale
            if node.spiking:   # (spike counts of MultiSpike: integers in float units, sent graded)
                self.unit[name], self.binary[name] = 1.0, not getattr(node, "multi_spike", False)
        for name in self.g.order():
            node = self.g.nodes[name]
            if isinstance(node, NEURON_TYPES):
                self._layer(name, node)
            elif not isinstance(node, SYNAPSES):
                self._passive(name, node)
        edges = self._edges()
        out = Graph(self._bias_starts(edges), edges, dt=self.g.dt, method=self.g.method,  # type: ignore[misc]
                    numerics=self.prof.name, name=self.g.name)
        report = {"profile": self.prof.name, "weight_bits": self.bits, "rounding": "nearest_even",
                  "registers": registers(self.prof), "layers": self.layers, "outputs": self.outputs,
                  "input_scales": self.input_scales}
        return out, report

    def _src_unit(self, name: str) -> tuple[float, bool]:
        srcs = self.g.predecessors(name)
        missing = [s for s in srcs if s not in self.unit]
        if missing:
            raise CompileError(f"node '{name}' reads '{missing[0]}' before its scale is known", where="quantize",
                               fix="recurrence through a non-spiking layer (LI/I) is not supported on loihi")
        units = {self.unit[s] for s in srcs}
        if len(units) > 1:
            raise CompileError(f"node '{name}' sums inputs of different scales {sorted(units)}", where="quantize",
                               fix="feed it from layers of one kind (all spiking)")
        return units.pop(), all(self.binary[s] for s in srcs)

    def _passive(self, name: str, node: Node) -> None:
        if isinstance(node, Input):
            scale = self.stats.get(name, LayerStats()).scale  # graded input: integer units per float unit
            self.new[name], self.unit[name], self.binary[name] = node, 1.0 / scale if scale else 1.0, not scale
            if scale:
                self.input_scales[name] = float(scale)
            return
        unit, binary = self._src_unit(name)
        if isinstance(node, (SumPool2d, AvgPool2d)):
            self.new[name] = QSumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
            if isinstance(node, AvgPool2d):
                unit /= float(np.prod(node.kernel_size))
            binary = False
        else:
            self.new[name] = node
        if isinstance(node, Output):
            src = self.g.predecessors(name)[0]
            self.outputs[name] = ({"values": "spikes"} if binary or self.g.nodes[src].spiking else
                                  {"values": "state", "source": src, "float_per_lsb": unit})
        self.unit[name], self.binary[name] = unit, binary

    # ---- one layer -------------------------------------------------------------------------
    def _layer(self, name: str, node: Node) -> None:
        shape = self.shapes[name]
        dec = decay_factors(node, self.g.dt, self.g.method)  # type: ignore[arg-type]
        cuba = isinstance(node, (CubaLI, CubaLIF))
        gain = (np.ones(shape) if dec.gain_v is None else
                np.broadcast_to(dec.gain_v * (dec.gain_u if cuba else 1.0), shape).astype(np.float64))
        syns = self.g.predecessors(name)
        wf = {s: self._float_weight(s, gain) for s in syns}
        bits = self._bits(name)
        notes: list[str] = []
        drive = self._drive(name, node, dec, gain, notes)
        s0, e, why = self._scale(name, node, wf, bits, drive)
        s = s0 * 2.0 ** e
        rep: dict[str, Any] = {"kind": node.kind, "scale": _jsonable_scale(s), "state_scale": _jsonable_scale(64 * s),
                               "exp": e, "weight_bits": bits, "synapses": {}}
        if np.ndim(s0):
            rep["per_channel"] = True
        if why:
            rep["calibrated"] = why
        for k in syns:
            self.new[k], rep["synapses"][k] = self._synapse(k, wf[k], s0, e, bits)
        rep["notes"] = notes
        self.new[name] = self._neuron(name, node, dec, drive, per_neuron(s, shape), rep)
        self.layers[name] = rep
        self.binary[name] = bool(node.spiking) and not getattr(node, "multi_spike", False)
        self.unit[name] = 1.0 if node.spiking else 1.0 / (64 * float(s))

    def _bits(self, name: str) -> int:
        """Weight mantissa bits of the layer: the target's (at most 8), or the layer's override."""
        bits = self.stats.get(name, LayerStats()).weight_bits
        if bits is None:
            return self.bits
        if not 2 <= int(bits) <= 8:
            raise CompileError(f"weight_bits {bits} for layer '{name}' is outside 2..8", where="quantize",
                               fix="choose 2..8 weight bits")
        return int(bits)

    def _float_weight(self, syn: str, gain: np.ndarray) -> np.ndarray:
        """s-free effective float weight g · f_in · W of synapse ``syn`` (rows = output neurons)."""
        node = self.g.nodes[syn]
        unit, binary = self._src_unit(syn)
        self.binary[syn], self.unit[syn] = binary, unit
        w = np.asarray(node.weight, np.float64) * unit
        if isinstance(node, Conv2d):
            per_ch = gain.reshape(gain.shape[0], -1)
            if not np.allclose(per_ch, per_ch[:, :1]):
                raise CompileError(f"neuron gains after convolution '{syn}' vary within a channel", where="quantize",
                                   fix="use one r/tau per output channel")
            return w * per_ch[:, 0].reshape(-1, *([1] * (w.ndim - 1)))
        return w * gain.reshape(-1)[:, None]

    def _mant_max(self, syn: str, w: np.ndarray, bits: int) -> int:
        """Largest mantissa: signed for conv, mixed-sign weights and int8; else unsigned (Lava's sign modes)."""
        if not self.lava or isinstance(self.g.nodes[syn], Conv2d) or (w.min(initial=0) < 0 < w.max(initial=0)):
            return (1 << (bits - 1)) - 1
        return (1 << bits) - 1

    def _scale(self, name: str, node: Node, wf: dict[str, np.ndarray], bits: int,
               drive: np.ndarray) -> tuple[float | np.ndarray, int, dict[str, Any] | None]:
        """(s0, e, calibration note): weights use their mantissa at s0 (one value, or one per
        output row with ``per_channel``); the layer's scale is s0 · 2^e."""
        st = self.stats.get(name, LayerStats())
        if st.scale:
            return float(st.scale), 0, None
        per_row = self.per_channel and node.spiking
        s0 = weight_scale({k: (w, self._mant_max(k, w, bits)) for k, w in wf.items()}, per_row)
        conv_lava = self.lava and any(isinstance(self.g.nodes[k], Conv2d) for k in wf)
        e = threshold_exp(threshold_of(node), per_neuron(s0, self.shapes[name]), allow_raise=not conv_lava,
                          vth_max=VTH_MAX, vth_min=VTH_MIN, exp_max=EXP_MAX)
        if st.u_absmax is None and st.v_absmax is None:
            return s0, e, None
        e_fit, limits = headroom_exp(float(np.max(s0)), st, bool(node.spiking), float(np.abs(drive).max(initial=0)),
                                     u_limit=U_LIMIT, v_limit=V_LIMIT, headroom=HEADROOM,
                                     bias_max=(BIAS_MANT_MAX + 0.5) * 2 ** BIAS_EXP_MAX)
        note = {"u_absmax": st.u_absmax, "v_absmax": st.v_absmax, "v_negmax": st.v_negmax, "rate": st.rate,
                "default_exp": e,
                "headroom_exp": e_fit, "limits": limits}
        return s0, min(e, e_fit), note

    def _synapse(self, syn: str, wf: np.ndarray, s0: float | np.ndarray, e: int,
                 bits: int) -> tuple[Node, dict[str, Any]]:
        node = self.g.nodes[syn]
        conv = isinstance(node, Conv2d)
        e_node = 0 if conv and self.lava else e
        q = self._round(syn, wf * per_row(s0, wf.ndim) * 2.0 ** (e - e_node), bits)
        rep = _weight_report(wf, q)
        if syn in self.grams and self.grams[syn].shape == (wf[0].size, wf[0].size):
            rep["rounding"] = "calibrated"
        if conv:
            new: Node = QConv2d(weight=q.astype(np.int32), bias=np.zeros(q.shape[0], np.int32), stride=node.stride,
                                padding=node.padding, dilation=node.dilation, groups=node.groups,
                                input_shape=node.input_shape, weight_exp=e_node, graded=not self.binary[syn])
            rep.update(weight_exp=e_node)
        else:
            shift = _weight_shift(q, bits, self.prof)
            new = QDense(weight=(q << shift).astype(np.int32), weight_exp=e_node - shift, num_weight_bits=bits,
                         graded=not self.binary[syn])
            rep.update(weight_exp=e_node - shift, num_weight_bits=bits,
                       sign_mode=lava_sign_mode(q))
        rep["graded_input"] = not self.binary[syn]
        rep["max_abs_u"] = int(_row_abs_sum(q, conv)) << (STATE_SHIFT + max(e_node, 0))
        rep["u_may_wrap"] = bool(self.binary[syn] and rep["max_abs_u"] >= U_LIMIT)
        return new, rep

    def _round(self, syn: str, w: np.ndarray, bits: int) -> np.ndarray:
        """Integer mantissas of ``w``: nearest (half to even), or, where a Gram matrix of the
        synapse's calibration inputs is given, the rounding of least input-current error within
        the mantissa range of the synapse's sign mode (:mod:`.qround`)."""
        gram = self.grams.get(syn)
        if gram is None or gram.shape != (w[0].size, w[0].size):
            return rint(w)
        from neurocc.compiler.passes.qround import round_weights

        top = self._mant_max(syn, w, bits)
        lo = 0 if self.lava and w.min(initial=0) >= 0 else -top
        hi = 0 if self.lava and w.max(initial=0) <= 0 else top
        return round_weights(w, gram, lo, hi).astype(np.int64)

    def _bias_starts(self, edges: tuple[Edge, ...]) -> dict[str, Node | None]:
        """The new nodes, each biased QLIF/QLI with ``bias_start`` = the input latency the
        synapse delays add to it (0 for int8: no delay)."""
        if not self.prof.synapse_delay or not self.programmable:
            return dict(self.new)
        before = self.g.input_delays()
        after = Graph({n: q for n, q in self.new.items()}, edges).input_delays()  # type: ignore[misc]
        out = dict(self.new)
        for name, q in self.new.items():
            later = isinstance(q, (QLIF, QLI)) and name in before and name in after and after[name] > before[name]
            if later and (np.any(q.bias_mant) or getattr(q, "bias_u", None) is not None):
                out[name] = replace(q, bias_start=int(after[name] - before[name]))
                self.layers.setdefault(name, {})["bias_start"] = int(after[name] - before[name])
        return out

    # ---- edges -------------------------------------------------------------------------------
    def _edges(self) -> tuple[Edge, ...]:
        """Synapse → neuron edges get Lava's one-step Dense delay; a synapse whose every input
        edge already waits >= 1 step takes one step from each of them (loops keep their length)."""
        step = self.prof.synapse_delay
        absorb = {n for n, node in self.g.nodes.items() if step and isinstance(node, SYNAPSES)
                  and self.g.in_edges(n) and all(e.delay >= 1 for e in self.g.in_edges(n))}
        out = []
        for e in self.g.edges:
            d = e.delay
            if e.dst in absorb:
                d -= 1
            if isinstance(self.g.nodes[e.src], SYNAPSES):
                d += step
            out.append(Edge(e.src, e.dst, d))
        return tuple(out)


def _weight_report(wf: np.ndarray, q: np.ndarray) -> dict[str, Any]:
    nonzero = wf != 0
    return {"q_min": int(q.min(initial=0)), "q_max": int(q.max(initial=0)),
            "zero_fraction": float(np.mean(q[nonzero] == 0)) if nonzero.any() else 0.0,
            "float_absmax": float(np.abs(wf).max(initial=0))}


def _row_abs_sum(q: np.ndarray, conv: bool) -> int:
    return int(np.abs(q).reshape(q.shape[0], -1).sum(axis=1).max(initial=0))

