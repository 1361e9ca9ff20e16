"""aten ops of a ``torch.export`` ExportedProgram → IR nodes (the ANN subset of
:func:`neurocc.compiler.frontends.torch.modules.ann_node`).

``.pt2`` archives hold no neuron modules (export inlines them into aten ops), so only ANN layers
are read: linear, conv1d/2d, batch_norm, relu, avg/max_pool2d, flatten/2-D view, add of two
tensors; dropout/clone/alias/contiguous/detach pass through. Nodes are named after the innermost
module in ``nn_module_stack`` (``fc``, ``features.0``), else the aten node's name.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.compiler.frontends import Builder
from neurocc.compiler.frontends.torch.modules import flatten_node, int_tuple, to_numpy
from neurocc.errors import ModelLoadError
from neurocc.ir import nodes as ir
from neurocc.ir.graph import Graph


class Aten:
    """Maps the aten ops of an ExportedProgram to IR nodes (the ANN subset of :func:`ann_node`)."""

    PASS = ("dropout", "clone", "alias", "contiguous", "detach", "identity")

    def __init__(self, ep: Any, name: str, where: str, dt: float | None) -> None:
        self.ep, self.where, self.dt = ep, where, dt
        self.b = Builder(name=name, source=where)
        self.values: dict[Any, Any] = {}
        self.tensors: dict[str, Any] = {}
        self.problems: list[str] = []

    def run(self) -> Graph:
        user = []
        for spec in self.ep.graph_signature.input_specs:
            if spec.kind.name == "USER_INPUT":
                user.append(spec.arg.name)
            else:
                src = self.ep.state_dict if spec.target in self.ep.state_dict else self.ep.constants
                self.tensors[spec.arg.name] = src.get(spec.target)
        for n in self.ep.graph.nodes:
            if n.op == "placeholder":
                if n.name in self.tensors:
                    self.values[n] = to_numpy(self.tensors[n.name])
                elif n.name == user[0]:
                    shape = tuple(int(s) for s in n.meta["val"].shape[1:])
                    self.values[n] = self.b.add("input", ir.Input(shape=shape))
            elif n.op == "output":
                out = n.args[0][0]
                if isinstance(self.values.get(out), str):
                    self.b.add("output", ir.Output(), self.values[out])
            elif n.op == "call_function":
                self._op(n)
        if self.problems:
            raise ModelLoadError(f"{len(self.problems)} unsupported operation(s) in the exported program",
                                 where=self.where, problems=self.problems,
                                 fix="the .pt2 reader supports ANN layers (linear, conv, batch_norm, relu, pooling, "
                                     "flatten, add); for spiking models save a state_dict and use entry=...")
        return self.b.finish(dt=self.dt, method=None)

    def _name(self, n: Any) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        return path if path and path not in self.b.nodes else n.name

    def _op(self, n: Any) -> None:
        op = n.target._overloadpacket.__name__ if hasattr(n.target, "_overloadpacket") else str(n.target)
        args = [self.values.get(a, a) if hasattr(a, "op") else a for a in n.args]
        if op == "getitem" and isinstance(args[0], tuple):
            self.values[n] = args[0][args[1]]
            return
        src = args[0] if args and isinstance(args[0], str) else None
        if src is None:
            self.problems.append(f"{n.name}: aten.{op} on a constant or unsupported value")
            return
        if op in self.PASS:
            self.values[n] = src
            return
        try:
            node = self._node(op, args, n)
        except ValueError as err:
            self.problems.append(f"{n.name}: aten.{op}: {err}")
            return
        if node is None:
            self.problems.append(f"{n.name}: aten.{op} has no neurocc equivalent")
            return
        srcs = [src, args[1]] if op == "add" else [src]
        out = self.b.add(self._name(n), node, *srcs)
        self.values[n] = (out, None, None) if op == "_native_batch_norm_legit_no_training" else out

    def _node(self, op: str, a: list[Any], n: Any) -> ir.Node | None:
        get = lambda i, d: a[i] if len(a) > i else d
        if op == "linear":
            return ir.Affine(weight=a[1], bias=a[2]) if get(2, None) is not None else ir.Linear(weight=a[1])
        if op in ("conv1d", "conv2d"):
            nd = a[1].ndim - 2
            pad = get(4, 0)
            if isinstance(pad, str):
                raise ValueError(f"padding={pad!r}: export with integer padding")
            cls = ir.Conv1d if nd == 1 else ir.Conv2d
            bias = get(2, None)
            return cls(weight=a[1], bias=bias if bias is not None else np.zeros(a[1].shape[0], a[1].dtype),
                       stride=int_tuple(get(3, 1), nd), padding=int_tuple(pad, nd), dilation=int_tuple(get(5, 1), nd),
                       groups=int(get(6, 1)))
        if op in ("batch_norm", "_native_batch_norm_legit_no_training"):
            eps = a[7] if op == "batch_norm" else a[6]
            return ir.BatchNorm(weight=a[1], bias=a[2], mean=a[3], var=a[4], eps=float(eps))
        if op in ("relu", "relu_"):
            return ir.ReLU()
        if op in ("avg_pool2d", "max_pool2d"):
            k = int_tuple(a[1], 2)
            stride, pad = int_tuple(get(2, None) or k, 2), int_tuple(get(3, 0), 2)
            if op == "avg_pool2d":
                if get(4, False) or get(6, None) or (any(pad) and not get(5, True)):
                    raise ValueError("ceil_mode, divisor_override, count_include_pad=False are not supported")
                return ir.AvgPool2d(kernel_size=k, stride=stride, padding=pad)
            if int_tuple(get(4, 1), 2) != (1, 1) or get(5, False):
                raise ValueError("dilation and ceil_mode are not supported")
            return ir.MaxPool2d(kernel_size=k, stride=stride, padding=pad)
        if op == "flatten":
            return flatten_node(int(get(1, 0)), int(get(2, -1)))
        if op in ("view", "reshape", "_unsafe_view") and len(a[1]) == 2:
            self.b.checks.append((self._name(n), int(a[1][1]), op)) if int(a[1][1]) != -1 else None
            return ir.Flatten(start_dim=0, end_dim=-1)
        if op == "add" and isinstance(get(1, None), str) and get(2, 1) == 1:
            return ir.Add()
        return None
