"""What a report shows, gathered once: validation, mapping, and recorded runs of one input batch.

* validation: ``DIR/validation.json`` when present; otherwise :func:`validate_artifact` runs on
  :data:`VALIDATION_SAMPLES` seeded random samples for the backends available here (it writes
  ``DIR/validation.json``, as ``neurocc validate`` does).
* mapping: :func:`neurocc.compiler.mapping.mapping_report` of the executed graph for the target
  the artifact was compiled for (its settings are read back from the manifest).
* runs: every shown backend on the same inputs with ``record=True``; rasters use one batch item,
  firing rates average the whole batch. The inputs: the caller's (``--input``), else the first
  samples of ``--data`` (static samples through the artifact's encoding), else the first samples
  of the calibration data the artifact keeps (:func:`neurocc.runtime.validate.sample_inputs`),
  else seeded random spikes.
* accuracy: where labels exist (``--data``, or labels kept with the calibration samples),
  :func:`neurocc.runtime.evaluate.evaluate` of the ``reference`` and ``emulator`` backends on
  all those samples.
* compile: the quantization tables and diagnostics ``neurocc compile`` printed
  (:func:`neurocc.compiler.summary.format_compile`).
* cost: :mod:`neurocc.runtime.metrics` counted on the recorded run of the executed graph (the
  emulator's for an integer artifact), per sample over the batch shown, with the energy estimate
  of the artifact's target.
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocc import overflow
from neurocc.errors import NeuroccError
from neurocc.ir.artifact import Artifact
from neurocc.ir.graph import Graph

VALIDATION_SAMPLES = 2   # samples validated when DIR/validation.json is missing
RATE_SAMPLES = 4         # batch run for rasters and firing rates (at least sample + 1)
SEED = 0


@dataclass(frozen=True)
class Layer:
    """A spiking layer of the executed graph, in step order."""

    name: str
    kind: str
    neurons: int
    lag: int          # steps the executed graph runs behind the float graph at this layer


@dataclass(frozen=True, eq=False)
class ReportData:
    art: Artifact
    sample: int
    input_source: str
    steps: int
    batch: int
    validation: Mapping[str, Any] | None
    validation_error: str | None
    mapping: Any                                 # MappingReport or None
    mapping_error: str | None
    layers: tuple[Layer, ...]
    spikes: Mapping[str, Mapping[str, np.ndarray]]   # backend -> layer -> (steps, batch, neurons) 0/1
    run_errors: Mapping[str, str] = field(default_factory=dict)
    derived: frozenset[tuple[str, str]] = frozenset()  # (backend, layer) spikes derived from u, v
    accuracy: Mapping[str, float] = field(default_factory=dict)   # backend -> accuracy on labelled data
    accuracy_source: str | None = None
    compile_text: str = ""
    overflow: Mapping[str, Mapping[str, int]] | None = None  # the emulator run's wrap/saturation counts
    metrics: Any = None          # neurocc.runtime.metrics.Metrics of the executed graph's recorded run
    energy: Any = None           # its EnergyEstimate for the artifact's target


def available_backends(art: Artifact) -> list[str]:
    """``reference``, ``emulator`` (integer artifacts) and the target's backend when it can run here."""
    names = ["reference"] + (["emulator"] if art.graph.numerics is not None else [])
    b = art.target_settings.get("backend")
    if b and b not in names and _runnable(b):
        names.append(b)
    return names


def _runnable(backend: str) -> bool:
    from neurocc.backends import REGISTRY

    if backend not in REGISTRY or importlib.util.find_spec(REGISTRY[backend]) is None:
        return False
    if backend == "loihi":
        from neurocc.backends.loihi import lava_available

        return lava_available()
    if backend == "edge-cpu":
        return importlib.util.find_spec("onnxruntime") is not None
    return True


def collect(art: Artifact, *, sample: int = 0, backends: Sequence[str] | None = None,
            inputs: Mapping[str, np.ndarray] | None = None, data: Any = None, step: Any = None) -> ReportData:
    """Gather everything the report shows (see the module docstring). ``data``: labelled test
    data as ``evaluate`` takes it (a TEST.npz path or ``{"x", "y"}``); ``step``: a
    :class:`neurocc.progress.Step` told what is running."""
    from neurocc.runtime.run import check_inputs

    advance = step.advance if step is not None else (lambda detail="": None)
    names = list(backends) if backends else available_backends(art)
    advance("choosing the inputs")
    inputs, source, labelled = _inputs(art, inputs, data, max(RATE_SAMPLES, sample + 1))
    checked, steps, batch = check_inputs(art, inputs)
    if not 0 <= sample < batch:
        from neurocc.errors import InputError

        raise InputError(f"sample {sample} does not exist: the inputs hold {batch} sample(s)", where="sample",
                         fix=f"pick a sample from 0 to {batch - 1}")
    advance("validation")
    validation, verr = _validation(art, [b for b in names if b != "reference"])
    mapping, merr = _mapping(art)
    advance(f"recorded runs on {', '.join(names)}")
    counts: dict[str, Any] = {}
    measured: dict[str, Any] = {}
    spikes, errors, derived = _runs(art, names, checked, counts, measured)
    overflow.warn(counts.get("emulator"), f"emulator, report {art.path}")
    advance("accuracy" if labelled else "")
    acc, acc_source = _accuracy(art, labelled)
    from neurocc.compiler.summary import format_compile

    cost = measured.get("emulator" if art.graph.numerics is not None else "reference")
    return ReportData(art, sample, source, steps, batch, validation, verr, mapping, merr,
                      tuple(spiking_layers(art)), spikes, errors, frozenset(derived), acc, acc_source,
                      format_compile(art.manifest, art.quantization), overflow.to_json(counts.get("emulator")),
                      cost, None if cost is None else _energy(art, cost))


def _energy(art: Artifact, m: Any) -> Any:
    from neurocc.runtime.metrics import target_energy

    return target_energy(m, target_of(art))


def _inputs(art: Artifact, inputs: Mapping[str, np.ndarray] | None, data: Any, n: int
            ) -> tuple[Mapping[str, np.ndarray], str, tuple[Any, str, bool] | None]:
    """(time-major inputs, where they come from, labelled data for the accuracy or None)."""
    from neurocc.runtime.validate import random_inputs, sample_inputs

    if inputs is not None:
        return inputs, "your inputs (--input)", (data, "--data", False) if data is not None else None
    if data is not None:
        from neurocc.runtime.evaluate import artifact_encoding, load_test_data
        from neurocc.ir.encoding import encode

        spec = art.inputs[0]
        x, _ = load_test_data(data, tuple(spec["shape"]))
        where = str(data) if not isinstance(data, Mapping) else "--data"
        if x.ndim == len(spec["shape"]) + 1:
            enc = artifact_encoding(art.manifest)
            xs = encode(x[:n], enc).astype(np.float32)
            return {spec["name"]: xs}, f"the first {len(xs[0])} samples of {where} ({enc.kind} encoding)", \
                (data, where, False)
        xs = np.swapaxes(x[:n], 0, 1)
        return {spec["name"]: xs}, f"the first {xs.shape[1]} samples of {where}", (data, where, False)
    doc = art.manifest.get("calibration_sample")
    if doc:
        inputs, source = sample_inputs(art, min(n, int(doc["samples"])), seed=SEED)
        return inputs, source, _calibration_labels(art, doc)
    return random_inputs(art, n, seed=SEED), f"seeded random spikes (seed {SEED}, rate 0.1)", None


def _calibration_labels(art: Artifact, doc: Mapping[str, Any]) -> tuple[Any, str, bool] | None:
    """The calibration samples with their labels, as evaluate takes them, when labels were kept."""
    from neurocc._files import read_npz

    arrays = read_npz(art.path / doc["file"], "calibration sample")
    if "labels" not in arrays or len(art.inputs) != 1:
        return None
    x = arrays[art.inputs[0]["name"]]
    return ({"x": x, "y": arrays["labels"]}, "the calibration samples the artifact keeps",
            not bool(doc.get("static")))


def _accuracy(art: Artifact, labelled: tuple[Any, str, bool] | None) -> tuple[dict[str, float], str | None]:
    """Accuracy of ``reference`` and ``emulator`` on the labelled data (none without labels)."""
    if labelled is None:
        return {}, None
    from neurocc.runtime.evaluate import evaluate

    data, where, time_major = labelled
    out: dict[str, float] = {}
    n = None
    for b in ["reference"] + (["emulator"] if art.graph.numerics is not None else []):
        try:
            res = evaluate(art, data, backend=b, time_major=time_major)
        except NeuroccError:
            continue
        out[b], n = res["accuracy"], res["n"]
    return out, (f"{n} samples of {where}" if n else None)


def _validation(art: Artifact, backends: list[str]) -> tuple[Mapping[str, Any] | None, str | None]:
    from neurocc.runtime.validate import VALIDATION_FILE, validate_artifact

    path = art.path / VALIDATION_FILE
    if path.is_file():
        try:
            return json.loads(path.read_text()), None
        except (OSError, ValueError) as err:
            return None, f"{path} is unreadable ({err}); rerun `neurocc validate {art.path}`"
    try:
        samples = min(VALIDATION_SAMPLES, int((art.manifest.get("calibration_sample") or {}).get("samples")
                                              or VALIDATION_SAMPLES))
        return validate_artifact(art, backends=backends or None, samples=samples), None
    except NeuroccError as err:
        return None, str(err)


def target_of(art: Artifact) -> Any:
    """The Target as compiled (rebuilt from the manifest's settings)."""
    from neurocc.targets import Target

    return Target.from_dict(art.target_settings)


def _mapping(art: Artifact) -> tuple[Any, str | None]:
    from neurocc.compiler.mapping import mapping_report

    try:
        return mapping_report(art.graph, target_of(art)), None
    except (NeuroccError, TypeError, KeyError) as err:
        return None, f"the mapping report could not be made: {err}"


def spiking_layers(art: Artifact) -> list[Layer]:
    from neurocc.runtime.validate import latency

    g, shapes = art.graph, art.graph.shapes()
    li, lf = latency(g), latency(art.float_graph)
    return [Layer(n, g.nodes[n].kind, int(np.prod(shapes[n])), li.get(n, 0) - lf.get(n, 0))
            for n in g.order() if g.nodes[n].spiking]


def _runs(art: Artifact, names: list[str], inputs: Mapping[str, np.ndarray], counts: dict[str, Any] | None = None,
          measured: dict[str, Any] | None = None
          ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str], set[tuple[str, str]]]:
    """Spikes per backend and layer, run errors, derived spikes; ``counts`` receives each
    backend's overflow counts (None where the backend does not count them); ``measured`` the
    :class:`~neurocc.runtime.metrics.Metrics` of the emulator and reference runs."""
    from neurocc.runtime.metrics import from_traces
    from neurocc.runtime.run import run_artifact

    spikes: dict[str, dict[str, np.ndarray]] = {}
    errors: dict[str, str] = {}
    derived: set[tuple[str, str]] = set()
    for b in names:
        try:
            run = run_artifact(art, b, inputs, record=True)
        except NeuroccError as err:
            errors[b] = str(err).splitlines()[0]
            continue
        if counts is not None:
            counts[b] = getattr(run, "overflow", None)
        graph = art.float_graph if b == "reference" else art.graph
        if measured is not None and b in ("emulator", "reference"):
            x = next(iter(inputs.values()))
            measured[b] = from_traces(graph, run, int(x.shape[0]), int(x.shape[1]))
        spikes[b] = layer_spikes(graph, run)
        for n, z in spikes_from_state(graph, run, exclude=spikes[b]).items():
            spikes[b][n] = z
            derived.add((b, n))
    return spikes, errors, derived


def layer_spikes(graph: Graph, run: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per spiking node, its spikes ``(steps, batch, neurons)`` from ``<node>/out`` or from an
    Output fed only by that node."""
    out: dict[str, np.ndarray] = {}
    for n, node in graph.nodes.items():
        if node.spiking and f"{n}/out" in run:
            out[n] = _flat(run[f"{n}/out"])
    for o in graph.outputs:
        srcs = graph.predecessors(o)
        if len(srcs) == 1 and srcs[0] not in out and graph.nodes[srcs[0]].spiking and o in run:
            out[srcs[0]] = _flat(run[o])
    return out


def spikes_from_state(graph: Graph, run: Mapping[str, np.ndarray], exclude: Mapping[str, Any] = {}
                      ) -> dict[str, np.ndarray]:
    """Spikes of QLIF nodes (without refractory) whose ``u`` and post-reset ``v`` are recorded but
    whose spikes are not (Lava records only u and v), recomputed with the graph's numerics::

        v_pre[t] = profile.lif_voltage(v[t−1], u[t], bias, 4096 − dv)   (v[−1] = 0)
        z[t] = v_pre[t] > vth << 6

    This is the neuron's own spike test applied to the backend's own recorded state."""
    if graph.numerics not in ("loihi", "int8"):   # the QLIF equations below are these profiles'
        return {}
    from neurocc.ir.numerics import get_profile, voltage_decay_factor

    p = get_profile(graph.numerics)
    out: dict[str, np.ndarray] = {}
    for n, node in graph.nodes.items():
        if node.kind != "QLIF" or n in exclude or node.refractory or not {f"{n}/u", f"{n}/v"} <= set(run):
            continue
        u, v = np.asarray(run[f"{n}/u"], np.int64), np.asarray(run[f"{n}/v"], np.int64)
        v_prev = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
        v_pre, _, _ = p.lif_voltage(v_prev, u, p.lif_bias(node.bias_mant, node.bias_exp),
                                    voltage_decay_factor(node.dv))
        out[n] = _flat(v_pre > p.lif_threshold(node.vth))
    return out


def _flat(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return (a.reshape(a.shape[0], a.shape[1], -1) != 0).astype(np.uint8)


def rates(data: ReportData) -> dict[str, dict[str, float]]:
    """backend -> layer -> mean spikes per neuron per step over the whole batch."""
    return {b: {n: float(z.mean()) if z.size else 0.0 for n, z in layers.items()}
            for b, layers in data.spikes.items()}


__all__ = ["Layer", "ReportData", "available_backends", "collect", "layer_spikes", "rates", "spiking_layers",
           "target_of"]
