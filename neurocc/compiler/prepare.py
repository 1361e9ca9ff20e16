"""The float side of a compile: convert an ANN, run the float passes, measure the float statistics.

An ANN (ReLU, BatchNorm, ...) is converted first (:mod:`neurocc.compiler.passes.convert`): it
needs calibration data (static ``x``, optional labels ``y``); the reset mode comes from the
target (:func:`~neurocc.compiler.passes.convert.reset_for_target`), timesteps default to
:data:`DEFAULT_TIMESTEPS`, inputs are a constant current (:mod:`neurocc.ir.encoding`,
:func:`default_encoding`). With calibration data (ANN or SNN), the float reference runs on
:data:`STATS_SAMPLES` samples to measure each layer's activity (:mod:`neurocc.compiler.calibrate`).
The result, a :class:`Prepared`, is quantized by :mod:`neurocc.compiler.compiled` (once, or
many times by the accuracy-budget search).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from neurocc.compiler.float_passes import Options, no_neurons
from neurocc.compiler.passes.fuse import fuse_pools
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

DEFAULT_TIMESTEPS = 64      # steps per sample of a converted ANN
STATS_SAMPLES = 256         # calibration samples the float statistics use
DIAG_SAMPLES = 512          # calibration samples the emulator-in-the-loop diagnostics use
SWEEP_SAMPLES = 256         # calibration samples of the conversion's accuracy/latency table

__all__ = ["DEFAULT_TIMESTEPS", "DIAG_SAMPLES", "STATS_SAMPLES", "SWEEP_SAMPLES", "Prepared", "default_encoding",
           "prepare"]


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


def prepare(graph: Graph, tgt: Target, *, dt: float | None = None, method: Method | str = Method.EULER,
            calibration: Any = None, timesteps: int | None = None, encoding: Any = None) -> Prepared:
    """Convert (ANNs), run the float passes and, with calibration data, measure the float stats."""
    from neurocc.compiler import calibrate
    from neurocc.compiler.prequantized import float_form

    graph = graph.verify()
    no_neurons(graph)
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
