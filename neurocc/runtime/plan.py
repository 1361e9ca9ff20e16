"""``neurocc plan MODEL|DIR``: map one graph onto every target, without hardware, and compare.

For each target: does it fit (partition + place under the target's limits), cores and chips
used, operations and neuron updates per inference, estimated energy and latency.

Activity (stated in the table header): ``steps`` steps per inference (default 100, or the
artifact's / calibration data's), and per node a spike rate in spikes per neuron per step:
*measured* where known (a compiled artifact's calibration statistics; ``--calibration`` runs the
float model on the data; ``--data`` runs a compiled artifact's integer network on the emulator and
takes every layer's and input's non-zero fraction from :mod:`neurocc.runtime.metrics`, with the
run's steps), else the assumed ``rate`` (default 0.1). A graded input (a converted
ANN's constant current) sends a graded spike from every non-zero element every step.

Operations are counted the way each backend executes the network (:data:`EXECUTION`):

* ``events`` (Loihi, SpiNNaker, the emulator): synaptic ops = Σ over connections of rate(source)
  · steps · expanded synapses (one event per presynaptic spike per target synapse; a graded
  input counts as rate 1 per non-zero element: graded-spike ops);
* ``dense`` (edge-cpu: the ONNX window graph computes every synapse every step): MACs = steps ·
  Σ expanded synapses, whatever the activity;
* neuron updates = steps · (neurons on cores) (time-stepped chips update every neuron every step);
* energy = ops · ``energy.pj_per_synop`` + neuron updates · ``energy.pj_per_neuron_update``
  (pJ → J); a missing figure drops its term (said in the row's note), both missing → n/a.
  Targets whose figures are arithmetic only (:data:`LOWER_BOUND`: the CPU figures count the
  multiply-add, not memory traffic) print ``≥``: a lower bound;
* latency = steps · ``energy.step_time_s`` (a real-time target's tick is its ``dt``: ``--dt``
  changes it), n/a when the target publishes no step time.

These are estimates from published per-operation figures, not measurements.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocc.compiler.mapping import mapping_report
from neurocc.ir.graph import Graph
from neurocc.targets import Target

DEFAULT_RATE = 0.1
DEFAULT_STEPS = 100
EXECUTION = {"edge-cpu": "dense"}      # backend -> how it executes synapses (default: events)
LOWER_BOUND = {"edge-cpu"}             # backends whose energy figures count arithmetic only


@dataclass(frozen=True)
class Activity:
    """Spike rates the plan assumes or measured: ``rates`` per node (spikes per neuron per step)
    override ``rate``; ``graded`` inputs send one graded spike per non-zero element per step."""

    steps: int = DEFAULT_STEPS
    rate: float = DEFAULT_RATE
    rates: Mapping[str, float] = field(default_factory=dict)
    graded: frozenset[str] = frozenset()
    source: str = ""
    model: bool = True          # the graph is the model as compile reads it (not an ANN converted for
                                # the emulator, not an artifact's float graph): compile's backend rule applies

    def of(self, node: str) -> float:
        return float(self.rates.get(node, 1.0 if node in self.graded else self.rate))

    def text(self) -> str:
        base = f"{self.steps} steps"
        if self.source:
            return f"{base}; activity measured on {self.source}, {self.rate:g} assumed where not measured;"
        return f"{base}; assumed activity {self.rate:g} spikes per neuron and per input per step;"


@dataclass(frozen=True)
class PlanRow:
    target: str
    backend: str | None
    fits: bool
    cores: int
    chips: int
    synops: float               # operations per inference: synaptic events, or dense MACs (``ops``)
    neuron_updates: float       # neuron updates per inference
    energy_j: float | None      # estimated joules per inference
    latency_s: float | None     # estimated seconds per inference
    limit: str                  # the binding constraint (not fitting) or the tightest resource
    note: str
    rate: float
    steps: int
    limited: bool = True        # the target declares per-core or per-chip limits
    ops: str = "events"         # how synapses are executed: events or dense
    lower_bound: bool = False   # energy_j counts arithmetic only
    activity: str = ""
    refused: bool = False       # compile refuses the model for this target (``limit`` says why)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan(graph: Graph, targets: Mapping[str, Target] | Iterable[Target], *, rate: float | None = None,
         steps: int | None = None, activity: Activity | None = None, dt: float | None = None) -> list[PlanRow]:
    """One :class:`PlanRow` per target, in the order of ``targets`` (a name → Target mapping,
    or any iterable of Targets). ``activity`` (measured rates) wins over ``rate``/``steps``;
    ``dt`` sets the tick of real-time targets (step time = their dt)."""
    if not isinstance(targets, Mapping):
        targets = {t.name: t for t in targets}
    if activity is None:
        activity = Activity(DEFAULT_STEPS if steps is None else int(steps),
                            DEFAULT_RATE if rate is None else float(rate))
    if graph.numerics is not None:   # an imported integer model: what compile makes of it per target
        return [_integer_row(graph, t, activity, dt) for t in targets.values()]
    conns = connections(graph)
    return [_float_row(graph, t, activity, conns, dt) for t in targets.values()]


def _integer_row(graph: Graph, target: Target, act: Activity, dt: float | None) -> PlanRow:
    """A graph that arrives integer (a netx file) is planned as ``compile`` takes it for the target
    (:mod:`neurocc.compiler.prequantized`): kept, or its float form, or refused with the reason."""
    from neurocc.compiler.prequantized import integer_target, target_form
    from neurocc.errors import CompileError

    try:
        form = target_form(graph, target)
    except CompileError as err:
        return _refused_row(target, act, err)
    return _row(form, integer_target(graph, target), act, connections(form), dt)


def _float_row(graph: Graph, target: Target, act: Activity, conns: list[tuple[str, str, int]],
               dt: float | None) -> PlanRow:
    """A float model's row; refused, with compile's reason, where the target's backend cannot
    lower the float graph compile would make (spinnaker: :func:`~neurocc.compiler.prequantized.float_form`).
    Not applied to an ANN converted for the emulator or an artifact's float graph (``act.model``
    False): compile converts an ANN per target (SpiNNaker gets reset zero)."""
    from neurocc.compiler.prequantized import float_form
    from neurocc.errors import CompileError

    if target.backend == "spinnaker" and act.model and not any(n.ann_only for n in graph.nodes.values()):
        try:
            float_form(graph, target, dt)
        except CompileError as err:
            return _refused_row(target, act, err)
    return _row(graph, target, act, conns, dt)


def _refused_row(target: Target, act: Activity, err: Exception) -> PlanRow:
    from neurocc.compiler.prequantized import refusal

    return PlanRow(target.name, target.backend, False, 0, 0, 0.0, 0.0, None, None, refusal(err), "",
                   act.rate, act.steps, False, EXECUTION.get(target.backend or "", "events"), False,
                   act.text(), refused=True)


def planned_graph(model: Any, *, steps: int | None = None, rate: float | None = None, calibration: Any = None,
                  dt: float | None = None, load_kw: Mapping[str, Any] | None = None, data: Any = None
                  ) -> tuple[Graph, Activity]:
    """The graph to plan and its activity, from a model, a compiled artifact directory, or an ANN
    with calibration data (converted as ``compile`` would, on the float side only); ``data``
    (labelled samples as ``evaluate`` takes them, with an artifact directory): the activity
    measured on the emulator's run of the integer network."""
    from pathlib import Path

    r = DEFAULT_RATE if rate is None else float(rate)
    is_artifact = isinstance(model, (str, Path)) and (Path(model) / "manifest.json").is_file()
    if data is not None and not is_artifact:
        from neurocc.errors import InputError

        raise InputError("--data measures the activity of a compiled artifact, and this is not one",
                         where=str(model) if isinstance(model, (str, Path)) else "plan",
                         fix="plan the artifact (`neurocc plan DIR --data TEST.npz`), or pass the model's "
                             "samples as --calibration")
    if is_artifact and data is not None:
        return _data_activity(Path(model), data, r)
    if is_artifact:
        return _artifact_activity(Path(model), steps, r)
    if isinstance(model, Graph):
        graph = model
    else:
        from neurocc.compiler.frontends import load

        graph = load(model, **dict(load_kw or {}))
    ann = [f"node '{n}' ({node.kind})" for n, node in graph.nodes.items() if node.ann_only]
    if ann and calibration is None:
        from neurocc.errors import InputError

        raise InputError("an ANN has no spiking neurons to plan until it is converted, and converting needs data",
                         where=f"graph '{graph.name}'", problems=ann,
                         fix="pass --calibration cal.npz (x: samples, *input shape), or plan the compiled "
                             "artifact: `neurocc plan DIR`")
    if calibration is None:
        return graph, Activity(DEFAULT_STEPS if steps is None else int(steps), r)
    return _measured(graph, calibration, steps, r, dt)


def _measured(graph: Graph, calibration: Any, steps: int | None, rate: float, dt: float | None
              ) -> tuple[Graph, Activity]:
    """Convert (ANN) and measure per-layer rates with the float model on the calibration data."""
    import numpy as np

    from neurocc.compiler.pipeline import prepare
    from neurocc.targets import get_target

    prep = prepare(graph, get_target("emulator"), dt=dt, calibration=calibration, timesteps=steps)
    rates = {n: float(v["rate"]) for n, v in (prep.float_stats or {}).items() if "rate" in v}
    graded = set()
    for name, x in prep.cal.x.items():
        if prep.cal.static and (prep.encoding is None or prep.encoding.kind == "constant"):
            graded.add(name)
            rates[name] = float(np.mean(x != 0))
        elif prep.cal.static:
            rates[name] = float(np.mean(np.clip(x * prep.encoding.scale, 0, 1)))
        else:
            rates[name] = float(np.mean(x != 0))
    n = prep.cal.samples
    return prep.float_graph, Activity(int(prep.timesteps or steps or DEFAULT_STEPS), rate, rates, frozenset(graded),
                                      f"{n} calibration samples", model=prep.conversion is None)


def _artifact_activity(path: Any, steps: int | None, rate: float) -> tuple[Graph, Activity]:
    """A compiled artifact: its float graph, and the rates its calibration measured."""
    import numpy as np

    from neurocc.ir.artifact import load_artifact

    art = load_artifact(path)
    m = art.manifest
    cal = m.get("calibration") or {}
    rates = {n: float(v["rate"]) for n, v in (cal.get("layers") or {}).items() if "rate" in v}
    graded = frozenset(i["name"] for i in art.inputs if i.get("values") == "graded")
    doc = m.get("calibration_sample")
    if doc:
        with np.load(path / doc["file"], allow_pickle=False) as f:
            rates.update({i["name"]: float(np.mean(f[i["name"]] != 0)) for i in art.inputs if i["name"] in f.files})
    t = steps or m.get("timesteps") or cal.get("steps") or DEFAULT_STEPS
    src = f"{cal.get('samples')} calibration samples (the artifact's)" if rates else ""
    plastic = any(getattr(n, "plastic", False) for n in art.graph.nodes.values())
    # a plastic graph's float form is a reference only (no target compiles it): plan its integers
    return (art.graph if plastic else art.float_graph), Activity(int(t), rate, rates, graded, src, model=False)


def _data_activity(path: Any, data: Any, rate: float) -> tuple[Graph, Activity]:
    """A compiled artifact run on ``data`` by the emulator: measured per-layer and input rates
    (non-zero outputs per neuron per step, :mod:`neurocc.runtime.metrics`) and the run's steps."""
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.evaluate import evaluate

    art = load_artifact(path)
    m = evaluate(art, data, backend="emulator", metrics=True)["metrics"]
    rates = {n: 1.0 - s for n, s in m["sparsity_by_layer"].items()}
    rates.update(m["input_density"])
    graded = frozenset(i["name"] for i in art.inputs if i.get("values") == "graded")
    return art.float_graph, Activity(int(m["steps"]), rate, rates, graded,
                                     f"{m['samples']} samples of the data (emulator, integer network)", model=False)


def connections(graph: Graph) -> list[tuple[str, str, int]]:
    """(source layer or Input, target layer, expanded synapses) per connection, as the mapper sees
    them (:func:`neurocc.compiler.connectivity.analyse`: pools and reshapes composed into the
    path): a dense path has ``n_pre · n_post`` synapses, a local one Σ over post neurons of the
    pre neurons each reads."""
    from neurocc.compiler.connectivity import analyse

    net = analyse(graph)
    out = []
    for c in net.conns:
        if c.kind == "full":
            n = c.n_pre * net.layers[c.post].n
        else:
            n = int(np.prod([int(m.counts().sum()) for m in c.axes], dtype=np.int64)) if c.axes else 0
        out.append((c.pre, c.post, int(n)))
    return out


def _row(graph: Graph, target: Target, act: Activity, conns: list[tuple[str, str, int]],
         dt: float | None) -> PlanRow:
    report = mapping_report(graph, target, with_fixes=False)
    part = report.partition
    neurons = sum(lp.n_neurons for n, lp in part.layers.items() if not part.network.layers[n].is_input)
    ops = EXECUTION.get(target.backend or "", "events")
    if ops == "dense":
        synops = float(act.steps * sum(s for _, _, s in conns))
    else:
        synops = float(sum(act.of(src) * act.steps * s for src, _, s in conns))
    updates = float(act.steps * neurons)
    energy, note = _energy(target, synops, updates)
    step = target.energy.step_time_s
    if step is not None and dt is not None and abs(step - target.dt) <= 1e-12:
        step = float(dt)   # a real-time target ticks at the network's dt
    b = report.binding
    if b is None:
        limit = "no limits declared"
    elif report.fits and b.available:
        where = f"layer '{b.layer}'" if b.layer else b.scope
        limit = f"tightest: {where} {b.resource} {100 * b.needed / b.available:.0f}%"
    else:
        limit = b.text()
    lower = (target.backend in LOWER_BOUND) and energy is not None
    if lower:
        note = "; ".join(x for x in ("lower bound: arithmetic only, no memory traffic", note) if x)
    return PlanRow(target.name, target.backend, report.fits, report.cores, report.chips, synops, updates,
                   energy, None if step is None else act.steps * step, limit, note, act.rate, act.steps,
                   target.limits.neurons_per_core is not None or target.limits.cores_per_chip is not None,
                   ops, lower, act.text())


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
    """The comparison table, with the activity in the header."""
    if not rows:
        return "no targets"
    head = ["target", "backend", "fits", "cores", "chips", "ops/inf", "ops", "energy/inf", "latency", "limit"]
    body = [[r.target, r.backend or "-", "yes" if r.fits else "NO", *_cores(r), *_figures(r),
             r.limit + (f" [{r.note}]" if r.note else "")] for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
    title = (f"Estimated per inference: {rows[0].activity or Activity(rows[0].steps, rows[0].rate).text()} "
             "estimates from published figures, not measurements (events: one synaptic op per spike per "
             "target synapse; dense MACs: every synapse every step; ≥: a lower bound)")
    return "\n".join([title, fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in body)])


def _figures(r: PlanRow) -> list[str]:
    """Ops per inference, how they are counted, energy and latency; '-' where compile refuses."""
    if r.refused:
        return ["-"] * 4
    return [_si(r.synops, ""), "dense MACs" if r.ops == "dense" else "events",
            ("≥ " if r.lower_bound else "") + _si(r.energy_j, "J"), _si(r.latency_s, "s")]


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
