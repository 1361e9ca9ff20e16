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

* **sparse scatter** (integer weights with at most :data:`SPARSE_DENSITY` non-zeros, e.g. a
  pruned layer): the non-zero synapses of every active input of every row are gathered at once
  from a CSR copy of ``w_t`` and summed per (row, output) with one ``bincount``; cost ∝ active
  inputs × non-zero fan-out, with no per-row Python loop. ``bincount`` sums in float64, so it is
  used only when ``Weights.bound`` is below 2**53 (every partial sum is then an exact integer).

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
# sparse scatter: per non-zero synapse of an active input, and per (row, output) of the bincount
# result. Measured while the shared machine was loaded, then scaled by the ratio of the gather and
# GEMM timings of the same run to the constants above (about 1/7), so the model stays consistent.
C_SPARSE = 4e-9
C_SPARSE_OUT = 4e-9
SPARSE_DENSITY = 0.25  # weights at most this dense get a CSR copy for the sparse scatter
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

    @property
    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(indptr, output index, value) of the non-zeros of each input row of ``w_t``, made once;
        None for float weights or weights denser than :data:`SPARSE_DENSITY`."""
        cache = self.__dict__.setdefault("_cache", {})
        if "csr" not in cache:
            nnz = int(np.count_nonzero(self.w_t))
            if not self.integer or nnz > SPARSE_DENSITY * self.w_t.size:
                cache["csr"] = None
            else:
                rows, cols = np.nonzero(self.w_t)
                ptr = np.zeros(self.n_in + 1, np.int64)
                np.cumsum(np.bincount(rows, minlength=self.n_in), out=ptr[1:])
                cache["csr"] = (ptr, cols.astype(np.int64), self.w_t[rows, cols].astype(np.float64))
        return cache["csr"]

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


def _sparse_scatter(x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
    """All rows at once: Σ over active inputs of their non-zero synapses (module doc)."""
    ptr, out_idx, val = W.csr
    r, j = np.nonzero(x)
    counts = ptr[j + 1] - ptr[j]
    total = int(counts.sum())
    first = np.repeat(ptr[j] - (np.cumsum(counts) - counts), counts)
    pos = first + np.arange(total, dtype=np.int64)
    weights = val[pos] if binary else val[pos] * np.repeat(np.asarray(x[r, j], np.float64), counts)
    flat = np.repeat(r.astype(np.int64) * W.n_out, counts) + out_idx[pos]
    y = np.bincount(flat, weights=weights, minlength=x.shape[0] * W.n_out).reshape(x.shape[0], W.n_out)
    xmax = 1.0 if binary else float(np.abs(x).max(initial=0))
    return y.astype(np.int32 if W.bound(xmax) < I32_EXACT else np.int64)


def _sparse_ok(x: np.ndarray, W: Weights, binary: bool) -> bool:
    if W.csr is None:
        return False
    return W.bound(1.0 if binary else float(np.abs(x).max(initial=0))) < F64_EXACT


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
    gather, gemm, sparse = path_costs(x.shape[0], int(np.count_nonzero(x)), W)
    if sparse < min(gather, gemm) and _sparse_ok(x, W, binary):
        return _sparse_scatter(x, W, binary)
    return _gather_rows(x, W, binary) if gather < gemm else _gemm(x, W, binary)


def path_costs(R: int, nnz: int, W: Weights) -> tuple[float, float, float]:
    """Modelled seconds of (gather, GEMM, sparse scatter) for ``R`` rows with ``nnz`` non-zero
    inputs (sparse: inf unless the integer weights keep a CSR copy)."""
    gather = R * C_ROW + nnz * (C_SEL + W.n_out * C_GATHER)
    gemm = R * W.n_in * W.n_out * C_GEMM + 2e-5
    sparse = float("inf")
    if W.integer and W.csr is not None:
        sparse = 1e-5 + R * W.n_out * C_SPARSE_OUT + nnz * (W.csr[0][-1] / max(W.n_in, 1)) * C_SPARSE
    return gather, gemm, sparse
