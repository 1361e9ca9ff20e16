"""``neurocc plan MODEL``: map one graph onto every target, without hardware, and compare.

For each target: does it fit (partition + place under the target's limits), cores and chips
used, synaptic operations and neuron updates per inference, estimated energy and latency.

Activity model (stated in the table header): every neuron and every input fires ``rate`` spikes
per step (default 0.1) for ``steps`` steps (default 100) per inference, so

* synaptic ops = Σ_connections rate · steps · synapses(connection), where synapses are counted
  expanded (one synaptic event per presynaptic spike per postsynaptic target, whatever the
  chip's storage format); equal to Σ presynaptic spikes × fan-out;
* neuron updates = steps · (neurons on cores) (time-stepped chips update every neuron every step);
* energy = synaptic ops · ``energy.pj_per_synop`` + neuron updates · ``energy.pj_per_neuron_update``
  (pJ → J); a missing figure drops its term (said in the row's note), both missing → n/a;
* latency = steps · ``energy.step_time_s`` (n/a when the target publishes no step time).

These are estimates from published per-operation figures, not measurements.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from neurocc.compiler.mapping import mapping_report
from neurocc.ir.graph import Graph
from neurocc.targets import Target

DEFAULT_RATE = 0.1
DEFAULT_STEPS = 100


@dataclass(frozen=True)
class PlanRow:
    target: str
    backend: str | None
    fits: bool
    cores: int
    chips: int
    synops: float               # synaptic operations per inference
    neuron_updates: float       # neuron updates per inference
    energy_j: float | None      # estimated joules per inference
    latency_s: float | None     # estimated seconds per inference
    limit: str                  # the binding constraint (not fitting) or the tightest resource
    note: str
    rate: float
    steps: int
    limited: bool = True        # the target declares per-core or per-chip limits

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan(graph: Graph, targets: Mapping[str, Target] | Iterable[Target], *, rate: float | None = None,
         steps: int | None = None) -> list[PlanRow]:
    """One :class:`PlanRow` per target, in the order of ``targets`` (a name → Target mapping,
    or any iterable of Targets)."""
    if not isinstance(targets, Mapping):
        targets = {t.name: t for t in targets}
    rate = DEFAULT_RATE if rate is None else float(rate)
    steps = DEFAULT_STEPS if steps is None else int(steps)
    return [_row(graph, t, rate, steps) for t in targets.values()]


def _row(graph: Graph, target: Target, rate: float, steps: int) -> PlanRow:
    report = mapping_report(graph, target, with_fixes=False)
    part = report.partition
    synapses = sum(s.usage.synapses for lp in part.layers.values() for s in lp.slices)
    neurons = sum(lp.n_neurons for n, lp in part.layers.items() if not part.network.layers[n].is_input)
    synops = rate * steps * synapses
    updates = float(steps * neurons)
    energy, note = _energy(target, synops, updates)
    step = target.energy.step_time_s
    b = report.binding
    if b is None:
        limit = "no limits declared"
    elif report.fits and b.available:
        where = f"layer '{b.layer}'" if b.layer else b.scope
        limit = f"tightest: {where} {b.resource} {100 * b.needed / b.available:.0f}%"
    else:
        limit = b.text()
    return PlanRow(target.name, target.backend, report.fits, report.cores, report.chips, synops, updates,
                   energy, None if step is None else steps * step, limit, note, rate, steps,
                   target.limits.neurons_per_core is not None or target.limits.cores_per_chip is not None)


def _energy(target: Target, synops: float, updates: float) -> tuple[float | None, str]:
    e = target.energy
    if e.pj_per_synop is None and e.pj_per_neuron_update is None:
        return None, "no published energy figures"
    total = (synops * (e.pj_per_synop or 0.0) + updates * (e.pj_per_neuron_update or 0.0)) * 1e-12
    if e.pj_per_synop is None:
        return total, "neuron updates only (no pJ/synop figure)"
    if e.pj_per_neuron_update is None:
        return total, "synaptic ops only (no pJ/update figure)"
    return total, ""


def format_plan(rows: list[PlanRow]) -> str:
    """The comparison table, with the activity assumption in the header."""
    if not rows:
        return "no targets"
    head = ["target", "backend", "fits", "cores", "chips", "synops/inf", "energy/inf", "latency", "limit"]
    body = [[r.target, r.backend or "-", "yes" if r.fits else "NO", *_cores(r),
             _si(r.synops, ""), _si(r.energy_j, "J"), _si(r.latency_s, "s"),
             r.limit + (f" [{r.note}]" if r.note else "")] for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    title = (f"Estimated per inference: {rows[0].steps} steps, assumed activity {rows[0].rate:g} spikes "
             f"per neuron and per input per step (estimates from published figures, not measurements)")
    return "\n".join([title, fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in body)])


def _cores(r: PlanRow) -> list[str]:
    """Cores and chips, or '-' for a target without per-core limits (a CPU)."""
    return [str(r.cores), str(r.chips)] if r.limited else ["-", "-"]


def _si(x: float | None, unit: str) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return f"0{unit}"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0), ("m", 1e-3), ("µ", 1e-6),
                          ("n", 1e-9), ("p", 1e-12)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}".rstrip()
    return f"{x:.3g} {unit}".rstrip()
