"""Quantize: a discretised float SNN graph → the integer graph of a numerics profile.

Profile ``loihi`` (Lava's bit-accurate models; units in :mod:`neurocc.ir.qnodes`). A *layer* is
one neuron node together with every synapse node (Affine/Linear → QDense, Conv2d → QConv2d)
that feeds it; all of them share one scale ``s`` = threshold-mantissa LSBs (= weight LSBs) per
float unit of membrane, so the state registers hold ``64 · s`` LSBs per float unit. With the
per-step coefficients of :func:`~neurocc.ir.discrete.decay_factors` and the layer
gain ``g = g_v`` (``g_u · g_v`` for Cuba kinds, 1 for Threshold):

    effective weight   W_eff = q · 2^e ≈ s · g · f_in · W       q: the integer mantissa
    threshold          vth   = rint(s · θ)                      17-bit, 1..131071 (0 iff θ = 0)
    current decay      du    = rint(4096 · (1 − α_u)) − 1       Lava decays u by du + 1;
                                                                4095 = no memory (LIF, IF, LI, I)
    voltage decay      dv    = rint(4096 · (1 − α_v))           0 = no leak (IF, I); 4096 = no
                                                                memory (Threshold, as netx writes it)
    bias (state LSBs)  bias_mant << bias_exp ≈ 64 · s · (b_v + g · b_affine)
                       13-bit signed mantissa, exponent 0..7 chosen per neuron
    current bias       CubaLIF: bias_u = rint(64 · s · g · b_affine) on u (as snnTorch adds the
                       Linear bias to the current; loihi2: neurocc's Lava process model); CubaLI
                       and fixed-function neurons (loihi1: no bias_u): b_affine goes to the
                       membrane at u's steady state g · b_affine / (1 − α_u)
    bias start         loihi2: bias_start = the neuron's input latency added by the Dense delays
                       (shortest Input → node delay, integer graph minus float graph), so a
                       layer's bias starts at the step its first input arrives, as in the float
                       model (no bias-only burst before the input); loihi1 (fixed-function
                       neurons) has none: its biases act from step 0

``f_in`` is the float value of one integer unit of the synapse's input (1 for spikes and sum
pools, 1/(kH·kW) after an average pool, 1/(64 · s_prev) after a leaky-integrator layer).
Default scaling (no calibration): ``s`` maps the largest |g · f_in · W| of the layer to the
largest mantissa (127 for mixed-sign 8-bit weights, 255 for single-sign; 127 for Conv); then
the shared exponent ``e`` is lowered below 0 if the largest threshold would exceed 131071, or
raised (dense layers only, up to 7) until the smallest positive threshold has at least
``VTH_MIN`` = 16 LSBs of resolution. Conv layers keep ``e = 0`` (Lava's Conv ignores
``weight_exp``). Optional per-layer statistics (``stats``, from calibration) can fix ``s``.

Emission so that Lava's Dense preprocessing (clip, then drop the low ``8 − b + mixed`` bits) is
the identity: ``weight = q << (8 − b + mixed)``, ``weight_exp = e − (8 − b + mixed)``,
``num_weight_bits = b`` (netx's convention: int8 mixed weights become ``2q`` with exponent −1).
Every synapse → neuron edge carries Lava's one-step Dense delay (a recurrent edge that already
delays one step hands its delay to the Dense, so a loop still takes one step). Parameters are
rounded half to even (``rint``), weights too unless a synapse's calibration Gram matrix is given
(``grams``: the rounding of least input-current error, :mod:`.qround`); the chip arithmetic
itself lives in ``neurocc.ir.numerics``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neurocc.compiler.passes.qscale import (
    headroom_exp,
    per_neuron,
    per_row,
    threshold_exp,
    weight_scale,
)
from neurocc.compiler.passes.qscale import jsonable_scale as _jsonable_scale
from neurocc.compiler.passes.quantize_checks import structure_problems, target_semantics
from neurocc.errors import CompileError
from neurocc.ir.discrete import NEURON_TYPES, after_spike_equivalent, decay_factors
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
    Scale,
    SumPool2d,
)
from neurocc.ir.numerics.core import (
    V24_LIM,
    lava_sign_mode,
    lava_weight_drop_bits,
    mantissa_exponent,
    round_to_int,
)
from neurocc.ir.numerics.profiles import Profile, get_profile
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d
from neurocc.ir.types import Rounding
from neurocc.targets import Target

STATE_SHIFT = 6            # state LSBs per weight LSB: 2**6 (Loihi MSB alignment)
VTH_MAX = (1 << 17) - 1    # 17-bit threshold mantissa
VTH_MIN = 16               # default scaling aims for at least this many threshold LSBs
BIAS_MANT_MAX = (1 << 12) - 1  # 13-bit signed mantissa: -4096..4095
BIAS_EXP_MAX = 7           # 3-bit exponent
NETX_BIAS_EXP = 6          # netx writes bias_mant with bias_exp 6 (loihi targets quantize onto that grid)
EXP_MAX = 7                # largest layer exponent e the default scaling picks
DECAY_ONE = 4096           # decays are 12-bit fractions of 4096
U_LIMIT = 1 << 23          # u wraps at 24 bits
V_LIMIT = (1 << 23) - 1    # v saturates at ±(2^23 − 1)
HEADROOM = 0.5             # calibrated scaling uses at most this fraction of u's and v's range

SYNAPSES = (Affine, Linear, Conv2d)
PROFILES = ("loihi", "int8")


@dataclass(frozen=True)
class LayerStats:
    """Optional statistics of one layer (keyed by neuron node name), e.g. from calibration.

    ``scale`` fixes ``s`` (threshold LSBs per float unit of membrane) instead of the default
    weight-range rule; for an Input node it makes the input graded, fed as
    ``rint(x · scale)`` integers (spikes otherwise).

    Calibrated scaling (:mod:`neurocc.compiler.calibrate` measures these on the float
    reference): ``u_absmax`` is the largest |synaptic input per step|, ``v_absmax`` the
    largest |membrane| and ``v_negmax`` the largest −v (0 when v never goes below 0), all in
    float membrane units. When given, the layer exponent ``e`` is lowered until
    ``64 · s · u_absmax``, for non-spiking layers such as an integrator readout
    ``64 · s · v_absmax``, and for spiking layers ``64 · s · v_negmax`` (the membrane of a
    converted neuron held below zero has no floor: it integrates its negative input every step
    and would saturate at −(2^23 − 1)) use at most ``HEADROOM`` of the 24-bit registers, and until
    the largest bias fits ``4095 << 7``. ``weight_bits`` overrides the target's weight mantissa
    bits for this layer (the accuracy-budget search lowers it). ``rate`` is recorded only.
    """

    scale: float | None = None
    v_absmax: float | None = None
    rate: float | None = None
    u_absmax: float | None = None
    weight_bits: int | None = None
    v_negmax: float | None = None


def _rint(x: np.ndarray | float) -> np.ndarray:
    return round_to_int(x, Rounding.NEAREST_EVEN)


def _weight_shift(q: np.ndarray, bits: int, profile: Profile) -> int:
    """Low bits the chip drops from an emitted weight (loihi: 8 − bits + mixed; int8: none)."""
    return lava_weight_drop_bits(lava_sign_mode(q), bits) if profile.name == "loihi" else 0


def quantize(graph: Graph, profile: str, target: Target, *,
             stats: Mapping[str, LayerStats] | None = None, per_channel: bool = False,
             grams: Mapping[str, np.ndarray] | None = None) -> Graph:
    """The integer graph of ``graph`` for ``profile`` (see the module docstring)."""
    return quantize_with_report(graph, profile, target, stats=stats, per_channel=per_channel, grams=grams)[0]


def quantize_with_report(graph: Graph, profile: str, target: Target, *,
                         stats: Mapping[str, LayerStats] | None = None,
                         per_channel: bool = False,
                         grams: Mapping[str, np.ndarray] | None = None) -> tuple[Graph, dict[str, Any]]:
    """(integer graph, quantization report). The report is a JSON-ready dict, see
    docs/artifact-format.md ("quantization.json").

    ``per_channel``: every spiking layer gets one scale per output neuron row (Dense) or output
    channel (Conv2d), so each row's largest weight uses the full mantissa; its thresholds and
    biases follow per neuron (both profiles store ``vth`` per neuron). Non-spiking readouts
    keep one scale (their membrane is read as one float unit).

    ``grams``: ``{synapse: input Gram matrix}`` measured on calibration data
    (:func:`neurocc.compiler.passes.qround.input_grams`); those synapses' weights are rounded to
    minimise the layer's input-current error (:func:`~neurocc.compiler.passes.qround.round_weights`)
    instead of each to its nearest integer."""
    if profile == "spinnaker":  # its own pass: the PyNN lowering + sPyNNaker's arithmetic
        from neurocc.compiler.passes.quantize_spinnaker import quantize_spinnaker

        return quantize_spinnaker(graph, target, stats=stats)
    if profile not in PROFILES:
        raise CompileError(f"numerics profile '{profile}' cannot be compiled yet", where=f"target '{target.name}'",
                           fix=f"use a target with numerics {', '.join(PROFILES)} (e.g. emulator, loihi2)")
    if graph.dt is None or graph.method is None:
        raise CompileError(f"graph '{graph.name}' has no dt/method", where="quantize",
                           fix="run the discretize pass first (compile does this)")
    prof = get_profile(profile)
    graph = scales_to_diagonal(graph)
    problems = structure_problems(graph, target, prof)
    if problems:
        raise CompileError(f"graph '{graph.name}' cannot be quantized for target '{target.name}'",
                           where="quantize", problems=problems,
                           fix="see each problem; every one names its node and what to change")
    return _Quantizer(graph, target, prof, dict(stats or {}), per_channel, dict(grams or {})).run()


def bias_from_step_zero(graph: Graph) -> Graph:
    """``graph`` with every ``bias_start`` set to 0: each bias acts from the run's first step,
    before the layer's Dense-delayed input arrives (Lava's own LIF and netx files do this; the
    first ``bias_start`` steps then differ from the float model)."""
    nodes = {n: replace(q, bias_start=0) if getattr(q, "bias_start", 0) else q for n, q in graph.nodes.items()}
    return graph.replace(nodes=nodes)


def scales_to_diagonal(graph: Graph) -> Graph:
    """Every 1-D ``Scale`` that feeds exactly one neuron node (snnTorch's one-to-one recurrent
    ``RLeaky``/``RSynaptic(all_to_all=False)``: ``V ⊙ spk`` on the recurrent edge) as the
    diagonal weight layer ``Linear(diag(s))``: the same float map ``y = s ⊙ x``, which the
    integer targets quantize like any Dense (one mantissa per neuron, the layer's scale)."""
    nodes = dict(graph.nodes)
    for name, node in graph.nodes.items():
        succ = graph.successors(name)
        if (isinstance(node, Scale) and np.ndim(node.scale) == 1 and len(succ) == 1
                and isinstance(graph.nodes[succ[0]], NEURON_TYPES)):
            nodes[name] = Linear(weight=np.diag(np.asarray(node.scale, np.float64)))
    return graph.replace(nodes=nodes)


class _Quantizer:
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
                  "registers": _registers(self.prof), "layers": self.layers, "outputs": self.outputs,
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
        e = threshold_exp(_threshold(node), per_neuron(s0, self.shapes[name]), allow_raise=not conv_lava,
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
            return _rint(w)
        from neurocc.compiler.passes.qround import round_weights

        top = self._mant_max(syn, w, bits)
        lo = 0 if self.lava and w.min(initial=0) >= 0 else -top
        hi = 0 if self.lava and w.max(initial=0) <= 0 else top
        return round_weights(w, gram, lo, hi).astype(np.int64)

    def _neuron(self, name: str, node: Node, dec: Any, drive: np.ndarray, s: np.ndarray,
                rep: dict[str, Any]) -> Node:
        """The integer neuron; ``s`` is the scale per neuron (the node's shape)."""
        shape = self.shapes[name]
        full = lambda a: np.broadcast_to(np.asarray(a, np.int64), shape).astype(np.int32)
        du = full(DECAY_ONE - 1) if dec.alpha_u is None else full(np.clip(_rint(DECAY_ONE * (1 - dec.alpha_u)) - 1, -1, 4095))
        dv = full(DECAY_ONE) if dec.alpha_v is None else full(np.clip(_rint(DECAY_ONE * (1 - dec.alpha_v)), 0, DECAY_ONE))
        bias_mant, bias_exp = self._bias(name, node, drive, s)
        rep.update(du=_uniq(du), dv=_uniq(dv), bias_mant=[int(bias_mant.min()), int(bias_mant.max())],
                   bias_exp=_uniq(bias_exp))
        if not node.spiking:
            return QLI(du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp)
        theta = np.broadcast_to(_threshold(node), shape)
        vth = _rint(theta * s)
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
            v_min = np.clip(_rint(np.broadcast_to(node.v_min * s, shape) * (1 << STATE_SHIFT)), -V24_LIM, V24_LIM)
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
        q = _rint(64 * s * cb).astype(np.int64)
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

    def _bias_starts(self, edges: tuple[Edge, ...]) -> dict[str, Node | None]:
        """The new nodes, each biased QLIF/QLI with ``bias_start`` = the input latency the
        synapse delays add to it (0 for int8: no delay)."""
        if not self.prof.synapse_delay or not self.programmable:
            return dict(self.new)
        before = self.g.input_delays()
        after = Graph({n: q for n, q in self.new.items()}, edges).input_delays()  # type: ignore[misc]
        out = dict(self.new)
        for name, q in self.new.items():
            if isinstance(q, (QLIF, QLI)) and name in before and name in after and after[name] > before[name]:
                if np.any(q.bias_mant) or getattr(q, "bias_u", None) is not None:
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


def _registers(prof: Profile) -> dict[str, Any]:
    """The integer format of every register the layers use (for the report and outside tools)."""
    fmt = lambda f: {"bits": f.bits, "signed": f.signed, "rounding": f.rounding.value,
                     "overflow": f.overflow.value}
    return {"weight": fmt(prof.weight), "accumulator": fmt(prof.accumulator), "u": fmt(prof.current),
            "v": fmt(prof.voltage), "du": {"range": [-1, DECAY_ONE - 1]}, "dv": {"range": [0, DECAY_ONE]},
            "vth": {"range": [0, VTH_MAX]}, "bias_mant": {"range": [-BIAS_MANT_MAX - 1, BIAS_MANT_MAX]},
            "bias_exp": {"range": [0, BIAS_EXP_MAX]}}


def _threshold(node: Node) -> np.ndarray | None:
    t = getattr(node, "v_threshold", getattr(node, "threshold", None))
    return None if t is None else np.asarray(t, np.float64)


def _weight_report(wf: np.ndarray, q: np.ndarray) -> dict[str, Any]:
    nonzero = wf != 0
    return {"q_min": int(q.min(initial=0)), "q_max": int(q.max(initial=0)),
            "zero_fraction": float(np.mean(q[nonzero] == 0)) if nonzero.any() else 0.0,
            "float_absmax": float(np.abs(wf).max(initial=0))}


def _row_abs_sum(q: np.ndarray, conv: bool) -> int:
    return int(np.abs(q).reshape(q.shape[0], -1).sum(axis=1).max(initial=0))


def _uniq(a: np.ndarray) -> list[int]:
    u = np.unique(a)
    return [int(x) for x in u] if u.size <= 4 else [int(u.min()), int(u.max())]
