"""Exact, sparsity-aware products ``X @ Wᵀ`` for the emulator's synapse kernels.

``rows_matmul(x, w_t)`` computes ``x (R, in) @ w_t (in, out)`` for R rows (time × batch) and
picks, per call, the cheaper of two paths:

* **gather**: for each row, sum the rows of the contiguous transposed weight matrix ``w_t``
  that its active (non-zero) inputs select; cost ∝ active inputs × fan-out. Binary rows sum
  rows; graded rows take a small dot product. Integer weights stay integer: int8 rows are
  copied into a reused buffer and summed in int16 partials of at most 255 rows (which cannot
  overflow), then in int32 when ``Weights.bound(1) < 2**31`` (else int64).
* **GEMM**: one BLAS matrix product in float32 or float64. For integer data it is used only when
  it is provably exact: every partial sum is an integer of magnitude at most
  ``max|x| · max_o Σ_j |W[o, j]|``; float32 is exact below 2**24, float64 below 2**53;
  otherwise an int64 product is used (slow, exact).

The choice uses a rough cost model (constants measured on a 2-core x86 machine, single BLAS
thread): per gathered row ``C_ROW``, per selected weight row ``C_SEL``, per gathered element
``C_GATHER``, per GEMM multiply-add ``C_GEMM``. The results are identical whichever path runs;
only speed differs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_ROW = 4e-6       # seconds of Python/numpy overhead per gathered row
C_SEL = 2.3e-7     # seconds per selected weight row (fancy-index bookkeeping)
C_GATHER = 4.3e-11  # seconds per gathered weight element
C_GEMM = 1.6e-11    # seconds per GEMM multiply-add
F32_EXACT = float(1 << 24)
F64_EXACT = float(1 << 53)
I32_EXACT = float(1 << 31)


@dataclass(frozen=True)
class Weights:
    """A weight matrix prepared once: ``w_t`` (in, out) contiguous in the smallest exact
    integer type (after dividing out a common power of two ``2**scale_shift``) or float64, plus
    lazily made float copies for GEMM and the absolute column sums for the exactness bound."""

    w_t: np.ndarray
    scale_shift: int
    integer: bool
    col_abs_max: float  # max over outputs of Σ_in |W| (in units of w_t)

    @classmethod
    def prepare(cls, w: np.ndarray, integer: bool) -> "Weights":
        """``w`` is (out, in)."""
        if not integer:
            wt = np.ascontiguousarray(np.asarray(w, np.float64).T)
            return cls(wt, 0, False, float(np.abs(wt).sum(axis=0).max(initial=0.0)))
        from neurocc.ir.numerics import pow2_factor

        w64 = np.asarray(w, np.int64)
        k = pow2_factor(w64, 16)
        ws = w64 >> k
        for dt in (np.int8, np.int16, np.int32, np.int64):
            info = np.iinfo(dt)
            if ws.size == 0 or (ws.min() >= info.min and ws.max() <= info.max):
                break
        wt = np.ascontiguousarray(ws.T.astype(dt))
        return cls(wt, k, True, float(np.abs(ws).sum(axis=1).max(initial=0)))

    def bound(self, xmax: float) -> float:
        """Largest |partial sum| of ``x @ w_t`` for inputs of magnitude <= ``xmax``."""
        return xmax * self.col_abs_max

    @property
    def n_in(self) -> int:
        return int(self.w_t.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.w_t.shape[1])

    def gemm_copy(self, dtype: type) -> np.ndarray:
        cache = self.__dict__.setdefault("_cache", {})
        if dtype not in cache:
            cache[dtype] = self.w_t.astype(dtype)
        return cache[dtype]


CHUNK = 255  # int8 rows summed per int16 partial: 255 · 128 = 32640 < 2**15, cannot overflow


def _sum_rows_int8(wt: np.ndarray, idx: np.ndarray, out: np.ndarray, buf: np.ndarray, acc16: np.ndarray) -> None:
    """``out (n_out,) int32 ← Σ wt[idx]`` for an int8 ``wt``, exact and without temporaries.

    The rows are copied (``np.take`` into the preallocated ``buf``, at most :data:`CHUNK`
    rows at a time) and summed in int16: |Σ of ≤ 255 int8 values| ≤ 255 · 128 < 2**15, so the
    int16 partial is exact; the partials add up in int32 (exact while ``Weights.bound(1) <
    2**31``, which the caller checks). The indices come from ``np.nonzero`` and are valid, so
    ``mode="clip"`` (no bounds buffer) changes nothing."""
    for i in range(0, idx.size, CHUNK):
        j = idx[i:i + CHUNK]
        b = buf[:j.size]
        np.take(wt, j, axis=0, out=b, mode="clip")
        np.add.reduce(b, axis=0, dtype=np.int16, out=acc16)
        if i:
            out += acc16
        else:
            np.copyto(out, acc16)


def _gather_int(wt: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Σ of the rows ``wt[idx]`` (binary inputs) for int16/int32/int64 ``wt``, exact."""
    if wt.dtype == np.int16 and idx.size <= 65535:
        return wt[idx].sum(axis=0, dtype=np.int32)
    return wt[idx].sum(axis=0, dtype=np.int64)


def _active(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of every non-zero of ``x`` (R, in), row by row, and the row bounds:
    row r's active inputs are ``cols[bounds[r]:bounds[r + 1]]`` (one ``nonzero`` per call)."""
    cols = np.nonzero(x)[1]
    bounds = np.zeros(x.shape[0] + 1, np.intp)
    np.cumsum(np.count_nonzero(x, axis=1), out=bounds[1:])
    return cols, bounds


def _gather_rows(x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
    R = x.shape[0]
    cols, bounds = _active(x)
    if binary and W.integer and W.w_t.dtype == np.int8 and W.bound(1.0) < I32_EXACT:
        out = np.zeros((R, W.n_out), np.int32)
        buf = np.empty((min(CHUNK, int(np.diff(bounds).max(initial=0))), W.n_out), np.int8)
        acc16 = np.empty(W.n_out, np.int16)
        for r in range(R):
            if bounds[r + 1] > bounds[r]:
                _sum_rows_int8(W.w_t, cols[bounds[r]:bounds[r + 1]], out[r], buf, acc16)
        return out
    out = np.zeros((R, W.n_out), np.int64 if W.integer else np.float64)
    for r in range(R):
        idx = cols[bounds[r]:bounds[r + 1]]
        if idx.size == 0:
            continue
        if binary:
            out[r] = _gather_int(W.w_t, idx) if W.integer else W.w_t[idx].sum(axis=0)
        elif W.integer:
            out[r] = np.asarray(x[r, idx], np.int64) @ W.w_t[idx].astype(np.int64)
        else:
            out[r] = np.asarray(x[r, idx], np.float64) @ W.w_t[idx]
    return out


def _gemm(x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
    if not W.integer:
        return np.asarray(x, np.float64) @ W.w_t
    bound = W.bound(1.0 if binary else float(np.abs(x).max(initial=0)))
    if bound < F32_EXACT:
        y = np.asarray(x, np.float32) @ W.gemm_copy(np.float32)
    elif bound < F64_EXACT:
        y = np.asarray(x, np.float64) @ W.gemm_copy(np.float64)
    else:
        return np.asarray(x, np.int64) @ W.gemm_copy(np.int64)
    return y.astype(np.int32 if bound < I32_EXACT else np.int64)


def rows_matmul(x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
    """``x (R, in) @ w_t`` → (R, out), **without** the ``2**scale_shift`` factor: int32/int64
    for integer weights (x integer-valued; int32 only when provably in range), else float64.

    ``binary``: treat every non-zero input as 1 (spikes; Lava's binary Dense mode).
    """
    if binary and x.dtype != np.bool_:
        x = x != 0
    R = x.shape[0]
    nnz = int(np.count_nonzero(x))
    gather = R * C_ROW + nnz * (C_SEL + W.n_out * C_GATHER)
    gemm = R * W.n_in * W.n_out * C_GEMM + 2e-5
    return _gather_rows(x, W, binary) if gather < gemm else _gemm(x, W, binary)
