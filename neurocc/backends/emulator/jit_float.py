"""numba-compiled loops of the emulator's batched float path (:mod:`.floatpath`).

Every loop is written for float64 and float32 arrays alike (numba compiles one version per
dtype); no ``fastmath``, so LLVM neither reorders nor contracts ``a·b + c`` into an FMA: each
operation rounds as the numpy kernel's does.

* :func:`active` / :func:`gather_binary` / :func:`gather_graded`: ``y = x @ w_t`` for the rows
  of ``x`` (R, in), summing only the weight rows of non-zero inputs (event-driven). The order
  of the additions is not BLAS's (four rows per pass, then into the output row), so a sum may
  differ from the numpy reference's GEMM in its last bits: by at most ``2·(n−1)·u·Σ|x_j w_j|``
  for ``n`` active inputs (both are recursive/blocked sums with that error bound; ``u`` is the
  unit roundoff of the dtype; ``tests/test_emulator_float_path.py`` checks it).
* :func:`current_window` and :func:`voltage_window`: I/IF/LI/LIF/CubaLI/CubaLIF
  (after-spike timing, reset zero or subtract, strict ``v > θ``) over a window of steps, the
  operations of :meth:`.neurons.FloatNeuron.step` in the same order (bit-identical to it in
  float64); the current of a Cuba neuron is a pass over the window before the membrane's.

Compilation is lazy (first call) and cached on disk (``cache=True``), as :mod:`.jit`.
"""
from __future__ import annotations

from numba import njit

from neurocc.backends.emulator.jit import active as _active


@njit(cache=True, nogil=True)
def active(x):
    """(cols, bounds, binary): column indices of the non-zeros of ``x`` (R, in), row by row
    (row r's are ``cols[bounds[r]:bounds[r + 1]]``, :func:`.jit.active`), and whether every
    non-zero is exactly 1 (spikes)."""
    cols, bounds = _active(x)
    R, n = x.shape
    ones = 0
    for r in range(R):
        xr = x[r]
        for j in range(n):
            ones += xr[j] == 1
    return cols, bounds, ones == bounds[R]


@njit(cache=True, nogil=True)
def gather_binary(w, cols, bounds, out):
    """``out[r] += Σ_{j in active(r)} w[j]`` (binary inputs), four weight rows per pass:
    ``out[r] += (w_a + w_b) + (w_c + w_d)`` (four row streams in flight; 1.1–1.3× one row at a
    time at 512 outputs, measured)."""
    R, n = out.shape
    for r in range(R):
        o = out[r]
        p = bounds[r]
        e = bounds[r + 1]
        while p + 3 < e:
            w0, w1, w2, w3 = w[cols[p]], w[cols[p + 1]], w[cols[p + 2]], w[cols[p + 3]]
            for c in range(n):
                o[c] += (w0[c] + w1[c]) + (w2[c] + w3[c])
            p += 4
        while p < e:
            w0 = w[cols[p]]
            for c in range(n):
                o[c] += w0[c]
            p += 1


@njit(cache=True, nogil=True)
def gather_graded(x, w, cols, bounds, out):
    """``out[r] += Σ_{j in active(r)} x[r, j] · w[j]`` (graded inputs), four rows per pass."""
    R, n = out.shape
    for r in range(R):
        o = out[r]
        xr = x[r]
        p = bounds[r]
        e = bounds[r + 1]
        while p + 3 < e:
            j0, j1, j2, j3 = cols[p], cols[p + 1], cols[p + 2], cols[p + 3]
            a0, a1, a2, a3 = xr[j0], xr[j1], xr[j2], xr[j3]
            w0, w1, w2, w3 = w[j0], w[j1], w[j2], w[j3]
            for c in range(n):
                o[c] += (a0 * w0[c] + a1 * w1[c]) + (a2 * w2[c] + a3 * w3[c])
            p += 4
        while p < e:
            j0 = cols[p]
            a0 = xr[j0]
            w0 = w[j0]
            for c in range(n):
                o[c] += a0 * w0[c]
            p += 1


@njit(cache=True, nogil=True)
def current_window(x, u, au, gu, cur):
    """CubaLI/CubaLIF's synaptic current over a window: ``u ← au·u + gu·x`` per element (as
    FloatNeuron.step), ``u`` (B, N) updated in place, every step's u into ``cur`` (T, B, N)
    (the input of :func:`voltage_window`). A pass of its own: with the membrane in the same loop
    the stores to both states defeat LLVM's vectoriser (2.4–5.7× slower, measured)."""
    T, B, N = x.shape
    for t in range(T):
        for b in range(B):
            ub, xb, cb = u[b], x[t, b], cur[t, b]
            for i in range(N):
                uu = au[i] * ub[i] + gu[i] * xb[i]
                ub[i] = uu
                cb[i] = uu


@njit(cache=True, nogil=True)
def voltage_window(x, v, av, gv, bv, th, vr, spiking, subtract, has_bias, out, rec_v, record):
    """The membrane of a float neuron over a window: ``x`` (T, B, N) the summed input (or the
    current of :func:`current_window`); ``v`` (B, N) updated in place; parameters (N,);
    ``out`` (T, B, N): spikes 0/1 (``spiking``) or v; every step's v into ``rec_v`` (T, B, N)
    when ``record``. Per element, as FloatNeuron.step::

        v ← av·v + gv·x;  has_bias: v ← v + bv
        spiking: z = v > th;  where z: v ← v − th (subtract) | vr (zero);  out = z
        else: out = v
    """
    T, B, N = x.shape
    for t in range(T):
        for b in range(B):
            vb, xb, ob = v[b], x[t, b], out[t, b]
            for i in range(N):
                vv = av[i] * vb[i] + gv[i] * xb[i]
                if has_bias:
                    vv = vv + bv[i]
                if spiking:
                    z = vv > th[i]
                    after = vv - th[i] if subtract else vr[i]
                    vv = after if z else vv
                    ob[i] = z
                else:
                    ob[i] = vv
                vb[i] = vv
            if record:    # a loop of its own, as jit.lif_window (no aliasing stores in the loop above)
                rv = rec_v[t, b]
                for i in range(N):
                    rv[i] = vb[i]
