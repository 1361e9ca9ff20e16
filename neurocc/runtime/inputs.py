"""Inputs checked against what the artifact knows about them (used by ``run`` and ``evaluate``).

An artifact records, per graph input, its shape and whether it carries spikes or graded values
(``manifest.inputs``), and, when it was compiled with calibration data, how that data looked:
the layout (static or time-major), the steps per sample (``manifest.calibration.steps``, or the
encoding's ``timesteps`` for a converted ANN) and, from the samples it keeps
(``calibration_sample.npz``), the value range. :func:`input_profiles` gathers that;
:func:`layout_warnings` and :func:`range_warnings` compare an input with it:

* an array whose shape fits the input only after reordering its axes is refused, naming the
  transpose that fits (:func:`axis_hint`);
* a time-major array ``(steps, batch, *shape)`` whose *batch* equals the calibrated steps while
  its steps do not (e.g. ``(450, 25, 64)`` for 25-step samples) warns that it looks batch-major;
* graded values reaching beyond the calibrated range by more than half its span (e.g. pixels in
  0..16 for an artifact calibrated on 0..1) warn with both ranges.

Warnings are :class:`~neurocc.errors.InputWarning` (the CLI prints them as one line each).
"""
from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import InputWarning
from neurocc.ir.artifact import Artifact

RANGE_SLACK = 0.5   # values may leave the calibrated [low, high] by this fraction of its span


@dataclass(frozen=True)
class InputProfile:
    """What the artifact knows about one input. ``steps``: steps per calibrated sample (None when
    unknown); ``low``/``high``: the calibration samples' value range in the model's input scale."""

    name: str
    shape: tuple[int, ...]
    values: str = "spikes"
    steps: int | None = None
    static: bool | None = None
    low: float | None = None
    high: float | None = None
    scale: float = 1.0      # the input encoding's scale: a time-major input holds scale · x


def input_profiles(art: Artifact) -> dict[str, InputProfile]:
    """One :class:`InputProfile` per graph input, from the manifest and the calibration sample."""
    m = art.manifest
    cal = m.get("calibration") or {}
    enc = m.get("encoding") or {}
    steps = cal.get("steps") or enc.get("timesteps") or m.get("timesteps")
    static = None if not cal.get("layout") else str(cal["layout"]).startswith("static")
    ranges = _sample_ranges(art)
    return {i["name"]: InputProfile(i["name"], tuple(i["shape"]), i.get("values", "spikes"),
                                    None if steps is None else int(steps), static,
                                    *ranges.get(i["name"], (None, None)), float(enc.get("scale", 1.0)))
            for i in art.inputs}


def _sample_ranges(art: Artifact) -> dict[str, tuple[float, float]]:
    doc = art.manifest.get("calibration_sample")
    if not doc or art.path is None:
        return {}
    path = Path(art.path) / doc["file"]
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: (float(np.min(f[k])), float(np.max(f[k]))) for k in f.files
                    if k != "labels" and f[k].size}
    except (OSError, ValueError):
        return {}


def axis_hint(shape: tuple[int, ...], want: tuple[int, ...], lead: int) -> str | None:
    """``x.transpose(...)`` that makes ``shape`` end in ``want`` (with ``lead`` leading axes), or None."""
    if len(shape) != len(want) + lead:
        return None
    for perm in itertools.permutations(range(len(shape))):
        if perm != tuple(range(len(shape))) and tuple(shape[p] for p in perm[lead:]) == tuple(want):
            return f"x.transpose{perm} gives {tuple(shape[p] for p in perm)}"
    return None


def layout_warnings(profile: InputProfile, steps: int, batch: int) -> list[str]:
    """A warning when a time-major ``(steps, batch, ...)`` input looks batch-major."""
    t = profile.steps
    if t is None or steps == t or batch != t:
        return []
    return [f"input '{profile.name}' runs as {steps} steps x batch {batch}, but the artifact was calibrated "
            f"on {t}-step samples: is it batch-major (samples, steps, ...)? Transpose it to time-major "
            f"(x.swapaxes(0, 1)), or for `evaluate` leave it batch-major (its default)"]


def range_warnings(profile: InputProfile, x: np.ndarray, encoded: bool = False) -> list[str]:
    """A warning when graded values leave the calibrated range by more than :data:`RANGE_SLACK` of
    its span. ``encoded``: ``x`` is a time-major input, i.e. ``scale · x`` of a static encoding."""
    if profile.values != "graded" or profile.low is None or profile.high is None or x.size == 0:
        return []
    k = profile.scale if (encoded and profile.static) else 1.0
    lo_cal, hi_cal = k * profile.low, k * profile.high
    low, high = float(np.min(x)), float(np.max(x))
    span = max(hi_cal - lo_cal, 1e-12)
    if low >= lo_cal - RANGE_SLACK * span and high <= hi_cal + RANGE_SLACK * span:
        return []
    factor = max(abs(low), abs(high)) / max(abs(lo_cal), abs(hi_cal), 1e-12)
    return [f"input '{profile.name}' holds values in {low:g}..{high:g}, but the artifact was calibrated on "
            f"{lo_cal:g}..{hi_cal:g} ({factor:.3g}x the largest magnitude): scale the inputs as during "
            "calibration (e.g. pixels / 16), or the network saturates"]


def warn(messages: list[str]) -> None:
    for text in messages:
        warnings.warn(text, InputWarning, stacklevel=3)


def check_against_artifact(art: Artifact, inputs: Mapping[str, Any], steps: int, batch: int) -> None:
    """Warn (:class:`InputWarning`) about time-major inputs that look transposed or out of range."""
    profiles = input_profiles(art)
    out: list[str] = []
    for name, x in inputs.items():
        p = profiles.get(name)
        if p is not None:
            out += layout_warnings(p, steps, batch) + range_warnings(p, np.asarray(x), encoded=True)
    warn(out)
