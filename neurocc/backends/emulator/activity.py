"""Per-layer activity of a sigma-delta network, measured on the emulator's run of the integer graph.

For every :class:`~neurocc.ir.qnodes_sdn.QSigmaDelta` node (Delta input, SigmaDelta, Sigma
read-out) the run records the graded messages it sends (the node's output, int payloads) and
summarises them per layer (:func:`sigma_delta_activity`)::

    messages            number of non-zero payloads sent, over all steps and samples
    messages_per_sample messages / samples
    mean_abs_payload    mean |payload| over the messages sent (payload units: act >> state_exp)
    max_abs_payload     the largest |payload| sent (a target carries ``limits.message_bits``-bit payloads)
    silent_per_step     per step, the fraction of the layer's neurons that sent nothing (mean over samples)
    silent_fraction     the same over all steps
    neurons, vth        the layer's size and its threshold (state units; one value when uniform)

A Sigma read-out sends its accumulated value every step (it is not delta-coded); its row is kept
for completeness. The record is plain JSON-able data (lists and numbers) so that reports and
metrics can use it without running anything again.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Output

PROBE = "__activity__"


def sd_layers(graph: Graph) -> list[str]:
    """The graph's sigma-delta nodes, in order."""
    return [n for n in graph.order() if graph.nodes[n].kind == "QSigmaDelta"]


def probed(graph: Graph, layers: list[str]) -> Graph:
    """``graph`` with one extra Output per layer in ``layers`` (named ``__activity__<layer>``)."""
    shapes = graph.shapes()
    nodes = dict(graph.nodes)
    edges = list(graph.edges)
    for n in layers:
        nodes[PROBE + n] = Output(shape=shapes[n])
        edges.append(Edge(n, PROBE + n, 0))
    return graph.replace(nodes=nodes, edges=tuple(edges))


def summarise(graph: Graph, payloads: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The per-layer record (module docstring) from each layer's payloads (steps, batch, *shape)."""
    layers: dict[str, Any] = {}
    for name, p in payloads.items():
        node = graph.nodes[name]
        p = np.asarray(p, np.int64)
        steps, batch = p.shape[:2]
        flat = p.reshape(steps, batch, -1)
        sent = flat != 0
        n_msg = int(sent.sum())
        vth = np.asarray(node.vth, np.int64)
        layers[name] = {
            "mode": node.mode, "neurons": int(flat.shape[2]),
            "vth": int(vth.flat[0]) if vth.size and np.all(vth == vth.flat[0]) else vth.tolist(),
            "state_exp": int(node.state_exp), "messages": n_msg,
            "messages_per_sample": n_msg / max(batch, 1),
            "mean_abs_payload": float(np.abs(flat[sent]).mean()) if n_msg else 0.0,
            "max_abs_payload": int(np.abs(flat).max()) if flat.size else 0,
            "silent_per_step": [float(x) for x in 1.0 - sent.mean((1, 2))],
            "silent_fraction": float(1.0 - sent.mean()) if sent.size else 1.0,
        }
    return layers


def sigma_delta_activity(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None
                         ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run ``graph`` on the emulator with every sigma-delta layer probed: (the graph's own outputs,
    ``{"steps", "samples", "layers": {layer: record}}``). ``inputs`` are time-major integer arrays
    as for :func:`neurocc.backends.emulator.simulate`."""
    from neurocc.backends.emulator import simulate

    layers = sd_layers(graph)
    res = simulate(probed(graph, layers), inputs, steps=steps)
    outs = {k: v for k, v in res.outputs.items() if not k.startswith(PROBE)}
    payloads = {n: res.outputs[PROBE + n] for n in layers}
    first = next(iter(payloads.values())) if payloads else next(iter(outs.values()))
    return outs, {"steps": int(first.shape[0]), "samples": int(first.shape[1]),
                  "layers": summarise(graph, payloads)}


__all__ = ["sd_layers", "sigma_delta_activity", "summarise"]
