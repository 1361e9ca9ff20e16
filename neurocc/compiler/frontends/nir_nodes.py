"""One NIR node ⇄ one neurocc IR node, both ways: NIR 1.0's primitives (Input, Output, Affine,
Linear, Conv1d/Conv2d, SumPool2d/AvgPool2d, Flatten, and the neurons, Delay and Scale by their
parameters, :data:`NEURON_PARAMS`). Conv ``padding='same'``/``'valid'`` become integers; a missing
``v_reset`` becomes zeros; neuron parameters given as scalars are broadcast to the node's shape
(a factory taking the input shape).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.compiler.frontends import NodeFactory
from neurocc.errors import ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.types import ResetMode, Shape

NEURON_PARAMS = {
    "I": ("r",), "IF": ("r", "v_threshold", "v_reset"), "LI": ("tau", "r", "v_leak"),
    "LIF": ("tau", "r", "v_leak", "v_threshold", "v_reset"),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
    "Threshold": ("threshold",), "Delay": ("delay",), "Scale": ("scale",),
}
NIR_NAMES = {"Threshold": "threshold", "Delay": "delay", "Scale": "scale"}


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x)


def _pairs(x: Any, n: int) -> tuple[int, ...]:
    a = np.atleast_1d(np.asarray(x)).astype(int)
    return tuple(int(v) for v in (np.repeat(a, n) if a.size == 1 else a))


def _padding(pad: Any, weight: np.ndarray, dilation: tuple[int, ...], name: str, where: str) -> tuple[int, ...]:
    nd = weight.ndim - 2
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, str):
        if pad == "valid":
            return (0,) * nd
        total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
        if pad != "same" or any(t % 2 for t in total):
            raise ModelLoadError(f"node '{name}': padding '{pad}' cannot be expressed as symmetric integer "
                                 "padding for this kernel", where=where,
                                 fix="use an odd kernel size or explicit integer padding")
        return tuple(t // 2 for t in total)
    return _pairs(pad, nd)


def from_nir_node(name: str, node: Any, reset: str, where: str) -> ir.Node | NodeFactory:
    """One NIR node → one IR node (or a factory taking the node's input shape)."""
    kind = type(node).__name__
    if kind == "Input":
        shape = node.input_type.get("input")
        if shape is None:
            raise ModelLoadError(f"Input '{name}' has no shape", where=where, fix="give the Input node a shape")
        return ir.Input(shape=tuple(int(s) for s in np.atleast_1d(shape)))
    if kind == "Output":
        shape = node.output_type.get("output")
        return ir.Output(shape=tuple(int(s) for s in np.atleast_1d(shape)) if shape is not None else ())
    if kind == "Affine":
        return ir.Affine(weight=_arr(node.weight), bias=_arr(node.bias))
    if kind == "Linear":
        return ir.Linear(weight=_arr(node.weight))
    if kind in ("Conv1d", "Conv2d"):
        return _conv(name, node, where)
    if kind in ("SumPool2d", "AvgPool2d"):
        cls = ir.SumPool2d if kind == "SumPool2d" else ir.AvgPool2d
        return cls(kernel_size=_pairs(node.kernel_size, 2), stride=_pairs(node.stride, 2),
                   padding=_pairs(node.padding, 2))
    if kind == "Flatten":
        return ir.Flatten(start_dim=int(node.start_dim), end_dim=int(node.end_dim))
    if kind in NEURON_PARAMS:
        return _neuron(kind, node, reset)
    raise ModelLoadError(f"node '{name}' has NIR type {kind}, which neurocc does not read", where=where,
                         fix="neurocc reads the NIR 1.0 primitives; replace this node")


def _conv(name: str, node: Any, where: str) -> ir.Conv2d:
    weight = _arr(node.weight)
    nd = weight.ndim - 2
    cls = ir.Conv1d if nd == 1 else ir.Conv2d
    dilation = _pairs(node.dilation, nd)
    shape = node.input_shape
    bias = _arr(node.bias) if node.bias is not None else np.zeros(weight.shape[0], weight.dtype)
    return cls(weight=weight, bias=bias,
               stride=_pairs(node.stride, nd), dilation=dilation,
               padding=_padding(node.padding, weight, dilation, name, where), groups=int(node.groups),
               input_shape=None if shape is None else _pairs(shape, nd))


def _neuron(kind: str, node: Any, reset: str) -> ir.Node | NodeFactory:
    cls = ir.NODE_KINDS[kind]
    names = NEURON_PARAMS[kind]
    params = {p: _arr(getattr(node, NIR_NAMES.get(kind, p), None)) for p in names}
    if "v_reset" in params and params["v_reset"].ndim == 0 and params["v_reset"].dtype == object:
        params["v_reset"] = np.zeros_like(params["v_threshold"])  # missing → zeros
    extra = {"reset": ResetMode(reset)} if "reset" in {f for f in cls.__dataclass_fields__} else {}
    if len({a.shape for a in params.values()}) == 1 and params[names[0]].ndim > 0:
        return cls(**params, **extra)

    def build(shape: Shape) -> ir.Node:
        return cls(**{k: np.broadcast_to(v, shape).copy() for k, v in params.items()}, **extra)

    return build


def to_nir_node(node: ir.Node, in_shape: Shape, out_shape: Shape) -> Any:
    import nir

    kind = node.kind
    if kind == "Input":
        return nir.Input(input_type={"input": np.array(node.shape)})
    if kind == "Output":
        return nir.Output(output_type={"output": np.array(node.shape or in_shape)})
    if kind == "Affine":
        return nir.Affine(weight=node.weight, bias=node.bias)
    if kind == "Linear":
        return nir.Linear(weight=node.weight)
    if kind in ("Conv1d", "Conv2d"):
        one = kind == "Conv1d"
        pick = (lambda t: int(t[0])) if one else (lambda t: tuple(int(v) for v in t))
        return getattr(nir, kind)(
            input_shape=pick(node.input_shape or in_shape[1:]), weight=node.weight, bias=node.bias,
            stride=pick(node.stride), padding=pick(node.padding), dilation=pick(node.dilation),
            groups=int(node.groups))
    if kind in ("SumPool2d", "AvgPool2d"):
        return getattr(nir, kind)(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                  padding=np.array(node.padding))
    if kind == "Flatten":
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim,
                           end_dim=node.end_dim)
    params = {NIR_NAMES.get(kind, p): getattr(node, p) for p in NEURON_PARAMS[kind]}
    return getattr(nir, kind)(**params)
