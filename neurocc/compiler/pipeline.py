"""The compile pipeline: the ordered passes, a verify after each, and the artifact writer.

    [ANN: normalize → convert (calibration data)] → normalize → discretize → [fuse_pools: loihi]
        → [calibration: float statistics, input scale] → quantize → [calibration: diagnostics]
        → mapping (partition + place; must fit) → write

An ANN (ReLU, BatchNorm, ...) is converted first (:mod:`neurocc.compiler.passes.convert`): it
needs calibration data (static ``x``, optional labels ``y``); the reset mode comes from the
target (:func:`~neurocc.compiler.passes.convert.reset_for_target`), timesteps default to
:data:`DEFAULT_TIMESTEPS`, inputs are a constant current (:mod:`neurocc.ir.encoding`).
With calibration data (ANN or SNN), the float reference runs on it to measure each layer's
activity (:mod:`neurocc.compiler.calibrate`), the graded input's scale is chosen from those
measurements, quantize keeps the measured activity within the registers, and the emulator is
run against the float reference (:mod:`neurocc.compiler.diagnostics`): a layer that
quantization silences fails the compile, naming the cause.

The artifact keeps the float graph as discretised (the trained model, for the ``reference``
backend); :func:`~neurocc.compiler.passes.fuse.fuse_pools` rewrites only the graph that is
quantized (Lava's synapses take spikes from neurons; exact). Each pass is a pure
``Graph -> Graph`` function listed in :data:`PASSES`; :func:`run_passes` calls
``graph.verify()`` after every one and names the pass when a result is malformed.

This module drives the compile and writes the artifact (:func:`compile_model`); the stages live
in their own modules and are re-exported here: the float passes
(:mod:`neurocc.compiler.float_passes`), the float side of a compile
(:mod:`neurocc.compiler.prepare`), quantization and diagnostics in memory
(:mod:`neurocc.compiler.compiled`), and what is written beside the graphs
(:mod:`neurocc.compiler.manifest`).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurocc.compiler.compiled import (
    WEIGHT_ROUNDINGS,
    Compiled,
    compile_graph,
    quantize_prepared,
    resolve_target,
)
from neurocc.compiler.float_passes import PASSES, Options, run_passes
from neurocc.compiler.manifest import (
    CAL_SAMPLE,
    CAL_SAMPLE_FILE,
    MAPPING_FILE,
    backend_emitter,
    calibrated_rates,
    calibration_sample,
    manifest_extra,
    mapping,
    recompiler,
)
from neurocc.compiler.passes.fuse import fuse_pools
from neurocc.compiler.passes.quantize import LayerStats
from neurocc.compiler.prepare import (
    DEFAULT_TIMESTEPS,
    DIAG_SAMPLES,
    STATS_SAMPLES,
    SWEEP_SAMPLES,
    Prepared,
    default_encoding,
    prepare,
)
from neurocc.errors import CompileError
from neurocc.ir.artifact import Artifact, check_output_dir, write_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

__all__ = ["CAL_SAMPLE", "CAL_SAMPLE_FILE", "DEFAULT_TIMESTEPS", "DIAG_SAMPLES", "MAPPING_FILE", "PASSES",
           "STATS_SAMPLES", "SWEEP_SAMPLES", "WEIGHT_ROUNDINGS", "Compiled", "Options", "Prepared",
           "compile_graph", "compile_model", "default_encoding", "fuse_pools", "load_compiled", "prepare",
           "quantize_prepared", "resolve_target", "run_passes"]


def compile_model(graph: Graph, target: Target | str, out_dir: str | Path, *, dt: float | None = None,
                  calibration: Any = None, timesteps: int | None = None,
                  method: Method | str = Method.EULER, targets_file: str | Path | None = None,
                  accuracy_budget: float | None = None, per_channel: bool = False, encoding: Any = None,
                  stats: dict[str, LayerStats] | None = None, echo: Callable[[str], None] | None = None,
                  prune: Any = None, source_check: Callable[[Any], dict[str, Any]] | None = None,
                  delta_threshold: float | None = None, sd_variant: str = "lava-0.10",
                  bias_from_step_zero: bool = False, weight_rounding: str = "auto", runner: Any = None) -> Path:
    """Compile ``graph`` for ``target`` into the artifact directory ``out_dir`` (written atomically).

    ``dt`` (seconds) overrides the target's step (NIR files carry none). ``calibration``: a path
    to an .npz, a mapping ``{x, y}``, an ``(x, y)`` pair or the ``x`` array (layouts in
    :mod:`neurocc.compiler.calibrate`); ANNs need it. ``timesteps``: steps per sample (ANN:
    default 64). ``accuracy_budget``: accuracy points the emulator may lose on the calibration
    data against the float model; per-layer weight bits, timesteps and scales are searched
    (:mod:`neurocc.compiler.budget`). The mapping (partition + place) must fit the target.
    ``echo`` (e.g. ``print``) receives the compile tables: conversion, quantization,
    diagnostics, budget trials (:mod:`neurocc.compiler.summary`) and the mapping table.
    ``prune``: a prune SPEC (:mod:`neurocc.compiler.prune`) applied to ``graph`` first (after the
    source check, which judges the model as trained).
    ``source_check(FloatSide)`` (:mod:`neurocc.compiler.floatside`) (the runtime's source check, :mod:`neurocc.runtime.source`) runs
    before quantization; it may raise, and what it returns is the manifest's ``source``.
    ``encoding="sigma-delta"`` (or an Encoding of that kind) converts an ANN to sigma-delta neurons
    instead (:mod:`neurocc.compiler.sdnn_compile`): ``delta_threshold`` is the threshold fraction
    (default 0.05; searched with ``accuracy_budget``), ``sd_variant`` the numerics
    (``lava-0.10``, or ``lava-pr875``: emulator and edge-cpu only).
    ``bias_from_step_zero``: biases act from step 0 rather than with each layer's delayed input
    (loihi2), so that netx can write ``network.net``; the first steps then differ from the trained
    model (:mod:`neurocc.compiler.bias_start`; not with ``accuracy_budget``).
    ``weight_rounding``: ``auto`` (default), ``nearest`` or ``calibrated`` (:func:`quantize_prepared`).
    ``runner``: where the accuracy-budget search's trials run (:mod:`neurocc.compiler.trials`; default
    here, one after the other; the runtime's Ray runner gives the same artifact).
    """
    from neurocc.compiler.prequantized import integer_target
    from neurocc.compiler.prune import parse_spec, prune_graph

    asked = resolve_target(target, targets_file)
    tgt = integer_target(graph, asked)   # edge-cpu keeps a netx file's integers
    check_output_dir(out_dir)
    if _sigma_delta(encoding):   # refuse a target without graded spikes before anything runs
        from neurocc.compiler.sdnn_compile import check_target

        check_target(tgt)
    from neurocc.compiler.floatside import float_side

    if echo is not None:
        _echo_numerics(echo, graph, tgt, asked, dt)
    source_doc = source_check(float_side(graph, tgt, dt, method, calibration, timesteps)) if source_check else None
    spec = None if prune is None else parse_spec(prune)
    if spec is not None:
        graph = prune_graph(graph, spec)
    kwargs = {"dt": dt, "method": method, "calibration": calibration, "timesteps": timesteps, "encoding": encoding,
                  "per_channel": per_channel, "stats": stats, "bias_from_step_zero": bias_from_step_zero,
                  "weight_rounding": weight_rounding}
    compiled, budget_doc = _compile(graph, tgt, kwargs, accuracy_budget, delta_threshold, sd_variant, runner)
    report = mapping(compiled.graph, tgt, targets_file, recompiler(graph, tgt, kwargs), calibrated_rates(compiled))
    extra = manifest_extra(graph, compiled, report, budget_doc, calibration, timesteps)
    _extra_options(extra, compiled, spec, source_doc, bias_from_step_zero)
    files = {MAPPING_FILE: (report.to_json() + "\n").encode()}
    calibration_sample(compiled, files, extra)
    write_artifact(out_dir, graph=compiled.graph, float_graph=compiled.float_graph, target=tgt,
                   quantization=compiled.quantization, extra=extra, extra_files=files,
                   emit=backend_emitter(tgt, compiled))
    from neurocc.overflow import compile_warning, warn_lines

    warn_lines(compile_warning(compiled.quantization, calibrated=compiled.cal is not None))
    if echo is not None:  # after the artifact is safely written
        _echo_tables(echo, extra, compiled, report)
    return Path(out_dir)


def _sigma_delta(encoding: Any) -> bool:
    return encoding == "sigma-delta" or getattr(encoding, "kind", None) == "sigma-delta"


def _compile(graph: Graph, tgt: Target, kwargs: dict[str, Any], accuracy_budget: float | None,
             delta_threshold: float | None, sd_variant: str, runner: Any = None
             ) -> tuple[Compiled, dict[str, Any] | None]:
    """The compile route: sigma-delta conversion, the accuracy-budget search, or the plain passes
    (``kwargs``: :func:`compile_graph`'s); the compiled model and the budget report (or None)."""
    encoding = kwargs["encoding"]
    if _sigma_delta(encoding):
        from neurocc.compiler.sdnn_compile import compile_ann

        return compile_ann(graph, tgt, kwargs["calibration"], kwargs["timesteps"], delta_threshold,
                           accuracy_budget, sd_variant, runner)
    if accuracy_budget is not None:
        from neurocc.compiler.budget import search

        if kwargs["bias_from_step_zero"]:
            raise CompileError("--bias-from-step-zero cannot be combined with --accuracy-budget yet",
                               where=f"graph '{graph.name}', target '{tgt.name}'",
                               fix="compile with one of the two options")
        return search(graph, tgt, float(accuracy_budget), dt=kwargs["dt"], method=kwargs["method"],
                      calibration=kwargs["calibration"], timesteps=kwargs["timesteps"], encoding=encoding,
                      per_channel=kwargs["per_channel"], stats=kwargs["stats"], runner=runner)
    return compile_graph(graph, tgt, **kwargs), None


def _extra_options(extra: dict[str, Any], compiled: Compiled, spec: Any, source_doc: dict[str, Any] | None,
                   bias_from_step_zero: bool) -> None:
    """Record the prune spec, the source check and ``--bias-from-step-zero`` in the manifest."""
    if spec is not None:
        from neurocc.compiler.prune import density

        extra["prune"] = {"spec": spec.text(), "scope": spec.scope, "fraction": spec.fraction,
                          "density": density(compiled.graph)}
    if source_doc is not None:
        extra["source"] = source_doc
    if bias_from_step_zero:
        extra["bias_from_step_zero"] = True


def _echo_numerics(echo: Callable[[str], None], graph: Graph, tgt: Target, asked: Target,
                   dt: float | None) -> None:
    """The dt line, and why the numerics differ from the asked target's (an integer model)."""
    from neurocc.compiler.floatside import dt_line

    echo(dt_line(graph, tgt, dt) + "\n")
    if tgt.numerics != asked.numerics:
        from neurocc.compiler.prequantized import keeps_integers

        echo(f"numerics: {tgt.numerics}, not {asked.name}'s {asked.numerics}: the model is already integer "
             f"and {keeps_integers(graph, asked)}\n")


def _echo_tables(echo: Callable[[str], None], extra: dict[str, Any], compiled: Compiled, report: Any) -> None:
    """The compile tables (:mod:`neurocc.compiler.summary`), the bias-start line and the mapping table."""
    from neurocc.compiler.bias_start import line
    from neurocc.compiler.summary import format_compile

    tables = format_compile(extra, compiled.quantization)
    echo(f"{tables}\n" if tables else "")
    bias_line = line(compiled.quantization)
    if bias_line:
        echo(bias_line + "\n")
    echo(f"{report.format_table()}\n")


def load_compiled(path: str | Path) -> Artifact:
    from neurocc.ir.artifact import load_artifact

    return load_artifact(path)
