"""torch modules → IR nodes: ANN layers, :mod:`neurocc.nn` neurons and snnTorch neurons.

Layers: Linear → Affine (Linear without bias), Conv1d/Conv2d, BatchNorm1d/2d → BatchNorm (folded
later by ``normalize``), ReLU, AvgPool2d, MaxPool2d, Flatten (torch dims count the batch: minus
one), Dropout/Identity dropped (:func:`is_passthrough`). Neurons: :mod:`neurocc.nn` ``LIF``/
``CubaLIF``/``IF`` (1:1, graph ``dt`` = the modules' dt) and snnTorch ``Leaky``/``Synaptic``
``Leaky``/``Synaptic``/``RLeaky``/``RSynaptic`` with snnTorch's exact step order and recurrent
edges (:mod:`.snntorch`), Sinabs ``IAF``/``LIF`` (and ``*Squeeze``) neurons and ``SumPool2d``
(:mod:`.sinabs`).

Parameters are copied out of the modules as numpy arrays (float32 as stored; snnTorch neuron
parameters in float64). torch is imported inside the functions only.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir import nodes as ir
from neurocc.ir.types import Shape

DEFAULT_DT = 1e-3  # seconds: the graph step for snnTorch models when no dt is given


def to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().copy() if hasattr(t, "detach") else np.asarray(t)


def int_tuple(x: Any, n: int) -> tuple[int, ...]:
    t = tuple(int(v) for v in (x if isinstance(x, (tuple, list)) else (x,)))
    return t * n if len(t) == 1 else t


def _conv_padding(m: Any) -> tuple[int, ...]:
    nd = m.weight.ndim - 2
    if m.padding == "valid":
        return (0,) * nd
    if m.padding == "same":
        total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
        if any(t % 2 for t in total):
            raise ValueError("padding='same' with an even kernel pads asymmetrically; use explicit padding")
        return tuple(t // 2 for t in total)
    return int_tuple(m.padding, nd)


def ann_node(m: Any) -> ir.Node | None:
    """The IR node for a torch.nn ANN layer; None if ``m`` is not one. ValueError if unsupported settings."""
    from torch import nn

    if isinstance(m, nn.Linear):
        if m.bias is None:
            return ir.Linear(weight=to_numpy(m.weight))
        return ir.Affine(weight=to_numpy(m.weight), bias=to_numpy(m.bias))
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            raise ValueError(f"padding_mode={m.padding_mode!r} (only 'zeros')")
        nd = m.weight.ndim - 2
        cls = ir.Conv1d if nd == 1 else ir.Conv2d
        bias = to_numpy(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
        return cls(weight=to_numpy(m.weight), bias=bias, stride=int_tuple(m.stride, nd), padding=_conv_padding(m),
                   dilation=int_tuple(m.dilation, nd), groups=m.groups)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if m.running_mean is None:
            raise ValueError("track_running_stats=False (no running statistics to fold)")
        ones = np.ones(m.num_features, np.float32)
        return ir.BatchNorm(mean=to_numpy(m.running_mean), var=to_numpy(m.running_var),
                            weight=to_numpy(m.weight) if m.affine else ones,
                            bias=to_numpy(m.bias) if m.affine else np.zeros_like(ones), eps=float(m.eps))
    if isinstance(m, nn.ReLU):
        return ir.ReLU()
    if isinstance(m, nn.AvgPool2d):
        k = int_tuple(m.kernel_size, 2)
        pad = int_tuple(m.padding, 2)
        if m.ceil_mode or m.divisor_override or (any(pad) and not m.count_include_pad):
            raise ValueError("ceil_mode, divisor_override and count_include_pad=False are not supported")
        return ir.AvgPool2d(kernel_size=k, stride=int_tuple(m.stride or k, 2), padding=pad)
    if isinstance(m, nn.MaxPool2d):
        k = int_tuple(m.kernel_size, 2)
        if m.ceil_mode or int_tuple(m.dilation, 2) != (1, 1) or m.return_indices:
            raise ValueError("ceil_mode, dilation and return_indices are not supported")
        return ir.MaxPool2d(kernel_size=k, stride=int_tuple(m.stride or k, 2), padding=int_tuple(m.padding, 2))
    if isinstance(m, nn.Flatten):
        return flatten_node(m.start_dim, m.end_dim)
    from neurocc.compiler.frontends.torch import sinabs as sin

    return sin.pool_node(m)  # sinabs.layers.SumPool2d (LPPool2d, p = 1)


def flatten_node(start_dim: int, end_dim: int) -> ir.Flatten:
    """torch's dims count the batch dim; the IR's do not."""
    if start_dim == 0:
        raise ValueError("flattening the batch dimension (start_dim=0) is not a per-sample operation")
    return ir.Flatten(start_dim=start_dim - 1 if start_dim > 0 else start_dim,
                      end_dim=end_dim - 1 if end_dim > 0 else end_dim)


def is_pool(m: Any) -> bool:
    """Pooling modules outside torch.nn's namespace that must stay one layer (sinabs SumPool2d)."""
    from torch import nn

    return isinstance(m, nn.LPPool2d)


def is_passthrough(m: Any) -> bool:
    from torch import nn

    from neurocc.compiler.frontends.torch import sinabs as sin

    return isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
                          *sin.passthrough_types()))


def _framework(m: Any) -> Any:
    """The module (:mod:`.snntorch` or :mod:`.sinabs`) that maps neuron ``m``; None for neurocc.nn."""
    from neurocc.compiler.frontends.torch import sinabs as sin
    from neurocc.compiler.frontends.torch import snntorch as snt

    return sin if isinstance(m, sin.neuron_types()) else snt if isinstance(m, snt.snntorch_types()) else None


def is_neuron(m: Any) -> bool:
    from neurocc import nn as nnc

    return isinstance(m, nnc._Neuron) or _framework(m) is not None


def neuron_outputs(m: Any) -> int:
    """How many values the module's call returns (1 = spikes only)."""
    from neurocc import nn as nnc
    from neurocc.compiler.frontends.torch import snntorch as snt

    if isinstance(m, nnc._Neuron):
        return 2
    return snt.outputs(m) if _framework(m) is snt else 1


def neuron_factory(m: Any, dt: float) -> Any:
    """A function of the node's shape that returns the IR neuron for module ``m``."""
    fw = _framework(m)
    if fw is None:
        return lambda shape: _neurocc_neuron(m, shape)
    return lambda shape: fw.neuron(m, shape, dt)


def neuron_problems(m: Any) -> list[str]:
    """What cannot be translated exactly in neuron module ``m`` (empty when fine)."""
    fw = _framework(m)
    return [] if fw is None else fw.problems(m)


def recurrent_factory(m: Any) -> Any:
    """A function of the neuron's shape giving the node on its one-step recurrent edge, or None."""
    from neurocc.compiler.frontends.torch import snntorch as snt

    return snt.recurrent(m)


def _neurocc_neuron(m: Any, shape: Shape) -> ir.Node:
    if tuple(m.shape) != tuple(shape):
        raise ValueError(f"module shape {tuple(m.shape)} does not match its input {tuple(shape)}")
    p = {k: to_numpy(getattr(m, k)) for k, _ in m.named_buffers(recurse=False)}
    return getattr(ir, type(m).__name__)(**p, reset=m.reset)
