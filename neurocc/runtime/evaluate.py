"""Accuracy of a deployed network on labelled data: ``neurocc evaluate DIR --data TEST.npz``.

``TEST.npz`` holds ``y`` (samples,): integer labels, and ``x`` in one of two forms:

* static ``(samples, *input shape)`` in the model's own input scale: the artifact applies its
  own input encoding (``manifest.encoding``, :mod:`neurocc.ir.encoding`; constant current for
  ``timesteps`` steps when it has none) — a converted ANN;
* sequences ``(samples, steps, *input shape)``: spikes (0/1) or graded values per step, as a
  snnTorch or tonic data loader yields them batch-first; ``--time-major`` (Python
  ``time_major=True``) reads ``(steps, samples, *input shape)`` instead.

The class is the argmax of the ``--readout`` scores (:mod:`neurocc.runtime.readout`: spike
count, membrane of the last layer, or first spike). The result holds the accuracy, per-class
accuracy and the confusion matrix. Inputs are checked against the artifact
(:mod:`neurocc.runtime.inputs`): a shape no axis order fits is refused; sequences whose lengths
look swapped with the sample axis, or values beyond the calibrated range, warn.

Pipeline latency: where the executed graph delays signals (one step per synapse layer under the
Loihi numerics), the run lasts ``T + L`` steps, ``L`` being the largest total edge delay from an
input to the output: a static input is held ``L`` steps longer, a sequence gets ``L`` steps of
zero input appended, and only the last ``T`` steps are scored, so every backend scores the same
``T``-step window.

Measured cost (``metrics=True``; the CLI's default): on the ``emulator`` (integer graph) and
``reference`` (float graph) backends every batch is run with its node outputs recorded and
:mod:`neurocc.runtime.metrics` counts NeuroBench's metrics over the whole ``T + L``-step run
(synaptic operations as ACs / MACs / skipped, activation and connection sparsity, footprint,
latency) and an energy estimate from the artifact's target figures; other backends execute the
same integer network (exactly, by validation) and report none.
"""
from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc import overflow
from neurocc._files import check_arrays
from neurocc.errors import InputError
from neurocc.ir.encoding import Encoding, encode
from neurocc.ir.graph import Graph
from neurocc.runtime.run import latency
from neurocc.runtime.inputs import axis_hint, input_profiles, range_warnings, warn
from neurocc.runtime.readout import check_readout, confusion, format_confusion, needs_record, scores

FLOAT_BACKENDS = ("reference",)
METRIC_BACKENDS = ("emulator", "reference")   # backends whose recorded run the metrics count
METRIC_BATCH = 64                              # samples per recorded batch (every node's outputs kept)


def load_test_data(data: str | Path | Mapping[str, Any] | tuple[Any, Any], input_shape: tuple[int, ...],
                   time_major: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a TEST.npz path, a mapping with ``x`` and ``y``, or an (x, y) pair, checked.
    Sequences come back batch-major ``(samples, steps, *shape)`` whatever ``time_major`` said."""
    where = "test data"
    if isinstance(data, (str, Path)):
        where = str(data)
        try:
            with np.load(Path(data), allow_pickle=False) as f:
                arrays = check_arrays({k: f[k] for k in f.files}, where)
        except FileNotFoundError:
            raise InputError("test data file not found", where=where, fix="check the --data path") from None
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise InputError(f"cannot read the test data ({err})", where=where,
                             fix="write it with numpy.savez(path, x=inputs, y=labels)") from None
    elif isinstance(data, tuple):
        arrays = dict(zip(("x", "y"), data))
    else:
        arrays = dict(data)
    return _check(arrays, input_shape, where, time_major)


def _check(arrays: Mapping[str, Any], input_shape: tuple[int, ...], where: str,
           time_major: bool = False) -> tuple[np.ndarray, np.ndarray]:
    dims = ", ".join(map(str, input_shape))
    want = f"(samples, {dims})"
    seq = f"(steps, samples, {dims})" if time_major else f"(samples, steps, {dims})"
    problems = [f"key '{k}' is missing: expected {d}" for k, d in
                (("x", f"an array {want} of static inputs or {seq} of spike/graded sequences"),
                 ("y", "an array (samples,) of integer labels")) if k not in arrays]
    x = np.asarray(arrays["x"]) if "x" in arrays else None
    y = np.asarray(arrays["y"]) if "y" in arrays else None
    n = None
    if x is not None:
        static = x.ndim == len(input_shape) + 1 and tuple(x.shape[1:]) == tuple(input_shape)
        sequence = x.ndim == len(input_shape) + 2 and tuple(x.shape[2:]) == tuple(input_shape)
        if x.dtype.kind not in "biuf":
            problems.append(f"key 'x' has dtype {x.dtype}; expected numbers")
        elif not (static or sequence):
            hint = axis_hint(tuple(x.shape), tuple(input_shape), x.ndim - len(input_shape))
            problems.append(f"key 'x' has shape {tuple(x.shape)}; expected {want} (static) or {seq} "
                            "(sequences)" + (f": its axes are in another order ({hint})" if hint else
                                             ": no order of its axes fits the artifact's input"))
        elif not np.all(np.isfinite(x)):
            problems.append("key 'x' contains NaN or infinite values")
        else:
            n = x.shape[1] if (sequence and time_major) else x.shape[0]
    if y is not None:
        if y.ndim != 1 or y.dtype.kind not in "biu":
            problems.append(f"key 'y' has shape {tuple(y.shape)} and dtype {y.dtype}; expected integer labels (samples,)")
        elif n is not None and len(y) != n:
            other = x.shape[0] if time_major else (x.shape[1] if x.ndim == len(input_shape) + 2 else None)
            tip = ("" if other != len(y) else
                   " (x looks " + ("batch-major: drop --time-major" if time_major else "time-major: pass --time-major")
                   + ")")
            problems.append(f"key 'y' has {len(y)} labels but 'x' has {n} samples{tip}")
        elif y.size and y.min() < 0:
            problems.append(f"key 'y' holds negative labels (e.g. {int(y.min())}); expected class indices 0..K-1")
    if not problems and n == 0:
        problems.append("the data set is empty")
    if problems:
        raise InputError("the test data does not fit the artifact", where=where, problems=problems,
                         fix=f"save x {want} (static, in the model's input scale) or {seq} (spikes or graded "
                             "values per step) and y (samples,) integer labels: numpy.savez('TEST.npz', x=x, y=y)")
    if x.ndim == len(input_shape) + 2 and time_major:  # type: ignore[union-attr]
        x = np.swapaxes(x, 0, 1)
    dtype = np.float32 if x.ndim == len(input_shape) + 2 else np.float64  # type: ignore[union-attr]
    return np.asarray(x, dtype), np.asarray(y, np.int64)


def artifact_encoding(manifest: Mapping[str, Any]) -> Encoding:
    """The encoding saved in the manifest, or a constant current for ``manifest.timesteps`` steps."""
    if manifest.get("encoding"):
        return Encoding.from_dict(dict(manifest["encoding"]))
    steps = manifest.get("timesteps")
    if not steps:
        raise InputError("the artifact records no input encoding and no timesteps", where="manifest.json",
                         fix="recompile with `neurocc compile ... --timesteps N`")
    return Encoding("constant", timesteps=int(steps))


def evaluate(artifact_dir: str | Path, data: str | Path | Mapping[str, Any] | tuple[Any, Any],
             backend: str = "emulator", batch_size: int = 256, *, readout: str = "count",
             time_major: bool = False, progress: bool = False,
             device: str | None = None, workers: int | None = None,
             ray_address: str | None = None, on_samples: Callable[[int], None] | None = None,
             metrics: bool = False, float_dtype: str | None = None) -> dict[str, Any]:
    """Accuracy of the artifact on ``backend``: ``{"accuracy", "n", "backend", "readout", "input",
    "per_class", "confusion", "timesteps", "latency_steps", "encoding", "overflow"}``; ``per_class``
    maps label → {"n", "accuracy"}, ``confusion[true][predicted]`` counts samples; ``overflow``: the
    wrap/saturation counts per node over all samples (:mod:`neurocc.overflow`; null for backends that
    do not count them), also issued as warnings. ``x`` is static
    ``(samples, *shape)`` or sequences ``(samples, steps, *shape)`` (``time_major``: ``(steps,
    samples, *shape)``); ``progress`` draws a bar on stderr (the CLI turns it on); ``device``: the emulator's torch
    path and ``float_dtype`` its dtype for float graphs (see :func:`neurocc.runtime.run.run_artifact`); ``metrics``: also ``"metrics"``
    (:meth:`neurocc.runtime.metrics.Metrics.to_dict`, per sample) and ``"energy"`` (an estimate
    from the target's figures) on the emulator and reference backends, else both None;
    ``workers``/``ray_address``: batches of
    ``batch_size`` samples (smaller in parallel) spread over Ray workers
    (:mod:`neurocc.runtime.parallel`; the result is the same for any layout); ``on_samples(n)``:
    called as each batch of ``n`` samples is done (a caller's own progress display)."""
    from neurocc.progress import Step, quiet
    from neurocc.runtime.parallel import Task, chunks, resolve_workers, run_tasks
    from neurocc.runtime.run import as_artifact

    art = as_artifact(artifact_dir)
    spec = art.inputs[0]
    shape = tuple(spec["shape"])
    x, y = load_test_data(data, shape, time_major)
    check_readout(readout)
    sequence = x.ndim == len(shape) + 2
    _warn_inputs(art, x, sequence, time_major)
    graph = art.float_graph if backend in FLOAT_BACKENDS else art.graph
    enc = None if sequence else artifact_encoding(art.manifest)
    window = int(x.shape[1]) if sequence else enc.timesteps  # type: ignore[union-attr]
    lag = latency(graph)
    layout = resolve_workers(workers, [backend], ray_address, len(x), _min_parallel(art, backend, workers))
    want = metrics and backend in METRIC_BACKENDS
    size = int(batch_size) if not want else min(int(batch_size), METRIC_BATCH)
    args = {"enc": enc, "window": window, "lag": lag, "readout": readout, "device": device, "metrics": want,
            "float_dtype": float_dtype}
    tasks = [Task(i, backend, a, b, {"x": x[a:b], **args}) for i, (a, b) in enumerate(chunks(len(x), layout, size, [backend]))]
    counts: overflow.Counts | None = None
    where = f" on {layout.workers} workers" if layout.parallel else ""
    with Step(f"evaluate on {backend}{where}", total=len(x), unit="samples", **quiet(progress)) as step:
        def done(t: Task, _: Any) -> None:
            step.add(t.samples)
            if on_samples is not None:
                on_samples(t.samples)

        parts = run_tasks(art, "neurocc.runtime.evaluate:predict_task", tasks, layout, done)
        for _, events, _ in parts:   # sums: the same in any order
            counts = counts if events is None else overflow.collect(events, counts or {})
        pred = np.concatenate([p for p, _, _ in parts])
        measured = [m for _, _, m in parts if m is not None]
        step.done(f"{np.mean(pred == y) * 100:.2f}% of {len(y)} samples")
    overflow.warn(counts, f"{backend}, evaluate {art.path}")
    per_class = {int(c): {"n": int(np.sum(y == c)), "accuracy": float(np.mean(pred[y == c] == c))}
                 for c in np.unique(y)}
    return {"accuracy": float(np.mean(pred == y)), "n": len(y), "backend": backend, "readout": readout,
            "input": "sequences (samples, steps, *shape)" if sequence else "static (samples, *shape)",
            "per_class": per_class, "confusion": confusion(y, pred).tolist(), "timesteps": window,
            "latency_steps": lag, "encoding": None if enc is None else enc.to_dict(),
            "overflow": overflow.to_json(counts), **_cost(art, measured)}


def _min_parallel(art: Any, backend: str, workers: int | None) -> int:
    """Samples from which ``evaluate`` runs in parallel by default (:func:`.parallel.resolve_workers`)."""
    from neurocc.runtime.parallel import LANES_MIN_PARALLEL_SAMPLES, MIN_PARALLEL_SAMPLES

    if workers is None and backend == "loihi":
        from neurocc.backends.loihi import in_lanes

        if in_lanes(art):
            return LANES_MIN_PARALLEL_SAMPLES
    return MIN_PARALLEL_SAMPLES


def _cost(art: Any, measured: list[Any]) -> dict[str, Any]:
    """``metrics`` and ``energy`` of the recorded batches (None when not measured)."""
    if not measured:
        return {"metrics": None, "energy": None}
    from neurocc.runtime.metrics import merge, target_energy
    from neurocc.targets import Target

    m = merge(measured)
    return {"metrics": m.to_dict(), "energy": target_energy(m, Target.from_dict(art.target_settings)).to_dict()}


def _warn_inputs(art: Any, x: np.ndarray, sequence: bool, time_major: bool) -> None:
    """Warn when sequences look transposed, or values leave the calibrated range."""
    profile = next(iter(input_profiles(art).values()))
    msgs = range_warnings(profile, x, encoded=sequence)
    t = profile.steps
    if sequence and t and x.shape[1] != t and x.shape[0] == t:
        msgs.insert(0, f"x was read as {x.shape[0]} samples of {x.shape[1]} steps, but the artifact was "
                       f"calibrated on {t}-step samples: " + ("drop --time-major (Python: time_major=False)"
                       if time_major else "is x time-major (steps, samples, ...)? Then pass --time-major "
                       "(Python: time_major=True)"))
    warn(msgs)


def predict_task(art: Any, task: Any) -> tuple[np.ndarray, Any, Any]:
    """A :class:`neurocc.runtime.parallel.Task` of :func:`evaluate`: the predictions (and overflow
    counts and measured metrics, when asked) of samples ``task.start .. task.stop - 1``."""
    a = task.args
    graph = art.float_graph if task.backend in FLOAT_BACKENDS else art.graph
    return _predict(art, task.backend, graph, a["x"], a["enc"], a["window"], a["lag"], a["readout"], task.start,
                    a["device"], a.get("metrics", False), a.get("float_dtype"))


def _predict(art: Any, backend: str, graph: Graph, xb: np.ndarray, enc: Encoding | None, window: int,
             lag: int, readout: str, first: int, device: str | None = None, metrics: bool = False,
             float_dtype: str | None = None) -> tuple[np.ndarray, Any, Any]:
    """Predicted classes of one batch, its overflow counts (None when the backend does not count
    them) and its measured :class:`~neurocc.runtime.metrics.Metrics` (``metrics``, else None):
    the run lasts ``window + lag`` steps, the window is scored."""
    from neurocc.runtime.run import run_artifact

    steps = window + lag
    if enc is not None:
        xs = encode(xb, enc, steps, first_index=first)
    else:
        xs = np.swapaxes(xb, 0, 1)
        if lag:
            xs = np.concatenate([xs, np.zeros((lag, *xs.shape[1:]), xs.dtype)])
    name = art.inputs[0]["name"]
    outs = run_artifact(art, backend, {name: xs}, steps=steps, record=metrics or needs_record(graph, readout),
                        warn=False, device=device, float_dtype=float_dtype)
    m = None
    if metrics:
        from neurocc.runtime.metrics import from_traces

        m = from_traces(graph, outs, steps, len(xb), latency_steps=lag)
    return scores(graph, outs, readout, window, backend).argmax(1), outs.overflow, m


def evaluate_artifact(artifact_dir: str | Path, data: Any, backend: str | None = None,
                      batch_size: int = 256, **kw: Any) -> dict[str, Any]:
    """:func:`evaluate` with ``backend=None`` meaning the emulator (``neurocc.evaluate``)."""
    return evaluate(artifact_dir, data, backend=backend or "emulator", batch_size=batch_size, **kw)


def format_evaluation(result: Mapping[str, Any]) -> str:
    """A short human-readable summary of :func:`evaluate`'s result, with the confusion summary."""
    lines = [f"accuracy {result['accuracy'] * 100:.2f}% on {result['n']} samples "
             f"(backend {result['backend']}, readout {result.get('readout', 'count')}, "
             f"{result.get('timesteps', '?')} timesteps"
             + (f" + {result['latency_steps']} latency" if result.get("latency_steps") else "") + ")"]
    per = result.get("per_class") or {}
    if per:
        lines.append("per class: " + ", ".join(f"{c}: {v['accuracy'] * 100:.1f}% ({v['n']})" for c, v in per.items()))
    if result.get("confusion"):
        lines += format_confusion(np.asarray(result["confusion"]))
    if result.get("metrics"):
        from neurocc.runtime.metrics import EnergyEstimate, Metrics, format_metrics

        e = result.get("energy")
        lines.append(format_metrics(Metrics.from_dict(result["metrics"]), EnergyEstimate.from_dict(e) if e else None))
    return "\n".join(lines)
