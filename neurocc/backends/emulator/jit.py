"""numba-compiled loops of the emulator's optional accelerated path (see :mod:`.accel`).

Every function here is plain integer arithmetic on int64 (or on narrower integer arrays whose
sums are proven to fit, as the numpy path does) and computes exactly what the numpy reference
kernels compute; ``tests/test_emulator_accel.py`` runs both paths on every test network and on
random ones and asserts bit-identical outputs, traces and event counts.

* :func:`active` / :func:`gather_binary` / :func:`gather_graded`: ``S = x @ w_t`` for the
  rows of ``x`` (R, in), summing only the weight rows of non-zero inputs (event-driven).
  Binary sums accumulate in the caller's ``out`` dtype (int32 only when ``Weights.bound(1) <
  2**31``, so no partial sum can wrap; else int64), int8 weights through int16 partials as
  the numpy path does (twice the SIMD lanes); graded sums in int64.
* :func:`lif_window`: the fused QLIF/QLI update of :mod:`neurocc.ir.numerics.profiles`
  (loihi and int8 rules; one pass over a window of steps, event counters included).
* :func:`conv_scatter`: integer Conv2d as an event-driven scatter (each non-zero input adds
  its kernel into the outputs it reaches), int64 sums.

Compilation is lazy (first call) and cached on disk (``cache=True``; numba writes the cache
next to this file, or under ``NUMBA_CACHE_DIR`` when that directory is not writable).
"""
from __future__ import annotations

import numpy as np
from numba import njit

CHUNK = 254  # int8 rows per int16 partial (an even count: rows are added in pairs)

# counter slots of lif_window's ``counts``
C_INPUT, C_U_WRAP, C_V_SAT, C_I32 = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def active(x):
    """(cols, bounds): column indices of the non-zeros of ``x`` (R, in), row by row."""
    R, n = x.shape
    bounds = np.zeros(R + 1, np.int64)
    for r in range(R):
        c = 0
        for j in range(n):
            if x[r, j] != 0:
                c += 1
        bounds[r + 1] = bounds[r] + c
    cols = np.empty(bounds[R], np.int64)
    for r in range(R):
        p = bounds[r]
        for j in range(n):
            if x[r, j] != 0:
                cols[p] = j
                p += 1
    return cols, bounds


@njit(cache=True, nogil=True)
def gather_binary(w, cols, bounds, out):
    """``out[r] += Σ_{j in active(r)} w[j]`` (binary inputs; any integer widths whose sums
    fit ``out``'s dtype: the caller checks ``Weights.bound(1)``)."""
    R, n = out.shape
    for r in range(R):
        for p in range(bounds[r], bounds[r + 1]):
            j = cols[p]
            for c in range(n):
                out[r, c] += w[j, c]


@njit(cache=True, nogil=True)
def gather_binary_i8(w, cols, bounds, out):
    """:func:`gather_binary` for int8 ``w`` and int32 ``out``: rows are summed two at a time
    into an int16 partial of at most :data:`CHUNK` rows (|Σ| <= 254·128 < 2**15: exact), then
    the partial is added to the int32 row (exact while ``Weights.bound(1) < 2**31``)."""
    R, n = out.shape
    acc = np.zeros(n, np.int16)
    for r in range(R):
        p0 = bounds[r]
        while p0 < bounds[r + 1]:
            p1 = min(p0 + CHUNK, bounds[r + 1])
            for c in range(n):
                acc[c] = 0
            p = p0
            while p + 1 < p1:
                j = cols[p]
                k = cols[p + 1]
                for c in range(n):
                    acc[c] += np.int16(w[j, c]) + np.int16(w[k, c])
                p += 2
            if p < p1:
                j = cols[p]
                for c in range(n):
                    acc[c] += w[j, c]
            for c in range(n):
                out[r, c] += acc[c]
            p0 = p1


@njit(cache=True, nogil=True)
def gather_graded(x, w, cols, bounds, out):
    """``out[r] += Σ_{j in active(r)} x[r, j] · w[j]`` in int64 (graded integer inputs)."""
    R, n = out.shape
    for r in range(R):
        for p in range(bounds[r], bounds[r + 1]):
            j = cols[p]
            xv = np.int64(x[r, j])
            for c in range(n):
                out[r, c] += xv * np.int64(w[j, c])


@njit(cache=True, nogil=True, inline="always")
def _wrap(x, bits):
    """Two's-complement wrap of int64 ``x`` to ``bits`` (core.wrap)."""
    half = np.int64(1) << (bits - 1)
    if -half <= x < half:
        return x, 0
    m = (np.int64(1) << bits) - 1
    return ((x + half) & m) - half, 1


@njit(cache=True, nogil=True, inline="always")
def _decay(x, f):
    """core.decay: sign(p)·(|p| >> 12), p = x·f."""
    p = x * f
    return -((-p) >> 12) if p < 0 else p >> 12


@njit(cache=True, nogil=True)
def lif_window(a_in, u, v, ref, fu, fv, bias, vth, out, rec_u, rec_v, rec_ref, loihi, spiking, subtract,
               refractory, record, counts):
    """QLIF/QLI over a window: ``a_in`` (T, B, N) integer sums; state ``u``/``v``/``ref``
    (B, N) float64 holding integers (the numpy kernel's representation), updated in place;
    parameters (N,) int64 (``fu``/``fv`` decay factors, ``bias`` and ``vth`` in state LSBs);
    ``out`` (T, B, N): spikes (spiking) or v; ``rec_*`` (T, B, N) int64 when ``record``.

    Per element (profiles.Profile.neuron_input / lif_current / lif_voltage and
    neurons.IntNeuron._update)::

        a = wrap32(a_in)
        loihi: u ← lava_wrap24(wrap32(trunc0(u·fu/2^12) + wrap32(a << 6)))
        int8:  u ← wrap24(trunc0(u·fu/2^12) + (a << 6))
        s = trunc0(v·fv/2^12) + u + bias;  loihi: s ← wrap32(s);  v' = clip(s, ±(2^23 − 1))
        refractory: hold = ref > 0; v' ← v where hold; z = v' > vth and not hold;
                    ref ← refractory where z else max(ref − 1, 0)
        z = v' > vth;  v' ← v' − vth (subtract) or 0 where z
    """
    T, B, N = a_in.shape
    U24 = np.int64(1) << 23
    VLIM = U24 - 1
    for b in range(B):
        for i in range(N):
            uu = np.int64(u[b, i])
            vv = np.int64(v[b, i])
            rr = np.int64(ref[b, i])
            f_u, f_v, bi, th = fu[i], fv[i], bias[i], vth[i]
            for t in range(T):
                a, k = _wrap(np.int64(a_in[t, b, i]), 32)
                counts[C_INPUT] += k
                dec = _decay(uu, f_u)
                if loihi:
                    a6, k1 = _wrap(a << 6, 32)
                    s, k2 = _wrap(dec + a6, 32)
                    counts[C_I32] += k1 + k2
                    if s > U24:
                        s -= 2 * U24
                        counts[C_U_WRAP] += 1
                    elif s <= -U24:
                        s += 2 * U24
                        counts[C_U_WRAP] += 1
                    uu = s
                else:
                    uu, k = _wrap(dec + (a << 6), 24)
                    counts[C_U_WRAP] += k
                s = _decay(vv, f_v) + uu + bi
                if loihi:
                    s, k = _wrap(s, 32)
                    counts[C_I32] += k
                if s > VLIM:
                    s = VLIM
                    counts[C_V_SAT] += 1
                elif s < -VLIM:
                    s = -VLIM
                    counts[C_V_SAT] += 1
                if spiking:
                    z = False
                    if refractory > 0:
                        if rr > 0:
                            s = vv
                            rr -= 1
                        elif s > th:
                            z = True
                            rr = refractory
                    elif s > th:
                        z = True
                    if z:
                        s = s - th if subtract else 0
                    out[t, b, i] = 1 if z else 0
                else:
                    out[t, b, i] = s
                vv = s
                if record:
                    rec_u[t, b, i] = uu
                    rec_v[t, b, i] = vv
                    rec_ref[t, b, i] = rr
            u[b, i] = uu
            v[b, i] = vv
            ref[b, i] = rr


@njit(cache=True, nogil=True)
def conv_scatter(x, w, stride, padding, dilation, groups, out):
    """Event-driven integer Conv2d: ``x`` (R, C, H, W) integer; ``w`` (C/groups, kh, kw, C_out)
    int64 (the weight transposed so output channels are contiguous); ``out`` (R, Ho, Wo, C_out)
    int64 zeros. Each non-zero ``x[r, c, h, w]`` adds ``x · w[c', i, j, o]`` to output
    ``(oh, ow) = ((h + ph − i·dh) / sh, (w + pw − j·dw) / sw)`` where that is a whole in-range
    position, for the output channels ``o`` of c's group (PyTorch semantics, zero padding)."""
    R, C, H, W = x.shape
    cig, kh, kw, co = w.shape
    _, Ho, Wo, _ = out.shape
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    cog = co // groups
    for r in range(R):
        for c in range(C):
            g = c // cig
            ci = c - g * cig
            o0 = g * cog
            for h in range(H):
                for q in range(W):
                    xv = np.int64(x[r, c, h, q])
                    if xv == 0:
                        continue
                    for i in range(kh):
                        nh = h + ph - i * dh
                        if nh < 0 or nh % sh != 0 or nh // sh >= Ho:
                            continue
                        oh = nh // sh
                        for j in range(kw):
                            nw = q + pw - j * dw
                            if nw < 0 or nw % sw != 0 or nw // sw >= Wo:
                                continue
                            ow = nw // sw
                            wk = w[ci, i, j]
                            dst = out[r, oh, ow]
                            for o in range(cog):
                                dst[o0 + o] += xv * wk[o0 + o]
