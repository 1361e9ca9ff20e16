"""Run an imported lava-dl netx file itself in Lava (``netx.hdf5.Network``), read out as the
emulator reads the graph :func:`neurocc.compiler.frontends.netx.read_netx` made from it.

Pure planning here (no Lava): which port the input drives (block 0's neuron ``a_in`` when the
input layer has a neuron, else block 0's synapse ``s_in``), which block each neuron node is
(netx's ``Network.layers`` index: input-with-neuron, conv, pool, dense, dense_rec in file
order), and what to probe (``s`` on ``s_out`` for spiking and sigma-delta neurons, ``v`` for a
read-out ``QLI``; with ``record`` every block's state variables). Feeds and read-outs carry no
shift: neurocc step k is Lava step k + 1 and Lava's sink column k, so arrays agree index for
index (docs/frontends.md, "Step alignment").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph

from .netx import NetxPlan
from .netx_run import NetxJob, run_netx_many
from .plan import Feed, Readout

NEURON_KINDS = ("QLIF", "QLI", "QSigmaDelta")
STATE = {"QLIF": ("u", "v"), "QLI": ("u", "v"), "sigma_delta": ("sigma",), "sigma": ("sigma",), "delta": ("act",)}


def imported_plan(graph: Graph) -> NetxPlan:
    """The feed and read-outs of a graph read from a netx file (BackendError when it is not one)."""
    blocks = [n for n, node in graph.nodes.items() if node.kind in NEURON_KINDS]
    problems = [f"node '{n}' ({node.kind}) is not part of a netx block" for n, node in graph.nodes.items()
                if node.kind not in NEURON_KINDS + ("Input", "Output", "Flatten", "QDense", "QConv2d", "Delay")]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1 or not blocks:
        problems.append("a netx network has one input, one output and at least one neuron block")
    if problems:
        raise BackendError(f"graph '{graph.name}' was not read from a netx file", where="backend 'loihi' (netx)",
                           problems=problems, fix="run it with `neurocc run --backend loihi` (Lava processes)")
    inp, out = graph.inputs[0], graph.outputs[0]
    shapes = graph.shapes()
    feed_at = inp
    while graph.nodes[graph.successors(feed_at)[0]].kind == "Flatten":   # netx flattens inside the port
        feed_at = graph.successors(feed_at)[0]
    first = graph.nodes[graph.successors(feed_at)[0]]
    port = "neuron" if first.kind in NEURON_KINDS else "synapse"
    last = graph.predecessors(out)[0]
    if last not in blocks:
        raise BackendError(f"the output of graph '{graph.name}' comes from '{last}' ({graph.nodes[last].kind}), "
                           "which netx does not build (SLAYER's average read-out)", where="backend 'loihi' (netx)",
                           fix="read the file with read_netx(path, num_layers=N) to stop before that layer")
    var = "v" if graph.nodes[last].kind == "QLI" else "s"
    readouts = [Readout(out, str(blocks.index(last)), var, tuple(shapes[out]))]
    for j, n in enumerate(blocks):
        node = graph.nodes[n]
        readouts += [Readout(f"{n}/{v}", str(j), v, tuple(shapes[n])) for v in STATE[getattr(node, "mode", node.kind)]]
        readouts.append(Readout(f"{n}/out", str(j), "v" if node.kind == "QLI" else "s", tuple(shapes[n])))
    graded = bool(getattr(first, "graded", False))
    return NetxPlan(graph.name, (), (Feed("input", inp, 0, tuple(shapes[feed_at])),), port, 16 if graded else 0,
                    tuple(readouts), ())


def run_netx_file(net_file: str | Path, graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None,
                  record: bool = False, *, timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """Load ``net_file`` (the file ``graph`` was read from) with lava-dl netx in the worker and run
    it in Lava ``fixed_pt``; results keyed and laid out as :func:`neurocc.backends.emulator.simulate`'s
    (outputs; with ``record`` also ``<node>/out`` and the state variables). netx's defaults apply
    (spike_exp 6), and the graph's periodic reset (read_netx's ``reset_interval``/``reset_offset``)."""
    return run_netx_many([imported_job(net_file, graph, inputs, steps, record)], timeout_s=timeout_s)[0]


def imported_job(net_file: str | Path, graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None,
                 record: bool = False) -> NetxJob:
    """A :class:`NetxJob` for the file ``graph`` was read from (netx reads as many layers as the graph has)."""
    layers = [int(m.group(1)) for n in graph.nodes if (m := re.fullmatch(r"layer(\d+)(_.*)?", n))]
    blocks = [node for node in graph.nodes.values() if node.kind in NEURON_KINDS]
    interval = next((int(b.reset_interval) for b in blocks if getattr(b, "reset_interval", 0)), None)
    chip = [n for n, node in graph.nodes.items() if getattr(node, "reset_schedule", "lava") != "lava"]
    if chip:
        raise BackendError(f"--reset-schedule chip (node(s) {', '.join(repr(n) for n in chip)}) cannot run in Lava: "
                           "netx's LIFReset resets every reset_interval steps", where=f"graph '{graph.name}'",
                           fix="run it on the emulator or edge-cpu, or read the file with reset_schedule='lava'")
    offset = 0   # read_netx stores block j's offset as reset_offset + 1 + j
    if interval:
        offset = next(int(b.reset_offset) - 1 - j for j, b in enumerate(blocks) if getattr(b, "reset_interval", 0))
    return NetxJob(graph, inputs, steps, record, Path(net_file), imported_plan(graph),
                   num_layers=max(layers) + 1 if layers else None, reset_interval=interval, reset_offset=offset)
