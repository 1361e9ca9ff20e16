"""Walk a quantized ``loihi`` graph as netx's chain of blocks and build its :class:`.NetxPlan`.

From the single ``Input`` along the one chain of consumers: an input neuron (an edge of delay 0
from the Input) becomes netx's ``input`` block; each synapse (``QDense``/``QConv2d``, perhaps
with a per-neuron ``Delay`` after a dense, and a recurrent ``QDense`` as ``dense_rec``) plus its
neuron population becomes one block; a ``Flatten`` of (C, H, W) a ``flatten`` layer. Readouts are
each Output's layer neuron (``s``, or ``v`` for QLI) and every block's state. What a layer's
datasets and neuron group hold is checked by :mod:`.netx_exact`; every problem on the way
(branches, merges, layers netx lacks) is collected, none raised.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense
from neurocc.ir.qnodes_sdn import QSigmaDelta

from .netx_exact import (
    MAX_DELAY,
    conv_data,
    default_li,
    dense_data,
    edge_delay,
    layer_bias,
    neuron_group,
)
from .netx_layers import NetxLayer, NetxPlan
from .netx_sdnn import STATE as SDNN_STATE
from .plan import Feed, Readout

NEURONS = (QLIF, QLI, QSigmaDelta)
GRADED_BITS = 24


def plan_netx(graph: Graph) -> NetxPlan:
    """Walk the graph as netx's chain; collect layers, readouts and every problem at once."""
    return _Planner(graph).run()


class _Planner:
    """One walk over one graph: the layers found so far, the nodes seen, the problems."""

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
        return edge_delay(self.g, src, dst)

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
            data, kind = conv_data(self.g, self.shapes, syn, node, delay, self.problem), "conv"
        else:
            data, kind = dense_data(self.g, syn, node, delay, rec[0] if rec else None, neuron, self.problem)
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
            data["bias"] = layer_bias(bias, kind)
        if isinstance(self.g.nodes[neuron], QLI) and default_li(group) and "bias" not in data:
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

    def _neuron(self, name: str) -> tuple[dict[str, Any], np.ndarray | None]:
        """The ``neuron/`` group of ``name`` and its bias in weight units (None: not exact)."""
        return neuron_group(name, self.g.nodes[name], tuple(self.shapes[name]),
                            self.blocks == 0 and not self.layers, self.problem)
