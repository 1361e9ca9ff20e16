"""Validate an artifact: run backends on the same inputs and judge each against its reference.

``neurocc validate DIR --backends a,b [--input X.npz | --samples N] [--json REPORT.json]`` writes
``DIR/validation.json`` (or ``--json``)::

    {"artifact": DIR, "target": NAME, "inputs": {"source", "steps", "batch"}, "results": [
       {"backend", "reference", "rule", "min_cosine", "exact", "compared", "mismatches",
        "cosine", "cosine_per_layer", "first_divergence", "first_divergence_class",
        "first_divergence_explanation", "passed",
        "rate_per_layer", "spike_count_error", "class_agreement", "lag", "error",
        "readouts", "weights", "reason", "overflow_cause"}],
     "overflow": {node: {event: count}} | null}

``readouts``: per graded output (a non-spiking source: LI/CubaLI membranes) ``{"compared",
"mismatches", "relative_error", "cosine", "rule", "limit", "passed"}``, the integer readout in
float units (``float_per_lsb``) against the reference, every step; judged bit for bit under the
``exact`` rule, else by the target's ``readout_rule`` (targets.yaml). ``compared`` counts every
element judged (spikes, readouts, recorded state); a result over 0 elements never passes
(``reason`` says why a result failed). ``overflow``: the emulator run's wrap/saturation counts
per node (:mod:`neurocc.overflow`; null when the emulator did not run), also issued as warnings;
``overflow_cause`` names them as the likely cause of a failed result. ``weights`` (plastic
synapses only): per node the learned weights' verdict, exact against the emulator, else by the
stated measures of :mod:`neurocc.runtime.learned` (Δw cosine; for spinnaker also a replay of the
PyNN rule on the simulator's own spikes).

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

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc import overflow
from neurocc._files import write_bytes_atomic
from neurocc.errors import InputError, NeuroccError
from neurocc.ir.artifact import Artifact
from neurocc.ir.graph import Graph
from neurocc.runtime import compare
from neurocc.runtime.run import DEVICE_BACKENDS, RunOutputs, as_artifact, check_inputs, join_batches, run_artifact
from neurocc.targets import Validation

DEFAULT_STEPS = 100      # steps of random input when the artifact names no timesteps
DEFAULT_SAMPLES = 4      # random input samples when neither inputs nor samples are given
DEFAULT_RATE = 0.1       # spike probability per input element per step for random inputs
PAYLOAD_MAX = 255        # random graded payloads of an imported integer model: 0..255
QUANT_MIN_COSINE = 0.9   # emulator vs reference: mean-activity cosine a default-scaled model must reach
VALIDATION_FILE = "validation.json"


def default_backends(art: Artifact) -> list[str]:
    """``emulator`` plus the target's own backend when its module is available."""
    import importlib.util

    from neurocc.backends import REGISTRY

    names = ["emulator"]
    b = art.target_settings.get("backend")
    if art.float_graph is not None and art.float_graph.numerics is not None:
        # an imported integer model without a float form (netx sigma-delta): the emulator is the
        # reference, so check the exact ONNX lowering against it
        return [b] if b and b != "emulator" else ["edge-cpu"]
    if b and b not in names and b in REGISTRY and importlib.util.find_spec(REGISTRY[b]) is not None:
        names.append(b)
    return names


def random_inputs(art: Artifact, samples: int, steps: int | None = None, seed: int = 0,
                  rate: float = DEFAULT_RATE) -> dict[str, np.ndarray]:
    """Seeded random inputs: 0/1 spikes at ``rate``; graded inputs uniform in [0, 1), or, for an
    imported integer model (a netx file: no quantization report, so no input scale), integer
    payloads uniform in 0..:data:`PAYLOAD_MAX` (an 8-bit frame, as PilotNet's)."""
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InputError(f"samples must be a positive integer, got {samples!r}", where="--samples",
                         fix="pass --samples N with N >= 1")
    steps = int(steps or art.manifest.get("timesteps") or DEFAULT_STEPS)
    rng = np.random.default_rng(seed)
    out = {}
    for i in art.inputs:
        shape = (steps, int(samples), *i["shape"])
        x = rng.random(shape)
        if i.get("values") == "graded" and art.quantization is None and art.graph.numerics is not None:
            x = np.floor(x * (PAYLOAD_MAX + 1))
        out[i["name"]] = (x if i.get("values") == "graded" else x < rate).astype(np.float32)
    return out


def sample_inputs(art: Artifact, samples: int, seed: int = 0) -> tuple[dict[str, np.ndarray], str]:
    """``samples`` inputs and where they came from: the first samples of the calibration data the
    artifact keeps (static samples go through the artifact's input encoding), else seeded random
    spike trains at the calibration data's spike rate, else at :data:`DEFAULT_RATE`."""
    from neurocc._files import read_npz

    doc = art.manifest.get("calibration_sample")
    if not doc:
        payloads = any(i.get("values") == "graded" for i in art.inputs) and art.quantization is None \
            and art.graph.numerics is not None
        what = f"integer payloads 0..{PAYLOAD_MAX}" if payloads else f"spikes, rate {DEFAULT_RATE}"
        return random_inputs(art, samples, seed=seed), f"random {what}, seed {seed}"
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
    return graph.input_delays()


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


def readout_outputs(graph: Graph) -> list[str]:
    """Graph outputs that carry graded values (a non-spiking source: LI/CubaLI membranes, Affine)."""
    return [o for o in graph.outputs if graph.predecessors(o)
            and not all(graph.nodes[p].spiking for p in graph.predecessors(o))]


def _readout_rule(art: Artifact) -> Validation:
    """The target's validation settings (its readout rule), from the artifact's manifest."""
    fields = {f.name for f in dataclasses.fields(Validation)}
    settings = art.target_settings.get("validation", {}) or {}
    return Validation(**{k: v for k, v in settings.items() if k in fields})


def _readouts(art: Artifact, graph: Graph, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
              lags: Mapping[str, int], exact: bool) -> dict[str, dict[str, Any]]:
    """Per graded readout: elements compared, relative error, trace cosine, the rule and its verdict.
    ``exact`` comparisons judge readouts bit for bit; others by the target's readout rule."""
    val = _readout_rule(art)
    out: dict[str, dict[str, Any]] = {}
    for o in readout_outputs(graph):
        if o not in expected or o not in got:
            continue
        e, g = compare.align(_float_units(art, o, expected[o]), _float_units(art, o, got[o]), lags.get(o, 0))
        err, cos = compare.relative_error(e, g), compare.trace_cosine(e, g)
        if exact:
            rule, limit, ok = "exact", None, bool(np.array_equal(expected[o], got[o]))
        elif val.readout_rule == "cosine":
            rule, limit = "cosine", val.readout_limit()
            ok = cos >= limit
        else:
            rule, limit = "relative_error", val.readout_limit()
            ok = err <= limit
        out[o] = {"compared": int(e.size), "mismatches": int(np.count_nonzero(e != g)), "relative_error": err,
                  "cosine": cos, "rule": rule, "limit": limit, "passed": bool(ok and e.size > 0)}
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
                 float_vs_int: bool, exact: bool = True, backend: str = "") -> dict[str, Any]:
    """The comparison fields of one result (see the module docstring); ``exact``: the rule is
    ``exact`` (readouts judged bit for bit), else readouts follow the target's readout rule."""
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
    weights = _learned_weights(art, comp_e, comp_g)
    if float_vs_int:   # learned weights across the float/int divide: a stated measure, not equality
        from neurocc.runtime import learned

        weights = learned.judge(art, backend, expected, got)
    diffs = [compare.exact_diff(comp_e[k], comp_g[k]) for k in comp_e]
    compared, mismatches = sum(d["compared"] for d in diffs), sum(d["mismatches"] for d in diffs)
    compared += sum(w["compared"] for w in weights.values())
    mismatches += sum(w["mismatches"] for w in weights.values())
    readouts = _readouts(art, graph, expected, got, lags, exact=exact and not float_vs_int)
    if float_vs_int:   # readouts are not in comp_e there: count their elements too
        compared += sum(r["compared"] for r in readouts.values())
        mismatches += sum(r["mismatches"] for r in readouts.values())
    cos = (float(np.mean(list(per_layer.values()))) if per_layer else
           float(np.mean([compare.activity_cosine(*p) for p in pairs.values()])) if pairs else None)
    first, cls, why = _first_divergence(graph, comp_e, comp_g, float_vs_int)
    o0 = next(iter(pairs.values()), None)
    return {"exact": mismatches == 0 and compared > 0, "compared": compared, "mismatches": mismatches,
            "cosine": cos, "cosine_per_layer": per_layer, "rate_per_layer": rates, "first_divergence": first,
            "first_divergence_class": cls, "first_divergence_explanation": why,
            "spike_count_error": compare.spike_count_error(*o0) if o0 else None,
            "class_agreement": compare.class_agreement(*o0) if o0 else None,
            "lag": {k: v for k, v in lags.items() if v and k in set(outs) | set(per_layer)}, "readouts": readouts,
            **({"weights": weights} if weights else {})}


def _learned_weights(art: Artifact, expected: dict, got: dict) -> dict[str, Any]:
    """Plastic synapses' weights after the run (``<node>/w``, (batch, post, pre)), compared
    exactly and moved out of ``expected``/``got`` (they are not time-major); their elements
    count in ``compared``/``mismatches`` through the returned ``diff`` entries."""
    out: dict[str, Any] = {}
    for k in [k for k in expected if k.endswith("/w") and k in got]:
        node = art.graph.nodes.get(k[:-2])
        if node is None or not getattr(node, "plastic", False):
            continue
        a, b = np.asarray(expected.pop(k), np.int64), np.asarray(got.pop(k), np.int64)
        same = a.shape == b.shape
        out[k[:-2]] = {"compared": int(a.size), "mismatches": int(np.count_nonzero(a != b)) if same else int(a.size),
                       "max_abs_diff": int(np.abs(a - b).max(initial=0)) if same else None}
    return out


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
                       first_divergence=None, first_divergence_class=None, readouts={},
                       first_divergence_explanation=None, passed=False, error=f"backend '{name}' failed: {r}",
                       reason=f"backend '{name}' failed", overflow_cause=None)
            return res
    float_vs_int = art.graph.numerics is not None and (ref == "reference") != (backend == "reference")
    res.update(compare_runs(art, expected, got, float_vs_int, exact=rule == "exact", backend=backend))
    passed, reason = _verdict(res, rule, min_cos)
    res["passed"], res["reason"], res["error"] = passed, reason, None
    counts = getattr(runs.get("emulator"), "overflow", None)
    res["overflow_cause"] = None if passed else overflow.cause(counts)
    if float_vs_int and not passed and backend != "emulator" and not res.get("first_divergence_class"):
        from neurocc.runtime.float_cause import likely_cause
        from neurocc.runtime.learned import divergence_cause

        cause = (divergence_cause(backend, res) if res.get("weights") else
                 likely_cause(art.float_graph, backend, res, expected, got))
        if cause:
            res["first_divergence_class"], res["first_divergence_explanation"] = cause
    return res


def _verdict(res: Mapping[str, Any], rule: str, min_cos: float | None) -> tuple[bool, str | None]:
    """(passed, why not): never passed over 0 compared elements; ``exact``: no mismatch;
    ``cosine``: spiking layers' mean-activity cosine >= min_cos and every readout within its rule."""
    if not res["compared"]:
        return False, ("0 elements compared: the runs share no spiking layer, graded readout or recorded "
                       "state, so nothing was judged")
    if rule == "exact":
        ok = res["mismatches"] == 0
        return ok, None if ok else f"{res['mismatches']} of {res['compared']} elements differ (rule exact)"
    why = []
    cos, readouts = res["cosine"], res.get("readouts") or {}
    if (res["cosine_per_layer"] or not readouts) and (cos is None or cos < (min_cos or 0)):
        why.append(f"mean-activity cosine {'-' if cos is None else f'{cos:.4f}'} < {min_cos}")
    from neurocc.runtime.learned import failures

    why += failures(res.get("weights") or {})
    for o, r in readouts.items():
        if not r["passed"]:
            got = r["relative_error"] if r["rule"] == "relative_error" else r["cosine"]
            op = ">" if r["rule"] == "relative_error" else "<"
            why.append(f"readout '{o}': {r['rule'].replace('_', ' ')} {got:.4g} {op} {r['limit']:g}")
    return not why, "; ".join(why) or None


def validate_artifact(artifact_dir: Artifact | str | Path, backends: Sequence[str] | None = None,
                      inputs: Mapping[str, np.ndarray] | None = None, samples: int | None = None,
                      json_path: str | Path | None = None, seed: int = 0, progress: bool = False,
                      device: str | None = None, source: Any = None, workers: int | None = None,
                      ray_address: str | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """Run and judge ``backends`` (default: :func:`default_backends`); write and return the report.
    Unknown backend names are refused before anything runs; ``progress``: a bar on stderr;
    ``device``: the emulator and reference run on the torch path (other backends as always);
    ``source`` (a :class:`neurocc.runtime.source.Source`) adds a ``source`` row: the trained model
    run in its own framework against the ``reference`` backend (docs/source-check.md);
    ``workers``/``ray_address``/``batch_size``: each backend's samples in batches spread over Ray
    workers (:mod:`neurocc.runtime.parallel`; the report is the same for any layout)."""
    from neurocc.backends import check_names
    from neurocc.progress import Step, quiet
    from neurocc.runtime.parallel import Task, chunks, resolve_workers, run_tasks

    if backends:
        check_names(list(backends), where="--backends")
    art = as_artifact(artifact_dir)
    names = [b for b in (list(backends) if backends else default_backends(art)) if b != "reference"]
    origin = "input file"
    if inputs is None:
        inputs, origin = sample_inputs(art, samples or DEFAULT_SAMPLES, seed=seed)
    checked, steps, batch = check_inputs(art, inputs)
    order = list({n: None for n in names + [_judge(art, n)[0] for n in names]})
    layout = resolve_workers(workers, order, ray_address, batch)
    ranges = chunks(batch, layout, batch_size, order)
    tasks = [Task(len(ranges) * k + i, b, lo, hi, {"inputs": {n: v[:, lo:hi] for n, v in checked.items()},
                                                   "device": device if b in DEVICE_BACKENDS else None})
             for k, b in enumerate(order) for i, (lo, hi) in enumerate(ranges)]
    with Step("validate", total=batch * len(order), unit="sample runs", **quiet(progress)) as step:
        step.note(f"{', '.join(order)} on {batch} sample(s) x {steps} steps"
                  + (f", {layout.workers} workers" if layout.parallel else ""))
        parts = run_tasks(art, "neurocc.runtime.validate:run_task", tasks, layout, lambda t, _: step.add(t.samples))
        runs = {b: join_batches(parts[len(ranges) * k: len(ranges) * (k + 1)]) for k, b in enumerate(order)}
        step.done(f"ran {', '.join(order)} on {batch} sample(s) x {steps} steps")
    counts = getattr(runs.get("emulator"), "overflow", None)
    overflow.warn(counts, f"emulator, validate {art.path}")
    doc = {"artifact": str(art.path), "target": art.target,
           "inputs": {"source": origin, "steps": steps, "batch": batch},
           "results": [_result(art, b, runs) for b in names], "overflow": overflow.to_json(counts)}
    if source is not None:
        from neurocc.runtime.source import validation_row

        doc["results"].append(validation_row(art, source, checked))
    write_json(Path(json_path) if json_path else art.path / VALIDATION_FILE, doc)
    return doc


def run_task(art: Artifact, task: Any) -> RunOutputs | NeuroccError:
    """A :class:`neurocc.runtime.parallel.Task` of :func:`validate_artifact`: the recorded run of
    one backend on one batch of samples, or the NeuroccError that stopped it (judged later)."""
    try:
        return run_artifact(art, task.backend, task.args["inputs"], record=True, device=task.args["device"],
                            warn=False)
    except NeuroccError as err:
        return err


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
        for o, ro in (r.get("readouts") or {}).items():
            if ro["rule"] != "exact" or not ro["passed"]:
                lim = "" if ro["limit"] is None else (f" (<= {ro['limit']:g})" if ro["rule"] == "relative_error"
                                                      else f" (cosine >= {ro['limit']:g})")
                lines.append(f"  readout '{o}' ({r['backend']} vs {r['reference']}, {ro['compared']} values): relative "
                             f"error {ro['relative_error']:.4g}{lim if ro['rule'] == 'relative_error' else ''}, "
                             f"cosine {ro['cosine']:.4f}{lim if ro['rule'] == 'cosine' else ''}: "
                             f"{'PASS' if ro['passed'] else 'FAIL'}")
        from neurocc.runtime.learned import format_lines

        lines += format_lines(r)
        if not r["passed"] and r.get("reason") and not r.get("error"):
            lines.append(f"  {r['backend']} failed: {r['reason']}")
        if r.get("overflow_cause"):
            lines.append(f"    likely cause [overflow]: {r['overflow_cause']}")
        if r.get("class_agreement") is not None and r["backend"] == "emulator":
            sce = r.get("spike_count_error") or {}
            lines.append(f"  quantization: class agreement {r['class_agreement']:.3f}, output error "
                         f"{sce.get('mean_abs', 0):.3g} per neuron (mean absolute, float model units)")
    return "\n".join(lines)
