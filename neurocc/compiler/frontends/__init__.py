"""Frontends: turn a trained model (NIR, PyTorch, ONNX) into a verified float :class:`Graph`.

``load(source, ...)`` dispatches on what ``source`` is:

=====================================  =====================================================
source                                 read by
=====================================  =====================================================
``*.nir``, ``*.h5``, ``*.hdf5``        :func:`neurocc.compiler.frontends.nir.read_nir`
``nir.NIRGraph`` (in memory)           the same
``*.onnx``                             :func:`neurocc.compiler.frontends.onnx.read_onnx`
``*.pt2`` (``torch.export.save``)      :func:`neurocc.compiler.frontends.torch.read_exported`
``*.pt``/``*.pth``                     state_dict + ``entry="pkg.module:factory"``, or a whole
                                       pickled module only with ``trust_pickle=True``
``"pkg.module:factory"`` + ``weights``  the factory's module with the state_dict loaded
``torch.nn.Module`` (in memory)        :func:`neurocc.compiler.frontends.torch.from_module`
``*.json`` (a neurocc graph)           :func:`neurocc.ir.serialize.load_graph` (e.g. an
                                       artifact's ``float_graph.json``)
``*.net`` (lava-dl netx HDF5)          :func:`neurocc.compiler.frontends.netx.read_netx`
                                       (an already quantized ``loihi`` graph)
=====================================  =====================================================

Every frontend builds its graph through :class:`Builder`, which fills in what only shape
inference knows (neuron parameters given as scalars are broadcast to the node's shape, Output
shapes, Conv ``input_shape``) and returns ``graph.verify()``. Third-party packages (torch,
onnx, nir) are imported only inside the functions that need them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocc.errors import GraphError, ModelLoadError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Add, Conv2d, Node, Output
from neurocc.ir.types import Method, Shape

NIR_SUFFIXES = (".nir", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth")

NodeFactory = Callable[[Shape], Node]


@dataclass
class Builder:
    """Collects nodes and edges; nodes whose parameters depend on their input shape are factories.

    ``checks`` holds (node, expected input shape, what) triples verified once shapes are known,
    so a frontend can report "Reshape to 100 elements but its input has 128".
    """

    name: str
    source: str
    nodes: dict[str, Node | NodeFactory] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    checks: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, name: str, node: Node | NodeFactory, *srcs: str) -> str:
        if name in self.nodes:
            raise GraphError(f"two nodes are both called '{name}'", where=self.source,
                             fix="give the layers distinct names")
        self.nodes[name] = node
        self.edges.extend(Edge(s, name) for s in srcs)
        return name

    def finish(self, dt: float | None = None, method: Method | str | None = None) -> Graph:
        """Infer shapes, build the deferred nodes, fill Output/Conv shapes, verify."""
        provisional = {n: (Output() if isinstance(v, Output) else v if isinstance(v, Node) else Add())
                       for n, v in self.nodes.items()}
        graph = Graph(provisional, tuple(self.edges), dt=dt, method=method, name=self.name)
        shapes = _shapes_or_raise(graph, self.source)
        problems = [f"node '{n}' ({what}) expects {size} input elements but its input has shape "
                    f"{_in_shape(graph, shapes, n)}" for n, size, what in self.checks
                    if _size(_in_shape(graph, shapes, n)) != size]
        if problems:
            raise GraphError("shapes do not fit", where=self.source, problems=problems,
                             fix="check the model's input shape (input_shape=...) and layer sizes")
        final: dict[str, Node] = {}
        for name, value in self.nodes.items():
            in_shape = _in_shape(graph, shapes, name)
            node = value if isinstance(value, Node) else _call_factory(value, name, in_shape, self.source)
            final[name] = _fill_shapes(node, in_shape)
        result = Graph(final, tuple(self.edges), dt=dt, method=method, name=self.name)
        try:
            return result.verify()
        except GraphError as err:
            raise GraphError(err.what, where=self.source, problems=err.problems,
                             fix="the model's layers do not fit together as listed; check input_shape "
                                 "and the layer sizes named above") from None


def _size(shape: Shape | None) -> int:
    out = 1
    for s in shape or ():
        out *= s
    return out


def _shapes_or_raise(graph: Graph, source: str) -> dict[str, Shape]:
    from neurocc.ir.verify import infer_shapes

    shapes, problems = infer_shapes(graph)
    if problems:
        raise GraphError("shapes do not fit", where=source, problems=problems,
                         fix="check the input shape (input_shape=... for torch models) and the sizes of the "
                             "layers named above")
    missing = [n for n in graph.nodes if n not in shapes]
    if missing:
        raise GraphError("no shape reaches these nodes from an Input: " + ", ".join(missing), where=source,
                         fix="connect every node to the graph input")
    return shapes


def _in_shape(graph: Graph, shapes: dict[str, Shape], name: str) -> Shape:
    preds = graph.predecessors(name)
    return shapes[preds[0]] if preds else shapes[name]


def _call_factory(factory: NodeFactory, name: str, shape: Shape, source: str) -> Node:
    try:
        return factory(shape)
    except ValueError as err:
        raise GraphError(f"node '{name}': {err}", where=source,
                         fix="give the parameter one value per neuron or a single scalar") from None


def _fill_shapes(node: Node, in_shape: Shape) -> Node:
    """Output nodes take their input's shape; convolutions record their input's spatial shape."""
    if isinstance(node, Output) and node.shape != in_shape:
        if node.shape and _size(node.shape) != _size(in_shape):
            raise GraphError(f"Output declares shape {node.shape} but receives {in_shape}",
                             fix="fix the Output node's shape")
        return node.replace(shape=in_shape)
    if isinstance(node, Conv2d) and node.input_shape is None and len(in_shape) >= 2:
        return node.replace(input_shape=tuple(in_shape[1:]))
    return node


def bypass(nodes: dict[str, Any], edges: list[Edge], drop: set[str], where: str) -> tuple[dict[str, Any], list[Edge]]:
    """Remove the pass-through nodes ``drop``; each pred → x → succ becomes pred → succ (delays add)."""
    edges = list(edges)
    for name in [n for n in nodes if n in drop]:
        ins = [e for e in edges if e.dst == name]
        outs = [e for e in edges if e.src == name]
        rest = [e for e in edges if e.src != name and e.dst != name]
        new = [Edge(a.src, b.dst, a.delay + b.delay) for a in ins for b in outs]
        clash = [e for e in new if any(r.src == e.src and r.dst == e.dst for r in rest)]
        if clash or len({(e.src, e.dst) for e in new}) != len(new):
            raise GraphError(f"removing pass-through node '{name}' would give two parallel edges "
                             f"{clash[0].src if clash else new[0].src} -> ...", where=where,
                             fix="insert an explicit Add node or a Scale(2) instead of parallel connections")
        edges = rest + new
    return {n: v for n, v in nodes.items() if n not in drop}, edges


def load(source: Any, *, input_shape: tuple[int, ...] | None = None, entry: str | None = None,
         weights: str | Path | None = None, trust_pickle: bool = False, dt: float | None = None,
         netx: Mapping[str, Any] | None = None) -> Graph:
    """Read a model into a verified float Graph (see the module docstring for the formats).

    ``input_shape`` (no batch) is needed for torch models whose first layer does not fix it
    (convolutions); ``dt`` (seconds) sets the graph's step for torch SNN models (default 1e-3).
    ``netx``: keyword options of :func:`~neurocc.compiler.frontends.netx.read_netx` for a ``.net``
    file (``num_layers``, ``skip_layers``, ``reset_interval``, ``reset_offset``, ``reset_schedule``,
    ``variant``);
    refused for other formats. Non-finite parameters and zero thresholds are warned about
    (:mod:`neurocc.compiler.sanity`).
    """
    from neurocc.compiler.sanity import warn_suspicious

    netx = {k: v for k, v in dict(netx or {}).items() if v is not None}
    if netx and not (isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".net"):
        raise ModelLoadError(f"the netx options ({', '.join(sorted(netx))}) apply to lava-dl netx files only",
                             where=str(source)[:200],
                             fix="pass a .net file, or drop --num-layers/--skip-layers/--reset-interval/"
                                 "--reset-offset/--reset-schedule/--sigma-delta for this model")
    graph = _load(source, input_shape=input_shape, entry=entry, weights=weights, trust_pickle=trust_pickle, dt=dt,
                  netx=netx)
    warn_suspicious(graph, str(source)[:200] if isinstance(source, (str, Path)) else graph.name)
    return graph


def _load(source: Any, *, input_shape: tuple[int, ...] | None, entry: str | None, weights: str | Path | None,
          trust_pickle: bool, dt: float | None, netx: Mapping[str, Any]) -> Graph:
    from neurocc.compiler.frontends import nir as nir_fe

    if _is_module(source) or (entry is not None and _is_entry(entry) and source is None):
        from neurocc.compiler.frontends import torch as torch_fe

        if source is None:
            return torch_fe.load_entry(entry, weights, input_shape=input_shape, dt=dt)
        return torch_fe.from_module(source, input_shape=input_shape, dt=dt)
    if _is_nir_graph(source):
        return nir_fe.read_nir(source)
    if isinstance(source, str) and _is_entry(source) and not Path(source).exists():
        from neurocc.compiler.frontends import torch as torch_fe

        return torch_fe.load_entry(source, weights, input_shape=input_shape, dt=dt)
    if not isinstance(source, (str, Path)):
        raise ModelLoadError(f"cannot load a {type(source).__name__}", where=repr(source)[:80],
                             fix="pass a path (.nir, .onnx, .pt2, .pt/.pth), a torch.nn.Module or a nir.NIRGraph")
    path = Path(source)
    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path and the working directory")
    suffix = path.suffix.lower()
    if suffix in NIR_SUFFIXES:
        return nir_fe.read_nir(path)
    if suffix == ".net":
        from neurocc.compiler.frontends.netx import read_netx

        return read_netx(path, **netx)
    if suffix == ".onnx":
        from neurocc.compiler.frontends import onnx as onnx_fe

        return onnx_fe.read_onnx(path)
    if suffix in (".pt2",) + TORCH_SUFFIXES:
        from neurocc.compiler.frontends import torch as torch_fe

        if suffix == ".pt2":
            return torch_fe.read_exported(path, dt=dt, trust_pickle=trust_pickle)
        return torch_fe.read_torch_file(path, entry=entry, input_shape=input_shape,
                                        trust_pickle=trust_pickle, dt=dt)
    if suffix == ".json" or path.is_dir():  # a neurocc graph (e.g. an artifact's float_graph.json)
        from neurocc.ir.serialize import load_graph

        return load_graph(path).verify()
    raise ModelLoadError(f"unknown model format '{suffix or '(no suffix)'}'", where=str(path),
                         fix="use a .nir, .onnx, .net (lava-dl netx), .pt2 (torch.export.save) or .pt/.pth "
                             "file, or a neurocc graph .json (an artifact's float_graph.json)")


def _is_entry(s: str) -> bool:
    mod, sep, fn = s.partition(":")
    return bool(sep) and bool(fn) and all(p.isidentifier() for p in mod.split(".")) and fn.isidentifier()


def _is_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def _is_nir_graph(obj: Any) -> bool:
    return any(c.__module__.startswith("nir") and c.__name__ == "NIRGraph" for c in type(obj).__mro__)


__all__ = ["Builder", "bypass", "load"]
