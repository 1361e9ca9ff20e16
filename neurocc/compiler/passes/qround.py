"""Calibrated weight rounding: integer weights that minimise a layer's input-current error on the
calibration data, instead of rounding each weight to its nearest integer on its own.

For one synapse with float weights ``W`` (rows = output neurons, already in integer mantissa
units: the quantizer's ``g · f_in · W · s``) and its inputs ``x`` over every calibration step and
sample, the current error of integer weights ``Q`` is

    E(Q) = Σ_{t,b} ‖(Q − W) x_tb‖² = Σ_rows (q − w)ᵀ H (q − w),     H = Σ_{t,b} x_tb x_tbᵀ

(``H`` the input Gram matrix, measured on the float reference). Nearest rounding minimises
``‖q − w‖²`` and ignores that correlated inputs can cancel each other's rounding errors.
:func:`round_weights` rounds the columns one at a time and moves each column's rounding error onto
the columns not yet rounded along ``H`` (the optimal-brain-quantisation update, as in GPTQ:
Frantar et al. 2023), which minimises ``E`` for the remaining columns given the ones fixed.
Weights that are 0 in ``W`` stay 0 (a pruned or structural zero keeps its place); every value is
clipped to the mantissa range ``[lo, hi]``. ``H`` is damped by ``DAMP`` of its mean diagonal (and
inputs that never fire get a unit diagonal), so that its inverse exists.

:func:`input_grams` measures ``H`` per synapse (Affine/Linear; Conv2d with groups 1 and dilation
1 on its im2col patches) from the float reference on the calibration inputs. Used by the quantize
pass with ``weight_rounding="calibrated"`` (docs/numerics.md#weight-rounding; measured on the zoo:
docs/source-check.md, section 6).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Affine, Conv2d, Input, Linear

DAMP = 0.01          # fraction of the mean diagonal added to H
MAX_SAMPLES = 256    # calibration samples used for the Gram matrices


def round_weights(w: np.ndarray, gram: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Integer ``Q`` (same shape as ``w``, rows = outputs, the rest flattened against ``gram``)
    minimising the current error ``Σ_rows (q − w)ᵀ H (q − w)`` column by column (module docstring)."""
    shape = w.shape
    wm = np.asarray(w, np.float64).reshape(shape[0], -1).copy()
    n = wm.shape[1]
    h = np.asarray(gram, np.float64).copy()
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    h += DAMP * float(np.mean(np.diag(h))) * np.eye(n)
    order = np.argsort(-np.diag(h), kind="stable")      # most active inputs first (GPTQ's act order)
    h, wm = h[np.ix_(order, order)], wm[:, order]
    keep = wm != 0
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T       # upper factor of H⁻¹
    except np.linalg.LinAlgError:
        return np.clip(np.rint(w), lo, hi)
    q = np.zeros_like(wm)
    for j in range(n):
        q[:, j] = np.where(keep[:, j], np.clip(np.rint(wm[:, j]), lo, hi), 0.0)
        err = (wm[:, j] - q[:, j]) / u[j, j]
        wm[:, j + 1:] -= np.outer(err, u[j, j + 1:])
    out = np.empty_like(q)
    out[:, order] = q
    return out.reshape(shape)


def input_grams(graph: Graph, cal: Any, encoding: Any | None, steps: int) -> dict[str, np.ndarray]:
    """``{synapse: H}`` for the float ``graph`` on the calibration data (module docstring)."""
    from neurocc.backends.emulator import prepare, simulate
    from neurocc.compiler.calibrate import chunk_samples, float_inputs

    syns = {n: node for n, node in graph.nodes.items() if _gram_kind(node)}
    if not syns:
        return {}
    prog = prepare(graph)
    grams: dict[str, np.ndarray] = {}
    total = min(cal.samples, MAX_SAMPLES)
    size = chunk_samples(graph, steps)
    for i in range(0, total, size):
        x = float_inputs(cal, encoding, steps, i, min(size, total - i))
        res = simulate(graph, x, steps=steps, record=True, program=prog)
        for n, node in syns.items():
            inp = _synapse_input(graph, n, x, res.traces)
            if inp is None:
                continue
            for t in range(len(inp)) if isinstance(node, Conv2d) else (slice(None),):   # conv: one step's
                part = inp[t:t + 1] if isinstance(t, int) else inp                        # patches at a time
                cols = _patches(node, part) if isinstance(node, Conv2d) else part.reshape(-1, part[0, 0].size)
                g = cols.T @ cols
                grams[n] = grams[n] + g if n in grams else g
    return grams


def _gram_kind(node: Any) -> bool:
    if isinstance(node, Conv2d):
        return int(node.groups) == 1 and all(int(d) == 1 for d in np.atleast_1d(node.dilation))
    return isinstance(node, (Affine, Linear))


def _synapse_input(graph: Graph, name: str, x: Mapping[str, np.ndarray],
                   traces: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The summed input of synapse ``name`` per step (steps, batch, *shape), float64; None if unknown."""
    total = None
    for p in graph.predecessors(name):
        a = x.get(p) if isinstance(graph.nodes[p], Input) else traces.get(f"{p}/out")
        if a is None:
            return None
        total = np.asarray(a, np.float64) if total is None else total + a
    return total


def _patches(node: Conv2d, inp: np.ndarray) -> np.ndarray:
    """im2col rows (steps·batch·H'·W', C·kH·kW) of a conv input (steps, batch, C, H, W)."""
    kh, kw = (int(k) for k in np.asarray(node.weight).shape[2:])
    sh, sw = (int(s) for s in np.broadcast_to(np.asarray(node.stride), (2,)))
    ph, pw = (int(p) for p in np.broadcast_to(np.asarray(node.padding), (2,)))
    a = inp.reshape(-1, *inp.shape[2:])
    a = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(a, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(-1, a.shape[1] * kh * kw)
