"""Text tables ``neurocc compile`` prints: conversion, quantization, diagnostics, budget trials.

Each formatter takes the JSON-ready dicts the artifact stores (manifest ``conversion`` and
``accuracy_budget``, ``quantization.json``), so the same tables can be printed again from an
artifact directory (:func:`format_artifact_summary`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _grid(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in head]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return [fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]]


def _g(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, list):
        return _g(x[0], digits) if min(x) == max(x) else f"{min(x):.{digits}g}..{max(x):.{digits}g}"
    return f"{float(x):.{digits}g}"


def _span(v: Sequence[int] | None) -> str:
    if not v:
        return "-"
    return str(v[0]) if v[0] == v[-1] else f"{v[0]}..{v[-1]}"


def format_conversion(conv: Mapping[str, Any]) -> str:
    """λ per converted layer and the float SNN's accuracy/latency table."""
    title = (f"ANN→SNN conversion: reset {conv['reset']}, readout {conv['readout']}, p{conv['percentile']:g} "
             f"per {'channel' if conv['per_channel'] else 'layer'}, threshold scale {conv['threshold_scale']:g}, "
             f"T={conv['timesteps']}, encoding {conv['encoding']['kind']}")
    lines = [title]
    lines += _grid(["layer", "kind", "lambda", "max activation"],
                   [[x["node"], x["kind"], _g(x["lam"]), _g(x["max_activation"])] for x in conv["layers"]])
    acc = f", ANN accuracy {100 * conv['ann_accuracy']:.2f}%" if conv.get("ann_accuracy") is not None else ""
    lines.append(f"float SNN on {conv['n_calibration']} calibration samples{acc}:")
    lines += _grid(["timesteps", "agreement with ANN", "accuracy"],
                   [[r["timesteps"], _pct(r["agreement"]), _pct(r["accuracy"])] for r in conv["tradeoff"]])
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def format_quantization(report: Mapping[str, Any]) -> str:
    """Per layer: scale, exponent, weight bits, thresholds, biases, and what bound the scale."""
    if report.get("profile") == "spinnaker":
        return _format_spinnaker(report)
    rows = []
    for name, lay in report["layers"].items():
        syn = list(lay["synapses"].values())
        zero = max((s.get("zero_fraction", 0.0) for s in syn), default=0.0)
        cal = lay.get("calibrated") or {}
        bound = ", ".join(f"{k} 2^{_log2(v)}" for k, v in (cal.get("limits") or {}).items()) or "-"
        rows.append([name, lay["kind"], _g(lay["scale"]), lay["exp"], lay.get("weight_bits", report["weight_bits"]),
                     _span(lay.get("vth")), _span(lay.get("bias_mant")), f"{100 * zero:.1f}%",
                     "yes" if lay.get("per_channel") else "no", bound])
    lines = [f"quantization ({report['profile']} numerics, rounding {report['rounding']}):"]
    lines += _grid(["layer", "kind", "scale", "exp", "w bits", "vth", "bias mant", "w→0", "per-chan",
                    "headroom bound on 2^exp"], rows)
    for name, info in ((report.get("calibration") or {}).get("inputs") or {}).items():
        if info.get("values") == "graded":
            lines.append(f"input '{name}': graded, fed as rint(x · {info.get('scale'):g})"
                         + (f" (bounded by {_bounds(info.get('bound_by') or {})})" if info.get("bound_by") else ""))
    return "\n".join(lines)


def _format_spinnaker(report: Mapping[str, Any]) -> str:
    """SpiNNaker layers: membrane scale, ring-buffer shifts and weight LSBs per receptor, cores."""
    rows = []
    for name, lay in report["layers"].items():
        syn = list(lay.get("synapses", {}).values())
        zero = sum(s.get("zero", 0) for s in syn) / max(1, sum(s.get("n", 0) for s in syn))
        shifts = "/".join(str(v) for v in lay.get("ring_buffer_shift", []))
        lsb = "/".join(_g(v) for v in lay.get("weight_lsb_nA", []))
        rows.append([name, lay["kind"], _g(lay.get("v_scale_mV")), shifts, lsb, f"{100 * zero:.1f}%",
                     lay.get("max_atoms_per_core", "-"), lay.get("lag", "-")])
    lines = ["quantization (spinnaker numerics: s16.15 state, u0.32 decays, uint16 ring-buffer weights):"]
    lines += _grid(["layer", "kind", "mV per unit", "rb shift exc/inh", "weight LSB nA exc/inh", "w→0",
                    "atoms/core", "lag"], rows)
    lines += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def _log2(v: float) -> str:
    import math

    return str(math.floor(math.log2(v))) if v > 0 else "-inf"


def _bounds(by: Mapping[str, Mapping[str, float]]) -> str:
    parts = [(v, f"{layer} {reg} ≤ {v:.4g}") for layer, regs in by.items() for reg, v in regs.items()]
    return min(parts)[1] if parts else "-"


def format_budget(doc: Mapping[str, Any]) -> str:
    """Every trial of the accuracy-budget search and the configuration chosen."""
    rows = []
    for i, t in enumerate(doc["trials"], 1):
        bits = ", ".join(f"{k}:{v}" for k, v in t["weight_bits"].items()) or "8 (all)"
        loss = "-" if t.get("loss_points") is None else f"{t['loss_points']:.2f}"
        res = "within" if t.get("within") else ("error: " + t["error"] if t.get("error") else "over")
        rows.append([i, t["phase"], t["timesteps"], "yes" if t["per_channel"] else "no", bits, loss, res])
    ch = doc["chosen"]
    title = (f"accuracy budget {doc['points']:g} points ({doc['metric']} on the calibration data): "
             f"chose T={ch['timesteps']}, per-channel {'yes' if ch['per_channel'] else 'no'}, weight bits "
             f"{ch['weight_bits'] or 'target default'}, loss {ch['loss_points']:.2f} points")
    lines = [title]
    lines += _grid(["#", "phase", "T", "per-chan", "weight bits", "loss (points)", "result"], rows)
    return "\n".join(lines)


def format_compile(manifest: Mapping[str, Any], quantization: Mapping[str, Any] | None) -> str:
    """All compile tables of one artifact, in pipeline order (mapping excluded)."""
    from neurocc.compiler.diagnostics import format_diagnostics

    parts = []
    if (manifest.get("conversion") or {}).get("encoding") == "sigma-delta":
        from neurocc.compiler.sdnn_compile import format_sigma_delta

        parts.append(format_sigma_delta(manifest["conversion"]))
        if manifest.get("accuracy_budget"):
            doc = manifest["accuracy_budget"]
            parts.append(f"accuracy budget {doc['points']:g} points: threshold fractions tried "
                         + ", ".join(f"{t['threshold_fraction']:g} (lost {t['loss_points']:.2f})" for t in doc["trials"])
                         + f"; chose {doc['chosen']['threshold_fraction']:g}")
        return "\n\n".join(parts)
    if manifest.get("conversion"):
        parts.append(format_conversion(manifest["conversion"]))
    if quantization:
        parts.append(format_quantization(quantization))
        if quantization.get("diagnostics"):
            parts.append(format_diagnostics(quantization["diagnostics"]))
    if manifest.get("accuracy_budget"):
        parts.append(format_budget(manifest["accuracy_budget"]))
    return "\n\n".join(parts)


def format_artifact_summary(path: str | Path) -> str:
    """:func:`format_compile` of the artifact directory at ``path``."""
    from neurocc.ir.artifact import load_artifact

    art = load_artifact(path)
    return format_compile(art.manifest, art.quantization)
