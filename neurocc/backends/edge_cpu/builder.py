"""A small ONNX graph builder: unique names, deduplicated constants, one op per call.

Every emitter in this package writes through a :class:`Builder`; a Scan body gets a child
builder whose constants land in the root graph's initializers (ONNX Runtime resolves outer-scope
initializers inside subgraphs, so a recurrent body does not copy its weights).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17 (ORT 1.31 loads IR <= 13)

_NP_TO_ONNX = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 11, np.dtype(np.uint8): 2, np.dtype(np.int8): 3,
    np.dtype(np.int32): 6, np.dtype(np.int64): 7, np.dtype(np.bool_): 9,
}


def onnx_type(dtype: Any) -> int:
    """The ONNX TensorProto element type of a numpy dtype (float32/64, u8, s8, int32, int64, bool)."""
    return _NP_TO_ONNX[np.dtype(dtype)]


@dataclass
class _Root:
    """State shared by a builder and all its children (names, initializers, constant cache)."""

    used: set[str] = field(default_factory=set)
    initializers: list[Any] = field(default_factory=list)
    const_cache: dict[tuple[str, tuple[int, ...], bytes], str] = field(default_factory=dict)


class Builder:
    """Collects the nodes of one ONNX (sub)graph.

    ``op(type, inputs, **attrs)`` appends a node and returns its output name; ``const(array)``
    returns the name of an initializer holding ``array`` (deduplicated by dtype, shape, bytes).
    """

    def __init__(self, root: _Root | None = None, prefix: str = "") -> None:
        self.root = root or _Root()
        self.prefix = prefix
        self.nodes: list[Any] = []

    def child(self, prefix: str) -> "Builder":
        """A builder for a subgraph body: own node list, shared names and initializers."""
        return Builder(self.root, prefix)

    def fresh(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_./:@-]", "_", f"{self.prefix}{hint}") or "t"
        name, i = base, 1
        while name in self.root.used:
            i += 1
            name = f"{base}_{i}"
        self.root.used.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact name (graph inputs/outputs named after IR nodes and state variables)."""
        if name in self.root.used:
            raise ValueError(f"ONNX name '{name}' is used twice")
        self.root.used.add(name)
        return name

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (arr.dtype.str, tuple(arr.shape), arr.tobytes())
        if arr.size <= 64 and key in self.root.const_cache:
            return self.root.const_cache[key]
        name = self.fresh(hint)
        self.root.initializers.append(numpy_helper.from_array(arr, name))
        if arr.size <= 64:
            self.root.const_cache[key] = name
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1,
           outputs: list[str] | None = None, **attrs: Any) -> Any:
        """Append ``op_type(inputs)``; returns the output name (or the list when ``n_out > 1``)."""
        from onnx import helper

        outs = outputs or [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 and outputs is None else outs

    # ----- small helpers used by every emitter ----------------------------------------------------
    def cast(self, x: str, dtype: Any) -> str:
        return self.op("Cast", [x], to=onnx_type(dtype))

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")])

    def sum(self, values: list[str]) -> str:
        out = values[0]
        for v in values[1:]:
            out = self.op("Add", [out, v], "sum")
        return out

    def dims(self, x: str, start: int, end: int) -> str:
        """``Shape(x)[start:end]`` as an int64 vector (dynamic batch/time sizes)."""
        shape = self.op("Shape", [x], "shape_of")
        return self.op("Slice", [shape, self.const(np.array([start], np.int64), "s"),
                                 self.const(np.array([end], np.int64), "e")], "dims")

    def zeros_like_batch(self, ref: str, batch_axis: int, shape: tuple[int, ...], dtype: Any) -> str:
        """A zero tensor of shape ``(B, *shape)`` where B = ``ref.shape[batch_axis]``."""
        from onnx import helper

        b = self.dims(ref, batch_axis, batch_axis + 1)
        full = self.op("Concat", [b, self.const(np.array(shape, np.int64), "shape")], "zshape", axis=0)
        zero = helper.make_tensor("value", onnx_type(dtype), [1], [0])
        return self.op("ConstantOfShape", [full], "zeros", value=zero)


def value_info(name: str, dtype: Any, shape: list[Any]) -> Any:
    from onnx import helper

    return helper.make_tensor_value_info(name, onnx_type(dtype), shape)
