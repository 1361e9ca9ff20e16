"""Node kinds of the neurocc IR: one frozen dataclass per primitive, equations in the docstring.

Names and continuous-time semantics follow NIR 1.0 (``nir/ir/*.py``); ANN-only kinds
(``ReLU``, ``BatchNorm``, ``Add``) exist for conversion and are removed by the
``normalize``/``convert`` passes before a spiking backend sees the graph.

Conventions shared by every kind:

* shapes exclude batch and time; all parameters are numpy arrays frozen read-only;
* a node with several incoming edges receives the **sum** of its inputs (as in NIR);
* neuron parameters are per-neuron arrays of one common shape, which is the node's shape;
* state variables are named in ``state_vars`` (``u`` = synaptic current, ``v`` = membrane);
  the emulator's ``record=True`` output and ``Y.npz`` use ``<node>/<var>``;
* spikes ``z`` use NIR's strict test ``z = v > v_threshold``.

Quantized (integer) kinds live in :mod:`neurocc.ir.qnodes`; they register here through the
same base class so that the graph, verifier and serializer treat every kind alike.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.types import IntFormat, ResetMode, ResetTiming, Shape

NODE_KINDS: dict[str, type["Node"]] = {}
# field metadata: leave the field out of the stored graph and its text/digest while it holds its
# default (fields added after the format was fixed: older files and digests stay as they were)
OMIT_DEFAULT = {"omit_default": True}


@functools.cache
def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def frozen_array(value: typing.Any) -> np.ndarray:
    """Return ``value`` as a read-only numpy array (copied only if it was writable)."""
    arr = np.asarray(value)
    if arr.flags.writeable:
        arr = arr.copy()
        arr.setflags(write=False)
    return arr


def _coerce(hint: typing.Any, value: typing.Any) -> typing.Any:
    """Normalise a field value to its declared type (lists → tuples, strings → enums, arrays frozen)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is np.ndarray:
        return frozen_array(value)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        return _coerce(real[0], value) if len(real) == 1 else value
    if origin is tuple:
        return tuple(int(v) for v in np.atleast_1d(value)) if args and args[0] is int else tuple(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is IntFormat and isinstance(value, dict):
        return IntFormat(**value)
    if hint is int and not isinstance(value, bool):
        return int(value)
    if hint is float:
        return float(value)
    return value


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every node kind. Subclasses set ``kind`` and implement :meth:`out_shape`."""

    kind: ClassVar[str] = ""
    state_vars: ClassVar[tuple[str, ...]] = ()
    spiking: ClassVar[bool] = False  # emits binary spikes z
    ann_only: ClassVar[bool] = False  # must be removed before a spiking backend runs the graph
    quantized: ClassVar[bool] = False  # integer kind (see qnodes)

    def __init_subclass__(cls, **kwargs: typing.Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            NODE_KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(_hints(type(self))[f.name], value))

    # ----- structure -------------------------------------------------------------------------
    @property
    def stateful(self) -> bool:
        return bool(self.state_vars)

    def params(self) -> dict[str, typing.Any]:
        """Every field by name (arrays included), in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def stored_params(self) -> dict[str, typing.Any]:
        """:meth:`params` without the ``OMIT_DEFAULT`` fields that hold their default (what files,
        :meth:`Graph.text` and digests contain)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.metadata.get("omit_default") and self.at_default(f))}

    def at_default(self, f: dataclasses.Field) -> bool:
        """Whether field ``f`` holds its declared default (arrays compared by value)."""
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            return False
        value = getattr(self, f.name)
        if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
            return default is not None and value is not None and bool(np.array_equal(value, default))
        return bool(value == default)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.params().items() if isinstance(v, np.ndarray)}

    def n_params(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def replace(self, **changes: typing.Any) -> "Node":
        return dataclasses.replace(self, **changes)

    # ----- shapes and counts -----------------------------------------------------------------
    def out_shape(self, in_shape: Shape) -> Shape:
        """Output shape for an input of ``in_shape``; raise ValueError when they do not fit."""
        return in_shape

    def own_shape(self) -> Shape | None:
        """The shape the node's parameters fix for its input, or None if any shape is accepted."""
        return None

    def check(self) -> list[str]:
        """Problems with the node's own parameters (empty when fine)."""
        return []

    def n_neurons(self, shape: Shape) -> int:
        return int(np.prod(shape)) if self.state_vars and self.kind not in ("Delay",) else 0

    def n_synapses(self, in_shape: Shape) -> int:
        """Synapses as a chip stores them when expanded (0 for non-synaptic kinds)."""
        return 0


# --------------------------------------------------------------------------------------------
# Graph boundary
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Input(Node):
    """Graph entry. ``shape`` excludes batch and time. Values: spikes (0/1) or graded floats."""

    kind: ClassVar[str] = "Input"
    shape: Shape = ()

    def out_shape(self, in_shape: Shape) -> Shape:
        return self.shape


@dataclass(frozen=True, eq=False)
class Output(Node):
    """Graph exit: y[t] = x[t]."""

    kind: ClassVar[str] = "Output"
    shape: Shape = ()

    def own_shape(self) -> Shape | None:
        return self.shape or None


# --------------------------------------------------------------------------------------------
# Synapses (stateless)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Dense(Node):
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def own_shape(self) -> Shape | None:
        return (int(self.weight.shape[-1]),)

    def out_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.weight.shape[-1],):
            raise ValueError(f"expects input ({self.weight.shape[-1]},), got {in_shape}")
        return (int(self.weight.shape[0]),)

    def check(self) -> list[str]:
        return [] if self.weight.ndim == 2 else [f"weight must be 2-D (out, in), got shape {self.weight.shape}"]

    def n_synapses(self, in_shape: Shape) -> int:
        return int(self.weight.size)


@dataclass(frozen=True, eq=False)
class Affine(_Dense):
    """y = W x + b, with W of shape (out, in) and b of shape (out,)."""

    kind: ClassVar[str] = "Affine"
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def check(self) -> list[str]:
        probs = super().check()
        if self.bias.shape != (self.weight.shape[0],):
            probs.append(f"bias shape {self.bias.shape} does not match weight rows ({self.weight.shape[0]},)")
        return probs


@dataclass(frozen=True, eq=False)
class Linear(_Dense):
    """y = W x, with W of shape (out, in)."""

    kind: ClassVar[str] = "Linear"


@dataclass(frozen=True, eq=False)
class Scale(Node):
    """y = s ⊙ x (element-wise)."""

    kind: ClassVar[str] = "Scale"
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    def own_shape(self) -> Shape | None:
        return tuple(self.scale.shape)


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True, eq=False)
class Conv2d(Node):
    """PyTorch Conv2d: y[co] = b[co] + Σ_ci,kh,kw W[co, ci, kh, kw] · x_pad[ci, s·h + d·kh, s·w + d·kw].

    ``weight`` is (C_out, C_in/groups, kH, kW); ``stride``, ``padding``, ``dilation`` are (y, x)
    pairs of ints; ``input_shape`` is (H, W) when known. Input (C_in, H, W) → (C_out, H', W').
    """

    kind: ClassVar[str] = "Conv2d"
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 1, 1)))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1
    input_shape: tuple[int, ...] | None = None

    def own_shape(self) -> Shape | None:
        if self.input_shape is None:
            return None
        return (int(self.weight.shape[1]) * self.groups, *self.input_shape)

    def out_shape(self, in_shape: Shape) -> Shape:
        cin = int(self.weight.shape[1]) * self.groups
        if len(in_shape) != 2 + (self.weight.ndim - 4) + 1 or in_shape[0] != cin:
            raise ValueError(f"expects input ({cin}, H, W), got {in_shape}")
        spatial = tuple(
            _conv_out(n, k, s, p, d)
            for n, k, s, p, d in zip(in_shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation)
        )
        if min(spatial) < 1:
            raise ValueError(f"kernel {tuple(self.weight.shape[2:])} does not fit input {in_shape}")
        return (int(self.weight.shape[0]), *spatial)

    def check(self) -> list[str]:
        probs = []
        nd = self.weight.ndim - 2
        if nd < 1:
            probs.append(f"weight must be (C_out, C_in/groups, *kernel), got {self.weight.shape}")
        for name in ("stride", "padding", "dilation"):
            if len(getattr(self, name)) != nd:
                probs.append(f"{name} {getattr(self, name)} must have {nd} entries")
        if self.bias.shape != (self.weight.shape[0],):
            probs.append(f"bias shape {self.bias.shape} does not match C_out={self.weight.shape[0]}")
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            probs.append(f"groups={self.groups} does not divide C_out={self.weight.shape[0]}")
        return probs

    def n_synapses(self, in_shape: Shape) -> int:
        out = self.out_shape(in_shape)
        return int(np.prod(out) * np.prod(self.weight.shape[1:]))


@dataclass(frozen=True, eq=False)
class Conv1d(Conv2d):
    """PyTorch Conv1d: ``weight`` (C_out, C_in/groups, K); input (C_in, L) → (C_out, L')."""

    kind: ClassVar[str] = "Conv1d"
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 1)))
    stride: tuple[int, ...] = (1,)
    padding: tuple[int, ...] = (0,)
    dilation: tuple[int, ...] = (1,)


@dataclass(frozen=True, eq=False)
class _Pool2d(Node):
    kernel_size: tuple[int, ...] = (2, 2)
    stride: tuple[int, ...] = (2, 2)
    padding: tuple[int, ...] = (0, 0)

    def out_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise ValueError(f"expects input (C, H, W), got {in_shape}")
        spatial = tuple(
            _conv_out(n, k, s, p, 1) for n, k, s, p in zip(in_shape[1:], self.kernel_size, self.stride, self.padding)
        )
        if min(spatial) < 1:
            raise ValueError(f"pool {self.kernel_size} does not fit input {in_shape}")
        return (in_shape[0], *spatial)

    def check(self) -> list[str]:
        return [f"{n} must have 2 entries" for n in ("kernel_size", "stride", "padding") if len(getattr(self, n)) != 2]

    def n_synapses(self, in_shape: Shape) -> int:
        return int(np.prod(self.out_shape(in_shape)) * np.prod(self.kernel_size))


@dataclass(frozen=True, eq=False)
class SumPool2d(_Pool2d):
    """y[c, h, w] = Σ_{i<kH, j<kW} x_pad[c, s·h + i, s·w + j] (zero padding)."""

    kind: ClassVar[str] = "SumPool2d"


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """y = SumPool2d(x) / (kH·kW) (zero padding counted, as PyTorch's count_include_pad)."""

    kind: ClassVar[str] = "AvgPool2d"


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    """Collapse dims ``start_dim..end_dim`` of the (unbatched) input into one, in C order."""

    kind: ClassVar[str] = "Flatten"
    start_dim: int = 0
    end_dim: int = -1

    def out_shape(self, in_shape: Shape) -> Shape:
        n = len(in_shape)
        s = self.start_dim % n if n else 0
        e = self.end_dim % n if n else 0
        if s > e:
            raise ValueError(f"start_dim {self.start_dim} after end_dim {self.end_dim} for input {in_shape}")
        return (*in_shape[:s], int(np.prod(in_shape[s:e + 1])), *in_shape[e + 1:])


@dataclass(frozen=True, eq=False)
class Delay(Node):
    """y(t) = x(t − τ), τ per element in seconds (``delay``); discretised to round(τ/dt) steps."""

    kind: ClassVar[str] = "Delay"
    state_vars: ClassVar[tuple[str, ...]] = ("buffer",)
    delay: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def own_shape(self) -> Shape | None:
        return tuple(self.delay.shape)


# --------------------------------------------------------------------------------------------
# Neurons
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Neuron(Node):
    """Shared shape logic: every array parameter has the node's shape."""

    def own_shape(self) -> Shape | None:
        arrays = list(self.arrays().values())
        return tuple(arrays[0].shape) if arrays else None

    def check(self) -> list[str]:
        shapes = {k: a.shape for k, a in self.arrays().items()}
        if len(set(shapes.values())) > 1:
            return ["all neuron parameters must have one shape, got " + ", ".join(f"{k}{v}" for k, v in shapes.items())]
        probs = []
        for name in ("tau", "tau_mem", "tau_syn"):
            a = self.arrays().get(name)
            if a is not None and a.size and not np.all(a > 0):
                probs.append(f"{name} must be > 0 (seconds), min is {a.min()}")
        return probs


@dataclass(frozen=True, eq=False)
class _Spiking(_Neuron):
    """The spike and reset semantics shared by IF, LIF and CubaLIF (defaults = NIR's).

    One step, after the membrane integration ``v ← α·v + g·in + b`` of the kind::

        fire(v)        = v > θ   (v ≥ θ when ``fire_at_threshold``: Sinabs)
        z              = fire(v) ∈ {0, 1}   (⌊v/θ⌋ where fire(v), else 0, when ``multi_spike``:
                         Sinabs' MultiSpike, a spike count per step)
        after_spike:     v ← v_reset (zero) | v − z·θ (subtract) | v (none), in the same step
        next_step:       r = fire(v[t−1]) is applied during step t after the decay, before the
                         input:  v[t] = α·v[t−1]·(1 − r) + g·in + b  (zero)
                                 v[t] = α·v[t−1] + g·in + b − r·θ    (subtract: θ is not decayed)
        next_step_end:   r = fire(v[t−1]) applied after the input:
                                 v[t] = (1 − r)·(α·v[t−1] + g·in + b)  (zero: the step's input is lost)
                                 subtract as next_step
        reset_now:       (next_step*, snnTorch ``reset_delay=False``) then, in step t,
                         v ← v − (z − r)·θ (subtract) | v − (z − r)·v (zero)
        v_min:           v ← max(v, v_min) last (Sinabs ``min_v_mem``)

    ``v_reset`` is used by ``zero`` with ``after_spike`` only (the snnTorch timings reset to 0).
    ``reset`` is declared by each kind (last, as before these fields existed); the other fields
    are left out of the stored graph and its text/digest when they hold their default.
    """

    reset_timing: ResetTiming = field(default=ResetTiming.AFTER_SPIKE, metadata=OMIT_DEFAULT)
    reset_now: bool = field(default=False, metadata=OMIT_DEFAULT)
    fire_at_threshold: bool = field(default=False, metadata=OMIT_DEFAULT)
    multi_spike: bool = field(default=False, metadata=OMIT_DEFAULT)
    v_min: float | None = field(default=None, metadata=OMIT_DEFAULT)

    def check(self) -> list[str]:
        probs = super().check()
        if self.reset_now and self.reset_timing is ResetTiming.AFTER_SPIKE:
            probs.append("reset_now applies to the next_step timings only")
        return probs


@dataclass(frozen=True, eq=False)
class Threshold(_Neuron):
    """z = H(x − θ): 1 where the input exceeds ``threshold``, else 0. Stateless."""

    kind: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True
    threshold: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, eq=False)
class I(_Neuron):  # noqa: E742 (NIR's name)
    """Integrator: dv/dt = r · I(t). Output v. State ``v``.

    Discrete form (neurocc's convention, as Sinabs and snnTorch, whose exported IF/I graphs
    are trained that way): v[t] = v[t-1] + r · I[t], once per step, independent of dt.
    """

    kind: ClassVar[str] = "I"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    r: np.ndarray = field(default_factory=lambda: np.ones(0))


@dataclass(frozen=True, eq=False)
class IF(_Spiking):
    """Integrate-and-fire: dv/dt = r · I(t); z = v > v_threshold; on z: v ← v_reset
    (``reset=zero``) or v ← v − v_threshold (``reset=subtract``). State ``v``; output z.

    Discrete form (neurocc's convention, as Sinabs and snnTorch): v[t] = v[t-1] + r · I[t] once
    per step, independent of dt (the NIR paper's Sinabs CNN is trained that way; a literal
    dt · r · I makes it silent).
    """

    kind: ClassVar[str] = "IF"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool] = True
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reset: ResetMode = ResetMode.ZERO


@dataclass(frozen=True, eq=False)
class LI(_Neuron):
    """Leaky integrator: τ dv/dt = (v_leak − v) + r · I(t). Output v. State ``v``."""

    kind: ClassVar[str] = "LI"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    tau: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, eq=False)
class LIF(_Spiking):
    """Leaky integrate-and-fire: τ dv/dt = (v_leak − v) + r · I(t); z = v > v_threshold;
    on z: v ← v_reset (``reset=zero``) or v ← v − v_threshold (``reset=subtract``).
    State ``v``; output z.
    """

    kind: ClassVar[str] = "LIF"
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    spiking: ClassVar[bool] = True
    tau: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reset: ResetMode = ResetMode.ZERO


@dataclass(frozen=True, eq=False)
class CubaLI(_Neuron):
    """Current-based leaky integrator: τ_syn du/dt = −u + w_in · I(t);
    τ_mem dv/dt = (v_leak − v) + r · u. Output v. States ``u`` (current), ``v``.
    """

    kind: ClassVar[str] = "CubaLI"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    tau_syn: np.ndarray = field(default_factory=lambda: np.ones(0))
    tau_mem: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w_in: np.ndarray = field(default_factory=lambda: np.ones(0))


@dataclass(frozen=True, eq=False)
class CubaLIF(_Spiking):
    """Current-based LIF: τ_syn du/dt = −u + w_in · I(t); τ_mem dv/dt = (v_leak − v) + r · u;
    z = v > v_threshold; on z: v ← v_reset or v ← v − v_threshold (``reset``).
    States ``u`` (current), ``v``; output z. The current is updated before the membrane.
    """

    kind: ClassVar[str] = "CubaLIF"
    state_vars: ClassVar[tuple[str, ...]] = ("u", "v")
    spiking: ClassVar[bool] = True
    tau_syn: np.ndarray = field(default_factory=lambda: np.ones(0))
    tau_mem: np.ndarray = field(default_factory=lambda: np.ones(0))
    r: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_leak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v_threshold: np.ndarray = field(default_factory=lambda: np.ones(0))
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    w_in: np.ndarray = field(default_factory=lambda: np.ones(0))
    reset: ResetMode = ResetMode.ZERO


# --------------------------------------------------------------------------------------------
# ANN-only kinds (removed by normalize/convert)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ReLU(Node):
    """y = max(x, 0). Becomes IF neurons in the ANN→SNN conversion."""

    kind: ClassVar[str] = "ReLU"
    ann_only: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class BatchNorm(Node):
    """Inference batch norm over the channel axis (axis 0 of the unbatched input):
    y[c] = (x[c] − mean[c]) / sqrt(var[c] + eps) · weight[c] + bias[c]. Folded by ``normalize``.
    """

    kind: ClassVar[str] = "BatchNorm"
    ann_only: ClassVar[bool] = True
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    var: np.ndarray = field(default_factory=lambda: np.ones(0))
    weight: np.ndarray = field(default_factory=lambda: np.ones(0))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eps: float = 1e-5

    def out_shape(self, in_shape: Shape) -> Shape:
        if not in_shape or in_shape[0] != self.mean.shape[0]:
            raise ValueError(f"expects {self.mean.shape[0]} channels on axis 0, got input {in_shape}")
        return in_shape


@dataclass(frozen=True, eq=False)
class MaxPool2d(_Pool2d):
    """y[c, h, w] = max over the window (padding with −inf).

    In a spiking graph it pools a weight layer's **currents** (snnTorch's Conv → MaxPool → Leaky):
    the float reference, the emulator's float graph and edge-cpu-f32 compute it exactly; integer
    targets refuse it (``neurocc.compiler.maxpool`` measures the AvgPool rewrite). The ANN → SNN
    conversion refuses it (a max of spike trains is not the spikes of a max)."""

    kind: ClassVar[str] = "MaxPool2d"


@dataclass(frozen=True, eq=False)
class Add(Node):
    """y = Σ inputs (a residual join made explicit; every node already sums its inputs)."""

    kind: ClassVar[str] = "Add"


NEURON_KINDS = ("Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF")
