"""The ``loihi`` backend: run a quantized ``loihi`` graph in Lava 0.10's bit-accurate CPU models.

Lava is imported only in a worker subprocess (:mod:`.worker`; why: :mod:`.shim`). The pure
lowering (:mod:`.lower`, :mod:`.plan`) turns a graph into a plain description of Lava processes;
:mod:`.runner` writes it with the inputs to a job directory, starts the worker, and reads the
results back. Results are keyed and indexed exactly like the emulator's: time-major
``(steps, batch, *shape)`` per Output node, and with ``record=True`` also ``"<node>/u"`` and
``"<node>/v"`` per QLIF/QLI (the state after the step, after the reset). See docs/backends/loihi.md.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph

from .lower import lower, problems
from .runner import LavaJob, run_jobs
from .shim import lava_available, unavailable_reason

__all__ = ["LavaJob", "check", "lava_available", "lower", "run", "run_lava", "run_lava_many",
           "unavailable_reason"]


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
    :class:`neurocc.targets.Target`) must use the ``loihi`` numerics when given."""
    found = []
    numerics = getattr(target, "numerics", None)
    if target is not None and numerics != "loihi":
        found.append(f"target '{getattr(target, 'name', target)}' uses numerics {numerics!r}; the loihi "
                     "backend runs only 'loihi' numerics")
    return found + problems(graph)


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
        record: bool = False) -> dict[str, np.ndarray]:
    """Backend contract: ``artifact`` is an artifact directory, a loaded Artifact, or a Graph."""
    return run_lava(_graph_of(artifact), inputs, steps, record)


def _graph_of(artifact: Any) -> Graph:
    if isinstance(artifact, Graph):
        return artifact
    if isinstance(artifact, (str, Path)):
        from neurocc.ir.artifact import load_artifact

        artifact = load_artifact(Path(artifact))
    graph = getattr(artifact, "graph", None)
    if not isinstance(graph, Graph):
        raise BackendError(f"cannot run {artifact!r}: not an artifact directory or a graph",
                           where="backend 'loihi'", fix="pass the directory written by `neurocc compile`")
    return graph
