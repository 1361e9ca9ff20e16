"""The compile pipeline: the ordered passes, a verify after each, and the artifact writer.

    normalize → discretize → [fuse_pools: loihi] → quantize → (partition → place: later) → write

The artifact keeps the float graph as discretised (the trained model, for the ``reference``
backend); ``fuse_pools`` (defined here until it moves to ``passes/fuse.py``) rewrites only the
graph that is quantized: Lava's synapses take spikes from neurons, so a pool between a neuron
and a conv/dense is folded into that synapse's weights (exact; the function is unchanged).

Each pass is a pure ``Graph -> Graph`` function listed in :data:`PASSES` (functions, not name
strings); :func:`run_passes` calls ``graph.verify()`` after every one and names the pass when a
result is malformed. ANN graphs (ReLU, BatchNorm, ...) need the ``convert`` pass, which needs
calibration data: until it is wired here, compile refuses them with a message saying so.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocc.compiler.passes.discretize import discretize
from neurocc.compiler.passes.quantize import LayerStats, quantize_with_report
from neurocc.errors import CompileError, GraphError
from neurocc.ir.artifact import Artifact, write_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target


@dataclass(frozen=True)
class Options:
    """What the passes need besides the graph and the target."""

    target: Target
    dt: float
    method: Method = Method.EULER
    stats: dict[str, LayerStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Compiled:
    """In-memory result of the passes: the float graph, the executed graph and the report."""

    float_graph: Graph
    graph: Graph
    quantization: dict[str, Any] | None


def _normalize(graph: Graph, opts: Options) -> Graph:
    from neurocc.compiler.passes.normalize import normalize

    return normalize(graph)


def _refuse_ann(graph: Graph, opts: Options) -> Graph:
    ann = [f"node '{n}' ({node.kind})" for n, node in graph.nodes.items() if node.ann_only]
    if ann:
        raise CompileError("the model is an ANN (it has ANN-only layers), which needs ANN→SNN conversion",
                           where=f"graph '{graph.name}'", problems=ann,
                           fix="convert it first with calibration data (`neurocc compile --calibration X.npz`, "
                               "issue 'Compile a trained model'), or compile a spiking model")
    return graph


def _discretize(graph: Graph, opts: Options) -> Graph:
    return discretize(graph, opts.dt, opts.method)


PASSES: tuple[tuple[str, Callable[[Graph, Options], Graph]], ...] = (
    ("normalize", _normalize),
    ("convert", _refuse_ann),
    ("discretize", _discretize),
)


def _pool_params(node: Any) -> tuple[int, int, float] | None:
    """(k, s, factor) of a square, unpadded SumPool2d/AvgPool2d; None when it cannot be fused."""
    from neurocc.ir.nodes import AvgPool2d, SumPool2d

    if not isinstance(node, (SumPool2d, AvgPool2d)) or any(node.padding):
        return None
    (kh, kw), (sh, sw) = node.kernel_size, node.stride
    if kh != kw or sh != sw:
        return None
    return kh, sh, 1.0 / (kh * kw) if isinstance(node, AvgPool2d) else 1.0


def _fused_conv(conv: Any, k: int, s: int, f: float, in_hw: tuple[int, ...]) -> Any:
    """pool(k, s) then ``conv`` as one conv on the pool's input (exact: each conv tap becomes a
    k×k block of taps s apart), or None when borders would differ."""
    import numpy as np

    from neurocc.ir.nodes import Conv1d

    if isinstance(conv, Conv1d) or any(d != 1 for d in conv.dilation):
        return None
    if any(p and not (k == s and n % s == 0) for p, n in zip(conv.padding, in_hw)):
        return None
    co, ci, kh, kw = conv.weight.shape
    w = np.zeros((co, ci, s * (kh - 1) + k, s * (kw - 1) + k))
    for i in range(kh):
        for j in range(kw):
            w[:, :, s * i:s * i + k, s * j:s * j + k] += f * conv.weight[:, :, i, j][..., None, None]
    return conv.replace(weight=w, stride=tuple(s * t for t in conv.stride),
                        padding=tuple(s * p for p in conv.padding), input_shape=tuple(in_hw))


def _fused_dense(dense: Any, k: int, s: int, f: float, in_chw: tuple[int, ...], pooled: tuple[int, ...]) -> Any:
    """pool(k, s) → Flatten → ``dense`` as Flatten → one dense on the unpooled input (exact)."""
    import numpy as np

    c, h, w_ = in_chw
    _, hp, wp = pooled
    w4 = np.asarray(dense.weight, np.float64).reshape(-1, c, hp, wp)
    out = np.zeros((w4.shape[0], c, h, w_))
    for a in range(hp):
        for b in range(wp):
            out[:, :, s * a:s * a + k, s * b:s * b + k] += f * w4[:, :, a, b][..., None, None]
    return dense.replace(weight=out.reshape(w4.shape[0], -1))


def fuse_pools(graph: Graph, opts: Options | None = None) -> Graph:
    """Fold every sum/average pool that feeds a Conv2d (or a Flatten → Affine/Linear) into that
    synapse's weights, for numerics whose chips cannot run a pool between two synapses (loihi:
    Lava's synapses take spikes from neurons only). Exact in float; the function is unchanged.
    (A pass of its own; it lives here until it moves to passes/, see the module docstring.)"""
    from neurocc.ir.graph import Edge
    from neurocc.ir.nodes import Affine, Conv2d, Flatten, Linear

    shapes = graph.shapes()
    for name, node in graph.nodes.items():
        pp = _pool_params(node)
        succ, pred = graph.successors(name), graph.predecessors(name)
        if pp is None or len(succ) != 1 or len(pred) != 1:
            continue
        nxt = graph.nodes[succ[0]]
        in_shape, nodes = shapes[pred[0]], dict(graph.nodes)
        if isinstance(nxt, Conv2d):
            new = _fused_conv(nxt, *pp, in_shape[1:])
            target = succ[0]
        elif isinstance(nxt, Flatten) and len(shapes[succ[0]]) == 1 and len(graph.successors(succ[0])) == 1 \
                and isinstance(graph.nodes[graph.successors(succ[0])[0]], (Affine, Linear)):
            target = graph.successors(succ[0])[0]
            new = _fused_dense(graph.nodes[target], *pp, in_shape, shapes[name])
        else:
            continue
        if new is None:
            continue
        nodes[target] = new
        del nodes[name]
        (e_in,), (e_out,) = graph.in_edges(name), graph.out_edges(name)
        edges = [e for e in graph.edges if name not in (e.src, e.dst)]
        edges.append(Edge(e_in.src, e_out.dst, e_in.delay + e_out.delay))
        return fuse_pools(graph.replace(nodes=nodes, edges=tuple(edges)).verify(), opts)
    return graph


def run_passes(graph: Graph, opts: Options) -> Graph:
    """Apply :data:`PASSES` in order, verifying after each (GraphError names the pass)."""
    for name, fn in PASSES:
        graph = fn(graph, opts)
        try:
            graph.verify()
        except GraphError as err:
            raise GraphError(f"pass '{name}' produced a malformed graph: {err.what}", where=err.where,
                             problems=err.problems, fix="this is a neurocc bug; please report it with the model") from err
    return graph


def compile_graph(graph: Graph, target: Target | str, *, dt: float | None = None,
                  method: Method | str = Method.EULER, stats: dict[str, LayerStats] | None = None,
                  targets_file: str | Path | None = None) -> Compiled:
    """Run the passes without writing anything: (float graph, executed graph, report)."""
    tgt = resolve_target(target, targets_file)
    opts = Options(tgt, float(dt if dt is not None else tgt.dt), Method(method), dict(stats or {}))
    float_graph = run_passes(graph.verify(), opts)
    if tgt.numerics == "float32":
        return Compiled(float_graph, float_graph, None)
    to_quantize = fuse_pools(float_graph) if tgt.numerics == "loihi" else float_graph
    qgraph, report = quantize_with_report(to_quantize, tgt.numerics, tgt, stats=opts.stats)
    try:
        qgraph.verify()
    except GraphError as err:
        raise GraphError(f"pass 'quantize' produced a malformed graph: {err.what}", where=err.where,
                         problems=err.problems, fix="this is a neurocc bug; please report it with the model") from err
    return Compiled(float_graph, qgraph, report)


def resolve_target(target: Target | str, targets_file: str | Path | None = None) -> Target:
    if isinstance(target, Target):
        return target
    from neurocc.targets import get_target

    return get_target(target, targets_file)


def compile_model(graph: Graph, target: Target | str, out_dir: str | Path, *, dt: float | None = None,
                  calibration: str | Path | Any = None, timesteps: int | None = None,
                  method: Method | str = Method.EULER, targets_file: str | Path | None = None) -> Path:
    """Compile ``graph`` for ``target`` into the artifact directory ``out_dir`` (written atomically).

    ``dt`` (seconds) overrides the target's step (NIR files carry none). ``calibration`` (a path or
    an array of samples) is not used yet for spiking models: default scaling applies, a
    UserWarning says so and the manifest records it.
    """
    tgt = resolve_target(target, targets_file)
    compiled = compile_graph(graph, tgt, dt=dt, method=method)
    extra: dict[str, Any] = {"timesteps": timesteps, "source_graph": graph.name, "calibration": None}
    if calibration is not None:
        note = ("calibration data is not used for spiking models yet: default scaling was applied "
                "(per-layer calibration arrives with the issue 'Compile a trained model')")
        warnings.warn(note, stacklevel=2)
        is_path = isinstance(calibration, (str, Path))
        extra["calibration"] = {"file": str(calibration) if is_path else None,
                                "samples": None if is_path else int(len(calibration)), "used": False, "note": note}
    write_artifact(out_dir, graph=compiled.graph, float_graph=compiled.float_graph, target=tgt,
                   quantization=compiled.quantization, extra=extra, emit=_backend_emitter(tgt, compiled))
    return Path(out_dir)


def _backend_emitter(tgt: Target, compiled: Compiled) -> Callable[[Path], None] | None:
    """The backend's ``emit_files(directory, graph, float_graph, target)``, if it defines one."""
    if tgt.backend in (None, "emulator"):
        return None
    from neurocc.backends import REGISTRY
    import importlib

    try:
        module = importlib.import_module(REGISTRY[tgt.backend])
    except ModuleNotFoundError:
        return None
    emit = getattr(module, "emit_files", None)
    if emit is None:
        return None
    return lambda directory: emit(directory, compiled.graph, compiled.float_graph, tgt)


def load_compiled(path: str | Path) -> Artifact:
    from neurocc.ir.artifact import load_artifact

    return load_artifact(path)
