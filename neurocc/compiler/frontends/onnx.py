"""ONNX → neurocc IR (ANN models; spiking neurons have no ONNX op).

Supported ops: Gemm (``transA=0``; ``transB``, ``alpha``, ``beta`` folded into the weights),
MatMul with a constant right operand (→ Linear; a following ``Add`` of a constant vector is folded
into an Affine), Conv (1-D/2-D, symmetric ``pads`` or ``auto_pad``), Relu, BatchNormalization,
AveragePool, MaxPool, Flatten (``axis=1``), Reshape to ``(batch, n)`` (→ Flatten), Add (of two
tensors → Add; of a constant → folded into the producing Gemm/MatMul/Conv bias), Identity and
Dropout (dropped). Everything else is reported at once, by node name and op type.

The graph input keeps its ONNX name (``input`` when exported with ``input_names=["input"]``);
its first dimension is the batch (symbolic or fixed) and is dropped. Node names come from the
ONNX node names with ``/`` replaced by ``.`` (NIR stores names as HDF5 groups).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurocc.compiler.frontends import Builder
from neurocc.errors import ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Graph


def read_onnx(path: str | Path) -> Graph:
    """Read an ``.onnx`` file into a verified float Graph."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf DecodeError, ValidationError, OSError: all mean a bad file
        raise ModelLoadError(f"cannot read this ONNX file ({type(err).__name__}: {str(err)[:200]}); it is "
                             "truncated, corrupt or not an ONNX model", where=str(path),
                             fix="export the model again (torch.onnx.export) and check the copy is complete") from None
    _check_sizes(model, str(path))
    return from_model(model, name=path.stem, where=str(path))


def _check_sizes(model: Any, where: str) -> None:
    """Before any array is built: every initializer and the input fit the size budget."""
    from onnx import helper

    from neurocc._limits import check_size

    for t in model.graph.initializer:
        itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize if t.data_type else 8
        check_size(t.dims, itemsize, f"initializer '{t.name}'", where, error=ModelLoadError,
                   fix="check the tensor shapes stored in the file")
    for vi in model.graph.input:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim if d.HasField("dim_value")]
        check_size(dims[1:], 8, f"input '{vi.name}'", where, error=ModelLoadError,
                   fix="export with the real input shape")


def from_model(model: Any, *, name: str = "onnx", where: str = "<onnx model>") -> Graph:
    """Convert an in-memory ``onnx.ModelProto``."""
    return _Converter(model, name, where).run()


def _clean(name: str) -> str:
    return name.strip("/").replace("/", ".") or "node"


class _Converter:
    def __init__(self, model: Any, name: str, where: str) -> None:
        from onnx import numpy_helper

        self.g = model.graph
        self.where = where
        self.b = Builder(name=name, source=where)
        try:
            self.const: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        except (ValueError, TypeError, KeyError) as err:
            raise ModelLoadError(f"an initializer cannot be read ({type(err).__name__}: {str(err)[:160]})",
                                 where=where, fix="export the model again; the file is damaged") from None
        self.values: dict[str, str] = {}  # ONNX value name → IR node name
        self.biasable: dict[str, str] = {}  # value produced by Gemm/MatMul/Conv → its IR node
        self.consumers: dict[str, int] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        self.problems: list[str] = []

    def run(self) -> Graph:
        inputs = [i for i in self.g.input if i.name not in self.const]
        if len(inputs) != 1 or len(self.g.output) < 1:
            raise ModelLoadError(f"the model has {len(inputs)} inputs; neurocc reads models with one input",
                                 where=self.where, fix="export a model with a single input tensor")
        self._input(inputs[0])
        for i, node in enumerate(self.g.node):
            self._visit(node, i)
        if self.problems:
            raise ModelLoadError(f"{len(self.problems)} unsupported ONNX node(s)", where=self.where,
                                 problems=self.problems,
                                 fix="neurocc reads Gemm, MatMul, Conv, Relu, BatchNormalization, AveragePool, "
                                     "MaxPool, Flatten, Reshape (to a flatten), Add, Identity, Dropout; change the "
                                     "model to use these or export it to NIR")
        out = self.g.output[0].name
        if out not in self.values:
            raise ModelLoadError(f"the graph output '{out}' is not computed from the input", where=self.where,
                                 fix="check the model's outputs")
        self.b.add("output", ir.Output(), self.values[out])
        return self.b.finish()

    def _input(self, vi: Any) -> None:
        dims = vi.type.tensor_type.shape.dim
        shape = []
        for d in list(dims)[1:]:
            if not d.HasField("dim_value"):
                raise ModelLoadError(f"input '{vi.name}' has a symbolic dimension '{d.dim_param}' after the batch",
                                     where=self.where, fix="export with a fixed input shape (only the batch may vary)")
            shape.append(int(d.dim_value))
        name = _clean(vi.name)
        self.values[vi.name] = self.b.add(name, ir.Input(shape=tuple(shape)))

    def _visit(self, node: Any, i: int) -> None:
        import onnx

        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        name = _clean(node.name or f"{node.op_type}_{i}")
        label = f"{node.name or name} ({node.op_type})"
        op = node.op_type
        if op == "Constant":
            from onnx import numpy_helper

            self.const[node.output[0]] = numpy_helper.to_array(attrs["value"]) if "value" in attrs else None
            return
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            self.problems.append(f"{label}: op type {op} has no neurocc equivalent")
            return
        srcs = [self.values.get(x) for x in node.input if x and x not in self.const]
        if not srcs:
            self.problems.append(f"{label}: computes on constants only (fold constants before export)")
            return
        if any(s is None for s in srcs):
            return  # its producer was already reported as unsupported
        try:
            out = handler(node, attrs, name, srcs)
        except ValueError as err:
            self.problems.append(f"{label}: {err}")
            return
        except (IndexError, TypeError, KeyError, AttributeError, ZeroDivisionError, OverflowError) as err:
            self.problems.append(f"{label}: its attributes or initializers have unexpected shapes or types "
                                 f"({type(err).__name__}: {str(err)[:120]})")
            return
        if out is not None:
            self.values[node.output[0]] = out

    def _c(self, node: Any, k: int) -> np.ndarray | None:
        return self.const.get(node.input[k]) if len(node.input) > k and node.input[k] else None

    # ----- ops ---------------------------------------------------------------------------------
    def _op_Gemm(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        w, c = self._c(node, 1), self._c(node, 2)
        if w is None or a.get("transA", 0):
            raise ValueError("needs a constant B and transA=0")
        w = (w if a.get("transB", 0) else w.T) * np.asarray(a.get("alpha", 1.0), w.dtype)
        if c is None:
            out = self.b.add(name, ir.Linear(weight=np.ascontiguousarray(w)), srcs[0])
        else:
            bias = np.broadcast_to(c * np.asarray(a.get("beta", 1.0), c.dtype), (w.shape[0],)).copy()
            out = self.b.add(name, ir.Affine(weight=np.ascontiguousarray(w), bias=bias), srcs[0])
        self.biasable[node.output[0]] = out
        return out

    def _op_MatMul(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        w = self._c(node, 1)
        if w is None or w.ndim != 2:
            raise ValueError("needs a constant 2-D right operand (x @ W)")
        out = self.b.add(name, ir.Linear(weight=np.ascontiguousarray(w.T)), srcs[0])
        self.biasable[node.output[0]] = out
        return out

    def _op_Add(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        const = [x for x in node.input if x in self.const]
        if not const:
            if len(set(srcs)) != 2:
                raise ValueError("adds a tensor to itself")
            return self.b.add(name, ir.Add(), *srcs)
        producer = next((x for x in node.input if x not in self.const), "")
        target = self.biasable.get(producer)
        if target is None or self.consumers.get(producer, 0) != 1:
            raise ValueError("adds a constant to a value not produced by a Gemm/MatMul/Conv (no bias to fold into)")
        return self._fold_bias(target, self.const[const[0]])

    def _fold_bias(self, target: str, c: np.ndarray) -> str:
        layer = self.b.nodes[target]
        out_ch = layer.weight.shape[0]
        vec = np.asarray(c).reshape(-1) if np.asarray(c).size in (1, out_ch) else None
        if vec is None:
            raise ValueError(f"constant of shape {np.shape(c)} is not a per-output bias of {target}")
        old = getattr(layer, "bias", np.zeros(out_ch, layer.weight.dtype))
        bias = (old + np.broadcast_to(vec, (out_ch,))).astype(layer.weight.dtype)
        new = ir.Affine(weight=layer.weight, bias=bias) if isinstance(layer, ir.Linear) else layer.replace(bias=bias)
        self.b.nodes[target] = new
        return target

    def _op_Conv(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        w, bias = self._c(node, 1), self._c(node, 2)
        if w is None or w.ndim not in (3, 4):
            raise ValueError("needs a constant 1-D or 2-D kernel")
        nd = w.ndim - 2
        pads = self._pads(a, w.shape[2:], a.get("dilations", [1] * nd), nd)
        cls = ir.Conv1d if nd == 1 else ir.Conv2d
        out = self.b.add(name, cls(weight=w, bias=bias if bias is not None else np.zeros(w.shape[0], w.dtype),
                                   stride=tuple(a.get("strides", [1] * nd)), padding=pads,
                                   dilation=tuple(a.get("dilations", [1] * nd)), groups=int(a.get("group", 1))),
                         srcs[0])
        self.biasable[node.output[0]] = out
        return out

    @staticmethod
    def _pads(a: dict, kernel: Any, dilations: Any, nd: int) -> tuple[int, ...]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto == "VALID":
            return (0,) * nd
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            if any(int(s) != 1 for s in a.get("strides", [1] * nd)):
                raise ValueError(f"auto_pad={auto} with stride > 1 pads asymmetrically")
            total = [d * (k - 1) for d, k in zip(dilations, kernel)]
            if any(t % 2 for t in total):
                raise ValueError(f"auto_pad={auto} with an even kernel pads asymmetrically")
            return tuple(t // 2 for t in total)
        pads = list(a.get("pads", [0] * 2 * nd))
        if pads[:nd] != pads[nd:]:
            raise ValueError(f"asymmetric pads {pads}")
        return tuple(int(p) for p in pads[:nd])

    def _op_Relu(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        return self.b.add(name, ir.ReLU(), srcs[0])

    def _op_BatchNormalization(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        scale, b, mean, var = (self._c(node, k) for k in (1, 2, 3, 4))
        if any(x is None for x in (scale, b, mean, var)) or a.get("training_mode", 0):
            raise ValueError("needs constant scale/B/mean/var and training_mode=0")
        return self.b.add(name, ir.BatchNorm(mean=mean, var=var, weight=scale, bias=b,
                                             eps=float(a.get("epsilon", 1e-5))), srcs[0])

    def _pool(self, a: dict) -> dict[str, tuple[int, ...]]:
        k = tuple(a["kernel_shape"])
        if len(k) != 2 or a.get("ceil_mode", 0):
            raise ValueError("only 2-D pooling without ceil_mode")
        return dict(kernel_size=k, stride=tuple(a.get("strides", [1, 1])), padding=self._pads(a, k, [1, 1], 2))

    def _op_AveragePool(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        p = self._pool(a)
        if any(p["padding"]) and not a.get("count_include_pad", 0):
            raise ValueError("padding with count_include_pad=0 (neurocc's AvgPool2d counts the padding)")
        return self.b.add(name, ir.AvgPool2d(**p), srcs[0])

    def _op_MaxPool(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        if any(d != 1 for d in a.get("dilations", [1, 1])) or len(node.output) > 1 and node.output[1]:
            raise ValueError("dilations and the Indices output are not supported")
        return self.b.add(name, ir.MaxPool2d(**self._pool(a)), srcs[0])

    def _op_Flatten(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        if a.get("axis", 1) != 1:
            raise ValueError(f"axis={a.get('axis')} (only axis=1: keep the batch, flatten the rest)")
        return self.b.add(name, ir.Flatten(start_dim=0, end_dim=-1), srcs[0])

    def _op_Reshape(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        shape = self._c(node, 1)
        if shape is None or shape.ndim != 1 or len(shape) != 2:
            raise ValueError("only a reshape to (batch, n) with a constant shape (a flatten) is supported")
        if int(shape[1]) != -1:
            self.b.checks.append((name, int(shape[1]), "Reshape"))
        return self.b.add(name, ir.Flatten(start_dim=0, end_dim=-1), srcs[0])

    def _op_Identity(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        return srcs[0]

    def _op_Dropout(self, node: Any, a: dict, name: str, srcs: list[str]) -> str:
        if len(node.output) > 1 and node.output[1]:
            raise ValueError("the mask output is not supported")
        return srcs[0]
