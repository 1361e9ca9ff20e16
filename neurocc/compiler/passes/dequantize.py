"""``loihi`` integer graph → the float graph (NIR semantics, Euler at the graph's dt) it stands for.

Used for models that arrive quantized (lava-dl netx files): it gives them a float reference,
a NIR export and a way to the other chips' quantizers. Units: one weight LSB = 1.0, state
registers divided by 2**6 (so thresholds are vThMant). Per neuron, with
α_u = (4095 − du)/4096 and α_v = (4096 − dv)/4096 (Loihi's decays)::

    QLIF / QLI → CubaLIF / CubaLI:  tau_syn = dt/(1 − α_u), tau_mem = dt/(1 − α_v),
                 w_in = tau_syn/dt, r = tau_mem/dt (Euler gains 1), v_leak = (bias/64)·tau_mem/dt,
                 v_threshold = vth, reset to 0
    QDense → Linear(W'·2**weight_exp)   QConv2d → Conv2d(W)   Delay, Flatten, Input, Output: kept

so the float reference computes u ← α_u·u + x, v ← α_v·v + u + b without Loihi's truncation and
wraps. Synapse → neuron edges lose the one step of Lava's Dense/Conv (the loihi quantizer writes
it back; the NIR graph has no edge delays), longer edge delays become Delay nodes.

A graph with plastic synapses (``QPlasticDense`` → :class:`~neurocc.ir.qnodes_plastic.PlasticDense`,
the rule's float reference) keeps every edge delay instead: learning pairs a synapse's input
spikes with its post neurons' spikes of the same step, and its recurrent loops (inhibition, the
plastic recurrence) run on Loihi's timeline, so dropping a step would change what is learned, not
only shift it. Such a float graph is a reference only (NIR has no plasticity). Refused, all
listed: α = 1 (du = −1 or dv = 0: no finite time constant), sigma-delta neurons (no float/NIR
neuron of that kind), netx's periodic reset, the SLAYER average read-out into the output.
"""
from __future__ import annotations

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Conv2d, CubaLI, CubaLIF, Delay, Linear, Node
from neurocc.ir.numerics.core import lava_dense_weights


def dequantize(graph: Graph) -> Graph:
    """The float graph of a ``loihi`` graph (CompileError listing everything it cannot express)."""
    if graph.numerics != "loihi":
        raise CompileError(f"dequantize reads loihi graphs, not {graph.numerics or 'float'} ones",
                           where=f"graph '{graph.name}'", fix="pass a graph read from a netx file")
    dt = float(graph.dt or 1e-3)
    problems: list[str] = []
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        nodes[name] = _node(name, node, dt, problems)
    edges: list[Edge] = []
    plastic = any(getattr(n, "plastic", False) for n in graph.nodes.values())
    for e in () if plastic else graph.edges:
        src = graph.nodes[e.src]
        cycle = e.dst in graph.predecessors(e.src)
        if e.delay >= 1 and src.kind in ("QDense", "QConv2d") and not cycle:
            if e.delay > 1:
                d = f"{e.src}_delay"
                shape = graph.shapes()[e.src]
                nodes[d] = Delay(delay=np.full(shape, (e.delay - 1) * dt))
                edges += [Edge(e.src, d, 0), Edge(d, e.dst, 0)]
                continue
            edges.append(Edge(e.src, e.dst, 0))
        else:
            edges.append(e)
    if problems:
        raise CompileError(f"graph '{graph.name}' has no float (NIR) form ({len(problems)} problem(s))",
                           where=f"graph '{graph.name}'", problems=problems,
                           fix="run it on a loihi-numerics target (emulator, loihi2) or on edge-cpu, which run "
                               "the integers exactly")
    return Graph(nodes, tuple(graph.edges if plastic else edges), dt=dt, method="euler", name=graph.name).verify()


def _node(name: str, node: Node, dt: float, problems: list[str]) -> Node:
    kind = node.kind
    if kind == "QDense":
        w = lava_dense_weights(node.weight, node.num_weight_bits).astype(np.float64) * 2.0 ** node.weight_exp
        return Linear(weight=w)
    if kind == "QConv2d":
        return Conv2d(weight=np.asarray(node.weight, np.float64), bias=np.zeros(node.weight.shape[0]),
                      stride=node.stride, padding=node.padding, dilation=node.dilation, groups=node.groups,
                      input_shape=node.input_shape)
    if kind == "QPlasticDense":
        from neurocc.ir.qnodes_plastic import PlasticDense

        return PlasticDense(**{**node.params(), "weight": np.asarray(node.weight, np.float64)})
    if kind in ("QLIF", "QLI"):
        return _neuron(name, node, dt, problems) or node
    if kind == "QSigmaDelta":
        problems.append(f"node '{name}' (QSigmaDelta): sigma-delta neurons (graded spikes) have no float/NIR "
                        "neuron kind and no SpiNNaker model")
    elif node.quantized:
        problems.append(f"node '{name}' ({kind}) has no float form")
    return node


def _neuron(name: str, node: Node, dt: float, problems: list[str]) -> Node | None:
    au = (4095 - np.asarray(node.du, np.float64)) / 4096
    av = (4096 - np.asarray(node.dv, np.float64)) / 4096
    bad = [f"{k} has α = 1 (no decay) for {int(np.sum(a >= 1))} neurons: no finite time constant"
           for k, a in (("du", au), ("dv", av)) if np.any(a >= 1)]
    if node.reset_interval:
        bad.append(f"reset_interval={node.reset_interval} (netx's periodic reset, --reset-interval) has no "
                   "float/NIR form")
    if getattr(node, "bias_u", None) is not None:
        bad.append("bias_u (a bias on the current) has no NIR CubaLIF form (NIR biases the membrane)")
    if getattr(node, "bias_start", 0):
        bad.append(f"bias_start={node.bias_start} (the bias waits for the layer's delayed input) has no float/NIR form")
    if bad:
        problems += [f"node '{name}' ({node.kind}): {b}" for b in bad]
        return None
    tau_syn, tau_mem = dt / (1 - au), dt / (1 - av)
    bias = np.asarray(node.bias_mant, np.float64) * 2.0 ** np.asarray(node.bias_exp, np.float64) / 64
    common = dict(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=bias * tau_mem / dt, w_in=tau_syn / dt)
    if node.kind == "QLI":
        return CubaLI(**common)
    return CubaLIF(**common, v_threshold=np.asarray(node.vth, np.float64), v_reset=np.zeros(au.shape))
