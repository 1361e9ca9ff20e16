"""Lower a quantized ``loihi`` graph to a plain Lava process graph (:class:`.plan.LavaNet`).

Pure: numpy only, no Lava. Mapping (Lava 0.10 ``fixed_pt`` models, research note §2):

==============================  ==================================================================
neurocc                         Lava
==============================  ==================================================================
Input                           ``io.source.RingBuffer`` per (input, shift, shape), int32 data
QDense → neuron, delay D        ``Dense`` (D = 1; ``Sparse`` with CSR weights when at most half the
                                weights are non-zero) or ``DelayDense(delays=D-1)`` (2 ≤ D ≤ 64);
                                weights, ``weight_exp``, ``num_weight_bits`` as given (Lava
                                clips/truncates them exactly like the emulator); binary spikes
                                ``num_message_bits=0``, ``graded`` → 24
QConv2d → neuron, delay 1       ``conv.Conv``: weights flipped and moved to (C_out, kW, kH, C_in),
                                stride/padding/dilation in (x, y) order; no ``weight_exp``, no bias
QSumPool2d → neuron, delay 1    ``conv.Conv`` with a depthwise all-ones kernel (graded input)
QLIF / QLI                      ``LIF`` (``PyLifModelBitAcc``); QLI is a LIF with vth = 2**17,
                                which never fires (v saturates at 2**23 − 1 < 2**17 << 6)
                                (``reset_interval``: ``LIFReset``, ``PyLifResetModelBitAcc``)
Flatten                         virtual ports: ``transpose``/``reshape`` on the connection
Output ← QLIF / QLI             sink ``RingBuffer`` on ``s_out`` / Monitor on ``v``
==============================  ==================================================================

Timing: Lava step k (1-based) is neurocc step k − 1. A source RingBuffer sends column k − 1 at
step k, a Dense sends at step k what it received at k − 1 (the edge's ``delay=1``), a neuron
integrates what arrives in its own step. A synapse whose inputs are all graph Inputs gets any
extra delay (D > 1) by shifting its RingBuffer data instead of a DelayDense.

Per-neuron ``du``/``dv``/``vth``: Lava's LIF declares them as one value per process; when a node's
values differ, the per-neuron array (Lava layout) is given instead and the bit-accurate model
applies it element-wise (checked in the cross-check tests).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d
from neurocc.ir.qnodes_plastic import QPlasticDense

from .plan import Feed, LavaNet, LConn, LProc, Probe, Readout, lava_shape, port_ops, to_lava

SYNAPSES = (QDense, QConv2d, QSumPool2d, QPlasticDense)
NEURONS = (QLIF, QLI)
SUPPORTED = (Input, Output, Flatten, *SYNAPSES, *NEURONS)
QLI_VTH = 1 << 17  # (2**17) << 6 = 2**23 > 2**23 - 1, the largest voltage: never fires
SPARSE_MAX_DENSITY = 0.5  # QDense weights this sparse become a Lava Sparse process
MAX_DELAY = 63     # DelayDense's limit (Loihi 2's 6-bit synaptic delay)
GRADED_BITS = 24


@dataclass(frozen=True)
class _Path:
    """A value reaching a node: from ``root`` (not a Flatten), ``delay`` steps late, seen by the
    consumer in ``shape`` (after any Flatten on the way)."""

    root: str
    delay: int
    shape: tuple[int, ...]


def problems(graph: Graph) -> list[str]:
    """Every reason Lava cannot run ``graph`` exactly (empty list when it can); a malformed graph
    gets the verifier's problems."""
    from neurocc.ir.verify import problems as graph_problems

    return graph_problems(graph) or _Lowering(graph, record=False).run()[1]


def lower(graph: Graph, record: bool = False) -> LavaNet:
    """Lower ``graph`` for Lava; BackendError listing every problem when it cannot be."""
    graph.verify()
    net, found = _Lowering(graph, record).run()
    if found:
        raise BackendError(f"Lava cannot run graph '{graph.name}' exactly ({len(found)} problem(s))",
                           where="backend 'loihi'", problems=found,
                           fix="run it with the emulator backend, or change the graph as each problem says")
    return net


class _Lowering:
    """One lowering: collects processes, connections, probes and problems."""

    def __init__(self, graph: Graph, record: bool) -> None:
        self.g, self.record = graph, record
        self.procs: dict[str, LProc] = {}
        self.conns: list[LConn] = []
        self.feeds: list[Feed] = []
        self.probes: list[Probe] = []
        self.readouts: list[Readout] = []
        self.found: list[str] = []

    def problem(self, name: str, text: str) -> None:
        node = self.g.nodes[name]
        msg = f"node '{name}' ({node.kind}): {text}"
        if msg not in self.found:
            self.found.append(msg)

    def run(self) -> tuple[LavaNet, list[str]]:
        g = self.g
        if g.numerics != "loihi":
            self.found.append(f"graph '{g.name}' has numerics {g.numerics!r}; the loihi backend runs only "
                              "graphs quantized for 'loihi'")
        self.shapes = g.shapes()  # the graph is verified before it is lowered
        for name, node in g.nodes.items():
            if not isinstance(node, SUPPORTED):
                self.problem(name, "Lava has no process for this kind; the loihi backend runs Input, "
                                   "QDense, QConv2d, QSumPool2d, QLIF, QLI, Flatten and Output")
        for name, node in g.nodes.items():
            if isinstance(node, QPlasticDense):
                from .plastic import problems

                self.found.extend(problems(name, node))
            if isinstance(node, QConv2d):
                self._conv_ok(name, node)
            if isinstance(node, NEURONS):
                self._neuron(name, node)
            elif isinstance(node, Output):
                self._output(name)
            elif isinstance(node, SYNAPSES) and not any(isinstance(g.nodes[d], NEURONS) for d in self._consumers(name)):
                self.problem(name, "its output must go to a QLIF/QLI (Lava's synapses feed only neurons)")
        return self._net(), self.found

    def _net(self) -> LavaNet:
        return LavaNet(self.g.name, tuple(self.procs.values()), tuple(self.conns), tuple(self.feeds),
                       tuple(self.probes), tuple(self.readouts))

    # ----- graph walking --------------------------------------------------------------------------
    def _paths_into(self, name: str) -> list[_Path]:
        out = []
        for e in self.g.in_edges(name):
            root, delay = e.src, e.delay
            while isinstance(self.g.nodes[root], Flatten):
                ins = self.g.in_edges(root)
                if len(ins) != 1:
                    self.problem(root, "a Flatten must have exactly one input for Lava (a reshaped port)")
                    break
                root, delay = ins[0].src, delay + ins[0].delay
            out.append(_Path(root, delay, tuple(self.shapes[e.src])))
        return out

    def _consumers(self, name: str) -> list[str]:
        """Non-Flatten nodes reading ``name`` (through any Flatten)."""
        out = []
        for d in self.g.successors(name):
            out.extend(self._consumers(d) if isinstance(self.g.nodes[d], Flatten) else [d])
        return out

    # ----- neurons ----------------------------------------------------------------------------------
    def _neuron(self, name: str, node: QLIF | QLI) -> None:
        if node.reset_interval and node.reset_schedule != "lava":
            self.problem(name, f"reset_schedule={node.reset_schedule!r} (--reset-schedule): Lava's LIFReset resets "
                               "every reset_interval steps; only the emulator and edge-cpu run the chip's schedule")
        elif node.reset_interval and _semantics(node):
            self.problem(name, f"reset_interval={node.reset_interval} with {', '.join(_semantics(node))}: Lava's "
                               "LIFReset has Lava's LIF semantics only")
        self._neuron_params(name, node)
        shape = tuple(self.shapes[name])
        self.procs[name] = LProc(name, "lif", lava_shape(shape), *_lif_args(node, shape), node=name)
        for path in self._paths_into(name):
            src = self.g.nodes[path.root]
            if isinstance(src, SYNAPSES):
                syn = self._synapse(path.root, name, path.delay)
                if syn is not None:
                    self._connect(syn, "a_out", name, "a_in", port_ops(self.shapes[path.root], path.shape))
            elif isinstance(src, Input):
                self._connect(self._source(path.root, path.delay, path.shape), "s_out", name, "a_in")
            elif isinstance(src, QLIF) and path.delay == 0:
                self._connect(path.root, "s_out", name, "a_in", port_ops(self.shapes[path.root], path.shape))
            else:
                self._bad_source(name, path)
        if self.record:
            for var in ("u", "v"):
                self._probe(name, var, f"{name}/{var}", shape, 0)

    def _bad_source(self, name: str, path: _Path) -> None:
        src = self.g.nodes[path.root]
        if isinstance(src, QLI):
            self.problem(name, f"reads QLI '{path.root}', whose output is its voltage; Lava's LIF sends "
                               "only spikes (read a QLI through an Output)")
        elif isinstance(src, QLIF):
            self.problem(name, f"reads QLIF '{path.root}' directly with delay {path.delay}; Lava connects "
                               "neuron to neuron only within a step (put a QDense between them for delays)")

    def _neuron_params(self, name: str, node: QLIF | QLI) -> None:
        if isinstance(node, QLIF) and node.refractory > 0:
            self.problem(name, f"refractory={node.refractory}: Lava has no bit-accurate refractory period")
        mant = node.bias_mant.astype(np.int64)
        exp = node.bias_exp.astype(np.int64)
        if mant.size and (mant.min() < -2**15 or mant.max() >= 2**15):
            self.problem(name, f"bias_mant in [{mant.min()}, {mant.max()}] does not fit Lava's int16 register "
                               "(Loihi's mantissa is 13-bit signed)")
        if exp.size and (exp.min() < -31 or exp.max() > 15):
            self.problem(name, f"bias_exp in [{exp.min()}, {exp.max()}] is outside -31..15")
        elif mant.size and np.abs(np.where(exp >= 0, mant << np.maximum(exp, 0), 0)).max() >= 2**31:
            self.problem(name, "bias_mant << bias_exp overflows Lava's int32 bias")

    # ----- synapses -----------------------------------------------------------------------------
    def _synapse_inputs(self, syn: str) -> tuple[list[_Path], int] | None:
        """The paths into synapse ``syn`` and their common delay; None (and problems) when Lava
        cannot feed it: every input must be spikes of a QLIF or an Input, all equally delayed."""
        node = self.g.nodes[syn]
        paths = self._paths_into(syn)
        bad = [p for p in paths if not isinstance(self.g.nodes[p.root], (Input, QLIF))]
        for p in bad:
            src = self.g.nodes[p.root]
            if isinstance(src, QSumPool2d) and isinstance(node, QConv2d):
                hint = "fuse the pooling into the convolution's weights, or put a QLIF between them"
            elif isinstance(src, SYNAPSES):
                hint = "put a QLIF between the two synapses"
            else:
                hint = "a QLI sends no spikes; read it through an Output"
            self.problem(syn, f"reads {src.kind} '{p.root}' directly; Lava's synapses need spikes from a "
                              f"QLIF or an Input ({hint})")
        delays = {p.delay for p in paths}
        if len(delays) > 1:
            self.problem(syn, f"its inputs arrive with different delays {sorted(delays)}; Lava delays a "
                              "synapse's output only")
        return None if bad or len(delays) != 1 else (paths, delays.pop())

    def _synapse(self, syn: str, dst: str, d_out: int) -> str | None:
        """Create (once) the Lava connection process for ``syn`` feeding neuron ``dst``: total
        delay D = delay into ``syn`` + ``d_out``; D − 1 extra steps go to a DelayDense, or to the
        RingBuffer shift when every input of ``syn`` is a graph Input."""
        found = self._synapse_inputs(syn)
        if found is None:
            return None
        paths, d_in = found
        total, extra = d_in + d_out, d_in + d_out - 1
        from_inputs = all(isinstance(self.g.nodes[p.root], Input) for p in paths)
        if total < 1:
            self.problem(dst, f"reads synapse '{syn}' with total delay {total}; Lava's synapses always "
                              "deliver one step later (the loihi quantize pass writes delay=1)")
            return None
        if extra and not from_inputs and (not isinstance(self.g.nodes[syn], QDense) or extra > MAX_DELAY):
            self.problem(syn, f"delay {total} to '{dst}' cannot be built: Lava delays only Dense synapses, "
                              f"by at most {MAX_DELAY + 1} steps")
            return None
        name = f"{syn}->{dst}" + (f"@{total}" if extra else "")
        if name not in self.procs:
            proc = self._synapse_proc(name, syn, 0 if from_inputs else extra)
            if proc is None:
                return None
            self.procs[name] = proc
            for p in paths:
                self._connect_pre(p, name, extra if from_inputs else 0)
            if proc.kind == "learning_dense":   # the post neurons' spikes drive the learning engine
                self._connect(dst, "s_out", name, "s_in_bap")
                if self.g.nodes[syn].reward:     # three-factor: the post traces come from the neuron
                    from .plastic import three_factor

                    three_factor(self, name, syn, dst)
        return name

    def _connect_pre(self, path: _Path, syn_proc: str, shift: int) -> None:
        if isinstance(self.g.nodes[path.root], Input):
            self._connect(self._source(path.root, path.delay + shift, path.shape), "s_out", syn_proc, "s_in")
        else:
            self._connect(path.root, "s_out", syn_proc, "s_in", port_ops(self.shapes[path.root], path.shape))

    def _synapse_proc(self, name: str, syn: str, delay: int) -> LProc | None:
        node = self.g.nodes[syn]
        in_shape = tuple(self.g.in_shape(syn))
        if isinstance(node, QPlasticDense):
            from .plastic import learning_proc

            return learning_proc(name, syn, node)
        if isinstance(node, QDense):
            params = {"weight_exp": node.weight_exp, "num_weight_bits": node.num_weight_bits,
                      "num_message_bits": GRADED_BITS if node.graded else 0}
            if delay:
                params["delays"] = delay
            kind = "delay_dense" if delay else "sparse" if _sparse(node.weight) else "dense"
            return LProc(name, kind, tuple(node.weight.shape), params,
                         {"weights": node.weight.astype(np.int32)}, node=syn)
        if isinstance(node, QConv2d):
            if not self._conv_ok(syn, node):
                return None
            weight, groups, graded = node.weight, node.groups, node.graded
            stride, padding, dilation = node.stride, node.padding, node.dilation
        else:
            c = in_shape[0]
            weight, groups, graded = np.ones((c, 1, *node.kernel_size), np.int32), c, True
            stride, padding, dilation = node.stride, node.padding, (1, 1)
        lava_w = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32)
        params = {"input_shape": list(lava_shape(in_shape)), "stride": list(stride[::-1]),
                  "padding": list(padding[::-1]), "dilation": list(dilation[::-1]), "groups": int(groups),
                  "num_message_bits": GRADED_BITS if graded else 0}
        return LProc(name, "conv", lava_shape(self.shapes[syn]), params, {"weight": lava_w}, node=syn)

    def _conv_ok(self, syn: str, node: QConv2d) -> bool:
        bad_exp = node.weight_exp != 0
        bad_bias = bool(node.bias.size and np.any(node.bias != 0))
        if bad_exp:
            self.problem(syn, f"weight_exp={node.weight_exp}: Lava's Conv ignores weight_exp (fold 2**weight_exp "
                              "into the weights, or quantize the convolution with weight_exp=0)")
        if bad_bias:
            self.problem(syn, "has a bias; Lava's Conv has none (move it to the neuron's bias_mant)")
        return not (bad_exp or bad_bias)

    # ----- sources, connections, outputs ----------------------------------------------------------
    def _source(self, inp: str, shift: int, shape: tuple[int, ...]) -> str:
        name = f"in:{inp}:{shift}:" + "x".join(map(str, shape))
        if name not in self.procs:
            self.procs[name] = LProc(name, "source", lava_shape(shape), node=inp)
            self.feeds.append(Feed(name, inp, shift, shape))
        return name

    def _connect(self, src: str, src_port: str, dst: str, dst_port: str, ops: tuple = ()) -> None:
        self.conns.append(LConn(src, src_port, dst, dst_port, ops))

    def _probe(self, proc: str, var: str, key: str, shape: tuple[int, ...], shift: int) -> None:
        if Probe(proc, var) not in self.probes:
            self.probes.append(Probe(proc, var))
        self.readouts.append(Readout(key, proc, var, tuple(shape), shift))

    def _output(self, name: str) -> None:
        paths = self._paths_into(name)
        if len(paths) != 1:
            self.problem(name, f"has {len(paths)} inputs; for Lava an Output reads exactly one neuron")
            return
        (p,) = paths
        src = self.g.nodes[p.root]
        if not isinstance(src, NEURONS):
            self.problem(name, f"reads {src.kind} '{p.root}'; for Lava an Output must read a QLIF (spikes) "
                               "or a QLI (voltage)")
            return
        self._probe(p.root, "s" if isinstance(src, QLIF) else "v", name, tuple(self.shapes[name]), p.delay)


def _sparse(w: np.ndarray) -> bool:
    """Lava ``Sparse`` (CSR weights; the same bit-accurate arithmetic as ``Dense``) for weights
    at most :data:`SPARSE_MAX_DENSITY` non-zero, e.g. a pruned layer."""
    return w.size > 0 and np.count_nonzero(w) <= SPARSE_MAX_DENSITY * w.size


def _uniform(a: np.ndarray) -> int | np.ndarray:
    """One Python int when every neuron has the same value, else the int64 array."""
    flat = a.astype(np.int64).ravel()
    return int(flat[0]) if flat.size and np.all(flat == flat[0]) else a.astype(np.int64)


def _lif_args(node: QLIF | QLI, shape: tuple[int, ...]) -> tuple[dict, dict]:
    """(params, arrays) for Lava's LIF: scalars where uniform, else per-neuron arrays (Lava layout)."""
    params: dict = {}
    arrays: dict[str, np.ndarray] = {}
    values = {"du": node.du, "dv": node.dv,
              "vth": node.vth if isinstance(node, QLIF) else np.full(shape, QLI_VTH, np.int64)}
    for key, a in values.items():
        v = _uniform(np.broadcast_to(a, shape))
        if isinstance(v, int):
            params[key] = v
        else:
            arrays[key] = to_lava(v)
    for key in ("bias_mant", "bias_exp"):
        arrays[key] = to_lava(np.broadcast_to(getattr(node, key), shape).astype(np.int64))
    if getattr(node, "bias_u", None) is not None:
        arrays["bias_u"] = to_lava(np.broadcast_to(node.bias_u, shape).astype(np.int64))
    sem = _semantics(node)
    if sem:
        params["semantics"] = sem
    if node.reset_interval:   # Lava's LIFReset (the worker builds it instead of LIF)
        params.update(reset_interval=int(node.reset_interval), reset_offset=int(node.reset_offset))
    return params, arrays


def _semantics(node: QLIF | QLI) -> dict:
    """A neuron's semantics beyond Lava's LIF (reset to 0 right after v > vth, bias on v from
    step 0, none on u); {} if none. Non-empty → the worker builds neurocc's ``NeuroccLIF``
    process (:mod:`.lava_models`)."""
    extra = {"bias_start": int(node.bias_start), "bias_u": getattr(node, "bias_u", None) is not None}
    if not isinstance(node, QLIF):   # QLI: Lava's LIF with vth = 2**17 (never fires)
        sem = {"reset": "zero", "reset_timing": "after_spike", "reset_now": False, "fire_at_threshold": False}
    else:
        sem = {"reset": node.reset.value, "reset_timing": node.reset_timing.value, "reset_now": node.reset_now,
               "fire_at_threshold": node.fire_at_threshold}
        if node.multi_spike:      # spike counts, sent as graded payloads on s_out
            sem["multi_spike"] = True
    default = {"reset": "zero", "reset_timing": "after_spike", "reset_now": False, "fire_at_threshold": False,
               "bias_start": 0, "bias_u": False}
    sem.update(extra)
    return {} if sem == default else sem
