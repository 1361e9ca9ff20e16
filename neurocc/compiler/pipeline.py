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
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import npz_bytes
from neurocc.compiler.passes.discretize import discretize
from neurocc.compiler.passes.fuse import fuse_pools
from neurocc.compiler.passes.quantize import LayerStats, quantize_with_report
from neurocc.errors import CompileError, GraphError
from neurocc.ir.artifact import Artifact, check_output_dir, write_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

DEFAULT_TIMESTEPS = 64      # steps per sample of a converted ANN
STATS_SAMPLES = 256         # calibration samples the float statistics use
DIAG_SAMPLES = 512          # calibration samples the emulator-in-the-loop diagnostics use
SWEEP_SAMPLES = 256         # calibration samples of the conversion's accuracy/latency table
MAPPING_FILE = "mapping.json"
CAL_SAMPLE_FILE = "calibration_sample.npz"  # the first CAL_SAMPLE calibration samples: x per input, labels
CAL_SAMPLE = 64

__all__ = ["PASSES", "Compiled", "Options", "compile_graph", "compile_model", "fuse_pools", "run_passes"]


@dataclass(frozen=True)
class Options:
    """What the passes need besides the graph and the target."""

    target: Target
    dt: float
    method: Method = Method.EULER
    stats: dict[str, LayerStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    """In-memory result of the passes: the float graph, the executed graph and the reports."""

    float_graph: Graph
    graph: Graph
    quantization: dict[str, Any] | None
    conversion: dict[str, Any] | None = None
    diagnostics: Any = None                 # QuantDiagnostics (with calibration data)
    encoding: dict[str, Any] | None = None
    timesteps: int | None = None
    calibration: dict[str, Any] | None = None
    graded_inputs: tuple[str, ...] = ()    # float32 artifacts: inputs fed as graded values
    cal: Any = None                         # calibrate.Calibration: the data, for the artifact's sample


@dataclass(frozen=True)
class Prepared:
    """The float side of a compile (reused by the accuracy-budget search)."""

    target: Target
    float_graph: Graph
    to_quantize: Graph
    cal: Any = None                         # calibrate.Calibration
    encoding: Any = None                    # ir.encoding.Encoding (ANN)
    timesteps: int | None = None
    conversion: dict[str, Any] | None = None
    reference_pred: np.ndarray | None = None
    float_stats: dict[str, dict[str, float]] | None = None
    grams: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)   # input_grams, once


def _normalize(graph: Graph, opts: Options) -> Graph:
    from neurocc.compiler.passes.normalize import normalize

    return normalize(graph)


def _refuse_ann(graph: Graph, opts: Options) -> Graph:
    ann = [f"node '{n}' ({node.kind})" for n, node in graph.nodes.items() if node.ann_only]
    if ann:
        raise CompileError("the model is an ANN (it has ANN-only layers): converting it to a spiking network "
                           "needs calibration data", where=f"graph '{graph.name}'", problems=ann,
                           fix="pass sample inputs: `neurocc compile MODEL --target T -o DIR --calibration "
                               "cal.npz` with cal.npz holding x (samples, *input shape), e.g. a few hundred "
                               "training inputs (Python: neurocc.compile(..., calibration=x))")
    return graph


def _discretize(graph: Graph, opts: Options) -> Graph:
    return discretize(graph, opts.dt, opts.method)


PASSES: tuple[tuple[str, Callable[[Graph, Options], Graph]], ...] = (
    ("normalize", _normalize),
    ("convert", _refuse_ann),
    ("discretize", _discretize),
)


def run_passes(graph: Graph, opts: Options) -> Graph:
    """Apply :data:`PASSES` in order, verifying after each (GraphError names the pass)."""
    for name, fn in PASSES:
        graph = fn(graph, opts)
        _verified(graph, name)
    return graph


def _verified(graph: Graph, name: str) -> Graph:
    try:
        return graph.verify()
    except GraphError as err:
        raise GraphError(f"pass '{name}' produced a malformed graph: {err.what}", where=err.where,
                         problems=err.problems, fix="this is a neurocc bug; please report it with the model") from err


def _no_neurons(graph: Graph) -> None:
    from neurocc.ir.discrete import NEURON_TYPES
    from neurocc.ir.nodes import ReLU

    if not any(isinstance(n, (*NEURON_TYPES, ReLU)) for n in graph.nodes.values()):
        kinds = sorted({n.kind for n in graph.nodes.values()})
        raise CompileError(f"the model has no neurons ({len(graph.nodes)} nodes of kinds {', '.join(kinds)})",
                           where=f"graph '{graph.name}'",
                           fix="compile a spiking model (LIF/IF/... layers) or an ANN with ReLU activations")


def prepare(graph: Graph, tgt: Target, *, dt: float | None = None, method: Method | str = Method.EULER,
            calibration: Any = None, timesteps: int | None = None, encoding: Any = None) -> Prepared:
    """Convert (ANNs), run the float passes and, with calibration data, measure the float stats."""
    from neurocc.compiler import calibrate
    from neurocc.compiler.prequantized import float_form

    graph = graph.verify()
    _no_neurons(graph)
    opts = Options(tgt, float(dt if dt is not None else tgt.dt), Method(method))
    ann = any(n.ann_only for n in graph.nodes.values())
    conv, ref_pred, cal, enc, steps = None, None, None, None, timesteps
    if ann and calibration is not None:
        graph, conv, ref_pred, cal, enc, steps = _convert(graph, tgt, calibration, timesteps, encoding)
    elif calibration is not None:
        cal = calibrate.read_calibration(calibration, graph, static=False)
        steps = timesteps or cal.steps
    float_graph = float_form(graph, tgt, opts.dt, opts.method)   # one rule with plan (prequantized)
    if not ann:  # max-pool of currents: exact in float, refused (with the AvgPool figure) for integers
        from neurocc.compiler.maxpool import refuse_integer_maxpool

        refuse_integer_maxpool(float_graph, tgt, cal)
    to_q = fuse_pools(float_graph) if tgt.numerics == "loihi" else float_graph
    stats = None
    if cal is not None and tgt.numerics != "float32":
        stats = calibrate.layer_stats(to_q, cal.subset(STATS_SAMPLES), enc, int(steps))
    return Prepared(tgt, float_graph, to_q, cal, enc, steps, conv, ref_pred, stats)


def default_encoding(tgt: Target) -> str:
    """Input encoding of a converted ANN when none is asked for: a constant current (graded input,
    the most accurate per step), except for targets whose inputs carry spikes only (SpiNNaker's
    ``SpikeSourceArray``), which get Poisson rate coding."""
    return "poisson" if tgt.backend == "spinnaker" else "constant"


def _convert(graph: Graph, tgt: Target, calibration: Any, timesteps: int | None, encoding: Any) -> tuple:
    from neurocc.compiler import calibrate
    from neurocc.compiler.maxpool import ann_maxpool_rewrite
    from neurocc.compiler.passes.convert import ann_forward, convert, reset_for_target
    from neurocc.compiler.passes.normalize import normalize
    from neurocc.ir.encoding import Encoding

    norm = normalize(graph)
    cal = calibrate.read_calibration(calibration, norm, static=True)
    # LeNet-style MaxPool → AvgPool approximation, measured; predictions below stay the original ANN's
    graph, maxpool = ann_maxpool_rewrite(graph, cal)
    steps = int(timesteps or (encoding.timesteps if encoding is not None else DEFAULT_TIMESTEPS))
    enc = Encoding(default_encoding(tgt), steps) if encoding is None else replace(encoding, timesteps=steps)
    (x,) = cal.x.values()
    snn, report = convert(graph, x, timesteps=steps, reset=reset_for_target(tgt), encoding=enc,
                          calibration_y=cal.y, sweep_samples=SWEEP_SAMPLES)
    out = norm.outputs[0]
    pred = ann_forward(norm, x[:DIAG_SAMPLES], [out])[out].reshape(min(len(x), DIAG_SAMPLES), -1).argmax(1)
    return snn, {**report.to_dict(), **({"maxpool_approximation": maxpool} if maxpool else {})}, pred, cal, enc, steps


def quantize_prepared(prep: Prepared, *, stats: dict[str, LayerStats] | None = None, per_channel: bool = False,
                      weight_bits: dict[str, int] | None = None, check: bool = True,
                      bias_from_step_zero: bool = False, weight_rounding: str = "auto") -> Compiled:
    """Quantize a :class:`Prepared` (calibrated when it holds data), then run the diagnostics.

    ``stats`` (user-given) override the calibrated ones; ``weight_bits`` sets per-layer weight
    bits; ``check`` raises when quantization silences a layer that fires in float;
    ``bias_from_step_zero`` drops the bias starts (:mod:`neurocc.compiler.bias_start`);
    ``weight_rounding``: ``nearest`` (each weight to its nearest mantissa), ``calibrated`` (with
    calibration data: the rounding of least input-current error per layer, :mod:`.passes.qround`)
    or ``auto`` (the default: ``calibrated`` for a spiking model compiled with time-major
    calibration data, where the source zoo measured it closer to the trained model; ``nearest``
    otherwise: no data, or an ANN converted here, where it is not measured)."""
    from neurocc.compiler import calibrate

    tgt = prep.target
    enc = None if prep.encoding is None else prep.encoding.to_dict()
    if tgt.numerics == "float32":
        return Compiled(prep.float_graph, prep.float_graph, None, prep.conversion, None, enc, prep.timesteps,
                        None if prep.cal is None else prep.cal.summary(), _graded(prep), prep.cal)
    merged: dict[str, LayerStats] = {}
    cal_doc: dict[str, Any] | None = None
    if prep.float_stats is not None:
        merged = calibrate.to_layer_stats(prep.float_stats, weight_bits)
        cal_doc = {**prep.cal.summary(), "used": True, "stats_samples": min(prep.cal.samples, STATS_SAMPLES),
                   "layers": prep.float_stats, "inputs": _input_scales(prep, merged, per_channel, stats or {})}
    elif weight_bits:
        merged = {n: LayerStats(weight_bits=b) for n, b in weight_bits.items()}
    merged.update(stats or {})
    grams = _grams(prep, weight_rounding)
    qgraph, report = quantize_with_report(prep.to_quantize, tgt.numerics, tgt, stats=merged, per_channel=per_channel,
                                          grams=grams)
    if tgt.numerics in ("loihi", "int8"):   # (spinnaker's own pass keeps its own weight rule)
        report["weight_rounding"] = "calibrated" if grams is not None else "nearest"
    if bias_from_step_zero:
        from neurocc.compiler.bias_start import drop_bias_starts

        qgraph = drop_bias_starts(qgraph, report, prep.cal, DIAG_SAMPLES)
    _verified(qgraph, "quantize")
    diag = None
    if prep.cal is not None:
        diag = _diagnose(prep, qgraph, report)
        report["diagnostics"] = diag.to_dict()
        if check and diag.failures:
            raise CompileError(f"quantization silenced {len(diag.failures)} layer(s) that fire in the float "
                               "model", where=f"graph '{prep.float_graph.name}', target '{tgt.name}'",
                               problems=list(diag.failures),
                               fix="see each cause: raise the layer's weight bits or lower its threshold scale, "
                                   "calibrate with data that drives the layer, or let `--accuracy-budget POINTS` "
                                   "search the scales")
    if cal_doc is not None:
        report["calibration"] = cal_doc
    return Compiled(prep.float_graph, qgraph, report, prep.conversion, diag, enc, prep.timesteps, cal_doc,
                    cal=prep.cal)


WEIGHT_ROUNDINGS = ("auto", "nearest", "calibrated")


def _grams(prep: Prepared, weight_rounding: str) -> dict[str, np.ndarray] | None:
    """The synapses' calibration input Gram matrices for ``calibrated`` rounding (None: nearest)."""
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise CompileError(f"unknown weight rounding {weight_rounding!r}", where="weight_rounding",
                           fix=f"use one of: {', '.join(WEIGHT_ROUNDINGS)}")
    if weight_rounding == "auto":
        weight_rounding = "calibrated" if prep.cal is not None and prep.conversion is None else "nearest"
    if weight_rounding == "nearest" or prep.target.numerics not in ("loihi", "int8"):
        return None
    if prep.cal is None:
        raise CompileError("weight rounding 'calibrated' needs calibration data", where="weight_rounding",
                           fix="pass --calibration FILE.npz (or use the default nearest rounding)")
    from neurocc.compiler.passes.qround import input_grams

    if not prep.grams:   # measured once per Prepared (the accuracy-budget search quantizes it many times)
        prep.grams.update(input_grams(prep.to_quantize, prep.cal, prep.encoding,
                                      int(prep.timesteps or prep.cal.steps or 1)) or {"": None})
    return {k: v for k, v in prep.grams.items() if k}


def _graded(prep: Prepared) -> tuple[str, ...]:
    """Inputs that carry graded values: a constant encoding, or non-0/1 time-major calibration."""
    from neurocc.compiler import calibrate

    if prep.cal is None:
        return ()
    if prep.cal.static:
        return tuple(prep.cal.x) if prep.encoding.kind == "constant" else ()
    return tuple(n for n, g in calibrate.graded(prep.cal.x).items() if g)


def _input_scales(prep: Prepared, stats: dict[str, LayerStats], per_channel: bool,
                  given: dict[str, LayerStats]) -> dict[str, Any]:
    """Choose the scale of each graded input (adds it to ``stats``); the choice per input."""
    from neurocc.compiler import calibrate

    graded = _graded(prep)
    out: dict[str, Any] = {}
    for name in prep.cal.x:
        if name not in graded:
            out[name] = {"values": "spikes"}
        elif name in given:
            out[name] = {"values": "graded", "scale": given[name].scale, "chosen_by": "user"}
        elif prep.target.numerics not in ("loihi", "int8"):
            out[name] = {"values": "graded", "chosen_by": f"the {prep.target.numerics} quantizer"}
        else:
            scale, why = calibrate.choose_input_scale(prep.to_quantize, prep.target, stats, name, per_channel)
            stats[name] = LayerStats(scale=scale)
            out[name] = {"values": "graded", **why}
    return out


def _diagnose(prep: Prepared, qgraph: Graph, report: dict[str, Any]) -> Any:
    from neurocc.compiler.diagnostics import diagnose

    return diagnose(prep.float_graph, qgraph, prep.cal.subset(DIAG_SAMPLES), encoding=prep.encoding,
                    timesteps=int(prep.timesteps or 1), input_scales=report.get("input_scales"),
                    quantization=report, reference_pred=prep.reference_pred)


def compile_graph(graph: Graph, target: Target | str, *, dt: float | None = None,
                  method: Method | str = Method.EULER, stats: dict[str, LayerStats] | None = None,
                  targets_file: str | Path | None = None, calibration: Any = None, timesteps: int | None = None,
                  encoding: Any = None, per_channel: bool = False,
                  weight_bits: dict[str, int] | None = None, bias_from_step_zero: bool = False,
                  weight_rounding: str = "auto") -> Compiled:
    """Run the passes without writing anything (see the module docstring)."""
    tgt = resolve_target(target, targets_file)
    if graph.numerics is not None:  # already integer (a netx file): nothing to quantize
        return _prequantized(graph, tgt)
    prep = prepare(graph, tgt, dt=dt, method=method, calibration=calibration, timesteps=timesteps,
                   encoding=encoding)
    return quantize_prepared(prep, stats=stats, per_channel=per_channel, weight_bits=weight_bits,
                             bias_from_step_zero=bias_from_step_zero, weight_rounding=weight_rounding)


def _prequantized(graph: Graph, tgt: Target) -> Compiled:
    """A graph that arrives quantized (lava-dl netx files: ``loihi``) keeps its integers on a
    target of the same numerics and on edge-cpu (exact ONNX lowering); spinnaker and float32
    targets get its float form, then their own quantizer; anything else is refused with the way
    there (one rule with ``plan``: :mod:`neurocc.compiler.prequantized`)."""
    from neurocc.compiler.prequantized import target_form

    form = target_form(graph.verify(), tgt)
    if form.numerics is None:
        return compile_graph(form, tgt)   # the float model it stands for, then tgt's quantizer
    return Compiled(_float_form(form), form, None, graded_inputs=_graded_inputs(form))


def _float_form(graph: Graph) -> Graph:
    """The float graph an integer one stands for (the ``reference`` backend's model), or the
    integer graph itself where it has none (sigma-delta, no-decay neurons): then the emulator is
    the only reference (:func:`neurocc.runtime.validate.default_backends`)."""
    from neurocc.compiler.passes.dequantize import dequantize

    try:
        return dequantize(graph)
    except CompileError:
        return graph


def _graded_inputs(graph: Graph) -> tuple[str, ...]:
    """Inputs that take integer payloads (they feed a neuron or a graded synapse, through Flatten
    and Delay nodes), not 0/1 spikes."""
    def consumers(name: str) -> list[str]:
        out = []
        for d in graph.successors(name):
            out += consumers(d) if graph.nodes[d].kind in ("Flatten", "Delay") else [d]
        return out

    return tuple(n for n in graph.inputs if any(not (graph.nodes[d].kind in ("QDense", "QConv2d")
                                                     and not graph.nodes[d].graded)
                                                for d in consumers(n)))


def resolve_target(target: Target | str, targets_file: str | Path | None = None) -> Target:
    if isinstance(target, Target):
        return target
    from neurocc.targets import get_target

    return get_target(target, targets_file)


def compile_model(graph: Graph, target: Target | str, out_dir: str | Path, *, dt: float | None = None,
                  calibration: Any = None, timesteps: int | None = None,
                  method: Method | str = Method.EULER, targets_file: str | Path | None = None,
                  accuracy_budget: float | None = None, per_channel: bool = False, encoding: Any = None,
                  stats: dict[str, LayerStats] | None = None, echo: Callable[[str], None] | None = None,
                  prune: Any = None, source_check: Callable[[Any], dict[str, Any]] | None = None,
                  delta_threshold: float | None = None, sd_variant: str = "lava-0.10",
                  bias_from_step_zero: bool = False, weight_rounding: str = "auto") -> Path:
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
    """
    from neurocc.compiler.prequantized import integer_target
    from neurocc.compiler.prune import parse_spec, prune_graph

    asked = resolve_target(target, targets_file)
    tgt = integer_target(graph, asked)   # edge-cpu keeps a netx file's integers
    check_output_dir(out_dir)
    if _sigma_delta(encoding):   # refuse a target without graded spikes before anything runs
        from neurocc.compiler.sdnn_compile import check_target

        check_target(tgt)
    from neurocc.compiler.floatside import dt_line, float_side

    if echo is not None:
        echo(dt_line(graph, tgt, dt) + "\n")
        if tgt.numerics != asked.numerics:
            from neurocc.compiler.prequantized import keeps_integers

            echo(f"numerics: {tgt.numerics}, not {asked.name}'s {asked.numerics}: the model is already integer "
                 f"and {keeps_integers(graph, asked)}\n")
    source_doc = source_check(float_side(graph, tgt, dt, method, calibration, timesteps)) if source_check else None
    spec = None if prune is None else parse_spec(prune)
    if spec is not None:
        graph = prune_graph(graph, spec)
    budget_doc = None
    if _sigma_delta(encoding):
        from neurocc.compiler.sdnn_compile import compile_ann

        compiled, budget_doc = compile_ann(graph, tgt, calibration, timesteps, delta_threshold, accuracy_budget,
                                           sd_variant)
    elif accuracy_budget is not None:
        from neurocc.compiler.budget import search

        if bias_from_step_zero:
            raise CompileError("--bias-from-step-zero cannot be combined with --accuracy-budget yet",
                               where=f"graph '{graph.name}', target '{tgt.name}'",
                               fix="compile with one of the two options")

        compiled, budget_doc = search(graph, tgt, float(accuracy_budget), dt=dt, method=method,
                                      calibration=calibration, timesteps=timesteps, encoding=encoding,
                                      per_channel=per_channel, stats=stats)
    else:
        compiled = compile_graph(graph, tgt, dt=dt, method=method, calibration=calibration, timesteps=timesteps,
                                 encoding=encoding, per_channel=per_channel, stats=stats,
                                 bias_from_step_zero=bias_from_step_zero, weight_rounding=weight_rounding)
    recompile = _recompiler(graph, tgt, dict(dt=dt, method=method, calibration=calibration, timesteps=timesteps,
                                             encoding=encoding, per_channel=per_channel, stats=stats,
                                             bias_from_step_zero=bias_from_step_zero,
                                             weight_rounding=weight_rounding))
    rates = {n: float(d["rate"]) for n, d in ((compiled.calibration or {}).get("layers") or {}).items()
             if isinstance(d, dict) and d.get("rate") is not None}
    mapping = _mapping(compiled.graph, tgt, targets_file, recompile, rates or None)
    extra = _manifest_extra(graph, compiled, mapping, budget_doc, calibration, timesteps)
    if spec is not None:
        from neurocc.compiler.prune import density

        extra["prune"] = {"spec": spec.text(), "scope": spec.scope, "fraction": spec.fraction,
                          "density": density(compiled.graph)}
    if source_doc is not None:
        extra["source"] = source_doc
    if bias_from_step_zero:
        extra["bias_from_step_zero"] = True
    files = {MAPPING_FILE: (mapping.to_json() + "\n").encode()}
    if compiled.cal is not None:  # what `neurocc validate --samples N` draws from
        sample = compiled.cal.subset(CAL_SAMPLE)
        files[CAL_SAMPLE_FILE] = npz_bytes({**sample.x, **({} if sample.y is None else {"labels": sample.y})})
        extra["calibration_sample"] = {"file": CAL_SAMPLE_FILE, "samples": sample.samples,
                                       "static": sample.static}
    write_artifact(out_dir, graph=compiled.graph, float_graph=compiled.float_graph, target=tgt,
                   quantization=compiled.quantization, extra=extra, extra_files=files,
                   emit=_backend_emitter(tgt, compiled))
    from neurocc.overflow import compile_warning, warn_lines

    warn_lines(compile_warning(compiled.quantization, calibrated=compiled.cal is not None))
    if echo is not None:  # after the artifact is safely written
        from neurocc.compiler.summary import format_compile

        tables = format_compile(extra, compiled.quantization)
        echo(f"{tables}\n" if tables else "")
        from neurocc.compiler.bias_start import line

        bias_line = line(compiled.quantization)
        if bias_line:
            echo(bias_line + "\n")
        echo(f"{mapping.format_table()}\n")
    return Path(out_dir)


def _sigma_delta(encoding: Any) -> bool:
    return encoding == "sigma-delta" or getattr(encoding, "kind", None) == "sigma-delta"


def _mapping(graph: Graph, tgt: Target, targets_file: str | Path | None, recompile: Any = None,
             rates: dict[str, float] | None = None) -> Any:
    """The mapping report; MappingError (naming the binding constraint) when it does not fit.
    ``rates``: the calibrated spike rate of each layer, weighting the placement's traffic."""
    from neurocc.compiler.mapping import mapping_report, require_fit
    from neurocc.targets import load_targets

    others = {n: t for n, t in load_targets(targets_file).items() if n != tgt.name}
    return require_fit(mapping_report(graph, tgt, targets=others, recompile=recompile, rates=rates))


def _recompiler(graph: Graph, tgt: Target, kwargs: dict[str, Any]) -> Callable[[Any], tuple[Graph, Any]]:
    """For the prune fix: compile ``graph`` pruned by a spec as ``compile --prune`` would; return
    the executed graph and the emulator's accuracy on the calibration data (None without labels)."""
    def recompile(spec: Any) -> tuple[Graph, Any]:
        from neurocc.compiler.prune import prune_graph

        c = compile_graph(prune_graph(graph, spec), tgt, **kwargs)
        return c.graph, (None if c.diagnostics is None else c.diagnostics.accuracy_quant)

    return recompile


def _manifest_extra(graph: Graph, c: Compiled, mapping: Any, budget: dict[str, Any] | None, calibration: Any,
                    timesteps: int | None) -> dict[str, Any]:
    diag = None
    if c.diagnostics is not None:
        d = c.diagnostics
        points, metric = d.loss_points()
        diag = {"samples": d.samples, "agreement": d.agreement, "output_cosine": d.output_cosine,
                "accuracy_float": d.accuracy_float, "accuracy_quant": d.accuracy_quant,
                "reference_accuracy": d.reference_accuracy, "reference_agreement": d.reference_agreement,
                "loss_points": points, "loss_metric": metric, "failures": list(d.failures)}
    cal = c.calibration
    if cal is None and calibration is not None:
        cal = {"file": str(calibration) if isinstance(calibration, (str, Path)) else None, "used": False}
    extra: dict[str, Any] = {}
    if c.graded_inputs:
        from neurocc.ir.artifact import io_spec

        extra["inputs"] = [{**i, "values": "graded"} if i["name"] in c.graded_inputs else i
                           for i in io_spec(c.graph)[0]]
    return {**extra, "timesteps": c.timesteps if c.timesteps is not None else timesteps, "encoding": c.encoding,
            "source_graph": graph.name, "calibration": cal, "conversion": c.conversion, "diagnostics": diag,
            "accuracy_budget": budget,
            "mapping": {"file": MAPPING_FILE, "fits": mapping.fits, "cores": mapping.cores, "chips": mapping.chips}}


def _backend_emitter(tgt: Target, compiled: Compiled) -> Callable[[Path], None] | None:
    """The backend's ``emit_files(directory, graph, float_graph, target)``, if it defines one."""
    if tgt.backend in (None, "emulator"):
        return None
    import importlib

    from neurocc.backends import REGISTRY

    try:
        module = importlib.import_module(REGISTRY[tgt.backend])
    except ModuleNotFoundError:
        return None
    emit = getattr(module, "emit_files", None)
    if emit is None:
        return None
    return lambda directory: emit(directory, compiled.graph, compiled.float_graph, tgt)


def load_compiled(path: str | Path) -> Artifact:
    from neurocc.ir.artifact import load_artifact

    return load_artifact(path)
