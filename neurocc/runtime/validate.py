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

This module chooses the inputs and runs the backends; the judging is :mod:`neurocc.runtime.judge`,
the JSON file and the text table :mod:`neurocc.runtime.validate_format` (their public names are
importable from here too).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc import overflow
from neurocc.errors import InputError, NeuroccError
from neurocc.ir.artifact import Artifact
from neurocc.runtime.judge import (  # noqa: F401  (re-exported)
    QUANT_MIN_COSINE,
    _judge,
    _result,
    compare_runs,
    latency,
    readout_outputs,
)
from neurocc.runtime.run import (
    DEVICE_BACKENDS,
    RunOutputs,
    as_artifact,
    check_inputs,
    join_batches,
    run_artifact,
)
from neurocc.runtime.validate_format import format_validation, write_json  # noqa: F401  (re-exported)

DEFAULT_STEPS = 100      # steps of random input when the artifact names no timesteps
DEFAULT_SAMPLES = 4      # random input samples when neither inputs nor samples are given
DEFAULT_RATE = 0.1       # spike probability per input element per step for random inputs
PAYLOAD_MAX = 255        # random graded payloads of an imported integer model: 0..255
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

    if backends:
        check_names(list(backends), where="--backends")
    art = as_artifact(artifact_dir)
    names = [b for b in (list(backends) if backends else default_backends(art)) if b != "reference"]
    origin = "input file"
    if inputs is None:
        inputs, origin = sample_inputs(art, samples or DEFAULT_SAMPLES, seed=seed)
    checked, steps, batch = check_inputs(art, inputs)
    order = list({n: None for n in names + [_judge(art, n)[0] for n in names]})
    runs = _run_backends(art, order, checked, steps, batch, device=device, workers=workers,
                         ray_address=ray_address, batch_size=batch_size, progress=progress)
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


def _run_backends(art: Artifact, order: list[str], checked: Mapping[str, np.ndarray], steps: int, batch: int, *,
                  device: str | None, workers: int | None, ray_address: str | None, batch_size: int | None,
                  progress: bool) -> dict[str, RunOutputs | NeuroccError]:
    """Per backend in ``order``, its recorded run on every sample (its batches joined), or the
    NeuroccError that stopped it; batches spread over Ray workers as the layout says."""
    from neurocc.progress import Step, quiet
    from neurocc.runtime.parallel import Task, chunks, resolve_workers, run_tasks

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
    return runs


def run_task(art: Artifact, task: Any) -> RunOutputs | NeuroccError:
    """A :class:`neurocc.runtime.parallel.Task` of :func:`validate_artifact`: the recorded run of
    one backend on one batch of samples, or the NeuroccError that stopped it (judged later)."""
    try:
        return run_artifact(art, task.backend, task.args["inputs"], record=True, device=task.args["device"],
                            warn=False)
    except NeuroccError as err:
        return err
