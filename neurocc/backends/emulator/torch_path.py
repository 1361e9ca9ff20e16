"""The emulator's batched torch path: ``device="cpu"`` or ``"cuda"`` (``--device`` on run,
evaluate and validate), for dataset-wide runs at large batch.

Like :mod:`.accel`, it is a set of subclasses of the numpy kernels chosen per node by one
dispatch point (:func:`kernel_class`); a node it does not implement runs its numpy kernel
(per layer, the arrays cross over). What runs where:

On a CPU with numba (``kernels`` ``auto``/``numba``) the path is the compiled one of
:mod:`.accel` from the first call, with numpy's GEMMs (single-thread OpenBLAS is no slower
than torch's CPU GEMM, and torch's intra-op threads contend on a shared machine); the torch
kernels run on a CPU with ``kernels="numpy"`` or without numba (how the tests exercise them
here), and always on CUDA:

=================  ===========================================  ================================
numpy kernel       device ``cpu`` (``kernels="numpy"``)          device ``cuda``
=================  ===========================================  ================================
``QDense``         torch float32 GEMM when every partial sum    torch float64 GEMM when exact
                   < 2**24, float64 < 2**53 (exact integers)    (< 2**53); int64 sums: numpy
``Dense`` (float)  torch GEMM in ``fdt`` (float64 by default)   torch GEMM in ``fdt``
``IntNeuron``      torch int64 (:class:`TIntNeuron`)             torch int64, the profile's
                                                                equations (:class:`TIntNeuron`)
``FloatNeuron``    torch ``fdt`` (:class:`TFloatNeuron`)         torch ``fdt``, the same operations
=================  ===========================================  ================================

Float graphs on a CPU with numba run the compiled float kernels of :mod:`.floatpath` instead
(event-driven float gather, fused neuron windows). ``fdt`` is the program's ``float_dtype``
(float64, the specification, or float32: faster, differs by rounding).

Integer numerics stay exact on every device: the GEMMs are exact by the same bounds as
:mod:`.linalg` (float32 is not used on cuda, where TF32 could round), the neuron updates are
int64 (``tests/test_emulator_torch.py`` checks bit-identical outputs, traces and event
counts; the cuda tests run where a GPU is present, see ``benchmarks/gpu_check.sh``). Float
graphs: a GEMM may sum in another order than numpy's, so float64 values may differ in the last
bits (the numpy path itself differs between its gather and GEMM forms, see
``tests/test_emulator.py::same``); the neuron updates are the same float64 operations.
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator import kernels as K
from neurocc.backends.emulator.linalg import F32_EXACT, F64_EXACT, I32_EXACT, Weights, rows_matmul
from neurocc.backends.emulator.neurons import FloatNeuron, IntNeuron
from neurocc.errors import BackendError
from neurocc.ir.types import ResetMode

DEVICES = ("cpu", "cuda")
F64 = np.dtype(np.float64)


def check_device(device: str) -> str:
    """``device`` if torch can run on it, else a BackendError naming the fix."""
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise BackendError(f"unknown device {device!r}", where="--device", fix="use --device cpu or --device cuda")
    try:
        import torch
    except ImportError as err:
        raise BackendError("the torch path needs torch", where="--device", fix="pip install torch") from err
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda: torch sees no CUDA GPU on this machine", where="--device",
                           fix="run on a machine with a GPU, or use --device cpu")
    return str(device)


def _t(a: np.ndarray, device: str, dtype=None):
    import torch

    a = np.ascontiguousarray(a)
    t = torch.from_numpy(a if a.flags.writeable else a.copy())
    return t.to(device=device, dtype=dtype) if (dtype is not None or device != "cpu") else t


class _OnDevice:
    device = "cpu"

    def _cached(self, key, make):
        cache = self.__dict__.setdefault("_tcache", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]


def exact_matmul(k: _OnDevice, x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
    """``x @ W.w_t`` for integer weights on ``k.device``, exact (see the module docstring)."""
    import torch

    xmax = 1.0 if binary else float(np.abs(x).max(initial=0))
    bound = W.bound(xmax)
    cuda = k.device != "cpu"
    if bound >= F64_EXACT:
        return rows_matmul(x, W, binary)
    dt = torch.float32 if bound < F32_EXACT and not cuda else torch.float64
    wt = k._cached(("w", dt), lambda: _t(W.w_t, k.device, dt))
    xt = _t(x != 0 if binary else x, k.device, dt)
    y = (xt @ wt).to(torch.int32 if bound < I32_EXACT else torch.int64)
    return y.cpu().numpy()


class TQDense(_OnDevice, K.QDense):
    """QDense with the exact torch GEMM for the sum; on a CPU with numba, the compiled
    event-driven gather of :mod:`.accel` where its cost model says it is cheaper (sparse
    spikes)."""

    force = True      # (for accel.pays: a device run is a large run)
    numba = False

    def matmul(self, x: np.ndarray, W: Weights, binary: bool) -> np.ndarray:
        if self.numba and (binary or x.dtype.kind != "f"):
            from neurocc.backends.emulator import accel

            y = accel.gather(self, x, W, binary)
            return rows_matmul(x, W, binary) if y is None else y   # OpenBLAS: no slower than torch's CPU GEMM
        return exact_matmul(self, x, W, binary)


def _torch_dtype(fdt: np.dtype):
    import torch

    return torch.float32 if fdt == np.float32 else torch.float64


class TDense(_OnDevice, K.Dense):
    """Float Affine/Linear: GEMM in ``fdt`` (float64, or float32 with ``float_dtype``) on the
    device, plus the bias."""

    fdt = np.dtype(np.float64)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.out_dtype = self.fdt.type

    def rows(self, x: np.ndarray) -> np.ndarray:
        dt = _torch_dtype(self.fdt)
        wt = self._cached("w", lambda: _t(self.W.w_t, self.device, dt))
        y = (_t(x, self.device, dt) @ wt).cpu().numpy()
        return y + self.bias.astype(self.fdt) if np.any(self.bias) else y


class TFloatNeuron(_OnDevice, FloatNeuron):
    """I/IF/LI/LIF/CubaLI/CubaLIF: FloatNeuron's operations, in the same order, in ``fdt``
    (float64, or float32 with ``float_dtype``) on the device over a window (one transfer in,
    one out)."""

    fdt = np.dtype(np.float64)

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.out_dtype = self.fdt.type

    def reset(self, batch: int) -> None:
        self.state = {var: np.zeros((batch, *self.out_shape), self.fdt) for var in self.node.state_vars}

    def window(self, x: np.ndarray, rec=None) -> np.ndarray:
        import torch

        d, fdt = self.device, self.fdt
        f = lambda a: None if a is None else _t(np.asarray(a, fdt), d)  # noqa: E731
        au, gu, av, gv, bv = map(f, (self.au, self.gu, self.av, self.gv, self.bv))
        st = {k: _t(v, d).clone() for k, v in self.state.items()}
        xs = _t(np.asarray(x, fdt), d)
        out = torch.empty(xs.shape, dtype=_torch_dtype(fdt), device=d)
        recs = {k: [] for k in (rec or {})}
        th, vr = (f(self.th), f(self.v_reset)) if self.spiking else (None, None)
        for t in range(xs.shape[0]):
            inp = xs[t]
            if self.cuba:
                st["u"] = au * st["u"] + gu * inp
                inp = st["u"]
            v = av * st["v"] + gv * inp
            if self.has_bias:
                v = v + bv
            if self.spiking:
                z = v > th        # after-spike timing, strict test: the defaults kernel_class admits
                if self.mode is ResetMode.SUBTRACT:
                    v = torch.where(z, v - th, v)
                elif self.mode is ResetMode.ZERO:
                    v = torch.where(z, vr, v)
                out[t] = z
            else:
                out[t] = v
            st["v"] = v
            for k in recs:
                recs[k].append(st[k])
        for k, v in st.items():
            self.state[k] = v.cpu().numpy()
        for k, arrs in recs.items():
            rec[k][:] = torch.stack(arrs).cpu().numpy()
        return out.cpu().numpy()

    def step(self, x: np.ndarray) -> np.ndarray:
        return self.window(x[None])[0]


class TIntNeuron(_OnDevice, IntNeuron):
    """QLIF/QLI (loihi, int8) in int64 torch ops: the equations of
    :meth:`Profile.lif_current` / :meth:`Profile.lif_voltage` and :meth:`IntNeuron._update`
    (see :func:`.jit.lif_window` for them in one place); event counts summed on the device."""

    def window(self, x: np.ndarray, rec=None) -> np.ndarray:
        import torch

        d, i64 = self.device, torch.int64
        T, B = x.shape[:2]
        p = [_t(np.asarray(a, np.int64).reshape(-1), d) for a in self._params()]
        fu, fv, bias, vth = p
        st = {k: _t(np.asarray(v, np.int64).reshape(B, -1), d) for k, v in self.state.items()}
        a_all = _t(np.asarray(x, np.int64).reshape(T, B, -1), d)
        out = torch.empty(a_all.shape, dtype=torch.uint8 if self.spiking else torch.int32, device=d)
        cnt = torch.zeros(4, dtype=i64, device=d)
        recs = {k: [] for k in (rec or {})}
        loihi = self.profile.name == "loihi"
        U24, VLIM = 1 << 23, (1 << 23) - 1

        def wrap(v, bits, slot):
            h, m = 1 << (bits - 1), (1 << bits) - 1
            w = ((v + h) & m) - h
            cnt[slot] += (w != v).sum()
            return w

        def trunc12(prod):
            return torch.where(prod >= 0, prod >> 12, -((-prod) >> 12))

        for t in range(T):
            a = wrap(a_all[t], 32, 0)
            dec = trunc12(st["u"] * fu)
            if loihi:
                s = wrap(dec + wrap(a << 6, 32, 3), 32, 3)
                hi, lo = s > U24, s <= -U24
                cnt[1] += (hi | lo).sum()
                u = s - (2 * U24) * hi.to(i64) + (2 * U24) * lo.to(i64)
            else:
                u = wrap(dec + (a << 6), 24, 1)
            s = trunc12(st["v"] * fv) + u + bias
            if loihi:
                s = wrap(s, 32, 3)
            v = s.clamp(-VLIM, VLIM)
            cnt[2] += (v != s).sum()
            if self.spiking:
                if self.refractory:
                    hold = st["ref"] > 0
                    v = torch.where(hold, st["v"], v)
                    z = (v > vth) & ~hold
                    st["ref"] = torch.where(z, torch.full_like(v, self.refractory), (st["ref"] - 1).clamp(min=0))
                else:
                    z = v > vth
                v = torch.where(z, v - vth if self.subtract else torch.zeros_like(v), v)
                out[t] = z
            else:
                out[t] = v
            st["u"], st["v"] = u, v
            for k in recs:
                recs[k].append(st[k])
        c = cnt.cpu().numpy()
        for key, slot in (("input_wrap", 0), ("u_wrap", 1), ("v_saturate", 2), ("int32_wrap", 3)):
            self.count(key, int(c[slot]))
        for k, v in st.items():
            self.state[k] = v.cpu().numpy().astype(np.float64).reshape(self.state[k].shape)
        for k, arrs in recs.items():
            rec[k][:] = torch.stack(arrs).cpu().numpy().reshape(rec[k].shape)
        return out.cpu().numpy().reshape(T, B, *self.out_shape)

    def _params(self):
        n = int(np.prod(self.out_shape))
        zero = np.zeros(n)
        return (self.fu, self.fv, self.bias if self.bias is not None else zero, self.vth if self.spiking else zero)

    def step(self, x: np.ndarray) -> np.ndarray:
        return self.window(x[None])[0]


_INT_FIELDS = {"QLIF": {"du", "dv", "vth", "bias_mant", "bias_exp", "reset", "refractory"},
               "QLI": {"du", "dv", "bias_mant", "bias_exp"},
               "QDense": {"weight", "weight_exp", "num_weight_bits", "graded"}}
_FLOAT_FIELDS = {"Affine": {"weight", "bias"}, "Linear": {"weight"}, "I": {"r"},
                 "IF": {"r", "reset", "v_reset", "v_threshold"}, "LI": {"r", "tau", "v_leak"},
                 "LIF": {"r", "reset", "tau", "v_leak", "v_reset", "v_threshold"},
                 "CubaLI": {"r", "tau_mem", "tau_syn", "v_leak", "w_in"},
                 "CubaLIF": {"r", "reset", "tau_mem", "tau_syn", "v_leak", "v_reset", "v_threshold", "w_in"}}


def float_supported(cls: type, node) -> bool:
    """Whether the batched float kernels (torch here, compiled in :mod:`.floatpath`) implement
    ``node`` (numpy class ``cls``): Affine/Linear and the float neurons with default options."""
    from neurocc.backends.emulator import accel

    return (cls in (K.Dense, FloatNeuron) and node.kind in _FLOAT_FIELDS and accel.classic_reset(node)
            and accel.implements(node, _FLOAT_FIELDS[node.kind]))


def kernel_class(cls: type, node, profile, device: str, numba: bool = True,
                 fdt: np.dtype = F64) -> type:
    """THE dispatch point of the torch path: the torch subclass of ``cls`` for ``node`` on
    ``device``; on a CPU with ``numba`` (``kernels`` not ``numpy``) neurons take the compiled
    class of :mod:`.accel` instead, float synapses and neurons that of :mod:`.floatpath`; else
    ``cls``. ``fdt``: the float kernels' dtype (``float_dtype``)."""
    from neurocc.backends.emulator import accel, floatpath

    known = lambda names: accel.implements(node, names) and accel.classic_reset(node)  # noqa: E731
    cuda = not device.startswith("cpu")
    torch_neurons = cuda or not (numba and accel.numba_status()[0])
    pname = profile.name if profile is not None else None
    sub = None
    if cls is K.QDense and pname in ("loihi", "int8") and known(_INT_FIELDS["QDense"]):
        sub = TQDense
    elif profile is None and float_supported(cls, node):
        if not torch_neurons:
            return floatpath.kernel_class(cls, fdt)
        sub = TDense if cls is K.Dense else TFloatNeuron
    elif cls is IntNeuron and torch_neurons and pname in ("loihi", "int8") and node.kind in _INT_FIELDS and known(_INT_FIELDS[node.kind]):
        sub = TIntNeuron
    if sub is None:
        return accel.kernel_class(cls, node, profile) if not torch_neurons else cls
    return type(f"{sub.__name__}_{device.replace(':', '_')}", (sub,),
                {"device": device, "numba": not torch_neurons, "fdt": fdt})
