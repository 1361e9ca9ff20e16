"""The "likely cause" of a float backend missing its cosine rule (``validate``'s table).

A float backend (``spinnaker`` on NEST/brian2, ``edge-cpu-f32``) is judged against the float
``reference`` by mean-activity cosine, so no element-wise class (overflow, rounding) applies.
:func:`likely_cause` names what is known to make such a run differ, most specific first:

* **recurrent timing** (``spinnaker``): NEST and brian2 add an arriving spike to the synaptic
  current after that step's V update, so a spike reaches its target one step later than on
  SpiNNaker; feed-forward layers absorb it in their read-back latency, a recurrent loop cannot:
  each pass round a loop with fewer delay steps than projections + 1 takes one step more. The
  chip (and so the ``emulator`` row) runs the loop in time; the float simulator cannot;
* **first-step burst**: the layer that diverges first fires far more spikes at its first step
  than the reference (a bias or rest potential integrated before the first input arrives);
* otherwise the layer with the lowest cosine and its firing rates, judged and reference.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph

BURST_FACTOR = 2.0   # first-step spikes at least this many times the reference's count as a burst


def loops(graph: Graph) -> list[tuple[str, str, int, list[str]]]:
    """(src, dst, delay, nodes on the loop) of each recurrent edge."""
    out = []
    for e in graph.recurrent_edges():
        fwd = _reach(graph, e.dst, forward=True)
        back = _reach(graph, e.src, forward=False)
        out.append((e.src, e.dst, e.delay, sorted(fwd & back)))
    return out


def _reach(graph: Graph, start: str, forward: bool) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        n = todo.pop()
        nxt = graph.successors(n) if forward else graph.predecessors(n)
        for m in nxt:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def likely_cause(graph: Graph, backend: str, result: Mapping[str, Any],
                 expected: Mapping[str, np.ndarray] | None = None,
                 got: Mapping[str, np.ndarray] | None = None) -> tuple[str, str] | None:
    """(class, one-sentence explanation) for a failed float-backend result, or None."""
    fd = result.get("first_divergence") or {}
    node = fd.get("node")
    if backend == "spinnaker":
        for src, dst, delay, members in loops(graph):
            spiking = [m for m in members if graph.nodes[m].spiking]
            if spiking:
                return "timing", (f"recurrent loop {src} -> {dst} (delay {delay}, through {', '.join(spiking)}): "
                                  "NEST and brian2 add an arriving spike to the current after the step's V update, "
                                  "so every pass round the loop takes one step more than on SpiNNaker (PyNN's minimum "
                                  "delay is one step); the chip's arithmetic (the emulator row) keeps the loop in "
                                  "time. "
                                  "A limit of the float simulator, not of the compiled network: judge the loop by the "
                                  "emulator row")
    if node and expected is not None and got is not None:
        burst = _burst(node, expected, got)
        if burst:
            return "timing", burst
    rates = result.get("rate_per_layer") or {}
    per = result.get("cosine_per_layer") or {}
    if per:
        worst = min(per, key=per.get)
        r = rates.get(worst, [None, None])
        more = "" if not r[0] else f" ({(r[1] / r[0] - 1) * 100:+.1f}% spikes)"
        return "activity", (f"layer '{worst}' agrees least: cosine {per[worst]:.4f}, rate {r[0]:.4g} in the reference "
                            f"vs {r[1]:.4g} here{more}; its first differing spike is the first divergence above")
    return None


def _burst(node: str, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> str | None:
    """A first-step burst of ``node`` (spikes at the layer's first active step vs the reference)."""
    keys = [k for k in (f"{node}/out", node) if k in expected and k in got]
    if not keys:
        return None
    e = np.asarray(expected[keys[0]], np.float64)
    g = np.asarray(got[keys[0]], np.float64)
    steps = np.flatnonzero(g.reshape(len(g), -1).sum(1))
    if not len(steps):
        return None
    t = int(steps[0])
    ge, ee = g[t].sum(), e[t].sum() if t < len(e) else 0.0
    if ge >= BURST_FACTOR * max(ee, 1.0):
        return (f"'{node}' fires {int(ge)} spikes at its first active step {t} against {int(ee)} in the reference: "
                "a drive (bias, rest potential) integrated before the first input arrives")
    return None
