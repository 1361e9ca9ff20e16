"""neurocc: compile trained neural networks for neuromorphic chips and edge CPUs, and prove that
what was deployed computes what was trained.

The Python API mirrors the ``neurocc`` command line::

    import neurocc
    graph = neurocc.load("model.nir")                       # neurocc inspect / export-nir
    neurocc.targets()                                        # neurocc targets
    art = neurocc.compile(graph, target="loihi2", out_dir="out/net")   # neurocc compile
    outputs = neurocc.run(art, backend="emulator", inputs={"input": x})  # neurocc run
    report = neurocc.validate(art, backends=["emulator", "loihi"])      # neurocc validate

Importing neurocc is cheap: frontends, the compiler, backends and their toolchains (torch, onnx,
lava, pyNN) are imported only by the function that needs them. A feature whose module is not part
of this version raises :class:`NotAvailableError` (the CLI exits 2 with its message).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurocc import targets  # the module is callable: neurocc.targets() == load_targets()
from neurocc.errors import (BackendError, CompileError, GraphError, InputError, ModelLoadError,
                            NeuroccError, OutputError, TargetsError)
from neurocc.targets import Target, get_target, load_targets

if TYPE_CHECKING:
    import numpy as np

    from neurocc.ir import Graph

__version__ = "0.1.0"

LOAD_OPTIONS = ("input_shape", "entry", "weights", "trust_pickle")  # compile/plan pass these to load


class NotAvailableError(NeuroccError):
    """A feature whose module is not part of this version of neurocc (exit status 2)."""

    exit_code = 2


def feature(module: str, attr: str, what: str) -> Any:
    """Import ``module.attr`` lazily; NotAvailableError when a neurocc module is missing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and (err.name == "neurocc" or err.name.startswith("neurocc.")):
            raise NotAvailableError(
                f"{what} is not available yet in this version of neurocc "
                f"(module {err.name} is not part of it)",
                fix="the installation is incomplete: run `make setup` (or `pip install -e .`) in the neurocc checkout") from err
        raise
    try:
        return getattr(mod, attr)
    except AttributeError:
        raise NotAvailableError(
            f"{what} is not available yet in this version of neurocc ({module}.{attr} is missing)",
            fix="the installation is incomplete: run `make setup` (or `pip install -e .`) in the neurocc checkout") from None


def _as_graph(model: Any, **load_kw: Any) -> "Graph":
    from neurocc.ir import Graph

    return model if isinstance(model, Graph) else load(model, **load_kw)


def _split(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    load_kw = {k: kw.pop(k) for k in LOAD_OPTIONS if k in kw}
    return load_kw, kw


def _target(target: "str | Target", targets_file: str | Path | None) -> Target:
    return target if isinstance(target, Target) else get_target(target, targets_file)


def _arrays(value: "str | Path | dict[str, np.ndarray] | None", what: str) -> "dict[str, np.ndarray] | None":
    """Arrays given as a dict, or read from an ``.npz`` path (no pickle)."""
    if value is None or isinstance(value, dict):
        return value
    from neurocc._files import read_npz

    return read_npz(Path(value), what)


def load(source: Any, *, input_shape: tuple[int, ...] | None = None, entry: str | None = None,
         weights: str | Path | None = None, trust_pickle: bool = False, **kw: Any) -> "Graph":
    """A float Graph from a torch module or file, an ONNX file or a NIR file (``neurocc inspect``).

    ``input_shape`` excludes batch and time; ``entry`` names the nn.Module class or factory of a
    ``.py`` file; ``weights`` is a state_dict file; ``trust_pickle`` allows full pickle loading
    of a ``.pt`` file (it runs code: only for files you trust). Other keywords go to the
    frontend (e.g. ``dt`` for torch SNN models).
    """
    fn = feature("neurocc.compiler.frontends", "load", "loading models (the frontends)")
    return fn(source, input_shape=input_shape, entry=entry, weights=weights,
              trust_pickle=trust_pickle, **kw)


def export_nir(model: Any, path: str | Path, **load_kw: Any) -> Path:
    """Write ``model`` (anything :func:`load` reads, or a Graph) as a NIR file (``neurocc export-nir``)."""
    graph = _as_graph(model, **load_kw)
    if graph.numerics == "loihi":  # an integer model (a netx file): NIR carries its float form
        from neurocc.compiler.passes.dequantize import dequantize

        graph = dequantize(graph)
    write_nir = feature("neurocc.compiler.frontends.nir", "write_nir", "writing NIR files")
    write_nir(graph, Path(path))  # written atomically, with normal file permissions
    return Path(path)


def compile(model: Any, target: "str | Target" = "loihi2", out_dir: str | Path | None = None, *,
            dt: float | None = None, calibration: Any = None, timesteps: int | None = None,
            accuracy_budget: float | None = None, targets_file: str | Path | None = None,
            source: Any = None, check_source: bool = True, allow_source_mismatch: bool = False,
            workers: int | None = None, ray_address: str | None = None, **load_kw: Any) -> Any:
    """Compile ``model`` for ``target`` into the artifact directory ``out_dir`` (``neurocc compile``).

    ``out_dir`` defaults to ``out/<graph name>-<target>``; ``dt`` overrides the target's step.
    ``calibration``: sample inputs, as an .npz path or a mapping with ``x`` (and optional labels
    ``y``), an ``(x, y)`` pair or the ``x`` array: static ``(samples, *shape)`` for an ANN (which
    needs it: it is converted to a spiking network), time-major ``(steps, samples, *shape)`` for
    a spiking model. ``timesteps``: steps per sample (ANN default 64). ``accuracy_budget``:
    points of calibration accuracy the emulator may lose against the float model; per-layer
    weight bits and timesteps are searched to stay within it; ``workers``/``ray_address``: its trials
    run as Ray tasks (default 1: in this process; the same artifact for any number,
    docs/user-guide.md#parallel-runs). Other keywords: ``per_channel``,
    ``method``, ``encoding``, ``stats``, ``bias_from_step_zero`` (loihi2: biases act from step 0,
    not with each layer's delayed input, so that lava-dl netx can express them and ``network.net``
    is written; the first steps then differ from the trained model) (to the pipeline) and the
    :func:`load` options.

    The source check (docs/source-check.md): the trained model (``model`` itself, or ``source``
    when ``model`` is a Graph) is run in its own framework and compared layer by layer with the
    float reference; a divergence fails the compile unless ``allow_source_mismatch=True``, which
    records it in the manifest. ``check_source=False`` skips it. Returns the artifact directory.
    """
    from neurocc._limits import check_dt

    load_kw, compile_kw = _split(load_kw)  # the rest (e.g. method=) goes to the pipeline
    dt = check_dt(dt)
    _check_options(timesteps, compile_kw.get("method"))
    if "method" in compile_kw and compile_kw["method"] is None:
        del compile_kw["method"]  # None: the default, as when it is left out
    graph = _as_graph(model, **load_kw)
    tgt = _target(target, targets_file)
    check_dt(tgt.dt, where=f"target '{tgt.name}' dt")
    feature("neurocc.compiler.sanity", "check_finite", "model checks")(graph, getattr(graph, "name", "model"))
    out = Path(out_dir) if out_dir is not None else Path("out") / f"{graph.name}-{tgt.name}"
    compile_model = feature("neurocc.compiler.pipeline", "compile_model", "compiling (neurocc compile)")
    src = source if source is not None else (None if _is_graph(model) else model)
    if check_source and src is not None:
        hook = feature("neurocc.runtime.source", "compile_check", "the source check")
        compile_kw["source_check"] = hook(_open_source(src, load_kw), allow_mismatch=allow_source_mismatch,
                                          echo=compile_kw.get("echo"))
    runner_for = feature("neurocc.runtime.ray_tasks", "runner_for", "parallel search trials (--workers)")
    with runner_for(workers, ray_address, "accuracy-budget trial") as runner:
        return compile_model(graph, tgt, out, dt=dt, calibration=calibration, timesteps=timesteps,
                             accuracy_budget=accuracy_budget, targets_file=targets_file, runner=runner,
                             **compile_kw)


def _check_options(timesteps: Any, method: Any) -> None:
    """``timesteps`` a positive integer below 2^31; ``method`` a discretisation method name."""
    from neurocc.ir.types import Method

    if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, int)
                                  or not 0 < timesteps < 2 ** 31):
        raise InputError(f"timesteps must be a positive integer below 2^31, got {timesteps!r}", where="--timesteps",
                         fix="give the number of steps per sample, e.g. 64")
    if method is not None and not isinstance(method, Method) and method not in {m.value for m in Method}:
        raise InputError(f"unknown discretisation method {method!r}", where="method",
                         fix="use one of: " + ", ".join(m.value for m in Method))


def _is_graph(model: Any) -> bool:
    from neurocc.ir import Graph

    return isinstance(model, Graph)


def run(artifact_dir: str | Path, backend: str = "emulator",
        inputs: "dict[str, np.ndarray] | str | Path | None" = None, *, steps: int | None = None,
        record: bool = False, pad: "int | str | None" = None, progress: bool = False,
        device: str | None = None, float_dtype: str | None = None) -> "dict[str, np.ndarray]":
    """Run an artifact on ``backend``; time-major arrays ``(steps, batch, *shape)`` (``neurocc run``).
    ``pad``: append that many steps of zero input (``"auto"``: the graph's latency); ``device``
    ``cpu``/``cuda``: the emulator's (or reference's) batched torch path; ``float_dtype``
    ``float64`` (default, the specification) or ``float32`` (with ``device``: float graphs run in
    float32, faster, differing by rounding: docs/backends/emulator.md#float32-on-the-batched-path).

    The result is a dict (a :class:`~neurocc.runtime.run.RunOutputs`) whose ``overflow`` holds the
    wrap/saturation counts per node (``{node: {event: count}}``; None for backends that do not count
    them: only the emulator does); each count is also issued as an ``OverflowWarning``."""
    run_artifact = feature("neurocc.runtime.run", "run_artifact", "running artifacts (neurocc run)")
    from neurocc.overflow import warn

    out = run_artifact(Path(artifact_dir), backend, _arrays(inputs, "--input"), steps=steps,
                       record=record, pad=pad, progress=progress, device=device, float_dtype=float_dtype)
    warn(out.overflow, f"{backend} run of {artifact_dir}")
    return out


def validate(artifact_dir: str | Path, backends: list[str] | None = None,
             inputs: "dict[str, np.ndarray] | str | Path | None" = None, samples: int | None = None,
             json_path: str | Path | None = None, progress: bool = False, device: str | None = None,
             source: Any = None, workers: int | None = None, ray_address: str | None = None,
             **source_kw: Any) -> dict[str, Any]:
    """Compare backends with their reference; the validation.json document (``neurocc validate``).
    ``workers``/``ray_address``: sample batches on Ray workers (docs/user-guide.md#parallel-runs).

    ``source``: the trained model (an nn.Module, a .pt with ``entry``/``weights`` or
    ``trust_pickle``) adds a ``source`` row: it runs in its own framework against the float
    reference (``neurocc validate --source MODEL``)."""
    validate_artifact = feature("neurocc.runtime.validate", "validate_artifact",
                                "validation (neurocc validate)")
    return validate_artifact(Path(artifact_dir), backends=backends, inputs=_arrays(inputs, "--input"),
                             samples=samples, json_path=None if json_path is None else Path(json_path),
                             progress=progress, device=device, source=_open_source(source, source_kw),
                             workers=workers, ray_address=ray_address)


def _open_source(source: Any, kw: dict[str, Any]) -> Any:
    """A runtime Source for ``source`` (already one, or a model :func:`load` reads), or None."""
    if source is None:
        return None
    Source = feature("neurocc.runtime.source", "Source", "the source check")
    if isinstance(source, Source):
        return source
    open_source = feature("neurocc.runtime.source", "open_source", "the source check")
    return open_source(source, **{k: v for k, v in kw.items() if k in ("entry", "weights", "trust_pickle")})


def evaluate(artifact_dir: str | Path, data: "dict[str, np.ndarray] | str | Path",
             backend: str | None = None, *, readout: str = "count", time_major: bool = False,
             progress: bool = False, device: str | None = None, workers: int | None = None,
             ray_address: str | None = None, metrics: bool = False,
             float_dtype: str | None = None) -> dict[str, Any]:
    """Accuracy of an artifact on labelled data ``{x, y}`` (``neurocc evaluate``): ``x`` static
    ``(samples, *shape)`` or sequences ``(samples, steps, *shape)`` (``time_major=True``: ``(steps,
    samples, *shape)``); ``readout`` is ``count``, ``membrane`` or ``first``; ``workers``/
    ``ray_address``: sample batches on Ray workers (docs/user-guide.md#parallel-runs); ``metrics``: also the
    measured cost (``result["metrics"]``, ``result["energy"]``: :mod:`neurocc.runtime.metrics`);
    ``device``/``float_dtype``: as :func:`run`."""
    evaluate_artifact = feature("neurocc.runtime.evaluate", "evaluate_artifact",
                                "evaluation (neurocc evaluate)")
    return evaluate_artifact(Path(artifact_dir), _arrays(data, "--data"), backend=backend, readout=readout,
                             time_major=time_major, progress=progress, device=device, workers=workers,
                             ray_address=ray_address, metrics=metrics, float_dtype=float_dtype)


def plan(model: Any, targets: "list[str | Target] | None" = None,
         targets_file: str | Path | None = None, *, steps: int | None = None, rate: float | None = None,
         calibration: Any = None, dt: float | None = None, data: Any = None, **load_kw: Any) -> Any:
    """Rows saying how ``model`` fits each target (cores, chips, memory, ops, energy) (``neurocc
    plan``). ``model``: a model, a Graph or a compiled artifact directory (its measured
    activity); ``calibration`` measures the activity (and converts an ANN); ``data`` (with an
    artifact directory): the activity measured on the emulator's run of its integer network."""
    chosen = ([_target(t, targets_file) for t in targets] if targets
              else list(load_targets(targets_file).values()))
    planned = feature("neurocc.runtime.plan", "planned_graph", "resource planning (neurocc plan)")
    plan_fn = feature("neurocc.runtime.plan", "plan", "resource planning (neurocc plan)")
    graph, activity = planned(model, steps=steps, rate=rate, calibration=calibration, dt=dt, load_kw=load_kw,
                              **({"data": data} if data is not None else {}))
    return plan_fn(graph, chosen, activity=activity, dt=dt)


def __getattr__(name: str) -> Any:
    if name == "Graph":
        from neurocc.ir import Graph

        return Graph
    raise AttributeError(f"module 'neurocc' has no attribute '{name}'")


__all__ = ["BackendError", "CompileError", "Graph", "GraphError", "InputError", "ModelLoadError",
           "NeuroccError", "NotAvailableError", "OutputError", "Target", "TargetsError", "__version__", "compile",
           "evaluate", "export_nir", "feature", "get_target", "load", "load_targets", "plan", "run",
           "targets", "validate"]
