"""The ``loihi`` backend: run a quantized ``loihi`` graph in Lava 0.10's bit-accurate CPU models.

Lava is imported only in a worker subprocess (:mod:`.worker`; why: :mod:`.shim`). The pure
lowering (:mod:`.lower`, :mod:`.plan`) turns a graph into a plain description of Lava processes;
:mod:`.runner` writes it with the inputs to a job directory, starts the worker, and reads the
results back. Results are keyed and indexed exactly like the emulator's: time-major
``(steps, batch, *shape)`` per Output node, and with ``record=True`` also ``"<node>/u"`` and
``"<node>/v"`` per QLIF/QLI (the state after the step, after the reset). See docs/backends/loihi.md.

Hardware export: :func:`emit_files` (the compile hook) writes ``network.net``, a lava-dl netx HDF5
file (:mod:`.netx` plans it, :mod:`.netx_file` writes it), whenever netx can express the graph
exactly, and always ``loihi.json`` (per-layer netx status, what netx cannot express and why, the
placement). :func:`run_netx` / :func:`run_netx_many` load such files with netx in the worker.

Limits: for a target whose backend is ``loihi`` (loihi1, loihi2), :func:`check` includes the
mapping report's binding constraint when the graph does not fit, and :func:`run` refuses such a
graph with the report before any Lava process starts.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph

from .lower import lower, problems
from .netx import NetxPlan, plan_netx
from .netx_file import NET_FILE, SIDECAR
from .netx_run import NetxJob, artifact_net, run_netx_many
from .runner import LavaJob, run_jobs
from .shim import lava_available, unavailable_reason

__all__ = [
    "NET_FILE",
    "SIDECAR",
    "LavaJob",
    "NetxJob",
    "NetxPlan",
    "check",
    "emit_files",
    "lava_available",
    "lower",
    "plan_netx",
    "run",
    "run_lava",
    "run_lava_many",
    "run_netx",
    "run_netx_many",
    "unavailable_reason",
]


def run_lava(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: bool = False, *, timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """Run ``graph`` in Lava ``fixed_pt``; outputs (and traces with ``record``) as the emulator's."""
    return run_jobs([LavaJob(graph, inputs, steps, record)], timeout_s)[0]


def run_lava_many(jobs: Sequence[LavaJob | Mapping[str, Any]], *, timeout_s: float | None = None
                  ) -> list[dict[str, np.ndarray]]:
    """Run many networks in one worker (one Lava import and start-up for all of them).

    Each job is a :class:`LavaJob` or a mapping with keys ``graph``, ``inputs`` and optionally
    ``steps``, ``record``. Returns one result dict per job, in order.
    """
    return run_jobs([j if isinstance(j, LavaJob) else LavaJob(**j) for j in jobs], timeout_s)


def check(graph: Graph, target: Any = None) -> list[str]:
    """Every reason this backend cannot run ``graph`` (empty when it can). ``target`` (a
    :class:`neurocc.targets.Target`) must use the ``loihi`` numerics when given. Whether the graph
    fits the target's resource limits is the mapping's question (``neurocc compile`` refuses a
    graph that does not fit; ``neurocc run`` checks an artifact before any backend starts:
    :func:`neurocc.runtime.run.require_fit`)."""
    found = []
    numerics = getattr(target, "numerics", None)
    if target is not None and numerics != "loihi":
        found.append(f"target '{getattr(target, 'name', target)}' uses numerics {numerics!r}; the loihi "
                     "backend runs only 'loihi' numerics")
    if _sigma_delta(graph):   # Lava's SigmaDelta processes, built by lava-dl netx
        found += list(plan_netx(graph).problems)
    else:
        found += problems(graph)
    return found


def _sigma_delta(graph: Graph) -> bool:
    return any(n.kind == "QSigmaDelta" for n in graph.nodes.values())


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
        record: bool = False) -> dict[str, np.ndarray]:
    """Backend contract: ``artifact`` is an artifact directory, a loaded Artifact, or a Graph.
    (``neurocc run``/``validate`` refuse an artifact that does not fit its target before this is
    called: :func:`neurocc.runtime.run.require_fit`.)

    A graph of sigma-delta neurons runs as lava-dl netx builds it (:func:`run_netx`): Lava's
    ``Delta``, ``SigmaDelta`` and ``Sigma`` processes with graded Dense/Conv synapses."""
    graph, _, _ = _resolve(artifact)
    if _sigma_delta(graph):
        return run_netx(artifact, inputs, steps, record)
    return run_lava(graph, inputs, steps, record)


def in_lanes(artifact: Any) -> bool:
    """Whether the Lava worker runs this artifact's samples side by side in lanes (:mod:`.lanes`:
    every probed part of its Lava processes qualifies): a few ms per sample instead of ~0.15 s,
    which changes where parallel workers pay (:func:`neurocc.runtime.parallel.resolve_workers`).
    False for netx (sigma-delta) graphs and graphs Lava cannot run."""
    from .lanes import lanes_ok

    graph = _graph_of(artifact)
    if _sigma_delta(graph):
        return False
    try:
        net = lower(graph)
    except BackendError:
        return False
    return all(lanes_ok(net, part) for part in net.components())


def run_netx(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
             record: bool = False, *, timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """Load the artifact's ``network.net`` with lava-dl netx in the worker and run it (results as
    :func:`run`); a Graph is written to a temporary netx file first."""
    graph, _, directory = _resolve(artifact)
    net_file = artifact_net(directory, graph) if directory is not None else None
    return run_netx_many([NetxJob(graph, inputs, steps, record, net_file)], timeout_s=timeout_s)[0]


def emit_files(directory: Path, graph: Graph, float_graph: Graph, target: Any) -> None:
    """Compile hook: ``network.net`` when netx expresses the graph exactly, and ``loihi.json``.

    What netx cannot express is listed per node in ``loihi.json`` and in a UserWarning (which the
    CLI prints); the Lava-process path (``neurocc run --backend loihi``) still runs those graphs.
    """
    from .emit import emit

    emit(Path(directory), graph, target)


def _graph_of(artifact: Any) -> Graph:
    """The graph of an artifact directory, a loaded Artifact, or a Graph."""
    return _resolve(artifact)[0]


def _resolve(artifact: Any) -> tuple[Graph, Any, Path | None]:
    """(graph, the artifact's target rebuilt from its manifest or None, artifact directory or None)."""
    if isinstance(artifact, Graph):
        return artifact, None, None
    if isinstance(artifact, (str, Path)):
        from neurocc.ir.artifact import load_artifact

        artifact = load_artifact(Path(artifact))
    graph = getattr(artifact, "graph", None)
    if not isinstance(graph, Graph):
        raise BackendError(f"cannot run {artifact!r}: not an artifact directory or a graph",
                           where="backend 'loihi'", fix="pass the directory written by `neurocc compile`")
    settings = getattr(artifact, "target_settings", None)
    path = getattr(artifact, "path", None)
    return graph, _target(settings), Path(path) if path is not None else None


def _target(settings: Mapping[str, Any] | None) -> Any:
    """The Target as compiled, from an artifact manifest's settings (None when absent/unreadable)."""
    from neurocc.targets import Target

    try:
        return Target.from_dict(settings) if settings else None
    except TypeError:
        return None
