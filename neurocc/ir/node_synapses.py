"""IR node kinds at the graph boundary (``Input``, ``Output``) and the stateless synapses and
reshapes (``Affine``, ``Linear``, ``Scale``, ``Conv2d``/``Conv1d``, sum/average pools, ``Flatten``,
``Delay``), NIR 1.0's names and semantics; equations in each docstring.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.node_base import Node
from neurocc.ir.types import Shape


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
