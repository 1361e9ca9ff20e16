"""Measured cost of a deployed network: NeuroBench's metrics on the emulator's run of the integer graph.

``measure(graph, inputs, steps=None) -> Metrics`` runs the graph (the integer emulator for a
quantized graph, the float reference simulator for a float one) with every node's outputs
recorded, and counts, per sample (totals over the batch divided by the batch size):

* **synaptic operations** (NeuroBench ``SynapticOperations``; rules in :mod:`.count`): effective
  operations split into accumulates ``acs`` (the synapse reads binary spikes) and
  multiply-accumulates ``macs`` (graded spikes of sigma-delta neurons, a graded input current);
  ``dense_ops`` = every synapse every step, whatever the activity (NeuroBench's ``Dense``, and
  what the edge-cpu window graph executes as MACs); ``skipped = dense_ops − acs − macs``, split
  into ``skipped_silent`` (the input was zero) and ``skipped_zero_weight`` (zero synapses);
* **activation sparsity** (NeuroBench ``ActivationSparsity`` / ``ActivationSparsityByLayer``):
  ``1 − non-zero outputs / outputs`` over the event-sending layers (spiking neurons, sigma-delta
  neurons; readouts excluded), over all steps and samples, per layer, and per step
  (``sparsity_over_time``); ``spikes`` (binary events) and ``graded_events`` (non-zero graded
  messages) per sample;
* **connection sparsity** (NeuroBench ``ConnectionSparsity``): zero weights / weights over the
  synapse nodes, with the deployed weights (:func:`.count.deployed_weight`);
* **memory footprint** at the deployed bit widths: ``weight_bits`` per weight (8 on Loihi and
  int8, 32 for float), neuron state registers (Loihi u, v: 24 bits; sigma-delta: int32) and
  per-neuron parameters, in bytes (NeuroBench's ``Footprint`` counts torch's float32 parameters
  and buffers: 4 bytes each);
* **latency** in steps: the steps run per sample (the window plus the pipeline latency, one step
  per synapse layer on Loihi) and the pipeline latency alone;
* **neuron updates** per sample: neurons × steps (a time-stepped chip updates every neuron);
* ``input_density``: the non-zero fraction of each graph input (what ``plan --data`` uses).

``estimate_energy(metrics, energy, execution)`` turns these into joules with targets.yaml's
figures: an estimate, labelled as such (see its docstring).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.runtime.metrics import count as C


@dataclass(frozen=True)
class SynapseOps:
    """Per-sample operations of one synapse node (see :mod:`.count`)."""

    node: str
    kind: str
    acs: float
    macs: float
    dense: float
    skipped_silent: float
    skipped_zero_weight: float
    weights: int
    zero_weights: int
    weight_bits: int


@dataclass(frozen=True)
class Metrics:
    """Measured per-sample cost of one run (fields: see the module docstring)."""

    samples: int
    steps: int
    latency_steps: int
    acs: float
    macs: float
    dense_ops: float
    skipped_silent: float
    skipped_zero_weight: float
    activation_sparsity: float
    sparsity_by_layer: dict[str, float]
    sparsity_over_time: list[float]
    spikes: float
    graded_events: float
    connection_sparsity: float
    footprint_bytes: dict[str, float]
    neuron_updates: float
    synapses: list[SynapseOps] = field(default_factory=list)
    numerics: str | None = None
    input_density: dict[str, float] = field(default_factory=dict)   # non-zero fraction of each graph input

    @property
    def synops(self) -> float:
        """Effective synaptic operations per sample (ACs + MACs)."""
        return self.acs + self.macs

    @property
    def skipped(self) -> float:
        return self.skipped_silent + self.skipped_zero_weight

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["synops"], d["skipped"] = self.synops, self.skipped
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metrics:
        """Inverse of :meth:`to_dict` (derived keys ignored)."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["synapses"] = [SynapseOps(**s) for s in d.get("synapses", [])]
        return cls(**kw)


def measure(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None, *,
            latency_steps: int | None = None, program: Any = None) -> Metrics:
    """Run ``graph`` on time-major ``inputs`` with every node recorded and count its cost."""
    from neurocc.backends.emulator import simulate

    res = simulate(graph, inputs, steps, record=True, program=program)
    return from_traces(graph, res.traces, res.steps, res.batch, latency_steps=latency_steps)


def from_traces(graph: Graph, traces: Mapping[str, np.ndarray], steps: int, batch: int, *,
                latency_steps: int | None = None) -> Metrics:
    """Count the metrics from ``"<node>/out"`` traces ``(steps, batch, *shape)`` of one run."""
    from neurocc.runtime.run import latency

    shapes = graph.shapes()
    syns = []
    tot = dict.fromkeys(("acs", "macs", "dense", "silent", "zero_weight"), 0.0)
    for n in graph.order():
        if graph.nodes[n].kind not in C.SYNAPSE_KINDS:
            continue
        s = C.synapse(graph, n, shapes)
        o = C.ops(s, C.synapse_input(graph, traces, n))
        ac, mac = float(o["effective"][~o["mac"]].sum()), float(o["effective"][o["mac"]].sum())
        part = {"acs": ac, "macs": mac, "dense": float(o["dense"].sum()), "silent": float(o["silent"].sum()),
                "zero_weight": float(o["zero_weight"].sum())}
        tot = {k: tot[k] + part[k] for k in tot}
        syns.append(SynapseOps(n, s.kind, ac / batch, mac / batch, part["dense"] / batch, part["silent"] / batch,
                               part["zero_weight"] / batch, s.weights, s.zero_weights, s.weight_bits))
    act = _activity(graph, traces, steps, batch)
    weights = sum(s.weights for s in syns)
    return Metrics(batch, steps, latency(graph) if latency_steps is None else int(latency_steps),
                   tot["acs"] / batch, tot["macs"] / batch, tot["dense"] / batch, tot["silent"] / batch,
                   tot["zero_weight"] / batch, **act,
                   connection_sparsity=(sum(s.zero_weights for s in syns) / weights) if weights else 0.0,
                   footprint_bytes=footprint(graph, syns),
                   neuron_updates=float(steps * sum(int(np.prod(shapes[n])) for n in graph.nodes
                                                    if graph.nodes[n].kind in C.NEURON_KINDS)),
                   synapses=syns, numerics=graph.numerics,
                   input_density={n: float(np.mean(traces[f"{n}/out"] != 0)) for n in graph.inputs})


def _activity(graph: Graph, traces: Mapping[str, np.ndarray], steps: int, batch: int) -> dict[str, Any]:
    by_layer, nnz_t, tot_t = {}, np.zeros(steps), np.zeros(steps)
    spikes = graded = 0.0
    for n in C.activation_layers(graph):
        y = traces[f"{n}/out"].reshape(steps, batch, -1)
        nz = (y != 0).sum(axis=(1, 2)).astype(np.float64)
        nnz_t += nz
        tot_t += y.shape[1] * y.shape[2]
        by_layer[n] = 1.0 - float(nz.sum()) / y.size
        if C.is_graded(graph, n):
            graded += float(nz.sum())
        else:
            spikes += float(nz.sum())
    total = float(tot_t.sum())
    return {"activation_sparsity": 1.0 - float(nnz_t.sum()) / total if total else 0.0,
            "sparsity_by_layer": by_layer,
            "sparsity_over_time": [1.0 - a / b if b else 0.0 for a, b in zip(nnz_t, tot_t)],
            "spikes": spikes / batch, "graded_events": graded / batch}


def footprint(graph: Graph, syns: list[SynapseOps]) -> dict[str, float]:
    """Bytes at the deployed widths: ``weights`` (synapses × weight bits, plus a float graph's
    biases), ``neuron_state`` (registers), ``neuron_params`` (per-neuron parameters), ``total``."""
    w = sum(s.weights * s.weight_bits for s in syns) + sum(C.bias_bits(graph, s.node) for s in syns)
    state = params = 0
    for n, node in graph.nodes.items():
        if node.kind in C.NEURON_KINDS:
            a, b = C.neuron_bits(graph, n)
            state, params = state + a, params + b
    out = {"weights": w / 8, "neuron_state": state / 8, "neuron_params": params / 8}
    out["total"] = sum(out.values())
    return out


def merge(parts: list[Metrics]) -> Metrics:
    """Metrics over several batches of the same graph and steps: per-sample means weighted by batch size."""
    if len(parts) == 1:
        return parts[0]
    n = sum(p.samples for p in parts)
    mean = lambda get: sum(get(p) * p.samples for p in parts) / n
    first = parts[0]
    scal = {k: mean(lambda p, k=k: getattr(p, k)) for k in
            ("acs", "macs", "dense_ops", "skipped_silent", "skipped_zero_weight", "activation_sparsity",
             "spikes", "graded_events")}
    syns = [SynapseOps(s.node, s.kind, *(mean(lambda p, i=i, f=f: getattr(p.synapses[i], f))
                                          for f in ("acs", "macs", "dense", "skipped_silent", "skipped_zero_weight")),
                       s.weights, s.zero_weights, s.weight_bits) for i, s in enumerate(first.synapses)]
    return Metrics(n, first.steps, first.latency_steps, **scal,
                   sparsity_by_layer={k: mean(lambda p, k=k: p.sparsity_by_layer[k]) for k in first.sparsity_by_layer},
                   sparsity_over_time=[mean(lambda p, t=t: p.sparsity_over_time[t]) for t in range(first.steps)],
                   connection_sparsity=first.connection_sparsity, footprint_bytes=first.footprint_bytes,
                   neuron_updates=first.neuron_updates, synapses=syns, numerics=first.numerics,
                   input_density={k: mean(lambda p, k=k: p.input_density[k]) for k in first.input_density})


@dataclass(frozen=True)
class EnergyEstimate:
    """Joules per sample from published (or assumed) per-operation figures: an estimate, not a
    measurement. ``terms``: joules per term; ``missing``: terms without a figure (left out)."""

    joules: float | None
    terms: dict[str, float]
    missing: list[str]
    execution: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "estimate": True}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergyEstimate:
        return cls(d["joules"], dict(d["terms"]), list(d["missing"]), d["execution"], d["source"])

    def text(self) -> str:
        if self.joules is None:
            return f"energy estimate n/a ({self.source}: no figure for {', '.join(self.missing)})"
        from neurocc.runtime.plan import _si

        gone = f"; no figure for {', '.join(self.missing)}, left out" if self.missing else ""
        return f"energy estimate {_si(self.joules, 'J')} per sample ({self.source}, {self.execution}{gone})"


def estimate_energy(m: Metrics, energy: Any, execution: str = "events", source: str = "") -> EnergyEstimate:
    """``events`` (a neuromorphic chip): ACs · ``pj_per_synop`` + MACs · ``pj_per_mac`` + neuron
    updates · ``pj_per_neuron_update``; ``dense`` (an edge CPU running the window graph): every
    synapse every step is a MAC: dense ops · ``pj_per_mac`` (``pj_per_synop`` when no MAC figure)
    + neuron updates · ``pj_per_neuron_update``. Figures from targets.yaml (pJ); a term whose
    figure is missing is left out and named; no figure at all → ``joules=None``."""
    e = energy
    mac_fig = getattr(e, "pj_per_mac", None)
    if execution == "dense":
        work = {"dense MACs": (m.dense_ops, mac_fig if mac_fig is not None else e.pj_per_synop)}
    else:
        work = {"ACs": (m.acs, e.pj_per_synop), "MACs": (m.macs, mac_fig)}
    work["neuron updates"] = (m.neuron_updates, e.pj_per_neuron_update)
    terms = {k: n * fig * 1e-12 for k, (n, fig) in work.items() if fig is not None}
    missing = [k for k, (n, fig) in work.items() if fig is None and n > 0]
    joules = sum(terms.values()) if terms else None
    return EnergyEstimate(joules, terms, missing, execution, source or "targets.yaml figures")


def target_energy(m: Metrics, target: Any) -> EnergyEstimate:
    """:func:`estimate_energy` with ``target``'s figures, executed as its backend does (plan.EXECUTION)."""
    from neurocc.runtime.plan import EXECUTION

    return estimate_energy(m, target.energy, EXECUTION.get(target.backend or "", "events"),
                           f"estimate from targets.yaml '{target.name}'")


def _over_time(values: list[float], most: int = 8) -> str:
    """At most ``most`` steps, evenly spread: ``t0 1.000, t9 0.912, ...``."""
    if not values:
        return "no steps"
    idx = sorted({round(i * (len(values) - 1) / max(most - 1, 1)) for i in range(min(most, len(values)))})
    return ", ".join(f"t{i} {values[i]:.3f}" for i in idx)


def format_metrics(m: Metrics, energy: EnergyEstimate | None = None) -> str:
    """The metrics block ``neurocc evaluate`` and ``report`` print."""
    from neurocc.runtime.plan import _si

    fb = m.footprint_bytes
    kind = "integer " + m.numerics if m.numerics else "float"
    layers = ", ".join(f"{k} {v:.3f}" for k, v in m.sparsity_by_layer.items())
    lines = [
        f"measured per sample ({m.samples} samples, {kind} network, NeuroBench definitions):",
        (f"  synaptic ops {_si(m.synops, '')} = {_si(m.acs, '')} AC (binary spikes) + {_si(m.macs, '')} MAC "
         f"(graded); dense {_si(m.dense_ops, '')} (every synapse every step); skipped {_si(m.skipped, '')} "
         f"({_si(m.skipped_silent, '')} silent inputs, {_si(m.skipped_zero_weight, '')} zero weights)"),
        (f"  events: {_si(m.spikes, '')} spikes, {_si(m.graded_events, '')} graded; activation sparsity "
         f"{m.activation_sparsity:.3f} ({layers})"),
        (f"  connection sparsity {m.connection_sparsity:.3f}; footprint {_si(fb['total'], 'B')} (weights "
         f"{_si(fb['weights'], 'B')}, neuron state {_si(fb['neuron_state'], 'B')}, "
         f"params {_si(fb['neuron_params'], 'B')})"),
        f"  activation sparsity over time: {_over_time(m.sparsity_over_time)}",
        f"  latency {m.steps} steps ({m.latency_steps} pipeline); neuron updates {_si(m.neuron_updates, '')}"]
    if energy is not None:
        lines.append("  " + energy.text())
    return "\n".join(lines)


__all__ = ["EnergyEstimate", "Metrics", "SynapseOps", "estimate_energy", "footprint", "format_metrics",
           "from_traces", "measure", "merge", "target_energy"]
