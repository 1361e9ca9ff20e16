"""Metrics that compare two runs of one artifact (time-major arrays ``(steps, batch, *shape)``).

* :func:`exact_diff`: element counts and the first differing element (bit-exact backends).
* :func:`activity_cosine`: the NIR paper's metric (Pedersen et al. 2024, Fig. 4): the cosine
  similarity of **time-averaged activity**. Each array is averaged over its steps, giving one
  vector per run (batch × neurons flattened); the result is ``a·b / (|a| |b|)``, 1.0 when both
  runs are silent and 0.0 when only one of them is. Cosine ignores a positive scale factor, so
  integer membrane traces can be compared with float ones directly.
* :func:`spike_count_error`: mean absolute difference of per-neuron spike counts, and that
  difference relative to the mean count of the expected run.
* :func:`class_agreement`: fraction of samples whose arg-max output (summed over time) agrees.
* :func:`align`: drop a known latency (Lava's one step per Dense) before comparing.
* :func:`relative_error` / :func:`trace_cosine`: graded readouts (LI/CubaLI membranes) compared
  value by value over every step: ``|got − expected|₂ / |expected|₂`` and the cosine of the two
  whole traces (steps × batch × neurons flattened).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def align(expected: np.ndarray, got: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Compare ``expected[t]`` with ``got[t + lag]``: both cut to the overlapping steps."""
    if lag <= 0:
        n = min(len(expected), len(got))
        return expected[:n], got[:n]
    n = min(len(expected), len(got) - lag)
    return expected[:max(n, 0)], got[lag:lag + max(n, 0)]


def activity_cosine(expected: np.ndarray, got: np.ndarray) -> float:
    """Cosine similarity of time-averaged activity (see the module docstring)."""
    a = np.asarray(expected, np.float64).mean(axis=0).ravel() if len(expected) else np.zeros(0)
    b = np.asarray(got, np.float64).mean(axis=0).ravel() if len(got) else np.zeros(0)
    return _cosine(a, b)


def relative_error(expected: np.ndarray, got: np.ndarray) -> float:
    """``‖got − expected‖₂ / ‖expected‖₂`` over all elements (0.0 when both are zero, inf when only
    ``expected`` is)."""
    e, g = np.asarray(expected, np.float64).ravel(), np.asarray(got, np.float64).ravel()
    ne, nd = float(np.linalg.norm(e)), float(np.linalg.norm(g - e))
    if ne == 0.0:
        return 0.0 if nd == 0.0 else float("inf")
    return nd / ne


def trace_cosine(expected: np.ndarray, got: np.ndarray) -> float:
    """Cosine similarity of the two whole traces (1.0 when both are zero, 0.0 when one is)."""
    return _cosine(np.asarray(expected, np.float64).ravel(), np.asarray(got, np.float64).ravel())


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors: 1.0 when both are zero, 0.0 when only one is."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


def spike_count_error(expected: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Per-neuron spike counts over the run: mean |difference| and that relative to the mean count."""
    ca = np.asarray(expected, np.float64).sum(axis=0)
    cb = np.asarray(got, np.float64).sum(axis=0)
    mae = float(np.abs(ca - cb).mean()) if ca.size else 0.0
    mean = float(ca.mean()) if ca.size else 0.0
    return {"mean_abs": mae, "relative": mae / mean if mean > 0 else (0.0 if mae == 0 else float("inf"))}


def class_agreement(expected: np.ndarray, got: np.ndarray) -> float:
    """Fraction of batch items whose arg-max over the time-summed output agrees."""
    a = np.asarray(expected, np.float64).sum(axis=0)
    b = np.asarray(got, np.float64).sum(axis=0)
    if a.ndim == 0 or a.shape[0] == 0:
        return 1.0
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def exact_diff(expected: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    """``compared`` and ``mismatches`` element counts, and the first mismatch (step-major order)
    as ``{"step", "index", "expected", "got"}`` (index excludes the step axis) or None."""
    e, g = np.asarray(expected), np.asarray(got)
    if e.shape != g.shape:
        return {"compared": int(e.size), "mismatches": int(e.size), "shape_mismatch": [list(e.shape), list(g.shape)],
                "first": {"step": 0, "index": [], "expected": f"shape {list(e.shape)}", "got": f"shape {list(g.shape)}"}}
    diff = e != g
    n = int(np.count_nonzero(diff))
    first = None
    if n:
        pos = np.unravel_index(int(np.flatnonzero(diff.ravel())[0]), diff.shape)
        first = {"step": int(pos[0]), "index": [int(i) for i in pos[1:]],
                 "expected": _scalar(e[pos]), "got": _scalar(g[pos])}
    return {"compared": int(e.size), "mismatches": n, "first": first}


def first_divergence(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                     order: Sequence[str]) -> dict[str, Any] | None:
    """The earliest differing element over the arrays named in both runs.

    Keys are ``<node>`` (a node's output) or ``<node>/<var>`` (state); ties on the step go to the
    node earlier in ``order`` (the graph's evaluation order). Returns
    ``{"node", "step", "index", "var", "expected", "got"}`` or None when all agree.
    """
    rank = {n: i for i, n in enumerate(order)}
    best: tuple[int, int, str] | None = None
    found: dict[str, Any] | None = None
    for key in sorted(set(expected) & set(got)):
        node, _, var = key.partition("/")
        d = exact_diff(expected[key], got[key])
        if d["first"] is None:
            continue
        cand = (d["first"]["step"], rank.get(node, len(rank)), key)
        if best is None or cand < best:
            best = cand
            found = {"node": node, "step": d["first"]["step"], "index": d["first"]["index"],
                     "var": var or "out", "expected": d["first"]["expected"], "got": d["first"]["got"]}
    return found


def _scalar(x: Any) -> Any:
    v = np.asarray(x).item()
    return v if not isinstance(v, float) or np.isfinite(v) else str(v)
