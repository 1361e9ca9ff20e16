"""The bit-accurate emulator: THE specification of every quantized graph, and (on a float
graph) the float reference simulator.

``simulate(graph, inputs, steps=None, record=False) -> SimResult`` interprets a graph over time:
float graphs (``graph.numerics is None``) with float64 NIR semantics discretised by the
graph's ``dt`` and ``method``; quantized graphs with their numerics profile's integer rules
(:mod:`neurocc.ir.numerics`). Inputs and outputs are time-major ``(steps, batch, *shape)``.
Every kind's per-step equations are in :mod:`.kernels` and :mod:`.neurons`; the execution
model is in :mod:`.program`. Overflow is never silent: ``SimResult.events`` counts every wrap
and saturation per node.

Backend contract: ``check(graph, target) -> list[str]`` and
``run(artifact, inputs, steps=None, record=False) -> dict[str, np.ndarray]``.
This module imports numpy only (no torch, lava or onnx).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph


@dataclass(frozen=True)
class SimResult:
    """Outputs per Output node ``(steps, batch, *shape)``; with ``record=True`` also ``traces``:
    ``"<node>/out"`` (every node's per-step output) and ``"<node>/<var>"`` (every state
    variable after the step, post-reset, as Lava's monitors see it); ``events``: per node the
    counts of wrap and saturation events (keys such as ``u_wrap``, ``v_saturate``,
    ``acc_wrap``, ``out_wrap``, ``input_wrap``, ``int32_wrap``)."""

    outputs: dict[str, np.ndarray]
    traces: dict[str, np.ndarray] = field(default_factory=dict)
    events: dict[str, dict[str, int]] = field(default_factory=dict)
    steps: int = 0
    batch: int = 0
    weights: dict[str, np.ndarray] = field(default_factory=dict)   # plastic synapses after the run


def _profile(graph: Graph):
    if graph.numerics is None:
        return None
    from neurocc.ir.numerics import get_profile

    return get_profile(graph.numerics)


def prepare(graph: Graph, kernels: str = "auto", device: str | None = None, float_dtype: str | None = None):
    """Check ``graph`` and build its reusable :class:`~.program.Program` (BackendError listing
    every problem when the emulator cannot run it). ``kernels``: ``auto`` (compiled numba
    kernels where implemented, numpy elsewhere), ``numba`` (the same; error without numba) or
    ``numpy`` (the reference everywhere); results are identical (:mod:`.accel`). ``device``
    ``cpu`` / ``cuda``: the batched path (:mod:`.torch_path`; exact for integer graphs; float
    graphs on a CPU with numba: :mod:`.floatpath`). ``float_dtype`` (float graphs on the batched
    path): ``float64`` (default: the specification) or ``float32`` (faster; differs by rounding,
    never the judge: docs/backends/emulator.md); InputError for any other value."""
    from neurocc.backends.emulator.checks import graph_problems
    from neurocc.backends.emulator.program import Program

    found = graph_problems(graph)
    if found:
        raise BackendError(f"the emulator cannot run graph '{graph.name}' ({len(found)} problem(s))",
                           where=f"graph '{graph.name}'", problems=found,
                           fix="see each problem; quantize the graph for its numerics profile or fix the node")
    return Program(graph, _profile(graph), kernels, device, float_dtype)


def simulate(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: bool = False, program: Any = None, kernels: str = "auto",
             device: str | None = None, float_dtype: str | None = None) -> SimResult:
    """Run ``graph`` on ``inputs`` (one ``(T, batch, *shape)`` array per Input node).

    ``steps`` defaults to T; more steps than T pad zero input, fewer use the first ``steps``.
    ``program`` (from :func:`prepare`) skips the checks and set-up when running a graph often;
    ``kernels``, ``device`` and ``float_dtype`` (without ``program``): see :func:`prepare`.
    """
    from neurocc.backends.emulator.checks import check_inputs

    prog = program if program is not None else prepare(graph, kernels, device, float_dtype)
    arrays, steps, batch = check_inputs(graph, inputs, steps, prog.shapes, np.dtype(prog.float_dtype or 'float64').type)
    outputs, traces, events = prog.run(arrays, steps, batch, record)
    return SimResult(outputs=outputs, traces=traces, events=events, steps=steps, batch=batch,
                     weights=prog.learned_weights())


def check(graph: Graph, target: Any) -> list[str]:
    """Every reason the emulator cannot run ``graph`` for ``target`` (empty = fine)."""
    from neurocc.backends.emulator.checks import graph_problems, target_problems

    return graph_problems(graph) + (target_problems(graph, target) if target is not None else [])


def load_graphs(artifact: Any) -> tuple[Graph, Graph | None]:
    """(integer-or-float graph, float graph) of an artifact directory, an object with
    ``.graph``/``.float_graph``, or a Graph (then both are that graph)."""
    if isinstance(artifact, Graph):
        return artifact, artifact if artifact.numerics is None else None
    if isinstance(artifact, (str, Path)):
        try:
            from neurocc.ir.artifact import load_artifact
        except ImportError as err:
            raise BackendError("artifact directories cannot be read yet (neurocc.ir.artifact is missing)",
                               where=str(artifact), fix="pass the Graph itself") from err
        artifact = load_artifact(artifact)
    graph = getattr(artifact, "graph", None)
    if not isinstance(graph, Graph):
        raise BackendError(f"not an artifact: {type(artifact).__name__}", where="run",
                           fix="pass an artifact directory, an Artifact or a Graph")
    return graph, getattr(artifact, "float_graph", None)


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
        record: bool = False, device: str | None = None, float_dtype: str | None = None
        ) -> dict[str, np.ndarray]:
    """Backend contract: outputs (and with ``record`` every ``"<node>/<var>"`` trace) of the
    artifact's integer graph (or a Graph); ``device``, ``float_dtype``: see :func:`prepare`."""
    return run_events(artifact, inputs, steps, record, device, float_dtype)[0]


def run_events(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
               record: bool = False, device: str | None = None, float_dtype: str | None = None
               ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]]]:
    """:func:`run` and the wrap/saturation counts per node (``SimResult.events``). A backend that
    counts overflow events offers ``run_events``; :func:`neurocc.runtime.run.run_artifact` uses it."""
    graph, _ = load_graphs(artifact)
    res = simulate(graph, inputs, steps, record, device=device, float_dtype=float_dtype)
    out = {**res.outputs, **res.traces} if record else dict(res.outputs)
    return {**out, **res.weights}, res.events   # plastic synapses: "<node>/w" (batch, post, pre)


__all__ = ["SimResult", "check", "load_graphs", "prepare", "run", "run_events", "simulate"]
