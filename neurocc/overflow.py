"""Wrap and saturation events, as every command shows and stores them.

The integer emulator (the specification) counts, per node, every value that left its register
during a run (:class:`neurocc.backends.emulator.SimResult` ``events``): ``u_wrap`` (Loihi's
24-bit current ``u`` wrapped), ``v_saturate`` (the 24-bit voltage ``v`` clipped at ±(2^23 − 1)),
``acc_wrap``/``out_wrap`` (a synapse's accumulator or output wrapped), ``input_wrap`` and
``int32_wrap`` (an int32 register wrapped), ``rb_saturate`` (a SpiNNaker ring-buffer entry
clipped at 0xFFFF). A float model never does either, so any count means the deployed network
computes something else than the trained one there.

This module is the one place that turns those counts into what users see, for ``run``,
``validate``, ``evaluate``, ``report``, ``quickstart`` and the Python API:

* :func:`collect`: the non-zero counts of one run, summed over runs (batches);
* :func:`lines` / :func:`warn`: one line per node and event with the count (the CLI prints
  warnings as ``neurocc: warning: ...``);
* :func:`to_json`: the ``overflow`` field of the JSON outputs, ``{node: {event: count}}``;
* :func:`cause`: the "likely cause" sentence ``validate`` gives a failed result;
* :func:`predicted`/:func:`compile_warning`: the quantizer's own prediction (quantization.json
  ``u_may_wrap``) for ``compile`` without calibration data.

Only the emulator counts events; Lava, ONNX Runtime and NEST do not report them (the Lava and
edge-cpu backends equal the emulator bit for bit, so the emulator's counts are theirs).
A leaf module: it imports nothing from neurocc, so compiler and runtime both use it.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from typing import Any

Counts = dict[str, dict[str, int]]

DOCS = "docs/troubleshooting.md#overflow-and-saturation"
FIX = ("recompile with calibration data (--calibration FILE.npz) so the layer scales leave headroom, or with "
       "fewer weight bits (limits.weight_bits in a --targets file, or --accuracy-budget)")
SHORT_FIX = "recompile with --calibration FILE.npz (representative inputs) or fewer weight bits"
WHAT: dict[str, str] = {
    "u_wrap": "current u wrapped (24-bit register)",
    "v_saturate": "voltage v saturated (clipped at ±(2^23 − 1))",
    "acc_wrap": "synaptic accumulator wrapped",
    "out_wrap": "synapse output wrapped",
    "input_wrap": "neuron input wrapped (int32)",
    "int32_wrap": "an int32 register wrapped",
    "rb_saturate": "ring-buffer entry saturated (uint16)",
}
SATURATING = ("v_saturate", "rb_saturate")


class OverflowWarning(UserWarning):
    """A quantized network wrapped or saturated a register (or the quantizer predicts it may)."""


def collect(events: Mapping[str, Mapping[str, int]] | None, into: Counts | None = None) -> Counts:
    """The non-zero counts of ``events`` (``{node: {event: count}}``) added to ``into``."""
    out: Counts = into if into is not None else {}
    for node, ev in (events or {}).items():
        for key, n in ev.items():
            if int(n):
                mine = out.setdefault(node, {})
                mine[key] = mine.get(key, 0) + int(n)
    return out


def to_json(counts: Counts | None) -> dict[str, dict[str, int]] | None:
    """The JSON field: nodes and events sorted; None when the backend does not count events."""
    if counts is None:
        return None
    return {n: {k: int(v) for k, v in sorted(counts[n].items())} for n in sorted(counts)}


def lines(counts: Counts | None, where: str = "") -> list[str]:
    """One line per node and event: ``node 'li': voltage v saturated ... 740 time(s)``."""
    suffix = f" [{where}]" if where else ""
    return [f"overflow in node '{n}': {WHAT.get(k, k)} {v} time(s){suffix}: {SHORT_FIX} (see {DOCS})"
            for n, ev in sorted((counts or {}).items()) for k, v in sorted(ev.items())]


def warn(counts: Counts | None, where: str = "", stacklevel: int = 4) -> None:
    """Issue :func:`lines` as :class:`OverflowWarning` s (always shown, not once per place)."""
    warn_lines(lines(counts, where), stacklevel)


def warn_lines(texts: list[str], stacklevel: int = 3) -> None:
    """Each text as one :class:`OverflowWarning` attributed to the caller ``stacklevel`` frames up.
    Shown every time under the default filter (a fresh registry: a second run of the same network
    warns again), while "ignore" and "error" filters still apply."""
    try:
        frame = sys._getframe(stacklevel - 1)
    except ValueError:
        frame = sys._getframe(0)
    for text in texts:
        warnings.warn_explicit(text, OverflowWarning, frame.f_code.co_filename, frame.f_lineno,
                               module=frame.f_globals.get("__name__"), registry={})


def cause(counts: Counts | None, nodes: Any = None) -> str | None:
    """The likely-cause sentence for a failed comparison: saturation first, then wraps; ``nodes``
    limits it to those nodes (None: all). None when nothing overflowed."""
    picked = {n: ev for n, ev in (counts or {}).items() if nodes is None or n in nodes}
    if not picked:
        return None
    sat = [f"'{n}' {k} {v}" for n, ev in sorted(picked.items()) for k, v in sorted(ev.items()) if k in SATURATING]
    wrap = [f"'{n}' {k} {v}" for n, ev in sorted(picked.items()) for k, v in sorted(ev.items()) if k not in SATURATING]
    parts = ([f"saturation: {', '.join(sat)} event(s)"] if sat else []) + \
            ([f"wrap: {', '.join(wrap)} event(s)"] if wrap else [])
    return ("the emulator's registers overflowed (" + "; ".join(parts) + "), so the integer network "
            f"cannot follow the float model there: {FIX}")


def predicted(quantization: Mapping[str, Any] | None) -> list[tuple[str, str, int]]:
    """(neuron, synapse, worst-case |u|) of every synapse quantization.json marks ``u_may_wrap``."""
    out = []
    for layer, rep in sorted(((quantization or {}).get("layers") or {}).items()):
        for syn, s in sorted((rep.get("synapses") or {}).items()):
            if s.get("u_may_wrap"):
                out.append((layer, syn, int(s.get("max_abs_u", 0))))
    return out


def compile_warning(quantization: Mapping[str, Any] | None, calibrated: bool) -> list[str]:
    """``compile``'s warning lines: the quantizer predicts a possible 24-bit current wrap and no
    calibration data sized the scales (with calibration, the diagnostics table shows measured counts)."""
    if calibrated:
        return []
    return [f"node '{layer}' may wrap its 24-bit current u: synapse '{syn}' can add up to {u:,} "
            f"(> 2^23 = 8,388,608) in one step when all its inputs spike; without calibration data "
            f"the scales are set from the weights alone. Pass --calibration FILE.npz (sample inputs) to size "
            f"them on real activity (the quantizer then lowers the layer's scale exponent to leave headroom), or "
            f"use fewer weight bits (limits.weight_bits in a --targets file) (see {DOCS})"
            for layer, syn, u in predicted(quantization)]


__all__ = ["Counts", "OverflowWarning", "cause", "collect", "compile_warning", "lines", "predicted", "to_json",
           "warn", "warn_lines"]
