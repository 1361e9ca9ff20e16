"""Emulator-in-the-loop quantization diagnostics: the integer network against its float reference.

After quantizing, :func:`diagnose` runs the bit-accurate emulator (integer graph) and the float
reference (the discretised float graph) on the same calibration inputs and reports, per neuron
layer (one row of :meth:`QuantDiagnostics.table`):

* ``rate_float``, ``rate_quant``: spikes per neuron per step over the T-step window; the
  integer graph's pipeline latency (one step per synapse under Loihi numerics, ``lag``) is
  compensated: float step t is compared with integer step t + lag of that layer;
* ``drift``: ``rate_quant / rate_float − 1``;
* ``silent``: neurons that fire in float but never after quantization; ``saturated``: neurons
  that fire at every step quantized but not in float;
* ``cosine``: cosine similarity of per-(sample, neuron) spike counts (of the window-mean
  membrane for non-spiking layers such as an integrator readout);
* ``events``: the emulator's wrap and saturation counts of the layer and its synapses
  (``u_wrap``, ``v_saturate``, ``acc_wrap``, ...), and for non-spiking layers ``v_range``, the
  largest |v| as a fraction of the 24-bit register.

Outputs: classification agreement between the two (argmax of the decoded first output), the
output cosine, accuracies when labels are given, and agreement with/accuracy of a reference
prediction (the float ANN for converted models).

A layer that fires in float but not at all quantized is a **failure** named with its cause
(:func:`explain_silence`): weights that round to zero, a threshold the input cannot reach
(membrane peak vs threshold), overflow events, or a silent input layer upstream.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurocc.compiler.calibrate import Calibration, chunk_samples, float_inputs
from neurocc.ir.discrete import NEURON_TYPES
from neurocc.ir.graph import Graph

ZERO_WEIGHTS_FAILURE = 0.5     # "weights rounded to zero" names a synapse losing this fraction


@dataclass(frozen=True)
class LayerDiag:
    """One neuron layer: float vs integer activity (see the module docstring)."""

    layer: str
    kind: str
    neurons: int
    lag: int
    spiking: bool
    spikes_float: int
    spikes_quant: int
    rate_float: float
    rate_quant: float
    drift: float | None
    silent: int
    saturated: int
    cosine: float
    events: dict[str, int] = field(default_factory=dict)
    v_range: float | None = None
    v_peak_threshold: float | None = None    # spiking: largest integer v / its threshold (vth << 6)


@dataclass(frozen=True)
class QuantDiagnostics:
    """Result of :func:`diagnose`; ``to_dict()`` is JSON-ready."""

    samples: int
    timesteps: int
    layers: tuple[LayerDiag, ...]
    agreement: float
    output_cosine: float
    accuracy_float: float | None
    accuracy_quant: float | None
    reference_agreement: float | None
    reference_accuracy: float | None
    failures: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def loss_points(self) -> tuple[float, str]:
        """(accuracy points lost against the float model, what was measured): with labels,
        reference (ANN) or float-SNN accuracy minus the emulator's; without, 100 · (1 −
        agreement) with the reference prediction (or with the float SNN)."""
        ref_acc = self.reference_accuracy if self.reference_accuracy is not None else self.accuracy_float
        if self.accuracy_quant is not None and ref_acc is not None:
            return 100.0 * (ref_acc - self.accuracy_quant), "accuracy"
        agree = self.reference_agreement if self.reference_agreement is not None else self.agreement
        return 100.0 * (1.0 - agree), "agreement"

    def table(self) -> str:
        return format_diagnostics(self)


def delays(graph: Graph) -> dict[str, int]:
    """Longest total edge delay from an Input to each node (recurrent edges excluded)."""
    recurrent = set(graph.recurrent_edges())
    edges = [e for e in graph.edges if e not in recurrent]
    best = {n: 0 for n in graph.inputs}
    for _ in range(len(graph.nodes)):       # longest paths in a DAG: relax until nothing changes
        changed = False
        for e in edges:
            if e.src in best and best[e.src] + e.delay > best.get(e.dst, -1):
                best[e.dst] = best[e.src] + e.delay
                changed = True
        if not changed:
            break
    return best


def _quant_inputs(inputs: Mapping[str, np.ndarray], scales: Mapping[str, float]) -> dict[str, np.ndarray]:
    from neurocc.ir.numerics.core import round_to_int

    return {k: (round_to_int(v * scales[k]).astype(np.int32) if scales.get(k) else v) for k, v in inputs.items()}


def _neurons(fg: Graph, qg: Graph) -> list[str]:
    return [n for n in fg.order() if isinstance(fg.nodes[n], NEURON_TYPES) and n in qg.nodes]


class _Acc:
    """Per-layer sums over chunks of samples."""

    def __init__(self, fg: Graph, qg: Graph) -> None:
        self.names = _neurons(fg, qg)
        self.cf: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self.cq: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self.vq: dict[str, float] = {n: 0.0 for n in self.names}
        self.vpeak: dict[str, np.ndarray | None] = {n: None for n in self.names}
        self.events: dict[str, dict[str, int]] = {}
        self.out_f: list[np.ndarray] = []
        self.out_q: list[np.ndarray] = []


def diagnose(float_graph: Graph, qgraph: Graph, cal: Calibration, *, encoding: Any | None, timesteps: int,
             input_scales: Mapping[str, float] | None = None, quantization: Mapping[str, Any] | None = None,
             reference_pred: np.ndarray | None = None) -> QuantDiagnostics:
    """Run float reference and emulator on ``cal`` and compare them (see the module docstring).

    ``timesteps`` is the window T; the integer graph runs T + its largest latency.
    ``quantization`` (the report) lets failures name weights and thresholds.
    """
    from neurocc.backends.emulator import prepare, simulate

    lag = delays(qgraph)
    T, L = int(timesteps), max(lag.get(o, 0) for o in qgraph.outputs)
    fprog, qprog = prepare(float_graph), prepare(qgraph)
    acc = _Acc(float_graph, qgraph)
    size = min(chunk_samples(float_graph, T + L), chunk_samples(qgraph, T + L))
    for i in range(0, cal.samples, size):
        xs = float_inputs(cal, encoding, T + L, i, size)
        fr = simulate(float_graph, {k: v[:T] for k, v in xs.items()}, steps=T, record=True, program=fprog)
        qr = simulate(qgraph, _quant_inputs(xs, input_scales or {}), steps=T + L, record=True, program=qprog)
        _collect(acc, float_graph, qgraph, fr, qr, lag, T)
    return _summarise(acc, float_graph, qgraph, cal, T, lag, quantization, reference_pred)


def _collect(acc: _Acc, fg: Graph, qg: Graph, fr: Any, qr: Any, lag: Mapping[str, int], T: int) -> None:
    for n in acc.names:
        d = lag.get(n, 0)
        if fg.nodes[n].spiking:
            acc.cf[n].append(np.asarray(fr.traces[f"{n}/out"][:T], np.float64).sum(0))
            acc.cq[n].append(np.asarray(qr.traces[f"{n}/out"][d:d + T], np.float64).sum(0))
            peak = np.asarray(qr.traces[f"{n}/v"][d:d + T], np.float64).max(axis=(0, 1))
            acc.vpeak[n] = peak if acc.vpeak[n] is None else np.maximum(acc.vpeak[n], peak)
        else:
            acc.cf[n].append(np.asarray(fr.traces[f"{n}/v"][:T], np.float64).mean(0))
            vq = np.asarray(qr.traces[f"{n}/v"][d:d + T], np.float64)
            acc.cq[n].append(vq.mean(0))
            acc.vq[n] = max(acc.vq[n], float(np.abs(vq).max(initial=0)))
    for node, ev in qr.events.items():
        mine = acc.events.setdefault(node, {})
        for k, v in ev.items():
            mine[k] = mine.get(k, 0) + int(v)
    out = qg.outputs[0]
    acc.out_f.append(_scores(fg, out, fr.outputs[out], T))
    acc.out_q.append(_scores(qg, out, qr.outputs[out], T))


def _scores(graph: Graph, out: str, y: np.ndarray, T: int) -> np.ndarray:
    from neurocc.ir.encoding import decode

    spiking = any(graph.nodes[p].spiking for p in graph.predecessors(out))
    return decode(y, spiking=spiking, timesteps=T)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def _layer_events(qg: Graph, n: str, events: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in (n, *qg.predecessors(n)):
        for k, v in events.get(node, {}).items():
            if v:
                out[k] = out.get(k, 0) + int(v)
    return out


def _layer(acc: _Acc, fg: Graph, qg: Graph, n: str, lag: int, T: int) -> LayerDiag:
    from neurocc.ir.numerics.core import V24_LIM

    cf, cq = np.concatenate(acc.cf[n]), np.concatenate(acc.cq[n])
    spiking = bool(fg.nodes[n].spiking)
    neurons = int(np.prod(cf.shape[1:]))
    if not spiking:
        return LayerDiag(n, fg.nodes[n].kind, neurons, lag, False, 0, 0, 0.0, 0.0, None, 0, 0, _cosine(cf, cq),
                         _layer_events(qg, n, acc.events), acc.vq[n] / V24_LIM)
    rf, rq = float(cf.mean()) / T, float(cq.mean()) / T
    per_f, per_q = cf.reshape(len(cf), -1), cq.reshape(len(cq), -1)
    silent = int(np.sum((per_f.sum(0) > 0) & (per_q.sum(0) == 0)))
    saturated = int(np.sum((per_q.max(0) >= T) & (per_f.max(0) < T)))
    vth = np.asarray(getattr(qg.nodes[n], "vth", 0), np.float64) * 64
    frac = None if acc.vpeak[n] is None or not np.all(vth > 0) else float(np.max(acc.vpeak[n] / vth))
    return LayerDiag(n, fg.nodes[n].kind, neurons, lag, True, int(cf.sum()), int(cq.sum()), rf, rq,
                     (rq / rf - 1.0) if rf > 0 else None, silent, saturated, _cosine(cf, cq),
                     _layer_events(qg, n, acc.events), None, frac)


def _summarise(acc: _Acc, fg: Graph, qg: Graph, cal: Calibration, T: int, lag: Mapping[str, int],
               quantization: Mapping[str, Any] | None, reference_pred: np.ndarray | None) -> QuantDiagnostics:
    layers = tuple(_layer(acc, fg, qg, n, lag.get(n, 0), T) for n in acc.names)
    sf, sq = np.concatenate(acc.out_f), np.concatenate(acc.out_q)
    pf, pq = sf.argmax(1), sq.argmax(1)
    y = cal.y
    ref = None if reference_pred is None else np.asarray(reference_pred)[:len(pq)]
    failures = tuple(explain_silence(d, layers, qg, quantization) for d in layers
                     if d.spiking and d.spikes_float > 0 and d.spikes_quant == 0)
    return QuantDiagnostics(
        samples=len(pq), timesteps=T, layers=layers, agreement=float(np.mean(pf == pq)), output_cosine=_cosine(sf, sq),
        accuracy_float=None if y is None else float(np.mean(pf == y[:len(pf)])),
        accuracy_quant=None if y is None else float(np.mean(pq == y[:len(pq)])),
        reference_agreement=None if ref is None else float(np.mean(pq == ref)),
        reference_accuracy=None if ref is None or y is None else float(np.mean(ref == y[:len(ref)])),
        failures=failures)


def explain_silence(d: LayerDiag, layers: tuple[LayerDiag, ...], qg: Graph,
                    quantization: Mapping[str, Any] | None) -> str:
    """"layer X: 0 spikes quantized vs N float: <causes>" for a layer quantization silenced."""
    head = f"layer '{d.layer}': 0 spikes quantized vs {d.spikes_float} float"
    causes = []
    by_name = {x.layer: x for x in layers}
    for syn in qg.predecessors(d.layer):
        for src in _spiking_sources(qg, syn):
            up = by_name.get(src)
            if up is not None and up.spikes_quant == 0 and up.spikes_float > 0:
                causes.append(f"its input layer '{src}' is silent too")
    rep = (quantization or {}).get("layers", {}).get(d.layer, {})
    for syn, srep in rep.get("synapses", {}).items():
        zf = float(srep.get("zero_fraction", 0.0))
        if zf >= ZERO_WEIGHTS_FAILURE:
            causes.append(f"weights rounded to zero: {100 * zf:.0f}% of the non-zero weights of '{syn}' "
                          f"(largest |w| {srep.get('float_absmax', 0):.4g} → mantissa range "
                          f"[{srep.get('q_min')}, {srep.get('q_max')}] at layer scale {_fmt(rep.get('scale'))})")
    if "vth" in rep and d.v_peak_threshold is not None and d.v_peak_threshold <= 1:
        causes.append(f"threshold mantissa rounds to {_span(rep['vth'])} LSBs at layer scale {_fmt(rep.get('scale'))} "
                      f"and the integer membrane peaks at {100 * d.v_peak_threshold:.1f}% of it")
    for k, v in d.events.items():
        causes.append(f"{v} {k} events")
    if not causes:
        causes.append("the integer membrane never crosses its threshold")
    return f"{head}: " + "; ".join(causes)


def _spiking_sources(qg: Graph, syn: str) -> list[str]:
    out, frontier = [], list(qg.predecessors(syn))
    while frontier:
        n = frontier.pop()
        if qg.nodes[n].spiking or not qg.predecessors(n):
            out.append(n)
        else:
            frontier.extend(qg.predecessors(n))
    return out


def _span(v: list[int]) -> str:
    return str(v[0]) if v[0] == v[-1] else f"{v[0]}..{v[-1]}"


def _fmt(x: Any) -> str:
    if isinstance(x, list):
        return f"{min(x):.4g}..{max(x):.4g}"
    return "-" if x is None else f"{float(x):.4g}"


def format_diagnostics(diag: QuantDiagnostics | Mapping[str, Any]) -> str:
    """The per-layer table and the output agreement, as printed by ``neurocc compile``."""
    d = diag.to_dict() if isinstance(diag, QuantDiagnostics) else dict(diag)
    head = ["layer", "kind", "neurons", "lag", "rate float", "rate quant", "drift", "silent", "saturated",
            "cosine", "wrap/saturation events"]
    rows = []
    for x in d["layers"]:
        ev = ", ".join(f"{k} {v}" for k, v in sorted(x["events"].items())) or "-"
        if x.get("v_range") is not None:
            ev += f" (|v| peak {100 * x['v_range']:.1f}% of range)"
        rows.append([x["layer"], x["kind"], str(x["neurons"]), str(x["lag"]),
                     f"{x['rate_float']:.4f}" if x["spiking"] else "-", f"{x['rate_quant']:.4f}" if x["spiking"] else "-",
                     "-" if x["drift"] is None else f"{100 * x['drift']:+.1f}%",
                     str(x["silent"]) if x["spiking"] else "-", str(x["saturated"]) if x["spiking"] else "-",
                     f"{x['cosine']:.4f}", ev])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    title = (f"quantization diagnostics: emulator vs float reference on {d['samples']} calibration samples, "
             f"T={d['timesteps']} (latency compensated)")
    lines = [title, fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    lines.append(f"outputs: class agreement {100 * d['agreement']:.2f}%, output cosine {d['output_cosine']:.4f}"
                 + _acc_text(d))
    lines += [f"FAILURE: {f}" for f in d.get("failures", ())]
    return "\n".join(lines)


def _acc_text(d: Mapping[str, Any]) -> str:
    parts = []
    if d.get("accuracy_quant") is not None:
        parts.append(f"accuracy emulator {100 * d['accuracy_quant']:.2f}% vs float SNN {100 * d['accuracy_float']:.2f}%")
    if d.get("reference_accuracy") is not None:
        parts.append(f"float ANN {100 * d['reference_accuracy']:.2f}%")
    if d.get("reference_agreement") is not None:
        parts.append(f"agreement with the float ANN {100 * d['reference_agreement']:.2f}%")
    return ("; " + ", ".join(parts)) if parts else ""
