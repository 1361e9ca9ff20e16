"""Validate an artifact: run backends on the same inputs and judge each against its reference.

``neurocc validate DIR --backends a,b [--input X.npz | --samples N] [--json REPORT.json]`` writes
``DIR/validation.json`` (or ``--json``)::

    {"artifact": DIR, "target": NAME, "inputs": {"source", "steps", "batch"}, "results": [
       {"backend", "reference", "rule", "min_cosine", "exact", "compared", "mismatches",
        "cosine", "cosine_per_layer", "first_divergence", "first_divergence_class",
        "first_divergence_explanation", "passed",
        "rate_per_layer", "spike_count_error", "class_agreement", "lag", "error"}]}

Who is judged against whom:

* a backend of a target whose validation rule is ``exact`` (integer: loihi, edge-cpu int8) is
  compared with the ``emulator`` element for element, outputs and recorded state alike;
* a backend of a ``cosine`` target (float simulators: spinnaker on NEST/brian2, edge-cpu-f32)
  is compared with the float ``reference`` by mean-activity cosine (``min_cosine`` of the target);
* the ``emulator`` itself is compared with the ``reference``: that is the **quantization
  agreement** (cosine, spike-count error, classification agreement on output spike counts),
  passed when the cosine is at least :data:`QUANT_MIN_COSINE`. For a float32 artifact the two
  run the same graph and must agree exactly.

With a source model (``--source MODEL``), a ``source`` row judges the trained model run in its own
framework against the ``reference`` (rule ``source``: spikes exact, states within a float32
tolerance, ties at the threshold allowed; :mod:`neurocc.runtime.source`).

Integer graphs for Loihi add one step per Dense (``lag``, from the edge delays of the two graphs);
float-versus-integer comparisons drop that latency before comparing (:func:`compare.align`).
"""
from __future__ import annotations

import heapq
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import write_bytes_atomic
from neurocc.errors import InputError, NeuroccError
from neurocc.ir.artifact import Artifact
from neurocc.ir.graph import Graph
from neurocc.runtime import compare
from neurocc.runtime.run import as_artifact, check_inputs, run_artifact

DEFAULT_STEPS = 100      # steps of random input when the artifact names no timesteps
DEFAULT_SAMPLES = 4      # random input samples when neither inputs nor samples are given
DEFAULT_RATE = 0.1       # spike probability per input element per step for random inputs
QUANT_MIN_COSINE = 0.9   # emulator vs reference: mean-activity cosine a default-scaled model must reach
VALIDATION_FILE = "validation.json"


def default_backends(art: Artifact) -> list[str]:
    """``emulator`` plus the target's own backend when its module is available."""
    import importlib.util

    from neurocc.backends import REGISTRY

    names = ["emulator"]
    b = art.target_settings.get("backend")
    if b and b not in names and b in REGISTRY and importlib.util.find_spec(REGISTRY[b]) is not None:
        names.append(b)
    return names


def random_inputs(art: Artifact, samples: int, steps: int | None = None, seed: int = 0,
                  rate: float = DEFAULT_RATE) -> dict[str, np.ndarray]:
    """Seeded random inputs: 0/1 spikes at ``rate`` (graded inputs: uniform [0, 1))."""
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InputError(f"samples must be a positive integer, got {samples!r}", where="--samples",
                         fix="pass --samples N with N >= 1")
    steps = int(steps or art.manifest.get("timesteps") or DEFAULT_STEPS)
    rng = np.random.default_rng(seed)
    out = {}
    for i in art.inputs:
        shape = (steps, int(samples), *i["shape"])
        x = rng.random(shape)
        out[i["name"]] = (x if i.get("values") == "graded" else x < rate).astype(np.float32)
    return out


def sample_inputs(art: Artifact, samples: int, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """``samples`` inputs and where they came from: the first samples of the calibration data the
    artifact keeps (static samples go through the artifact's input encoding), else seeded random
    spike trains at the calibration data's spike rate, else at :data:`DEFAULT_RATE`."""
    from neurocc._files import read_npz

    doc = art.manifest.get("calibration_sample")
    if not doc:
        return random_inputs(art, samples, seed=seed), f"random spikes, rate {DEFAULT_RATE}, seed {seed}"
    data = read_npz(Path(art.path) / doc["file"], "calibration sample")
    x = {i["name"]: data[i["name"]] for i in art.inputs}
    have = int(doc["samples"])
    if samples > have:
        raise InputError(f"--samples {samples} asks for more samples than the artifact keeps ({have})",
                         where=str(art.path), fix=f"pass --samples {have} or fewer, or --input X.npz")
    if doc["static"]:
        from neurocc.ir.encoding import Encoding, encode

        enc = Encoding.from_dict(art.manifest["encoding"])
        x = {k: encode(v[:samples], enc).astype(np.float32) for k, v in x.items()}
        return x, f"{samples} calibration samples, {enc.kind} encoding, {enc.timesteps} steps"
    return ({k: v[:, :samples] for k, v in x.items()},
            f"{samples} calibration samples ({next(iter(x.values())).shape[0]} steps)")


def latency(graph: Graph) -> dict[str, int]:
    """Fewest steps from any Input to each node (sum of edge delays on the shortest path)."""
    dist = {n: 0 for n in graph.inputs}
    heap = [(0, n) for n in graph.inputs]
    while heap:
        d, n = heapq.heappop(heap)
        if d > dist.get(n, math.inf):
            continue
        for e in graph.out_edges(n):
            if d + e.delay < dist.get(e.dst, math.inf):
                dist[e.dst] = d + e.delay
                heapq.heappush(heap, (d + e.delay, e.dst))
    return dist


def _spiking_layers(graph: Graph, run: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Spike arrays of the spiking nodes found in ``run`` (as ``<node>/out``, ``<node>`` or an Output
    fed only by that node)."""
    out: dict[str, np.ndarray] = {}
    for n, node in graph.nodes.items():
        if not node.spiking:
            continue
        for key in (f"{n}/out", n, f"{n}/z"):
            if key in run:
                out[n] = run[key]
                break
    for o in graph.outputs:
        srcs = graph.predecessors(o)
        if len(srcs) == 1 and srcs[0] in out:
            continue
        if len(srcs) == 1 and graph.nodes[srcs[0]].spiking and o in run:
            out[srcs[0]] = run[o]
    return out


def _judge(art: Artifact, backend: str) -> tuple[str, str, float | None]:
    """(reference backend, rule, min_cosine) for ``backend`` of this artifact."""
    settings = art.target_settings.get("validation", {}) or {}
    if backend == "emulator":
        if art.graph.numerics is None:
            return "reference", "exact", None
        return "reference", "cosine", QUANT_MIN_COSINE
    if settings.get("rule", "exact") == "exact":
        return "emulator", "exact", None
    return "reference", "cosine", float(settings.get("min_cosine") or 0.99)


def compare_runs(art: Artifact, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                 float_vs_int: bool) -> dict[str, Any]:
    """The comparison fields of one result (see the module docstring)."""
    graph = art.float_graph if float_vs_int else art.graph
    lags = {}
    if float_vs_int:
        li, lf = latency(art.graph), latency(art.float_graph)
        lags = {n: li.get(n, 0) - lf.get(n, 0) for n in art.graph.nodes}
    exp_l, got_l = _spiking_layers(graph, expected), _spiking_layers(graph, got)
    per_layer: dict[str, float] = {}
    rates: dict[str, list[float]] = {}  # mean spikes per neuron per step: [expected, got]
    for n in exp_l:
        if n in got_l:
            a, b = compare.align(exp_l[n], got_l[n], lags.get(n, 0))
            per_layer[n] = compare.activity_cosine(a, b)
            rates[n] = [float(np.mean(a)) if a.size else 0.0, float(np.mean(b)) if b.size else 0.0]
    outs = [o["name"] for o in art.outputs]
    pairs = {o: compare.align(_float_units(art, o, expected[o]), _float_units(art, o, got[o]), lags.get(o, 0))
             for o in outs if o in expected and o in got}
    if float_vs_int:   # only spikes are comparable element by element across the float/int divide
        aligned = {n: compare.align(exp_l[n], got_l[n], lags.get(n, 0)) for n in exp_l if n in got_l}
        comp_e = {n: a for n, (a, _) in aligned.items()}
        comp_g = {n: b for n, (_, b) in aligned.items()}
    else:
        common = sorted(set(expected) & set(got))
        comp_e, comp_g = {k: expected[k] for k in common}, {k: got[k] for k in common}
    diffs = [compare.exact_diff(comp_e[k], comp_g[k]) for k in comp_e]
    compared, mismatches = sum(d["compared"] for d in diffs), sum(d["mismatches"] for d in diffs)
    cos = (float(np.mean(list(per_layer.values()))) if per_layer else
           float(np.mean([compare.activity_cosine(*p) for p in pairs.values()])) if pairs else None)
    first, cls, why = _first_divergence(graph, comp_e, comp_g, float_vs_int)
    o0 = next(iter(pairs.values()), None)
    return {"exact": mismatches == 0 and compared > 0, "compared": compared, "mismatches": mismatches,
            "cosine": cos, "cosine_per_layer": per_layer, "rate_per_layer": rates, "first_divergence": first,
            "first_divergence_class": cls, "first_divergence_explanation": why,
            "spike_count_error": compare.spike_count_error(*o0) if o0 else None,
            "class_agreement": compare.class_agreement(*o0) if o0 else None,
            "lag": {k: v for k, v in lags.items() if v and k in set(outs) | set(per_layer)}}


def _float_units(art: Artifact, output: str, values: np.ndarray) -> np.ndarray:
    """An integer readout (a non-spiking output's state) in the float model's units, using the
    quantization report's ``float_per_lsb``; spikes and float values are returned unchanged."""
    info = ((art.quantization or {}).get("outputs") or {}).get(output) or {}
    if values.dtype.kind in "iu" and info.get("values") == "state" and info.get("float_per_lsb"):
        return values * float(info["float_per_lsb"])
    return values


def _first_divergence(graph: Graph, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                      float_vs_int: bool) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(first_divergence, its class, explanation). Runs of one graph go through the localiser
    (:mod:`neurocc.runtime.divergence`); float-versus-integer runs differ by design (quantization),
    so there only the first differing spike is named, without a class."""
    if float_vs_int:
        return compare.first_divergence(expected, got, graph.order()), None, None
    from neurocc.runtime.divergence import localise

    d = localise(expected, got, graph)
    return (None, None, None) if d is None else (d.contract(), d.cls, d.explanation)


def _result(art: Artifact, backend: str, runs: dict[str, Any]) -> dict[str, Any]:
    ref, rule, min_cos = _judge(art, backend)
    res: dict[str, Any] = {"backend": backend, "reference": ref, "rule": rule, "min_cosine": min_cos}
    got, expected = runs.get(backend), runs.get(ref)
    for name, r in ((backend, got), (ref, expected)):
        if isinstance(r, NeuroccError):
            res.update(exact=False, compared=0, mismatches=0, cosine=None, cosine_per_layer={},
                       first_divergence=None, first_divergence_class=None,
                       first_divergence_explanation=None, passed=False, error=f"backend '{name}' failed: {r}")
            return res
    float_vs_int = art.graph.numerics is not None and (ref == "reference") != (backend == "reference")
    res.update(compare_runs(art, expected, got, float_vs_int))
    res["passed"] = bool(res["exact"] if rule == "exact" else (res["cosine"] is not None and res["cosine"] >= min_cos))
    res["error"] = None
    return res


def validate_artifact(artifact_dir: Artifact | str | Path, backends: Sequence[str] | None = None,
                      inputs: Mapping[str, np.ndarray] | None = None, samples: int | None = None,
                      json_path: str | Path | None = None, seed: int = 0, source: Any = None) -> dict[str, Any]:
    """Run and judge ``backends`` (default: :func:`default_backends`); write and return the report.
    ``source`` (a :class:`neurocc.runtime.source.Source`) adds a ``source`` row: the trained model
    run in its own framework against the ``reference`` backend (docs/source-check.md)."""
    art = as_artifact(artifact_dir)
    names = [b for b in (list(backends) if backends else default_backends(art)) if b != "reference"]
    origin = "input file"
    if inputs is None:
        inputs, origin = sample_inputs(art, samples or DEFAULT_SAMPLES, seed=seed)
    checked, steps, batch = check_inputs(art, inputs)
    runs: dict[str, Any] = {}
    for b in {n: None for n in names + [_judge(art, n)[0] for n in names]}:
        try:
            runs[b] = run_artifact(art, b, checked, record=True)
        except NeuroccError as err:
            runs[b] = err
    doc = {"artifact": str(art.path), "target": art.target,
           "inputs": {"source": origin, "steps": steps, "batch": batch},
           "results": [_result(art, b, runs) for b in names]}
    if source is not None:
        from neurocc.runtime.source import validation_row

        doc["results"].append(validation_row(art, source, checked))
    write_json(Path(json_path) if json_path else art.path / VALIDATION_FILE, doc)
    return doc


def write_json(path: Path, doc: Any) -> Path:
    """Atomic JSON write (non-finite floats become null)."""
    return write_bytes_atomic(path, (json.dumps(_finite(doc), indent=1) + "\n").encode())


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def format_validation(result: Mapping[str, Any]) -> str:
    """The validation report as a text table (what ``neurocc validate`` prints)."""
    inp = result.get("inputs", {})
    lines = [f"validation of {result['artifact']} (target {result['target']}): "
             f"{inp.get('batch', '?')} sample(s) x {inp.get('steps', '?')} steps, {inp.get('source', '')}",
             f"{'backend':<10} {'reference':<10} {'rule':<13} {'exact':<6} {'mismatches':>22} {'cosine':>8}  passed"]
    for r in result["results"]:
        rule = r["rule"] if r["rule"] in ("exact", "source") else f"cosine>={r['min_cosine']:.2f}"
        cos = "-" if r.get("cosine") is None else f"{r['cosine']:.4f}"
        mm = f"{r.get('mismatches', 0)}/{r.get('compared', 0)}"
        lines.append(f"{r['backend']:<10} {r['reference']:<10} {rule:<13} {'yes' if r.get('exact') else 'no':<6} "
                     f"{mm:>22} {cos:>8}  {'PASS' if r['passed'] else 'FAIL'}")
    for r in result["results"]:
        if r.get("error"):
            lines.append(f"  {r['backend']}: {r['error']}")
        fd = r.get("first_divergence")
        if fd and (r["rule"] in ("exact", "source") or not r["passed"]):
            lines.append(f"  first divergence ({r['backend']} vs {r['reference']}): node '{fd['node']}' var "
                         f"{fd['var']} step {fd['step']} index {fd['index']}: expected {fd['expected']}, got {fd['got']}")
            if r["backend"] == "source" and r.get("first_divergence_explanation"):
                lines.append(f"    likely cause: {r['first_divergence_explanation']}")
            if r.get("first_divergence_class"):
                lines.append(f"    likely cause [{r['first_divergence_class']}]: {r.get('first_divergence_explanation')}")
        if r.get("class_agreement") is not None and r["backend"] == "emulator":
            sce = r.get("spike_count_error") or {}
            lines.append(f"  quantization: class agreement {r['class_agreement']:.3f}, output error "
                         f"{sce.get('mean_abs', 0):.3g} per neuron (mean absolute, float model units)")
    return "\n".join(lines)
