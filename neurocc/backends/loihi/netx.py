"""Plan a lava-dl netx HDF5 network (``network.net``) for a quantized ``loihi`` graph.

Pure numpy, no Lava, no h5py (the file itself is written by :mod:`.netx_file`). netx (lava-dl
0.6 ``lava.lib.dl.netx.hdf5.Network``) describes a **chain** of blocks, each one synapse plus one
CUBA neuron population with one ``du``/``dv``/``vth`` per layer (research note lava-loihi.md §5.2):

==========================================  ====================================================
neurocc                                     netx layer
==========================================  ====================================================
Input                                       ``input`` with ``shape`` only (no block, no delay)
Input →(0) QLIF/QLI (bias 0)                ``input`` with a ``neuron`` group: driven at the
                                            neuron's ``a_in``
[Flatten →] QDense →(D) QLIF/QLI            ``dense`` (D − 1 in ``delay``, a DelayDense)
QConv2d →(1) QLIF/QLI                       ``conv``
QDense →(1) N with N → QDense_rec →(1) N    ``dense_rec`` (``weight_rec``)
Flatten (C, H, W) → (C·H·W,)                ``flatten`` (netx: ``transpose([2,1,0]).flatten()``)
QLI                                         neuron ``vThMant`` = 2**17 (never fires); no neuron
                                            group when du = −1, dv = 4096, no bias (netx's default)
QSigmaDelta (lava-0.10 numerics)            neuron ``type`` SDNN (:mod:`.netx_sdnn`): sigma_delta
                                            after a synapse, delta as the input neuron, sigma as
                                            ``sigma_output``; the synapses after it are graded
==========================================  ====================================================

Exactness (nothing is written that computes something else):

* **Dense weights**: netx re-quantizes them (``optimize_weight_bits``: pre-clip, scale by
  2**scale_bits, choose ``num_weight_bits`` and ``weight_exp = −scale_bits``) and Lava's Dense then
  clips and drops low bits by its own sign mode (§2.2, §5.3). :func:`.netx_weights.netx_dense_effect` restates
  both; a layer is written only when that chain gives, per synapse, exactly the graph's value
  ``W'·2**weight_exp`` (``W'``: the graph's weights after Lava's preprocessing). So a negative
  ``weight_exp`` needs ``W'`` divisible by 2**−weight_exp (mixed 8-bit weights are even, so
  ``weight_exp = −1`` works), all-zero matrices (netx crashes), |values| beyond 255 and the
  ≤ 0-with-a-zero case netx and Lava disagree on are refused per layer.
* **Neurons**: one ``du``, ``dv``, ``vth`` per layer; ``bias`` is ``bias_mant`` with
  ``bias_exp = 6``, so the graph's ``bias_mant << bias_exp`` must be a multiple of 64 with a 13-bit
  quotient; reset to zero and no refractory period.
* **Conv** weights go to Lava's Conv untouched (no re-quantization), so ``weight_exp`` must be 0
  and the conv has no bias of its own (as for the Lava-process path).

Timing: every netx Dense/Conv sends at Lava step k what it received at k − 1, which is exactly
the ``delay=1`` the loihi quantize pass writes on every synapse → neuron edge; the input is fed
to the first synapse's ``s_in`` (or to the input neuron's ``a_in``) from a RingBuffer as on the
Lava-process path. So netx results need no re-alignment: Lava step k is neurocc step k − 1.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.numerics.core import bias_value
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense
from neurocc.ir.qnodes_sdn import QSigmaDelta
from neurocc.ir.types import ResetMode

from .netx_sdnn import STATE as SDNN_STATE
from .netx_sdnn import sdnn_group
from .netx_weights import graph_dense_values, netx_dense_effect, same_values
from .plan import Feed, Readout, lava_shape

NEURONS = (QLIF, QLI, QSigmaDelta)
NEVER_FIRES = 1 << 17   # vThMant of netx's neuron-less dense layer (``1 << 18 - 1`` in netx)
BIAS_EXP = 6            # netx's fixed bias exponent for CUBA neurons
BIAS_START_PROBLEM = "its bias starts at step"   # the problem text compile's warning recognises
BIAS_BITS = 13          # Loihi's signed bias mantissa
MAX_DELAY = 62          # netx clamps delays to 0..62 (DelayDense max_delay=62)
GRADED_BITS = 24


@dataclass(frozen=True)
class NetxLayer:
    """One ``/layer/<index>`` group. ``block``: its position in ``Network.layers`` (None for
    ``flatten`` and a shape-only ``input``); ``data``: datasets (arrays or ints); ``neuron``: the
    ``neuron/`` group (None: none); ``nodes``: the graph nodes it implements."""

    index: int
    type: str
    shape: tuple[int, ...]
    nodes: tuple[str, ...]
    block: int | None = None
    neuron_node: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    neuron: Mapping[str, Any] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NetxPlan:
    """The netx layers of a graph, how to drive and read them, and every reason it cannot be
    written (``problems``; empty when the file is exact)."""

    name: str
    layers: tuple[NetxLayer, ...]
    feeds: tuple[Feed, ...]
    feed_port: str                      # "neuron" (a_in of block 0) or "synapse" (s_in of block 0)
    input_message_bits: int
    readouts: tuple[Readout, ...]
    problems: tuple[str, ...]

    @property
    def expressible(self) -> bool:
        return not self.problems

    def probes(self) -> list[tuple[int, str]]:
        """(block index, var) for every readout, without repeats."""
        out: list[tuple[int, str]] = []
        for r in self.readouts:
            key = (int(r.proc), r.var)
            if key not in out:
                out.append(key)
        return out


# ----- the plan ---------------------------------------------------------------------------------------
def plan_netx(graph: Graph) -> NetxPlan:
    """Walk the graph as netx's chain; collect layers, readouts and every problem at once."""
    return _Planner(graph).run()


class _Planner:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.shapes = graph.shapes()
        self.layers: list[NetxLayer] = []
        self.found: list[str] = []
        self.seen: set[str] = set()
        self.blocks = 0
        self.feed_port = "synapse"
        self.input_bits = 0
        self.feed_shape: tuple[int, ...] = ()

    def problem(self, name: str | None, text: str) -> None:
        msg = f"node '{name}' ({self.g.nodes[name].kind}): {text}" if name else text
        if msg not in self.found:
            self.found.append(msg)

    def run(self) -> NetxPlan:
        g = self.g
        if g.numerics != "loihi":
            self.problem(None, f"graph '{g.name}' has numerics {g.numerics!r}; netx files hold loihi numerics")
        inputs = [n for n, node in g.nodes.items() if isinstance(node, Input)]
        if len(inputs) != 1:
            self.problem(None, f"graph '{g.name}' has {len(inputs)} inputs; a netx network has exactly one")
            return self._plan(inputs[0] if inputs else "")
        broken = self._chain(inputs[0])
        rest = [n for n, node in g.nodes.items() if n not in self.seen and not isinstance(node, Output)]
        if broken and rest:
            self.problem(None, f"the chain stops at '{broken}', so {', '.join(rest)} cannot be written either")
        else:
            for name in rest:
                self.problem(name, "is not on the single chain of layers netx describes (netx has no "
                                   "branches, merges, skips, pool or concat layers)")
        return self._plan(inputs[0])

    def _plan(self, inp: str) -> NetxPlan:
        feeds = (Feed("input", inp, 0, self.feed_shape),) if inp and self.feed_shape else ()
        return NetxPlan(self.g.name, tuple(self.layers), feeds, self.feed_port, self.input_bits,
                        tuple(self._readouts()), tuple(self.found))

    def _fwd(self, name: str) -> list[str]:
        """Non-Output consumers of ``name``."""
        return [d for d in self.g.successors(name) if not isinstance(self.g.nodes[d], Output)]

    def _edge(self, src: str, dst: str) -> int:
        return next(e.delay for e in self.g.edges if e.src == src and e.dst == dst)

    # ----- walking the chain --------------------------------------------------------------------
    def _chain(self, inp: str) -> str | None:
        """Walk from the input; the node where a problem stopped the walk, or None."""
        self.seen.add(inp)
        shape = tuple(self.shapes[inp])
        nxt = self._fwd(inp)
        first = nxt[0] if len(nxt) == 1 else None
        if first is not None and isinstance(self.g.nodes[first], NEURONS) and self._edge(inp, first) == 0:
            self.feed_port, self.feed_shape = "neuron", shape
            self._input_neuron(inp, first)
            cur = first
        else:
            self.layers.append(NetxLayer(0, "input", shape, (inp,)))
            cur = inp
        while True:
            nxt = [d for d in self._fwd(cur) if d not in self._recurrent(cur)]
            if not nxt:
                return None
            if len(nxt) > 1:
                self.problem(cur, f"feeds {len(nxt)} layers ({', '.join(nxt)}); netx is a chain")
                return None
            step = self._step(cur, nxt[0])
            if step is None:
                return nxt[0]
            cur = step

    def _step(self, cur: str, nxt: str) -> str | None:
        node = self.g.nodes[nxt]
        if self._edge(cur, nxt) != 0:
            self.problem(nxt, f"reads '{cur}' with delay {self._edge(cur, nxt)}; netx delays only dense synapses")
            return None
        if isinstance(node, Flatten):
            return self._flatten(cur, nxt)
        if isinstance(node, (QDense, QConv2d)):
            return self._synapse_layer(cur, nxt)
        self.seen.add(nxt)
        what = {"QSumPool2d": "pool"}.get(node.kind, node.kind)
        self.problem(nxt, f"netx has no '{what}' layer (lava-dl 0.6 rejects pool, convT, unpool, average, "
                          "concat); the Lava-process path runs it")
        return None

    def _flatten(self, cur: str, name: str) -> str | None:
        self.seen.add(name)
        src, dst = tuple(self.shapes[cur]), tuple(self.shapes[name])
        if len(src) == 1 and dst == src:
            return name   # a no-op flatten: nothing to write
        if len(src) != 3 or dst != (int(np.prod(src)),):
            self.problem(name, f"flattens {src} to {dst}; netx flattens only (C, H, W) to (C·H·W,)")
            return None
        self.layers.append(NetxLayer(len(self.layers), "flatten", dst, (name,)))
        return name

    def _recurrent(self, neuron: str) -> list[str]:
        """QDense nodes that read only ``neuron`` and write only back into it."""
        out = []
        for d in self._fwd(neuron):
            node = self.g.nodes[d]
            if (isinstance(node, QDense) and self.g.predecessors(d) == [neuron]
                    and self.g.successors(d) == [neuron]):
                out.append(d)
        return out

    def _readouts(self) -> list[Readout]:
        blocks = {lay.neuron_node: lay.block for lay in self.layers if lay.neuron_node}
        out = []
        for name, node in self.g.nodes.items():
            if not isinstance(node, Output):
                continue
            ins = self.g.in_edges(name)
            if len(ins) != 1:
                self.problem(name, f"has {len(ins)} inputs; a netx readout is one layer's neurons")
                continue
            root, delay = ins[0].src, ins[0].delay
            while root and isinstance(self.g.nodes[root], Flatten) and len(self.g.in_edges(root)) == 1:
                e2 = self.g.in_edges(root)[0]
                root, delay = e2.src, delay + e2.delay
            if root not in blocks:
                if root in self.seen and self.layers:   # not a node the chain already reported
                    self.problem(name, f"reads '{root}', which is not a netx layer's neuron")
                continue
            var = "v" if isinstance(self.g.nodes[root], QLI) else "s"
            out.append(Readout(name, str(blocks[root]), var, tuple(self.shapes[name]), delay))
        for n, b in blocks.items():
            node = self.g.nodes[n]
            state = SDNN_STATE[node.mode] if isinstance(node, QSigmaDelta) else ("u", "v")
            out += [Readout(f"{n}/{v}", str(b), v, tuple(self.shapes[n])) for v in state]
        return out

    # ----- layers -------------------------------------------------------------------------------------
    def _input_neuron(self, inp: str, name: str) -> None:
        self.seen.add(name)
        if self.g.predecessors(name) != [inp] or self._recurrent(name):
            self.problem(name, "an input neuron reads the input only (netx's Input block has no synapse)")
        group, bias = self._neuron(name)
        if bias is not None and np.any(bias):
            self.problem(name, "has a bias; netx's input neuron has none")
        self.layers.append(NetxLayer(0, "input", tuple(self.shapes[inp]), (inp, name), block=0,
                                     neuron_node=name, neuron=group))
        self.blocks = 1

    def _synapse_layer(self, cur: str, syn: str) -> str | None:
        self.seen.add(syn)
        outs = self.g.out_edges(syn)
        axonal, via = self._axonal(syn, outs)
        if via is not None:
            outs = self.g.out_edges(via)
        if len(self.g.in_edges(syn)) != 1 or len(outs) != 1 or not isinstance(self.g.nodes[outs[0].dst], NEURONS):
            self.problem(syn, "a netx layer is one synapse reading one layer and feeding one neuron population")
            return None
        neuron, delay = outs[0].dst, outs[0].delay + (1 if via is not None else 0)
        self.seen.add(neuron)
        rec = self._recurrent(neuron)
        others = [p for p in self.g.predecessors(neuron) if p not in (syn, via, *rec)]
        if others or len(rec) > 1:
            self.problem(neuron, f"reads {len(others) + len(rec) + 1} synapses; a netx layer has one "
                                 "(plus at most one recurrent dense)")
        self.seen.update(rec)
        node = self.g.nodes[syn]
        if isinstance(node, QConv2d):
            data, kind = self._conv(syn, node, delay), "conv"
        else:
            data, kind = self._dense(syn, node, delay, rec[0] if rec else None, neuron)
            if axonal is not None and not rec:
                data["delay"] = np.asarray(data.get("delay", 0), np.int64) + axonal
                if data["delay"].max() > MAX_DELAY:
                    self.problem(via, f"axonal delays up to {int(data['delay'].max())}; netx holds 0..{MAX_DELAY}")
        if self._after_sdnn(cur) and not getattr(node, "graded", False):
            self.problem(syn, "reads a sigma-delta neuron without graded spikes; netx's SDNN sends graded messages")
        if self.blocks == 0:   # the first synapse reads the Input (perhaps through a Flatten)
            self.input_bits = GRADED_BITS if getattr(node, "graded", False) else 0
            self.feed_shape = tuple(self.shapes[cur])
        group, bias = self._neuron(neuron)
        if bias is not None and np.any(bias):
            data["bias"] = self._layer_bias(bias, kind)
        if isinstance(self.g.nodes[neuron], QLI) and _default_li(group) and "bias" not in data:
            group = None
        self.layers.append(NetxLayer(len(self.layers), kind, tuple(self.shapes[neuron]),
                                     (syn, neuron, *rec), block=self.blocks, neuron_node=neuron,
                                     data=data, neuron=group, info=data.pop("_info", {})))
        self.blocks += 1
        return neuron

    def _after_sdnn(self, cur: str) -> bool:
        while isinstance(self.g.nodes[cur], Flatten) and self.g.predecessors(cur):
            cur = self.g.predecessors(cur)[0]
        return isinstance(self.g.nodes[cur], QSigmaDelta)

    def _axonal(self, syn: str, outs: list) -> tuple[np.ndarray | None, str | None]:
        """A per-neuron ``Delay`` between a dense synapse (delay 1) and its neuron (delay 0), as
        the netx frontend reads a ``delay`` of shape (out,): (steps per neuron, the Delay's name)."""
        from neurocc.ir.discrete import delay_steps
        from neurocc.ir.nodes import Delay

        if len(outs) != 1 or outs[0].delay != 1 or not isinstance(self.g.nodes[syn], QDense):
            return None, None
        via = outs[0].dst
        node = self.g.nodes[via]
        after = self.g.out_edges(via)
        if not isinstance(node, Delay) or len(after) != 1 or after[0].delay != 0 or len(self.g.in_edges(via)) != 1:
            return None, None
        self.seen.add(via)
        return delay_steps(node.delay, self.g.dt).reshape(-1), via

    def _conv(self, syn: str, node: QConv2d, delay: int) -> dict[str, Any]:
        if delay != 1:
            self.problem(syn, f"delay {delay} to its neuron; netx convolutions have no delay (only 1 step)")
        if node.weight_exp != 0:
            self.problem(syn, f"weight_exp={node.weight_exp}: Lava's Conv ignores weight_exp")
        if node.bias.size and np.any(node.bias != 0):
            self.problem(syn, "has a bias; move it to the neuron (netx conv bias is the neuron's bias_mant)")
        if len(self.shapes[self.g.predecessors(syn)[0]]) != 3:
            self.problem(syn, "netx convolutions read a (C, H, W) layer")
        w = np.asarray(node.weight, np.int64)
        if w.size and np.abs(w).max() >= 1 << 24:
            self.problem(syn, "weights beyond 2**24 are not exact in the file's float32")
        return {"weight": w, "stride": np.asarray(node.stride, np.int64),
                "padding": np.asarray(node.padding, np.int64), "dilation": np.asarray(node.dilation, np.int64),
                "groups": int(node.groups)}

    def _dense(self, syn: str, node: QDense, delay: int, rec: str | None, neuron: str
               ) -> tuple[dict[str, Any], str]:
        want, why = graph_dense_values(node)
        if want is None:
            self.problem(syn, why)
        data: dict[str, Any] = {"weight": want if want is not None else np.asarray(node.weight, np.int64)}
        want_rec = None
        if rec is not None:
            rnode = self.g.nodes[rec]
            want_rec, why = graph_dense_values(rnode)
            if want_rec is None:
                self.problem(rec, why)
            else:
                data["weight_rec"] = want_rec
            if delay != 1 or self._edge(rec, neuron) != 1 or self._edge(neuron, rec) != 0:
                self.problem(rec, "netx's dense_rec needs delay 1 on both synapses (its delayed variant "
                                  "drops the weight exponent)")
        if not 1 <= delay <= MAX_DELAY + 1:
            self.problem(syn, f"delay {delay}: netx holds delays 1..{MAX_DELAY + 1} (DelayDense 0..{MAX_DELAY})")
        elif delay > 1:
            data["delay"] = np.full(node.weight.shape[0], delay - 1, np.int64)
        if want is not None and (rec is None or want_rec is not None):
            data["_info"] = self._check_weights(syn, rec, want, want_rec)
        return data, "dense" if rec is None else "dense_rec"

    def _check_weights(self, syn: str, rec: str | None, want: np.ndarray, want_rec: np.ndarray | None
                       ) -> dict[str, Any]:
        effect = netx_dense_effect(want, want_rec)
        if effect is None:
            self.problem(syn, "all weights are zero: netx's optimize_weight_bits divides by the largest "
                              "weight and crashes")
            return {}
        eff, eff_rec, exp = effect
        for name, e, w in ((syn, eff, want), (rec, eff_rec, want_rec)):
            if name is not None and not same_values(e, exp, w):
                bad = int(np.count_nonzero((e.astype(np.int64) << max(exp, 0)) != (w.astype(np.int64) << max(-exp, 0))))
                self.problem(name, f"{bad} of {w.size} weights would change: netx re-quantizes values in "
                                   f"[{w.min()}, {w.max()}] to something else (safe: mixed signs within "
                                   "[-256, 254], all >= 0 up to 255, all < 0 down to -255)")
        both = want if want_rec is None else np.hstack([want, want_rec])
        return {"netx_weight_exp": exp, "weight_range": [int(both.min()), int(both.max())]}

    def _neuron(self, name: str) -> tuple[dict[str, Any], np.ndarray | None]:
        """The ``neuron/`` group of ``name`` and its bias in weight units (None: not exact)."""
        node = self.g.nodes[name]
        shape = tuple(self.shapes[name])
        if isinstance(node, QSigmaDelta):
            group, bias, probs = sdnn_group(node, shape, input_layer=self.blocks == 0 and not self.layers)
            for p in probs:
                self.problem(name, p)
            return group, bias
        one = {}
        keys = {"du": node.du, "dv": node.dv, **({"vth": node.vth} if isinstance(node, QLIF) else {})}
        for key, arr in keys.items():
            a = np.broadcast_to(np.asarray(arr, np.int64), shape)
            if a.size and np.any(a != a.flat[0]):
                self.problem(name, f"per-neuron {key} values differ; netx holds one {key} per layer")
            one[key] = int(a.flat[0]) if a.size else 0
        vth = one.get("vth", NEVER_FIRES)
        if isinstance(node, QLIF):
            if (node.reset != ResetMode.ZERO or node.refractory or node.reset_timing.value != "after_spike"
                    or node.fire_at_threshold):
                self.problem(name, "netx's CUBA neuron resets v to 0 right after v > vth and has no refractory "
                                   "period")
            if node.multi_spike:
                self.problem(name, "multi_spike (Sinabs MultiSpike): netx's CUBA neuron sends one binary spike, "
                                   "not a spike count")
            if not 0 <= vth <= NEVER_FIRES:
                self.problem(name, f"vth={vth} is outside Loihi's 17-bit threshold mantissa")
        if node.reset_interval:
            self.problem(name, "reset_interval is a netx Network argument, not part of the file")
        if getattr(node, "bias_u", None) is not None:
            self.problem(name, "bias_u (a bias on the current, snnTorch Synaptic): netx's CUBA neuron biases v "
                               "only (--bias-from-step-zero does not change this)")
        if node.bias_start:
            self.problem(name, f"{BIAS_START_PROBLEM} {node.bias_start}, with its Dense-delayed input; "
                               "netx's CUBA neuron adds the bias from step 0 (--bias-from-step-zero)")
        if not (-1 <= one["du"] <= 4095 and 0 <= one["dv"] <= 4096):
            self.problem(name, f"du={one['du']}, dv={one['dv']} outside netx's iDecay/vDecay 0..4096")
        group = {"type": "CUBA", "iDecay": one["du"] + 1, "vDecay": one["dv"], "vThMant": vth,
                 "refDelay": 1, "gradedSpike": 0}
        return group, self._bias(name, node, shape)

    def _bias(self, name: str, node: QLIF | QLI, shape: tuple[int, ...]) -> np.ndarray | None:
        b = bias_value(np.broadcast_to(node.bias_mant, shape), np.broadcast_to(node.bias_exp, shape))
        b = np.asarray(b, np.int64)
        if np.any(b % (1 << BIAS_EXP)):
            self.problem(name, f"bias (bias_mant << bias_exp) is not a multiple of {1 << BIAS_EXP}: netx "
                               f"writes bias_mant with bias_exp={BIAS_EXP}")
            return None
        q = b >> BIAS_EXP
        lo, hi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
        if q.size and (q.min() < lo or q.max() > hi):
            self.problem(name, f"bias / 64 in [{q.min()}, {q.max()}] exceeds Loihi's {BIAS_BITS}-bit mantissa")
            return None
        return q

    def _layer_bias(self, q: np.ndarray, kind: str) -> np.ndarray:
        """Dense: (out,). Conv: (C,) when uniform per channel, else the whole (W, H, C) array."""
        if kind != "conv":
            return q.reshape(-1)
        per_channel = q.reshape(q.shape[0], -1)
        if np.all(per_channel == per_channel[:, :1]):
            return per_channel[:, 0].copy()
        return np.ascontiguousarray(q.transpose(2, 1, 0))


def _default_li(group: Mapping[str, Any]) -> bool:
    """netx's neuron-less dense layer: iDecay 0 (du = −1), vDecay 4096, vThMant 2**17."""
    return group["iDecay"] == 0 and group["vDecay"] == 4096 and group["vThMant"] == NEVER_FIRES


def layer_table(plan: NetxPlan) -> list[dict[str, Any]]:
    """Per layer: index, type, shape (PyTorch order), Lava shape, nodes, neuron group, weight notes."""
    return [{"index": lay.index, "type": lay.type, "shape": list(lay.shape), "lava_shape": list(lava_shape(lay.shape)),
             "nodes": list(lay.nodes), "block": lay.block, "neuron": dict(lay.neuron) if lay.neuron else None,
             **dict(lay.info)} for lay in plan.layers]
