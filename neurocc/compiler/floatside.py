"""The float side of a compile, for the source check (:mod:`neurocc.runtime.source`): the float
passes alone on the model as read (no calibration statistics, no quantization), and the line that
says which dt the compile uses and where it came from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocc.compiler.float_passes import Options, run_passes
from neurocc.compiler.float_passes import no_neurons as _no_neurons
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

MIN_TAU_STEPS = 5           # dt_line hints at a shorter dt when a time constant spans fewer steps


@dataclass(frozen=True)
class FloatSide:
    """What the source check compares with: the float graph as the artifact will keep it (None for
    an ANN, which is converted), the calibration data (time-major SNN samples) and timesteps."""

    float_graph: Graph | None
    cal: Any = None
    timesteps: int | None = None
    conversion: bool = False
    ann_graph: Graph | None = None          # an ANN: its normalized graph (before conversion)
    folded: tuple[str, ...] = ()            # an ANN: layers a BatchNorm was folded into


def float_side(graph: Graph, tgt: Target, dt: float | None, method: Method | str, calibration: Any,
               timesteps: int | None) -> FloatSide:
    """The float passes alone (cheap: no calibration statistics), for the source check."""
    from neurocc.compiler import calibrate

    graph = graph.verify()
    if graph.numerics is not None:  # already integer (a netx file): no float reading to compare
        return FloatSide(None)
    if any(n.ann_only for n in graph.nodes.values()):
        from neurocc.compiler.passes.normalize import normalize
        from neurocc.ir.nodes import BatchNorm

        norm = normalize(graph)
        cal = calibrate.read_calibration(calibration, norm, static=True) if calibration is not None else None
        folded = tuple(p for n, v in graph.nodes.items() if isinstance(v, BatchNorm) for p in graph.predecessors(n))
        return FloatSide(None, cal, conversion=True, ann_graph=norm, folded=folded)
    _no_neurons(graph)
    cal = calibrate.read_calibration(calibration, graph, static=False) if calibration is not None else None
    fg = run_passes(graph, Options(tgt, float(dt if dt is not None else tgt.dt), Method(method)))
    return FloatSide(fg, cal, timesteps or (cal.steps if cal is not None else None))


def dt_line(graph: Graph, tgt: Target, dt: float | None) -> str:
    """Which dt the compile uses and where it came from; a hint when the graph's time constants
    suggest a much shorter step (the smallest τ spans fewer than :data:`MIN_TAU_STEPS` steps of the
    target's default; only then: a dt from the model or ``--dt`` is the user's choice)."""
    from neurocc.ir.discrete import NEURON_TYPES

    if graph.numerics is not None:   # already integer (a netx file): decays and delays count steps
        line = (f"dt: {float(graph.dt or tgt.dt):g} s per step, from the model: a {graph.numerics}-numerics integer "
                "graph (a lava-dl netx file: one Lava step, labelled 1 ms) whose decays and delays count steps")
        return line + ("; --dt is not used (it would not change the integers)" if dt is not None else "")
    if dt is not None:
        used, origin = float(dt), "--dt"
    elif graph.dt is not None:
        used, origin = float(graph.dt), "the model (its frontend's step, e.g. snnTorch's beta read at 1e-3 s)"
    else:
        used, origin = float(tgt.dt), f"target '{tgt.name}' default (the model carries no dt, as NIR files and ANNs)"
    taus = [float(np.min(v)) for n in graph.nodes.values() if isinstance(n, NEURON_TYPES)
            for k, v in vars(n).items() if k.startswith("tau") and v is not None and np.size(v)]
    line = f"dt: {used:g} s, from {origin}"
    if taus and min(taus) < MIN_TAU_STEPS * used and dt is None and graph.dt is None:
        suggest = 10.0 ** np.floor(np.log10(min(taus) / MIN_TAU_STEPS))
        line += (f"; the smallest time constant is {min(taus):.3g} s, only {min(taus) / used:.3g} steps of dt: "
                 f"the graph looks made for dt <= {suggest:g} s (pass --dt {suggest:g} if so)")
    return line
