"""The emulator's optional compiled accelerator: numba kernels beside the numpy reference.

One dispatch point, :func:`kernel_class`, called once per node when a program is prepared: it
returns a compiled subclass of the node's numpy kernel class when that subclass implements the
node's exact configuration, else the numpy class itself (so every other node, and every node
of a kind or with a parameter the compiled path does not know, runs the numpy reference, per
layer). ``kernels`` selects the mode for a whole program:

* ``"auto"`` (default): compiled where implemented, when numba imports, once the process has
  spent :data:`LOAD_S` estimated seconds in the numpy kernels that the compiled ones replace
  (so short runs never pay numba's import and JIT load; after that, every call is compiled);
* ``"numba"``: compiled where implemented from the first call; a missing numba is an error;
* ``"numpy"``: the numpy reference everywhere (the path the tests compare against).

Implemented (integer numerics only; float graphs keep numpy, whose sums the compiled path
could not reproduce bit for bit):

==================  =============================  ============================================
numpy kernel        profiles                       compiled part
==================  =============================  ============================================
``QDense``          loihi, int8                    the sum ``x @ W`` (event-driven gather)
``QConv``           loihi, int8 (2-D)              the sum (event-driven scatter)
``IntNeuron``       loihi, int8 (QLIF, QLI)        the whole update, fused over the window
``SpinnDense``      spinnaker                      both receptor sums (event-driven gather)
``SigmaDelta``      any (a profile-free rule)      the whole update, fused over the window
==================  =============================  ============================================

The register rules after a sum (accumulator wrap, ``weight_exp`` shift, int32 cast) stay the
numpy kernel's own code; the fused neurons re-state the profile's equations in
:func:`.jit.lif_window` and the sigma-delta rule in :func:`.jit.sigma_delta_window`, and
``tests/test_emulator_accel.py`` checks both paths give identical outputs, traces and event
counts. A node whose dataclass has a field the compiled class does
not list (a new neuron option, say) falls back to numpy automatically.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from neurocc.backends.emulator import kernels as K
from neurocc.backends.emulator.linalg import I32_EXACT, Weights, rows_matmul
from neurocc.backends.emulator.neurons import IntNeuron
from neurocc.backends.emulator.sigma_delta import SigmaDelta
from neurocc.backends.emulator.spinnaker import SpinnDense
from neurocc.errors import BackendError

MODES = ("auto", "numba", "numpy")
C_GATHER_NB = 6e-11   # seconds per gathered weight element, compiled (int8: 20 G adds/s measured, 2-core x86)
C_SCATTER_NB = 1.5e-10  # seconds per scattered multiply-add, compiled conv
C_CALL_NB = 3e-6        # seconds per compiled call
C_ROW_NB = 2e-8         # seconds per row of a compiled gather
LOAD_S = 2.0            # estimated numpy seconds after which ``auto`` loads the compiled kernels
_state = {"spent": 0.0, "loaded": False}


def pays(kernel, numpy_seconds: float) -> bool:
    """Whether ``kernel`` (a compiled class) runs this call compiled: always in ``numba``
    mode; in ``auto`` once the estimated numpy time of such calls in this process exceeds
    :data:`LOAD_S` (then numba's one-off import/compile cost is amortised: see
    docs/benchmarks.md for what the first call costs)."""
    if kernel.force or _state["loaded"]:
        return True
    _state["spent"] += numpy_seconds
    _state["loaded"] = _state["spent"] > LOAD_S
    return _state["loaded"]


@lru_cache(maxsize=1)
def numba_status() -> tuple[bool, str]:
    """(available, reason): whether the compiled kernels can be used in this environment.
    Only looks numba up (importing it costs 0.5–1.3 s: that happens at the first compiled call)."""
    from importlib.util import find_spec

    if find_spec("numba") is None:
        return False, "numba is not installed; pip install numba (pinned in requirements/base.txt)"
    return True, "numba is installed"


def use_compiled(kernels: str) -> bool:
    """Whether a program prepared with ``kernels`` uses the compiled classes."""
    if kernels not in MODES:
        raise BackendError(f"unknown emulator kernels {kernels!r}", where="emulator",
                           fix=f"use one of: {', '.join(MODES)}")
    if kernels == "numpy":
        return False
    ok, why = numba_status()
    if kernels == "numba" and not ok:
        raise BackendError("the compiled emulator kernels were requested but cannot be used", where="emulator",
                           problems=[why], fix="install numba, or use kernels='auto' or 'numpy'")
    return ok


def kernel_class(cls: type, node, profile) -> type:
    """THE dispatch point: the compiled subclass of ``cls`` for ``node``, or ``cls``."""
    for sub in _COMPILED:
        if sub.__bases__[0] is cls and sub.supports(node, profile):
            return sub
    return cls


# ---- synapses ---------------------------------------------------------------------------------
def _numpy_seconds(R: int, nnz: int, W: Weights) -> float:
    """The numpy path's own cost model (linalg.rows_matmul): the cheapest of gather, GEMM and
    (pruned weights) the sparse scatter."""
    from neurocc.backends.emulator import linalg as L

    return min(L.path_costs(R, nnz, W))


def gather(kernel, x: np.ndarray, W: Weights, binary: bool) -> np.ndarray | None:
    """``x (R, in) @ W.w_t`` by the compiled event-driven gather, or None when the numpy path
    is to run (a dense product is cheaper by the cost model, or :func:`pays` says not yet)."""
    R = x.shape[0]
    nnz = int(np.count_nonzero(x))
    if C_CALL_NB + R * C_ROW_NB + nnz * W.n_out * C_GATHER_NB > min(R * W.n_in * W.n_out * 1.6e-11 + 2e-5,
                                                                    _numpy_seconds(R, nnz, W)):
        return None
    if not pays(kernel, _numpy_seconds(R, nnz, W)):
        return None
    from neurocc.backends.emulator import jit

    if binary:     # active() reads x in its own dtype (every non-zero is a spike): no 0/1 copy
        cols, bounds = jit.active(np.ascontiguousarray(x))
        out = np.zeros((R, W.n_out), np.int32 if W.bound(1.0) < I32_EXACT else np.int64)
        fn = jit.gather_binary_i8 if W.w_t.dtype == np.int8 and out.dtype == np.int32 else jit.gather_binary
        fn(W.w_t, cols, bounds, out)
        return out
    xi = np.ascontiguousarray(x, np.int64)
    cols, bounds = jit.active(xi)
    out = np.zeros((R, W.n_out), np.int64)
    jit.gather_graded(xi, W.w_t, cols, bounds, out)
    return out


def implements(node, names: set[str]) -> bool:
    """Every field of ``node`` outside ``names`` (options a kernel does not implement, such as a
    reset timing or a periodic reset) holds its default."""
    return all(f.name in names or node.at_default(f) for f in dataclasses.fields(node))


def _is(node, kind: str, names: set[str]) -> bool:
    return node.kind == kind and implements(node, names) and classic_reset(node)


def classic_reset(node) -> bool:
    """No reset mode, or one of the two the compiled and torch kernels implement (zero, subtract);
    ``none`` and later modes run the numpy kernels."""
    from neurocc.ir.types import ResetMode

    mode = getattr(node, "reset", None)
    return mode is None or ResetMode(mode) in (ResetMode.ZERO, ResetMode.SUBTRACT)


class NbQDense(K.QDense):
    """QDense with the compiled gather (loihi, int8); register rules: :class:`~.kernels.QDense`."""

    FIELDS = {"weight", "weight_exp", "num_weight_bits", "graded"}

    @classmethod
    def supports(cls, node, profile) -> bool:
        return profile is not None and profile.name in ("loihi", "int8") and _is(node, "QDense", cls.FIELDS)

    def matmul(self, x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
        if not binary and x.dtype.kind == "f":
            return rows_matmul(x, W, binary)
        y = gather(self, x, W, binary)
        return rows_matmul(x, W, binary) if y is None else y


class NbQConv(K.QConv):
    """QConv2d with the compiled event-driven scatter for the integer sum."""

    FIELDS = {"weight", "bias", "stride", "padding", "dilation", "groups", "input_shape", "weight_exp", "graded"}

    @classmethod
    def supports(cls, node, profile) -> bool:
        return (profile is not None and profile.name in ("loihi", "int8") and _is(node, "QConv2d", cls.FIELDS)
                and np.asarray(node.weight).ndim == 4)

    def conv_fn(self, x, weight, stride, padding, dilation, groups, integer):
        from neurocc.backends.emulator import convpool, jit

        co, cig, kh, kw = weight.shape
        R, C, H, Wd = x.shape
        ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (Wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        nnz = int(np.count_nonzero(x))
        dense = R * ho * wo * co * cig * kh * kw * 1.6e-11
        if nnz * kh * kw * (co // groups) * C_SCATTER_NB > dense or not pays(self, dense):
            return convpool.conv(x, weight, stride, padding, dilation, groups, integer)
        wt = self.__dict__.get("_wt")
        if wt is None:
            wt = self._wt = np.ascontiguousarray(np.asarray(weight, np.int64).transpose(1, 2, 3, 0))
        out = np.zeros((R, ho, wo, co), np.int64)
        jit.conv_scatter(np.ascontiguousarray(x, np.int64), wt, tuple(map(int, stride)),
                         tuple(map(int, padding)), tuple(map(int, dilation)), int(groups), out)
        return out.transpose(0, 3, 1, 2)


class NbSpinnDense(SpinnDense):
    """SpinnDense with both receptor sums by the compiled gather (exact integers)."""

    FIELDS = {"weight", "weight_exp", "num_weight_bits", "graded", "in_shape", "post_shape"}

    @classmethod
    def supports(cls, node, profile) -> bool:
        return profile is not None and profile.name == "spinnaker" and _is(node, "QSpiNNakerDense", cls.FIELDS)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        w = np.asarray(self.node.weight, np.int64)
        self.W_exc = Weights.prepare(np.clip(w, 0, None), integer=True)
        self.W_inh = Weights.prepare(np.clip(-w, 0, None), integer=True)

    def rows(self, x: np.ndarray) -> np.ndarray:
        s = np.asarray(x).reshape(len(x), -1) != 0
        sums = []
        for W in (self.W_exc, self.W_inh):
            y = gather(self, s, W, True)
            if y is None:
                return super().rows(x)
            sums.append(np.asarray(y, np.int64) << W.scale_shift)
        return np.stack(sums, axis=1).reshape(len(x), *self.out_shape)


# ---- neurons ----------------------------------------------------------------------------------
class NbIntNeuron(IntNeuron):
    """QLIF/QLI (loihi, int8) with the fused compiled update :func:`.jit.lif_window`."""

    FIELDS = {"QLIF": {"du", "dv", "vth", "bias_mant", "bias_exp", "reset", "refractory", "bias_start",
                       "fire_at_threshold", "multi_spike"},
              "QLI": {"du", "dv", "bias_mant", "bias_exp", "bias_start"}}

    @classmethod
    def supports(cls, node, profile) -> bool:
        return (profile is not None and profile.name in ("loihi", "int8") and node.kind in cls.FIELDS
                and _is(node, node.kind, cls.FIELDS[node.kind])
                and not (getattr(node, "refractory", 0) and getattr(node, "fire_at_threshold", False)))

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        flat = lambda x: np.ascontiguousarray(np.asarray(x, np.int64).reshape(-1))  # noqa: E731
        n = int(np.prod(self.out_shape))
        self._p = (flat(self.fu), flat(self.fv), flat(self.bias) if self.bias is not None else np.zeros(n, np.int64),
                   flat(self.vth) if self.spiking else np.zeros(n, np.int64))

    def window(self, x: np.ndarray, rec: dict[str, np.ndarray] | None = None) -> np.ndarray:
        T, B = x.shape[:2]
        k = self.bias_start - self.steps_done   # steps before the bias starts: the numpy kernel's
        if k > 0 or not pays(self, T * 6e-5 + x.size * 3e-8):     # numpy: ~15 ops per step, ~3 ns per element-op
            if 0 < k < T:
                part = lambda sl: None if rec is None else {var: arr[sl] for var, arr in rec.items()}  # noqa: E731
                head = IntNeuron.window(self, x[:k], part(slice(None, k)))
                return np.concatenate([head, self.window(x[k:], part(slice(k, None)))])
            return IntNeuron.window(self, x, rec)
        self.steps_done += T
        from neurocc.backends.emulator import jit

        a = x.reshape(T, B, -1)     # int32 or int64 sums are read as they are (no widened copy)
        if a.dtype not in (np.int32, np.int64) or not a.flags.c_contiguous:
            a = np.ascontiguousarray(a, np.int64)
        st = self.state
        flat = lambda arr: arr.reshape(arr.shape[0], arr.shape[1], -1)  # noqa: E731
        u, v = st["u"].reshape(B, -1), st["v"].reshape(B, -1)
        ref = st["ref"].reshape(B, -1) if self.refractory else np.zeros((B, a.shape[2]))
        dummy = np.zeros((1, 1, 1), np.int64)
        ru = flat(rec["u"]) if rec else dummy
        rv = flat(rec["v"]) if rec else dummy
        rr = flat(rec["ref"]) if rec and "ref" in rec else (np.zeros(a.shape, np.int64) if rec else dummy)
        out = np.empty(a.shape, self.out_dtype)
        counts = np.zeros(4, np.int64)
        jit.lif_window(a, u, v, ref, *self._p, out, ru, rv, rr, self.profile.name == "loihi", self.spiking,
                       bool(self.spiking and self.subtract), int(self.refractory), rec is not None and bool(rec),
                       counts, bool(self.spiking and self.node.fire_at_threshold),
                       bool(self.spiking and self.node.multi_spike))
        for key, slot in (("input_wrap", jit.C_INPUT), ("u_wrap", jit.C_U_WRAP), ("v_saturate", jit.C_V_SAT),
                          ("int32_wrap", jit.C_I32)):
            self.count(key, int(counts[slot]))
        return out.reshape(T, B, *self.out_shape)

    def step(self, x: np.ndarray) -> np.ndarray:
        if not pays(self, 6e-5 + x.size * 3e-8):
            return super().step(x)
        return self.window(x[None])[0]


class NbSigmaDelta(SigmaDelta):
    """QSigmaDelta (every mode and variant, cum_error) with the fused compiled update
    :func:`.jit.sigma_delta_window` (the rule of :mod:`neurocc.ir.numerics.sigma_delta`)."""

    FIELDS = {"vth", "bias", "state_exp", "input_shift", "mode", "relu", "cum_error", "variant"}
    MODE = {"sigma_delta": 0, "delta": 1, "sigma": 2}

    @classmethod
    def supports(cls, node, profile) -> bool:
        return (node.kind == "QSigmaDelta" and node.mode in cls.MODE and node.variant in ("lava-0.10", "lava-pr875")
                and implements(node, cls.FIELDS))

    def window(self, x: np.ndarray, rec: dict[str, np.ndarray] | None = None) -> np.ndarray:
        T, B = x.shape[:2]
        if not pays(self, T * 4e-5 + x.size * 3e-8):    # numpy: ~12 ops per step
            return super().window(x, rec)
        from neurocc.backends.emulator import jit

        a = x.reshape(T, B, -1)
        if a.dtype not in (np.int32, np.int64) or not a.flags.c_contiguous:
            a = np.ascontiguousarray(a, np.int64)
        n = a.shape[2]
        st = {k: np.ascontiguousarray(v, np.int64).reshape(B, n) for k, v in self.state.items()}
        regs = [st.get(k, np.zeros((B, n), np.int64)) for k in ("sigma", "act", "residue", "error")]
        flat = lambda v: np.ascontiguousarray(np.broadcast_to(v, self.out_shape), np.int64).reshape(-1)  # noqa: E731
        names = self.record_vars
        rec_all = np.zeros((len(names), T, B, n), np.int64) if rec else np.zeros((1, 1, 1, 1), np.int64)
        out = np.empty((T, B, n), np.int64)
        counts = np.zeros(4, np.int64)
        node = self.node
        jit.sigma_delta_window(a, *regs, flat(self.vth), flat(self.bias), int(node.state_exp), int(node.input_shift),
                               self.MODE[node.mode], bool(node.relu), bool(node.cum_error),
                               node.variant == "lava-pr875", out, rec_all, bool(rec), counts)
        for key, slot in (("sigma_wrap", jit.C_SIGMA), ("act_wrap", jit.C_ACT), ("delta_wrap", jit.C_DELTA),
                          ("error_wrap", jit.C_ERROR)):
            self.count(key, int(counts[slot]))
        for k in self.state:
            self.state[k] = st[k].reshape(self.state[k].shape)
        if rec:
            for j, var in enumerate(names):
                rec[var][:] = rec_all[j].reshape(rec[var].shape)
        return out.reshape(T, B, *self.out_shape)

    def step(self, x: np.ndarray) -> np.ndarray:
        if not pays(self, 4e-5 + x.size * 3e-8):
            return super().step(x)          # the numpy rule (window() -> Kernel.window calls step)
        return self.window(x[None])[0]


for _c in (NbQDense, NbQConv, NbSpinnDense, NbIntNeuron, NbSigmaDelta):
    _c.force = False   # set per kernel by the program: True in ``numba`` mode

_COMPILED: tuple[type, ...] = (NbQDense, NbQConv, NbIntNeuron, NbSpinnDense, NbSigmaDelta)
