"""The in-memory compile: quantize a :class:`~neurocc.compiler.prepare.Prepared` float side into
a :class:`Compiled` (integer graph and reports), with the emulator-in-the-loop diagnostics.

    prepare (float side) → [calibration: input scales] → quantize → [bias starts dropped]
        → verify → [calibration: diagnostics; a silenced layer fails the compile]

The graded input's scale is chosen from the calibrated measurements, quantize keeps the measured
activity within the registers, and the emulator is run against the float reference
(:mod:`neurocc.compiler.diagnostics`): a layer that quantization silences fails the compile,
naming the cause. A graph that arrives quantized (lava-dl netx) takes the prequantized route
(:mod:`neurocc.compiler.prequantized`). Nothing here writes files (:mod:`neurocc.compiler.pipeline`
does).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.compiler.float_passes import verified
from neurocc.compiler.passes.quantize import LayerStats, quantize_with_report
from neurocc.compiler.prepare import DIAG_SAMPLES, STATS_SAMPLES, Prepared, prepare
from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

WEIGHT_ROUNDINGS = ("auto", "nearest", "calibrated")

__all__ = ["WEIGHT_ROUNDINGS", "Compiled", "compile_graph", "quantize_prepared", "resolve_target"]


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


def resolve_target(target: Target | str, targets_file: str | Path | None = None) -> Target:
    """``target`` itself, or the target of that name (from ``targets_file`` or the built-in file)."""
    if isinstance(target, Target):
        return target
    from neurocc.targets import get_target

    return get_target(target, targets_file)


def compile_graph(graph: Graph, target: Target | str, *, dt: float | None = None,
                  method: Method | str = Method.EULER, stats: dict[str, LayerStats] | None = None,
                  targets_file: str | Path | None = None, calibration: Any = None, timesteps: int | None = None,
                  encoding: Any = None, per_channel: bool = False,
                  weight_bits: dict[str, int] | None = None, bias_from_step_zero: bool = False,
                  weight_rounding: str = "auto") -> Compiled:
    """Run the passes without writing anything (see :mod:`neurocc.compiler.pipeline`)."""
    tgt = resolve_target(target, targets_file)
    if graph.numerics is not None:  # already integer (a netx file): nothing to quantize
        return _prequantized(graph, tgt)
    prep = prepare(graph, tgt, dt=dt, method=method, calibration=calibration, timesteps=timesteps,
                   encoding=encoding)
    return quantize_prepared(prep, stats=stats, per_channel=per_channel, weight_bits=weight_bits,
                             bias_from_step_zero=bias_from_step_zero, weight_rounding=weight_rounding)


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
    tgt = prep.target
    enc = None if prep.encoding is None else prep.encoding.to_dict()
    if tgt.numerics == "float32":
        return Compiled(prep.float_graph, prep.float_graph, None, prep.conversion, None, enc, prep.timesteps,
                        None if prep.cal is None else prep.cal.summary(), _graded(prep), prep.cal)
    merged, cal_doc = _merged_stats(prep, stats, weight_bits, per_channel)
    grams = _grams(prep, weight_rounding)
    qgraph, report = quantize_with_report(prep.to_quantize, tgt.numerics, tgt, stats=merged, per_channel=per_channel,
                                          grams=grams)
    if tgt.numerics in ("loihi", "int8"):   # (spinnaker's own pass keeps its own weight rule)
        report["weight_rounding"] = "calibrated" if grams is not None else "nearest"
    if bias_from_step_zero:
        from neurocc.compiler.bias_start import drop_bias_starts

        qgraph = drop_bias_starts(qgraph, report, prep.cal, DIAG_SAMPLES)
    verified(qgraph, "quantize")
    diag = None if prep.cal is None else _diagnose(prep, qgraph, report, check)
    if cal_doc is not None:
        report["calibration"] = cal_doc
    return Compiled(prep.float_graph, qgraph, report, prep.conversion, diag, enc, prep.timesteps, cal_doc,
                    cal=prep.cal)


def _merged_stats(prep: Prepared, stats: dict[str, LayerStats] | None, weight_bits: dict[str, int] | None,
                  per_channel: bool) -> tuple[dict[str, LayerStats], dict[str, Any] | None]:
    """The quantizer's per-layer stats (calibrated, then weight bits, then the user's, which win)
    and the manifest's calibration entry (None without calibration statistics)."""
    from neurocc.compiler import calibrate

    merged: dict[str, LayerStats] = {}
    cal_doc: dict[str, Any] | None = None
    if prep.float_stats is not None:
        merged = calibrate.to_layer_stats(prep.float_stats, weight_bits)
        cal_doc = {**prep.cal.summary(), "used": True, "stats_samples": min(prep.cal.samples, STATS_SAMPLES),
                   "layers": prep.float_stats, "inputs": _input_scales(prep, merged, per_channel, stats or {})}
    elif weight_bits:
        merged = {n: LayerStats(weight_bits=b) for n, b in weight_bits.items()}
    merged.update(stats or {})
    return merged, cal_doc


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


def _diagnose(prep: Prepared, qgraph: Graph, report: dict[str, Any], check: bool) -> Any:
    """The emulator against the float reference on the calibration data (into ``report``); with
    ``check``, a CompileError naming each layer that quantization silenced."""
    from neurocc.compiler.diagnostics import diagnose

    diag = diagnose(prep.float_graph, qgraph, prep.cal.subset(DIAG_SAMPLES), encoding=prep.encoding,
                    timesteps=int(prep.timesteps or 1), input_scales=report.get("input_scales"),
                    quantization=report, reference_pred=prep.reference_pred)
    report["diagnostics"] = diag.to_dict()
    if check and diag.failures:
        raise CompileError(f"quantization silenced {len(diag.failures)} layer(s) that fire in the float "
                           "model", where=f"graph '{prep.float_graph.name}', target '{prep.target.name}'",
                           problems=list(diag.failures),
                           fix="see each cause: raise the layer's weight bits or lower its threshold scale, "
                               "calibrate with data that drives the layer, or let `--accuracy-budget POINTS` "
                               "search the scales")
    return diag


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
