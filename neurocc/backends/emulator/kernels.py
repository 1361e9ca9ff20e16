"""Per-kind kernels of the emulator: the stateless ops (synapses, conv, pool, reshape) for float
and integer graphs, and the base class every kernel shares.

A kernel is built once per node and run either over a window of steps (``window``: arrays
``(T, B, *shape)``; stateless ops treat T·B as rows, stateful ones loop over T) or one step at a
time inside a recurrent block (``step``: ``(B, *shape)``). Integer kernels compute in int64 and
store int32 (graded values) or uint8 (spikes); float kernels compute in float64.
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator import convpool
from neurocc.backends.emulator.linalg import Weights, rows_matmul
from neurocc.ir.discrete import delay_steps
from neurocc.ir.nodes import Node
from neurocc.ir.types import Shape


class Kernel:
    """Base: ``window``/``step`` plus ``state`` (per state variable, (B, *shape)) and ``events``
    (overflow counters: never silent)."""

    stateful = False
    record_vars: tuple[str, ...] = ()

    def __init__(self, name: str, node: Node, in_shape: Shape, out_shape: Shape, integer: bool) -> None:
        self.name, self.node = name, node
        self.in_shape, self.out_shape = in_shape, out_shape
        self.integer = integer
        self.out_dtype: type = np.int32 if integer else np.float64
        self.state: dict[str, np.ndarray] = {}
        self.events: dict[str, int] = {}
        self.t = 0  # step being executed inside window() (for error messages)

    def count(self, key: str, n: int) -> None:
        if n:
            self.events[key] = self.events.get(key, 0) + int(n)

    def reset(self, batch: int) -> None:
        """Set the state for a run of ``batch`` samples (stateless kernels have none)."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        """Stateless op on rows (R, *in_shape) → (R, *out_shape)."""
        raise NotImplementedError

    def window(self, x: np.ndarray, rec: dict[str, np.ndarray] | None = None) -> np.ndarray:
        T, B = x.shape[:2]
        if not self.stateful:
            y = self.rows(x.reshape(T * B, *x.shape[2:]))
            return self._store(y).reshape(T, B, *self.out_shape)
        out = np.empty((T, B, *self.out_shape), self.out_dtype)
        for t in range(T):
            self.t = t
            out[t] = self.step(x[t])
            if rec is not None:
                for var, arr in rec.items():
                    arr[t] = self.state[var]
        return out

    def step(self, x: np.ndarray) -> np.ndarray:
        return self.window(x[None])[0]

    def _store(self, y: np.ndarray) -> np.ndarray:
        if self.integer and y.dtype != self.out_dtype:
            return y.astype(self.out_dtype)
        return y


class Identity(Kernel):
    """Input, Output, Add: y = x (a node already receives the sum of its inputs)."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        return x


class Flatten(Kernel):
    """y = x reshaped to the flattened shape (C order), per sample."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], *self.out_shape)


class Scale(Kernel):
    """y = s ⊙ x (float)."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        return x * np.asarray(self.node.scale, np.float64)


class ReLU(Kernel):
    """y = max(x, 0) (float graphs only)."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)


class Threshold(Kernel):
    """z = x > θ, as 0.0/1.0 (stateless spiking)."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        return (x > np.asarray(self.node.threshold, np.float64)).astype(np.float64)


class Dense(Kernel):
    """Float Affine/Linear: y = x Wᵀ (+ b). Quantized QDense: see :class:`QDense`."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.W = Weights.prepare(self.node.weight, integer=False)
        self.bias = np.asarray(getattr(self.node, "bias", np.zeros(self.W.n_out)), np.float64)

    def rows(self, x: np.ndarray) -> np.ndarray:
        y = rows_matmul(x, self.W, binary=False)
        return y + self.bias if np.any(self.bias) else y


class Conv(Kernel):
    """Float Conv1d/Conv2d (PyTorch semantics, zero padding) + bias per output channel."""

    def rows(self, x: np.ndarray) -> np.ndarray:
        n = self.node
        y = convpool.conv(np.asarray(x, np.float64), np.asarray(n.weight, np.float64), n.stride, n.padding,
                          n.dilation, n.groups, integer=False)
        b = np.asarray(n.bias, np.float64)
        return y + b.reshape(-1, *([1] * (y.ndim - 2))) if np.any(b) else y


class Pool(Kernel):
    """SumPool2d / QSumPool2d (exact sums), AvgPool2d (sum / (kH·kW), count_include_pad) and
    MaxPool2d (float graphs: the max of currents, padding −inf)."""

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        self.profile = profile

    def rows(self, x: np.ndarray) -> np.ndarray:
        n = self.node
        if n.kind == "MaxPool2d":
            return convpool.max_pool(x, n.kernel_size, n.stride, n.padding)
        y = convpool.sum_pool(x, n.kernel_size, n.stride, n.padding)
        if n.kind == "AvgPool2d":
            return y / float(np.prod(n.kernel_size))
        if self.integer:
            y, k = self.profile.accumulate_wrap(y)
            self.count("acc_wrap", k)
        return y


class QDense(Kernel):
    """Integer dense synapses under ``profile``: ``W' = profile.dense_weights(weight)`` once;
    per step ``acc = W' s`` (binary: every non-zero s counts 1; graded: integer payloads), the
    accumulator register (profile.accumulator; Lava's binary column sum is exact), then
    ``weight_exp`` on the sum and the int32 output register (:meth:`Profile.shift_sum`).

    Speed without changing results: ``W' = w_s · 2**k`` is stored as ``w_s`` (int8 when it
    fits), and ``(2**k · S) · 2**e`` is computed as one shift of ``S`` by ``k + e`` (exact for
    both floor and toward-zero rounding, since 2**k · S / 2**-e = S · 2**(k+e)). Register
    checks are skipped only where a static bound proves no overflow is possible."""

    matmul = staticmethod(rows_matmul)   # the exact sum S = x @ W (a compiled subclass may replace it)

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        self.profile = profile
        self.W = Weights.prepare(profile.dense_weights(self.node.weight, self.node.num_weight_bits), integer=True)
        self.net_shift = self.W.scale_shift + int(self.node.weight_exp)
        self.check_acc = self.node.graded or profile.name != "loihi"

    def rows(self, x: np.ndarray) -> np.ndarray:
        from neurocc.ir.numerics import shift, wrap

        p, graded = self.profile, self.node.graded
        S = self.matmul(x, self.W, not graded)
        xmax = float(np.abs(x).max(initial=0)) if graded else 1.0
        k = self.W.scale_shift
        if self.check_acc and self.W.bound(xmax) * 2.0 ** k >= 2.0 ** (p.accumulator.bits - 1):
            acc, n = p.accumulate_wrap(np.asarray(S, np.int64) << k)    # the raw register, then shift
            self.count("acc_wrap", n)
            y, n = p.shift_sum(acc, self.node.weight_exp)
            self.count("out_wrap", n)
            return y
        e = self.net_shift
        if e > 0:
            S = np.asarray(S, np.int64) << e
        elif e < 0:
            S = shift(S, e, p.weight_exp_rounding)
        if self.W.bound(xmax) * 2.0 ** max(e, 0) >= 2.0 ** 31:
            S, n = wrap(S, 32)
            self.count("out_wrap", n)
        return S


class QConv(Kernel):
    """Integer convolution under ``profile`` (loihi: raw weights, output wrapped to 24 bits;
    int8: int32 accumulator, then ``weight_exp`` on the sum as QDense)."""

    conv_fn = staticmethod(convpool.conv)  # the exact int64 sum (a compiled subclass may replace it)

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        self.profile = profile

    def rows(self, x: np.ndarray) -> np.ndarray:
        n = self.node
        xin = np.asarray(x, np.int64) if n.graded else (x != 0).astype(np.int64)
        acc = self.conv_fn(xin, np.asarray(n.weight, np.int64), n.stride, n.padding, n.dilation, n.groups,
                            integer=True)
        if self.profile.name == "loihi":
            y, k = self.profile.conv_output(acc)
            self.count("out_wrap", k)
            return y
        acc, k = self.profile.accumulate_wrap(acc)
        self.count("acc_wrap", k)
        y, k = self.profile.shift_sum(acc, n.weight_exp)
        self.count("out_wrap", k)
        return y


class Delay(Kernel):
    """y[t] = x[t − k] per element, ``k = round(delay / dt)`` steps (zero before the start).
    State ``buffer``: the last max(k)+1 inputs (not recorded)."""

    stateful = True

    def __init__(self, *a, dt: float | None = None, **kw) -> None:
        super().__init__(*a, **kw)
        d = np.asarray(self.node.delay, np.float64)
        if d.size and np.any(d > 0) and not dt:
            raise ValueError("a Delay node needs the graph's dt to turn seconds into steps")
        self.k = delay_steps(d, dt)
        self.depth = int(self.k.max(initial=0)) + 1
        if self.integer:
            self.out_dtype = np.int64

    def reset(self, batch: int) -> None:
        self.buf = np.zeros((self.depth, batch, *self.out_shape), self.out_dtype)
        self.pos = 0
        self.state = {}

    def step(self, x: np.ndarray) -> np.ndarray:
        self.pos = (self.pos + 1) % self.depth
        self.buf[self.pos] = x
        idx = (self.pos - self.k) % self.depth                      # (*shape)
        idx = np.broadcast_to(idx, self.buf.shape[1:])[None]
        return np.take_along_axis(self.buf, idx, axis=0)[0]
