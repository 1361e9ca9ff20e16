"""Run a compiled artifact on a backend: ``neurocc run DIR --backend B --input X.npz --output Y.npz``.

Inputs are checked against the artifact's manifest before any backend starts: every graph input
present (no unknown keys), time-major ``(steps, batch, *shape)`` with the input's shape, one
``steps`` and ``batch`` for all inputs, numeric and finite, and 0/1 where the input carries
spikes. Graded inputs of an integer artifact are converted to integers here, once, as
``rint(x · int_per_float)`` (``manifest.inputs[i].int_per_float``); the ``reference`` backend
gets the float values. Backends come from :func:`neurocc.backends.get_backend`: ``emulator``
executes the artifact's integer graph, ``reference`` its discretised float graph.

:func:`run_artifact` returns a :class:`RunOutputs` (a dict of arrays) whose ``overflow`` holds
the wrap/saturation counts per node of a backend that counts them (the emulator: see
:mod:`neurocc.overflow`), None for backends that do not.
"""
from __future__ import annotations

import math

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import atomic_path, check_arrays
from neurocc.errors import BackendError, InputError, NeuroccError
from neurocc.ir.artifact import Artifact, load_artifact
from neurocc.ir.graph import Graph
from neurocc.runtime.inputs import axis_hint, check_against_artifact

FLOAT_BACKENDS = ("reference",)  # backends that execute the float graph
SOFTWARE_BACKENDS = ("emulator", "reference", "edge-cpu")  # no chip limits to honour


class RunOutputs(dict):
    """Outputs (and traces) of one run, keyed as the backend returned them; ``overflow``:
    ``{node: {event: count}}`` of the non-zero wrap/saturation counts (empty: none occurred),
    or None when ``backend`` does not count them (only the emulator does)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], backend: str = "",
                 overflow: dict[str, dict[str, int]] | None = None) -> None:
        super().__init__(arrays)
        self.backend = backend
        self.overflow = overflow


def join_batches(parts: Sequence[RunOutputs | NeuroccError]) -> RunOutputs | NeuroccError:
    """The batches of one backend as one run: arrays joined on the batch axis (1, time-major) in
    sample order, overflow counts summed; the first error when a batch failed."""
    from neurocc.overflow import collect

    for p in parts:
        if isinstance(p, NeuroccError):
            return p
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    counted = [p.overflow for p in parts if p.overflow is not None]
    counts = None
    for c in counted:
        counts = collect(c, counts if counts is not None else {})
    return RunOutputs({k: np.concatenate([p[k] for p in parts], axis=1) for k in first}, first.backend, counts)


def as_artifact(artifact: Artifact | str | Path) -> Artifact:
    return artifact if isinstance(artifact, Artifact) else load_artifact(artifact)


def load_inputs(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of an ``X.npz`` file (no pickle); InputError naming the file when unreadable."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            return check_arrays({k: data[k] for k in data.files}, str(p))
    except FileNotFoundError:
        raise InputError("input file not found", where=str(p), fix="check the --input path") from None
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise InputError(f"cannot read the input file ({err})", where=str(p),
                         fix="write it with numpy.savez(path, **{name: array}) (time-major arrays)") from None


def save_outputs(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (.npz) atomically: a temporary file in the same folder, renamed."""
    p = Path(path)
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return p


def check_inputs(artifact: Artifact, inputs: Mapping[str, Any], warn: bool = True
                 ) -> tuple[dict[str, np.ndarray], int, int]:
    """Checked inputs, and their (steps, batch). InputError lists every problem at once; ``warn``:
    also warn about inputs that look transposed or out of range (:mod:`neurocc.runtime.inputs`)."""
    spec = {i["name"]: i for i in artifact.inputs}
    problems = [f"input '{k}' is missing: expected an array (steps, batch, {', '.join(map(str, v['shape']))})"
                for k, v in spec.items() if k not in inputs]
    problems += [f"unknown input '{k}' (the graph's inputs are: {', '.join(spec)})" for k in inputs if k not in spec]
    out: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[int, int]] = {}
    for name, entry in spec.items():
        if name not in inputs:
            continue
        x = np.asarray(inputs[name])
        shape = tuple(entry["shape"])
        if x.dtype.kind not in "biuf":
            problems.append(f"input '{name}' has dtype {x.dtype}; expected numbers (0/1 spikes or floats)")
        elif x.ndim != 2 + len(shape) or tuple(x.shape[2:]) != shape:
            hint = axis_hint(tuple(x.shape), shape, 2)
            problems.append(f"input '{name}' has shape {tuple(x.shape)}; expected (steps, batch, "
                            f"{', '.join(map(str, shape))}) (time-major)"
                            + (f": its axes are in another order ({hint})" if hint else
                               ": no order of its axes fits"))
        elif x.shape[0] < 1 or x.shape[1] < 1:
            problems.append(f"input '{name}' has no steps or no batch items: shape {tuple(x.shape)}")
        elif x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            problems.append(f"input '{name}' contains NaN or infinite values")
        elif entry.get("values", "spikes") == "spikes" and not np.all((x == 0) | (x == 1)):
            bad = np.unique(x[(x != 0) & (x != 1)])[:3]
            problems.append(f"input '{name}' carries spikes but holds values other than 0 and 1 (e.g. {bad.tolist()})")
        else:
            out[name] = x
            dims[name] = (int(x.shape[0]), int(x.shape[1]))
    if len(set(dims.values())) > 1:
        problems.append("inputs disagree on (steps, batch): " + ", ".join(f"'{k}' {v}" for k, v in dims.items()))
    if problems:
        raise InputError("the inputs do not fit the artifact", where=str(artifact.path), problems=problems,
                         fix="give one time-major array per graph input: (steps, batch, *shape)")
    steps, batch = next(iter(dims.values()))
    if warn:
        check_against_artifact(artifact, out, steps, batch)
    return out, steps, batch


def prepare_inputs(artifact: Artifact, inputs: Mapping[str, np.ndarray], backend: str) -> dict[str, np.ndarray]:
    """What ``backend`` receives: integer-graph backends get graded inputs as integers."""
    from neurocc.ir.numerics.core import round_to_int

    if backend in FLOAT_BACKENDS or artifact.graph.numerics is None:
        return dict(inputs)
    scales = {i["name"]: i.get("int_per_float") for i in artifact.inputs}
    return {k: (round_to_int(np.asarray(v, np.float64) * scales[k]).astype(np.int32) if scales.get(k) else v)
            for k, v in inputs.items()}


def require_fit(art: Artifact, backend: str) -> None:
    """Refuse (BackendError with the mapping table) to run a chip backend on an artifact that does
    not fit its target's limits, before the toolchain starts: Lava or NEST would run it happily on
    the CPU, which would prove nothing about the chip. Software backends are not checked."""
    if backend in SOFTWARE_BACKENDS:
        return
    from neurocc.compiler.mapping import mapping_report
    from neurocc.targets import Target

    target = Target.from_dict(art.target_settings)
    report = mapping_report(art.graph, target)
    if report.fits:
        return
    b = report.binding
    fixes = [f"{f.action}: {f.effect}" for f in report.fixes[:3]]
    raise BackendError(f"graph '{art.graph.name}' does not fit target '{target.name}': "
                       f"{b.text() if b else 'a limit is exceeded'}", where=f"backend '{backend}'",
                       problems=report.format_table().splitlines(),
                       fix="; or ".join(fixes) if fixes else "use a larger target (see `neurocc plan MODEL`)")


def _check_run_size(art: Artifact, steps: int, batch: int) -> None:
    """Refuse before allocating when ``steps × batch × every node's values`` exceed the memory budget."""
    from neurocc._limits import check_size

    per_step = sum(math.prod(s["out_shape"]) for s in art.graph.stats().values())  # type: ignore[arg-type]
    check_size((steps, batch, per_step), 8, f"running {steps:,} steps of batch {batch}", "--steps",
               fix="run fewer steps (--steps N) or a smaller batch")


def latency(graph: Graph) -> int:
    """Largest total edge delay on a path from an Input to an Output (recurrent edges excluded):
    the steps by which the outputs lag the input on this graph."""
    recurrent = set(graph.recurrent_edges())
    edges = [e for e in graph.edges if e not in recurrent]
    best = {n: (0 if n in graph.inputs else None) for n in graph.nodes}
    for _ in range(len(graph.nodes)):
        changed = False
        for e in edges:
            if best[e.src] is not None and (best[e.dst] is None or best[e.src] + e.delay > best[e.dst]):
                best[e.dst] = best[e.src] + e.delay
                changed = True
        if not changed:
            break
    return max((best[o] or 0) for o in graph.outputs)


def pad_steps(art: Artifact, backend: str, pad: int | str | None) -> int:
    """Zero steps to append: ``pad`` itself, or the graph's :func:`latency` for ``"auto"``."""
    if pad is None:
        return 0
    if pad == "auto":
        return latency(art.float_graph if backend in FLOAT_BACKENDS else art.graph)
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise InputError(f"pad must be a number of steps >= 0 or 'auto', got {pad!r}", where="--pad",
                         fix="pass --pad N, or --pad alone for the graph's latency")
    return int(pad)


def lag_note(artifact_dir: Artifact | str | Path, backend: str, pad: int | str | None = None) -> str:
    """One line for ``neurocc run``: how many steps the outputs lag the input, and what --pad did."""
    art = as_artifact(artifact_dir)
    lag = latency(art.float_graph if backend in FLOAT_BACKENDS else art.graph)
    added = pad_steps(art, backend, pad)
    if lag == 0:
        return "latency: 0 steps (an input step reaches the outputs in the same step)" + \
            (f"; padded {added} zero steps" if added else "")
    tail = (f"padded {added} zero steps" + ("" if added >= lag else f": {lag - added} fewer than the lag")) if added \
        else f"the last {lag} input steps do not reach the outputs: rerun with --pad (appends {lag} zero steps)"
    return f"latency: outputs lag the input by {lag} step(s) on '{backend}' (one per synapse layer); {tail}"


DEVICE_BACKENDS = ("emulator", "reference")  # backends with a torch path (``device``)


def run_artifact(artifact_dir: Artifact | str | Path, backend: str, inputs: Mapping[str, Any],
                 steps: int | None = None, record: bool = False, pad: int | str | None = None,
                 progress: bool = False, warn: bool = True, device: str | None = None,
                 float_dtype: str | None = None) -> RunOutputs:
    """Run the artifact on ``backend``; outputs (and, with ``record``, ``<node>/<var>`` traces),
    with the overflow counts when the backend reports them (no warning here: each command warns
    once over all its runs with :func:`neurocc.overflow.warn`). ``pad``: append zero steps
    (``"auto"``: the :func:`latency`); ``progress``: show a spinner and a closing line on stderr;
    ``warn``: see :func:`check_inputs`; ``device`` (``cpu`` / ``cuda``, emulator and reference
    only): the emulator's batched torch path; None: its numpy/numba kernels; ``float_dtype``
    (``float64`` | ``float32``, with ``device``): the dtype of a float graph on that path
    (float32: faster, rounds differently, never the judge; integer graphs ignore it)."""
    from neurocc.backends import get_backend
    from neurocc.overflow import collect
    from neurocc.progress import Step, quiet

    art = as_artifact(artifact_dir)
    if steps is not None and (not isinstance(steps, (int, np.integer)) or steps < 1):
        raise InputError(f"steps must be a positive integer, got {steps!r}", where="--steps",
                         fix="pass --steps N with N >= 1, or leave it out to run as many steps as the input has")
    if device is not None and backend not in DEVICE_BACKENDS:
        raise InputError(f"--device {device} applies to the emulator and reference backends only, not '{backend}'",
                         where="--device", fix="leave --device out for this backend")
    if float_dtype is not None:
        from neurocc.backends.emulator.floatpath import check_float_dtype

        check_float_dtype(float_dtype)
        if backend not in DEVICE_BACKENDS:
            raise InputError(f"--float-dtype applies to the emulator and reference backends only, not '{backend}'",
                             where="--float-dtype", fix="leave --float-dtype out for this backend")
    checked, n_steps, batch = check_inputs(art, inputs, warn)
    added = pad_steps(art, backend, pad)
    _check_run_size(art, (steps or n_steps) + added, batch)
    if added:
        checked = {k: np.concatenate([v, np.zeros((added, *v.shape[1:]), v.dtype)]) for k, v in checked.items()}
        steps = None if steps is None else steps + added
    module = get_backend(backend)
    require_fit(art, backend)
    if backend not in ("emulator", "reference") and art.target_settings.get("backend") is None:
        raise BackendError(f"target '{art.target}' has no runtime yet (plan and compile only)",
                           where=f"--backend {backend}", fix="run it with --backend emulator or reference")
    total = steps or n_steps + added
    events = None
    extra = {k: v for k, v in (("device", device), ("float_dtype", float_dtype)) if v is not None}
    with Step(f"run on {backend}", **quiet(progress)) as step:
        step.note(f"{total} steps x batch {batch}")
        ready = prepare_inputs(art, checked, backend)
        if hasattr(module, "run_events"):
            result, raw = module.run_events(art, ready, steps=steps, record=record, **extra)
            events = collect(raw)
        else:
            result = module.run(art, ready, steps=steps, record=record, **extra)
        step.done(f"{total} steps x batch {batch}")
    outputs = dict(getattr(result, "outputs", result))
    if record and hasattr(result, "traces"):
        outputs.update(result.traces)
    missing = [o["name"] for o in art.outputs if o["name"] not in outputs]
    if missing:
        raise BackendError(f"backend '{backend}' returned no array for output(s) {missing}", where=str(art.path),
                           fix="this is a bug in the backend; please report it")
    return RunOutputs({k: np.asarray(v) for k, v in outputs.items()}, backend, events)


def learned_weights(artifact_dir: Artifact | str | Path, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The plastic synapses' weights after a run: ``{"<node>/w": (batch, post, pre)}`` from a
    run's arrays (empty when the artifact has no plastic synapse)."""
    graph = as_artifact(artifact_dir).graph
    plastic = [n for n, node in graph.nodes.items() if getattr(node, "plastic", False)]
    return {f"{n}/w": np.asarray(outputs[f"{n}/w"]) for n in plastic if f"{n}/w" in outputs}

