"""The batched float path on a CPU with numba (``device="cpu"``): compiled float synapses and
neurons, in float64 (the specification's dtype, default) or float32 (``float_dtype``).

The interpreter (:mod:`.program`) already runs a feed-forward graph **layer-major**: a node
outside any cycle is evaluated over a whole window of steps at once, so a synapse sees all T·B
rows of its input as one ``(T·B, n_in)`` matrix and a neuron runs its recurrence over T in one
call; nodes in a recurrent component run step by step (step-major, unchanged). This module
makes those two calls fast for float graphs:

* :class:`NbDense` (Affine/Linear): ``y = x Wᵀ (+ b)`` by the compiled event-driven gather of
  :mod:`.jit_float` (only the weight rows of non-zero inputs are summed; spikes skip the
  multiply) when its cost model says it is cheaper than a dense GEMM, else one BLAS GEMM in the
  dtype (float64: the numpy reference's own product);
* :class:`NbFloatNeuron` (I/IF/LI/LIF/CubaLI/CubaLIF with the default spike and reset options,
  reset zero or subtract): the window loops of :mod:`.jit_float`, the
  operations of :meth:`.neurons.FloatNeuron.step` in the same order.

Agreement with the numpy reference (``tests/test_emulator_float_path.py``): **float64** — the
neuron updates are bit-identical; a gathered sum adds the same terms in another order than
BLAS, so it differs by at most ``2·(n−1)·2**-53·Σ_j |x_j w_j|`` for ``n`` active inputs (the
textbook bound of a recursive sum, once for each side), and a spike can differ only where a
membrane lies within that distance of its threshold. **float32** — weights, sums, states and
parameters are rounded to float32 (unit roundoff 2**-24 instead of 2**-53): sums differ from
float64 by at most ``(n+1)·2**-24·Σ_j |x_j w_j|`` per synapse layer, and spikes near the
threshold flip; docs/backends/emulator.md gives the measured deviation (spike mismatches, accuracy).
float32 is an option for speed on dataset-wide runs, never the judge: the float64 graph is the
specification and ``validate`` always runs it.

Other float kinds (conv, pool, scale, ReLU, a neuron with another reset option) keep their
numpy kernels and compute in float64 on the values they receive.
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator import kernels as K
from neurocc.backends.emulator.neurons import FloatNeuron
from neurocc.errors import InputError
from neurocc.ir.types import ResetMode

FLOAT_DTYPES = ("float64", "float32")
# cost model (seconds, one thread, 2-core AMD EPYC; measured at 3200 rows × 512 outputs, 15–25 % active)
C_GATHER = {np.dtype(np.float64): 1.3e-10, np.dtype(np.float32): 6e-11}   # per gathered weight element
C_GEMM = {np.dtype(np.float64): 4.5e-11, np.dtype(np.float32): 2e-11}     # per GEMM multiply-add
C_SCAN = 1.2e-9      # per input element scanned for its non-zeros
GRADED = 1.25        # a graded gather (one multiply per element) over a binary one


def check_float_dtype(name: str | None) -> np.dtype:
    """The numpy dtype of ``float_dtype`` (None: float64), or an InputError naming the fix."""
    if name is None:
        return np.dtype(np.float64)
    if str(name) not in FLOAT_DTYPES:
        raise InputError(f"unknown float dtype {name!r}", where="--float-dtype",
                           fix="use --float-dtype float64 (the specification, the default) or float32 (faster "
                               "on the batched path, rounds differently: docs/backends/emulator.md)")
    return np.dtype(str(name))


def matmul(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """``x (R, in) @ wt (in, out)`` in ``wt``'s dtype: the compiled gather over the non-zeros
    of ``x`` or one GEMM, whichever the cost model finds cheaper (module docstring)."""
    dt = wt.dtype
    x = np.ascontiguousarray(x, dt)
    R, n_in = x.shape
    n_out = wt.shape[1]
    gemm = R * n_in * n_out * C_GEMM[dt]
    if R * n_in * C_SCAN > gemm:
        return x @ wt
    from neurocc.backends.emulator import jit_float

    cols, bounds, binary = jit_float.active(x)
    if cols.size * n_out * C_GATHER[dt] * (1.0 if binary else GRADED) > gemm:
        return x @ wt
    out = np.zeros((R, n_out), dt)
    if binary:
        jit_float.gather_binary(wt, cols, bounds, out)
    else:
        jit_float.gather_graded(x, wt, cols, bounds, out)
    return out


class NbDense(K.Dense):
    """Float Affine/Linear in ``fdt``: :func:`matmul`, then ``+ b`` (as :class:`~.kernels.Dense`)."""

    fdt = np.dtype(np.float64)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.out_dtype = self.fdt.type
        self.wt = np.ascontiguousarray(self.W.w_t, self.fdt)
        self.b = self.bias.astype(self.fdt) if np.any(self.bias) else None

    def rows(self, x: np.ndarray) -> np.ndarray:
        y = matmul(x.reshape(len(x), -1), self.wt)
        if self.b is not None:
            y += self.b
        return y.reshape(len(x), *self.out_shape)


class NbFloatNeuron(FloatNeuron):
    """A float neuron in ``fdt`` by :func:`.jit_float.current_window` (Cuba kinds) and
    :func:`.jit_float.voltage_window` (module docstring)."""

    fdt = np.dtype(np.float64)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.out_dtype = self.fdt.type
        shape = self.out_shape
        flat = lambda p: np.ascontiguousarray(  # noqa: E731
            np.broadcast_to(np.asarray(0.0 if p is None else p, np.float64), shape), self.fdt).reshape(-1)
        th, vr = (self.th, self.v_reset) if self.spiking else (None, None)
        self._p = tuple(flat(p) for p in (self.au, self.gu, self.av, self.gv, self.bv, th, vr))

    def reset(self, batch: int) -> None:
        self.state = {var: np.zeros((batch, *self.out_shape), self.fdt) for var in self.node.state_vars}

    def window(self, x: np.ndarray, rec: dict[str, np.ndarray] | None = None) -> np.ndarray:
        from neurocc.backends.emulator import jit_float

        T, B = x.shape[:2]
        xs = np.ascontiguousarray(x, self.fdt).reshape(T, B, -1)
        N = xs.shape[2]
        au, gu, av, gv, bv, th, vr = self._p
        flat = lambda k: rec[k].reshape(T, B, N) if rec and k in rec else None  # noqa: E731
        if self.cuba:    # the current over the window first (into the u trace when recording)
            cur = flat("u")
            cur = np.empty((T, B, N), self.fdt) if cur is None else cur
            jit_float.current_window(xs, self.state["u"].reshape(B, N), au, gu, cur)
            xs = cur
        out = np.empty((T, B, N), self.fdt)
        rec_v = flat("v")
        jit_float.voltage_window(xs, self.state["v"].reshape(B, N), av, gv, bv, th, vr, self.spiking,
                                 bool(self.spiking and self.mode is ResetMode.SUBTRACT), self.has_bias, out,
                                 np.zeros((1, 1, 1), self.fdt) if rec_v is None else rec_v, rec_v is not None)
        return out.reshape(T, B, *self.out_shape)

    def step(self, x: np.ndarray) -> np.ndarray:
        return self.window(x[None])[0]


def kernel_class(cls: type, fdt: np.dtype) -> type:
    """The compiled float class replacing numpy class ``cls`` (Dense or FloatNeuron) in dtype
    ``fdt``; the caller (:func:`.torch_path.kernel_class`) checked that it implements the node."""
    base = NbDense if cls is K.Dense else NbFloatNeuron
    return type(f"{base.__name__}_{fdt.name}", (base,), {"fdt": fdt})
