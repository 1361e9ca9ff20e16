"""Convolution and pooling over a leading row axis (rows = time × batch), PyTorch semantics.

``conv(x, weight, stride, padding, dilation, groups, integer)`` takes ``x`` (R, C_in, *spatial)
and ``weight`` (C_out, C_in/groups, *kernel) with 1 or 2 spatial dims and returns
(R, C_out, *spatial_out):  ``y[r, o, p] = Σ_{c, k} W[o, c, k] · x_pad[r, g(o)·C_in/groups + c,
s·p + d·k]``. It builds patches (im2col) in row blocks of bounded size and multiplies with
BLAS. Integer data is exact: float32 when every partial sum is below 2**24 in magnitude,
float64 below 2**53, else int64 (see :mod:`.linalg`).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neurocc.backends.emulator.linalg import F32_EXACT, F64_EXACT

BLOCK_ELEMS = 1 << 23   # patch elements per block (64 MiB of float64)


def _as2d(x: np.ndarray, weight: np.ndarray, stride: tuple, padding: tuple, dilation: tuple):
    """Lift 1-D convolutions to 2-D with a height-1 axis."""
    if weight.ndim == 3:
        return (x[:, :, None, :], weight[:, :, None, :], (1, *stride), (0, *padding), (1, *dilation))
    return x, weight, tuple(stride), tuple(padding), tuple(dilation)


def _patches(x: np.ndarray, kh: int, kw: int, stride: tuple, padding: tuple, dilation: tuple) -> np.ndarray:
    """(R, C, Ho, Wo, kh, kw) view-then-copy of the padded input windows."""
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dh, dw = dilation
    win = sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dh, ::dw]
    return win


def _dtype_for(x: np.ndarray, weight: np.ndarray, integer: bool) -> type:
    if not integer:
        return np.float64
    per_out = np.abs(weight.astype(np.int64)).reshape(weight.shape[0], -1).sum(axis=1)
    bound = float(np.abs(x).max(initial=0)) * float(per_out.max(initial=0))
    if bound < F32_EXACT:
        return np.float32
    return np.float64 if bound < F64_EXACT else np.int64


def conv(x: np.ndarray, weight: np.ndarray, stride: tuple, padding: tuple, dilation: tuple,
         groups: int, integer: bool) -> np.ndarray:
    """See the module docstring. Returns int64 for integer data, else float64."""
    squeeze = weight.ndim == 3
    x, weight, stride, padding, dilation = _as2d(x, weight, stride, padding, dilation)
    R, C = x.shape[:2]
    co, cig, kh, kw = weight.shape
    dt = _dtype_for(x, weight, integer)
    wins = _patches(x, kh, kw, stride, padding, dilation)
    ho, wo = wins.shape[2:4]
    cog = co // groups
    out = np.empty((R, co, ho, wo), np.int64 if integer else np.float64)
    per_row = C * ho * wo * kh * kw
    block = max(1, BLOCK_ELEMS // max(per_row, 1))
    for g in range(groups):
        wg = weight[g * cog:(g + 1) * cog].reshape(cog, cig * kh * kw).astype(dt).T  # (cig·kh·kw, cog)
        for r0 in range(0, R, block):
            p = wins[r0:r0 + block, g * cig:(g + 1) * cig]                        # (b, cig, ho, wo, kh, kw)
            cols = np.ascontiguousarray(p.transpose(0, 2, 3, 1, 4, 5)).reshape(-1, cig * kh * kw).astype(dt)
            y = (cols @ wg).reshape(p.shape[0], ho, wo, cog).transpose(0, 3, 1, 2)
            out[r0:r0 + block, g * cog:(g + 1) * cog] = y
    return out[:, :, 0, :] if squeeze else out


def sum_pool(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    """``y[r, c, h, w] = Σ_{i<kH, j<kW} x_pad[r, c, s·h + i, s·w + j]`` (zero padding), same dtype
    family (int64 for integers, float64 for floats)."""
    acc = np.int64 if x.dtype.kind in "iub" else np.float64
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = kernel
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return win.sum(axis=(-2, -1), dtype=acc)


def max_pool(x: np.ndarray, kernel: tuple, stride: tuple, padding: tuple) -> np.ndarray:
    """``y[r, c, h, w] = max_{i<kH, j<kW} x_pad[r, c, s·h + i, s·w + j]`` (padding −inf), float64."""
    x = np.asarray(x, np.float64)
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    kh, kw = kernel
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return win.max(axis=(-2, -1))
