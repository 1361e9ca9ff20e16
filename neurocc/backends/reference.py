"""The float reference simulator: the emulator's interpreter on the float graph.

The float graph is the discretised, unquantized graph (``graph.numerics is None``): NIR
semantics in float64 with the per-step equations of :mod:`neurocc.backends.emulator.neurons`
(``euler`` or ``exact`` by ``graph.method``, at ``graph.dt``), resets ``zero``/``subtract``,
and edge delays. It is the reference for quantization error and for the non-integer backends.
Plastic synapses (``PlasticDense``) learn by the float reference of their rule and their weights
after the run come back as ``<node>/w`` (batch, post, pre), as the emulator's.
``run(artifact, ...)`` uses the artifact's float graph.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.backends.emulator import SimResult, load_graphs
from neurocc.backends.emulator import simulate as _simulate
from neurocc.errors import BackendError
from neurocc.ir.graph import Graph


def float_graph(artifact: Any) -> Graph:
    """The float graph of an artifact (directory, object or Graph); BackendError if it has none."""
    graph, fgraph = load_graphs(artifact)
    if fgraph is None:
        raise BackendError(f"graph '{graph.name}' is quantized ('{graph.numerics}') and no float graph "
                           "came with it", where="reference",
                           fix="run the reference backend on the artifact directory, which keeps the float graph")
    return fgraph


def simulate(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: bool = False, device: str | None = None, float_dtype: str | None = None) -> SimResult:
    """Float reference run of a float ``graph`` (BackendError for a quantized one); ``device``,
    ``float_dtype``: the emulator's batched path (``neurocc.backends.emulator.prepare``)."""
    if graph.numerics is not None:
        raise BackendError(f"graph '{graph.name}' is quantized ('{graph.numerics}')", where="reference",
                           fix="pass the float graph (artifact.float_graph), or use the emulator backend")
    return _simulate(graph, inputs, steps, record, device=device, float_dtype=float_dtype)


def check(graph: Graph, target: Any) -> list[str]:
    """Problems running ``graph``'s float form (the reference ignores the target's numerics)."""
    from neurocc.backends.emulator.checks import graph_problems

    if graph.numerics is not None:
        return []  # the artifact's float graph is what runs; it is checked when loaded
    return graph_problems(graph)


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
        record: bool = False, device: str | None = None, float_dtype: str | None = None
        ) -> dict[str, np.ndarray]:
    """Backend contract: the artifact's float graph run on ``inputs`` (``device``,
    ``float_dtype``: the emulator's batched path, see ``neurocc.backends.emulator.prepare``)."""
    res = simulate(float_graph(artifact), inputs, steps, record, device=device, float_dtype=float_dtype)
    out = {**res.outputs, **res.traces} if record else dict(res.outputs)
    return {**out, **res.weights}   # plastic synapses (the rule's float reference): "<node>/w"


__all__ = ["check", "float_graph", "run", "simulate"]
