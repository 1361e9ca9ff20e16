"""Running the ANN and its conversion on calibration data (:mod:`.convert`): the ANN forward pass
through the shared reference simulator (:func:`ann_forward`, one step with static input), the
robust maximum ``λ`` of a layer's activations (:func:`robust_max`), and the converted SNN's
accuracy/latency table (:func:`measure_tradeoff`).
"""
from __future__ import annotations

import numpy as np

from neurocc.compiler.passes.convert_report import TradeoffRow
from neurocc.compiler.passes.normalize import normalize
from neurocc.ir.encoding import Encoding, encode
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Output

SWEEP = (8, 16, 32, 64, 128)


def ann_forward(graph: Graph, x: np.ndarray, probes: list[str], batch_size: int = 256) -> dict[str, np.ndarray]:
    """The ANN's output at each node in ``probes`` (batch, *shape), via the shared reference
    simulator (one step with static input is the ANN forward pass)."""
    from neurocc.backends.emulator import simulate

    nodes, edges = dict(graph.nodes), list(graph.edges)
    shapes = graph.shapes()
    for p in probes:
        if not isinstance(graph.nodes[p], Output):
            nodes[f"__probe__{p}"] = Output(shape=shapes[p])
            edges.append(Edge(p, f"__probe__{p}"))
    probe_graph = graph.replace(nodes=nodes, edges=tuple(edges))
    (inp,) = graph.inputs
    parts: dict[str, list[np.ndarray]] = {p: [] for p in probes}
    for i in range(0, len(x), batch_size):
        out = simulate(probe_graph, {inp: x[None, i:i + batch_size]}, steps=1).outputs
        for p in probes:
            parts[p].append(np.asarray(out[p if p in graph.outputs else f"__probe__{p}"][0]))
    return {p: np.concatenate(v) for p, v in parts.items()}


def robust_max(act: np.ndarray, percentile: float, per_channel: bool, absolute: bool = False) -> np.ndarray:
    """λ: the ``percentile`` of the positive (or, with ``absolute``, non-zero |·|) activations in
    ``act`` (batch, C, ...); shape (C,) per channel, else (1,). 1.0 where nothing is positive."""
    a = np.abs(act) if absolute else act
    cols = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1) if per_channel else a.reshape(1, -1)
    lam = np.ones(cols.shape[0])
    for c, col in enumerate(cols):
        pos = col[col > 0]
        if pos.size:
            lam[c] = max(float(np.percentile(pos, percentile)), 1e-12)
    return lam


def measure_tradeoff(snn: Graph, x: np.ndarray, *, encoding: Encoding, steps: tuple[int, ...] = SWEEP,
                     y: np.ndarray | None = None, ann: Graph | None = None
                     ) -> tuple[tuple[TradeoffRow, ...], float | None]:
    """Accuracy of the float SNN ``snn`` at each of ``steps`` on static inputs ``x``.

    One reference simulation of max(steps) steps; each shorter T is read from the same run
    (constant inputs, and Poisson draws fill time first, so a prefix is the T-step run).
    ``agreement`` is the fraction of samples classified as the ANN ``ann`` classifies them (None
    without ``ann``); ``accuracy`` needs labels ``y``. Returns (rows, ANN accuracy or None).
    """
    from neurocc.backends.emulator import simulate
    from neurocc.ir.encoding import decode

    steps = tuple(sorted({int(t) for t in steps}))
    out = snn.outputs[0]
    ann_pred = None
    if ann is not None:
        g = normalize(ann)
        ann_pred = ann_forward(g, x, [g.outputs[0]])[g.outputs[0]].reshape(len(x), -1).argmax(1)
    spiking = any(snn.nodes[p].spiking for p in snn.predecessors(out))
    (inp,) = snn.inputs
    preds: dict[int, list[np.ndarray]] = {t: [] for t in steps}
    for i in range(0, len(x), 256):
        xs = encode(x[i:i + 256], encoding, steps[-1], first_index=i)
        ys = np.asarray(simulate(snn, {inp: xs}, steps=steps[-1]).outputs[out])
        for t in steps:
            preds[t].append(decode(ys[:t], spiking=spiking, timesteps=t).argmax(1))
    rows = []
    for t in steps:
        p = np.concatenate(preds[t])
        agree = float(np.mean(p == ann_pred)) if ann_pred is not None else None
        rows.append(TradeoffRow(t, agree, None if y is None else float(np.mean(p == np.asarray(y)))))
    ann_acc = None if (y is None or ann_pred is None) else float(np.mean(ann_pred == np.asarray(y)))
    return tuple(rows), ann_acc
