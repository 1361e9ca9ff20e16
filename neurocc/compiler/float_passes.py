"""The float passes of a compile, in order, with a well-formedness check after each.

    normalize → convert (refuses an ANN here: :mod:`neurocc.compiler.prepare` converts it first,
    with calibration data) → discretize

Each pass is a pure ``Graph -> Graph`` function of the graph and :class:`Options`, listed in
:data:`PASSES`; :func:`run_passes` calls ``graph.verify()`` after every one and names the pass
when a result is malformed (:func:`verified`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from neurocc.compiler.passes.discretize import discretize
from neurocc.compiler.passes.quantize import LayerStats
from neurocc.errors import CompileError, GraphError
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

__all__ = ["PASSES", "Options", "no_neurons", "run_passes", "verified"]


@dataclass(frozen=True)
class Options:
    """What the passes need besides the graph and the target."""

    target: Target
    dt: float
    method: Method = Method.EULER
    stats: dict[str, LayerStats] = field(default_factory=dict)


def _normalize(graph: Graph, opts: Options) -> Graph:
    from neurocc.compiler.passes.normalize import normalize

    return normalize(graph)


def _refuse_ann(graph: Graph, opts: Options) -> Graph:
    ann = [f"node '{n}' ({node.kind})" for n, node in graph.nodes.items() if node.ann_only]
    if ann:
        raise CompileError("the model is an ANN (it has ANN-only layers): converting it to a spiking network "
                           "needs calibration data", where=f"graph '{graph.name}'", problems=ann,
                           fix="pass sample inputs: `neurocc compile MODEL --target T -o DIR --calibration "
                               "cal.npz` with cal.npz holding x (samples, *input shape), e.g. a few hundred "
                               "training inputs (Python: neurocc.compile(..., calibration=x))")
    return graph


def _discretize(graph: Graph, opts: Options) -> Graph:
    return discretize(graph, opts.dt, opts.method)


PASSES: tuple[tuple[str, Callable[[Graph, Options], Graph]], ...] = (
    ("normalize", _normalize),
    ("convert", _refuse_ann),
    ("discretize", _discretize),
)


def run_passes(graph: Graph, opts: Options) -> Graph:
    """Apply :data:`PASSES` in order, verifying after each (GraphError names the pass)."""
    for name, fn in PASSES:
        graph = fn(graph, opts)
        verified(graph, name)
    return graph


def verified(graph: Graph, name: str) -> Graph:
    """``graph.verify()``, its GraphError restated as pass ``name``'s bug."""
    try:
        return graph.verify()
    except GraphError as err:
        raise GraphError(f"pass '{name}' produced a malformed graph: {err.what}", where=err.where,
                         problems=err.problems, fix="this is a neurocc bug; please report it with the model") from err


def no_neurons(graph: Graph) -> None:
    """Refuse a graph without neurons (nor ReLU activations to convert), naming its node kinds."""
    from neurocc.ir.discrete import NEURON_TYPES
    from neurocc.ir.nodes import ReLU

    if not any(isinstance(n, (*NEURON_TYPES, ReLU)) for n in graph.nodes.values()):
        kinds = sorted({n.kind for n in graph.nodes.values()})
        raise CompileError(f"the model has no neurons ({len(graph.nodes)} nodes of kinds {', '.join(kinds)})",
                           where=f"graph '{graph.name}'",
                           fix="compile a spiking model (LIF/IF/... layers) or an ANN with ReLU activations")
