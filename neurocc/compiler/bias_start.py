"""``bias_from_step_zero``: biases from the run's first step, as netx files and Lava's own LIF do.

On loihi2 the quantizer starts a biased QLIF/QLI layer's bias with its Dense-delayed input
(``bias_start`` = the layer's input latency in steps,
:meth:`neurocc.compiler.passes.qlayers.Quantizer._bias_starts`): at steps
``t < bias_start`` the layer integrates no bias, like the trained model, whose bias and input
arrive together. lava-dl netx's CUBA neuron adds its bias from step 0, so a graph with a bias
start has no ``network.net``. This option drops every ``bias_start`` (biases act from step 0);
netx can then write the file, and the first ``bias_start`` steps of each such layer (and what
they cause later) differ from the trained model. ``bias_u`` (snnTorch ``Synaptic`` biases on the
current) stays: netx cannot express it with or without this option.

The choice is recorded in quantization.json (``bias_from_step_zero``: the dropped starts per
layer and, with time-major calibration data, how many output values it changes on up to
``DIAG_SAMPLES`` samples against the artifact with the bias starts).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.compiler.passes.quantize import bias_from_step_zero
from neurocc.ir.graph import Graph


def drop_bias_starts(qgraph: Graph, report: dict[str, Any], cal: Any, samples: int) -> Graph:
    """``qgraph`` without bias starts; ``report["bias_from_step_zero"]`` says what was dropped and
    what it changes on the calibration data (``cal``: a Calibration or None)."""
    layers = report.get("layers") or {}
    starts = {n: int(d.pop("bias_start")) for n, d in layers.items() if isinstance(d, dict) and "bias_start" in d}
    out = bias_from_step_zero(qgraph)
    doc: dict[str, Any] = {"enabled": True, "dropped_bias_start": starts}
    if starts:
        doc["measured"] = _measure(qgraph, out, cal, samples)
    report["bias_from_step_zero"] = doc
    return out


def _measure(with_start: Graph, from_zero: Graph, cal: Any, samples: int) -> dict[str, Any] | None:
    """Output values that differ between the two graphs on time-major calibration inputs (None:
    no such data; a static ANN input is encoded per sample and not replayed here)."""
    if cal is None or cal.static:
        return None
    from neurocc.backends.emulator import simulate

    x = {k: np.asarray(v) for k, v in cal.subset(samples).x.items()}
    a = simulate(with_start, x).outputs
    b = simulate(from_zero, x).outputs
    differ = total = 0
    steps: list[int] = []
    for name in a:
        d = np.asarray(a[name]) != np.asarray(b[name])
        differ += int(d.sum())
        total += int(d.size)
        steps += [int(s) for s in np.nonzero(d.reshape(d.shape[0], -1).any(1))[0]]
    return {"samples": int(next(iter(x.values())).shape[1]), "output_values": total, "differ": differ,
            "first_step": min(steps) if steps else None, "last_step": max(steps) if steps else None}


def line(report: dict[str, Any] | None) -> str | None:
    """The one compile line for the option (None when it is off)."""
    doc = (report or {}).get("bias_from_step_zero")
    if not doc:
        return None
    starts = doc.get("dropped_bias_start") or {}
    if not starts:
        return "bias from step zero: no layer's bias waited for its input; nothing changed"
    layers = ", ".join(f"{n} ({s} step{'s' if s > 1 else ''})" for n, s in starts.items())
    m = doc.get("measured")
    if m is None:
        how = ("not measured here (no time-major --calibration); `neurocc validate` measures the artifact "
               "against the float model")
    else:
        where = "" if m["first_step"] is None else f", at steps {m['first_step']}..{m['last_step']}"
        how = (f"on {m['samples']} calibration samples {m['differ']} of {m['output_values']} output values differ "
               f"from the bias-start timing{where}")
        diag = report.get("diagnostics") or {}
        if diag.get("agreement") is not None:
            how += f"; agreement with the float model {100 * float(diag['agreement']):.1f}%"
    return (f"bias from step zero: the biases of {layers} now act before the layer's input arrives: their first "
            f"steps differ from the trained model, and so may later spikes: {how}")

