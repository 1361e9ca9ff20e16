"""ANN-only IR node kinds (``ReLU``, ``BatchNorm``, ``MaxPool2d``, ``Add``): they exist for the
ANN → SNN conversion and are removed by the ``normalize``/``convert`` passes before a spiking
backend sees the graph (``MaxPool2d`` also pools currents in a spiking graph; see its docstring).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.node_base import Node
from neurocc.ir.node_synapses import _Pool2d
from neurocc.ir.types import Shape


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

