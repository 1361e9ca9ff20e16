"""Write and print a validation report: the atomic ``validation.json`` and the text table.

:func:`write_json` writes the report (non-finite floats as null) through
:func:`neurocc._files.write_bytes_atomic`; :func:`format_validation` is the table ``neurocc
validate`` prints: one row per result, then per result its error, first divergence and likely
cause, graded readouts, learned weights, failure reason and quantization agreement. The report's
fields are described in :mod:`neurocc.runtime.validate`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neurocc._files import write_bytes_atomic


def write_json(path: Path, doc: Any) -> Path:
    """Atomic JSON write (non-finite floats become null)."""
    return write_bytes_atomic(path, (json.dumps(_finite(doc), indent=1) + "\n").encode())


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def format_validation(result: Mapping[str, Any]) -> str:
    """The validation report as a text table (what ``neurocc validate`` prints)."""
    inp = result.get("inputs", {})
    lines = [(f"validation of {result['artifact']} (target {result['target']}): "
              f"{inp.get('batch', '?')} sample(s) x {inp.get('steps', '?')} steps, {inp.get('source', '')}"),
             f"{'backend':<10} {'reference':<10} {'rule':<13} {'exact':<6} {'mismatches':>22} {'cosine':>8}  passed"]
    for r in result["results"]:
        rule = r["rule"] if r["rule"] in ("exact", "source") else f"cosine>={r['min_cosine']:.2f}"
        cos = "-" if r.get("cosine") is None else f"{r['cosine']:.4f}"
        mm = f"{r.get('mismatches', 0)}/{r.get('compared', 0)}"
        lines.append(f"{r['backend']:<10} {r['reference']:<10} {rule:<13} {'yes' if r.get('exact') else 'no':<6} "
                     f"{mm:>22} {cos:>8}  {'PASS' if r['passed'] else 'FAIL'}")
    for r in result["results"]:
        lines += _detail_lines(r)
    return "\n".join(lines)


def _detail_lines(r: Mapping[str, Any]) -> list[str]:
    """The lines under the table for one result: error, first divergence and its likely cause,
    readouts not judged exact, learned weights, why it failed, quantization agreement."""
    lines: list[str] = []
    if r.get("error"):
        lines.append(f"  {r['backend']}: {r['error']}")
    fd = r.get("first_divergence")
    if fd and (r["rule"] in ("exact", "source") or not r["passed"]):
        lines.append(f"  first divergence ({r['backend']} vs {r['reference']}): node '{fd['node']}' var "
                     f"{fd['var']} step {fd['step']} index {fd['index']}: expected {fd['expected']}, got {fd['got']}")
        if r["backend"] == "source" and r.get("first_divergence_explanation"):
            lines.append(f"    likely cause: {r['first_divergence_explanation']}")
        if r.get("first_divergence_class"):
            lines.append(f"    likely cause [{r['first_divergence_class']}]: {r.get('first_divergence_explanation')}")
    for o, ro in (r.get("readouts") or {}).items():
        if ro["rule"] != "exact" or not ro["passed"]:
            lim = "" if ro["limit"] is None else (f" (<= {ro['limit']:g})" if ro["rule"] == "relative_error"
                                                  else f" (cosine >= {ro['limit']:g})")
            lines.append(f"  readout '{o}' ({r['backend']} vs {r['reference']}, {ro['compared']} values): relative "
                         f"error {ro['relative_error']:.4g}{lim if ro['rule'] == 'relative_error' else ''}, "
                         f"cosine {ro['cosine']:.4f}{lim if ro['rule'] == 'cosine' else ''}: "
                         f"{'PASS' if ro['passed'] else 'FAIL'}")
    from neurocc.runtime.learned import format_lines

    lines += format_lines(r)
    if not r["passed"] and r.get("reason") and not r.get("error"):
        lines.append(f"  {r['backend']} failed: {r['reason']}")
    if r.get("overflow_cause"):
        lines.append(f"    likely cause [overflow]: {r['overflow_cause']}")
    if r.get("class_agreement") is not None and r["backend"] == "emulator":
        sce = r.get("spike_count_error") or {}
        lines.append(f"  quantization: class agreement {r['class_agreement']:.3f}, output error "
                     f"{sce.get('mean_abs', 0):.3g} per neuron (mean absolute, float model units)")
    return lines
