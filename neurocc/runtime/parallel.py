"""Independent work spread over workers: sample batches of ``evaluate`` and ``validate`` on Ray.

A command cuts its work into :class:`Task` s (one backend on one range of samples) and hands them
to :func:`run_tasks` with a task function ``"module:function"`` called as ``fn(artifact, task)``.
With one worker the tasks run here, in order, in this process (no Ray), the toolchains' sessions
kept open across them (:func:`neurocc.backends.sessions`, as in a Ray worker). With more, Ray runs them
(:mod:`neurocc.runtime.ray_pool`): one actor per worker loads the artifact once and keeps its
backend sessions (the Lava worker subprocess, the pyNN.nest process, ONNX Runtime sessions) for
every batch it is given; the results come back in task order, so what a command computes from them (accuracies,
mismatches, the first divergence, ``validation.json``) does not depend on the number of workers
or on the batch size: every backend runs each sample independently of the others in its batch.

Workers (:func:`resolve_workers`): ``--workers N`` (Python ``workers=N``); by default, the
machine's cores for the toolchain backends (``loihi``, ``spinnaker``: seconds per sample, where
Ray's start-up of about 6 s pays for itself from :data:`MIN_PARALLEL_SAMPLES` samples) and 1 for
the software backends (``emulator``, ``reference``, ``edge-cpu``: a whole test set in about the
time Ray takes to start). A Lava net whose samples run side by side in lanes
(:func:`neurocc.backends.loihi.in_lanes`: a few ms per sample, and one Lava worker already keeps
two cores busy) runs in-process below :data:`LANES_MIN_PARALLEL_SAMPLES` samples.
``--ray-address ADDR`` (or ``$RAY_ADDRESS``) joins an existing Ray cluster; by default a Ray
instance is started for the command, embedded and quiet, and shut down at its end.

Searches (the accuracy-budget trials of ``compile``, ``plan`` over many models) run their trials
as Ray tasks through :mod:`neurocc.runtime.ray_tasks` (same Ray instance helper, same retry rule).

A worker that dies (its process killed, out of memory) has its task retried once on a fresh
worker; a second death stops the command with a :class:`~neurocc.errors.BackendError` naming the
backend and the sample range. Nothing is written as if complete in either case: the commands
write their results only after every task has returned.
"""
from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neurocc.errors import InputError

TOOLCHAIN_BACKENDS = ("loihi", "spinnaker")   # seconds per sample: parallel by default
MIN_PARALLEL_SAMPLES = 32                     # default: fewer samples run in-process (Ray starts in ~6 s)
LANES_MIN_PARALLEL_SAMPLES = 4096             # ... on Lava nets that run in lanes (a few ms per sample)
TASKS_PER_WORKER = 4                          # batches per worker for load balancing (parallel runs)
# ... except where every batch starts a runtime (Lava: one compile and ~10 processes per batch, whose
# samples then run back to back); pyNN.nest imports once per worker (its kept process, sessions())
TASKS_PER_WORKER_OF = {"loihi": 1}
ADDRESS_ENV = "RAY_ADDRESS"                   # Ray's own variable: join this cluster
FAULT_ENV = "NEUROCC_TEST_FAULT"              # tests only: make a worker die (see ray_pool.fault)

__all__ = ["Layout", "Task", "chunks", "resolve_workers", "run_tasks"]


@dataclass(frozen=True)
class Layout:
    """Where tasks run: ``workers`` (1: in this process, no Ray) and the Ray cluster ``address``
    (None: a local Ray instance started for the command)."""

    workers: int = 1
    address: str | None = None

    @property
    def parallel(self) -> bool:
        return self.workers > 1 or self.address is not None


@dataclass(frozen=True)
class Task:
    """One unit of work: ``backend`` on samples ``start`` .. ``stop - 1``; ``args``: what the task
    function needs besides the artifact (arrays of this batch only)."""

    index: int
    backend: str
    start: int
    stop: int
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return self.stop - self.start

    def where(self) -> str:
        span = f"sample {self.start}" if self.samples == 1 else f"samples {self.start}..{self.stop - 1}"
        return f"backend '{self.backend}', {span}"


def resolve_workers(workers: int | None, backends: Sequence[str], address: str | None = None,
                    samples: int | None = None, min_samples: int = MIN_PARALLEL_SAMPLES) -> Layout:
    """The :class:`Layout` for ``workers`` (None: the default in the module docstring, parallel
    only from ``min_samples`` samples: :data:`MIN_PARALLEL_SAMPLES`, or
    :data:`LANES_MIN_PARALLEL_SAMPLES` for a Lava net in lanes) and ``address`` (None:
    ``$RAY_ADDRESS`` when set). InputError for a count below 1."""
    address = address or os.environ.get(ADDRESS_ENV) or None
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a positive integer, got {workers!r}", where="--workers",
                         fix="pass --workers N with N >= 1 (1 runs in this process, without Ray)")
    if workers is None:
        slow = any(b in TOOLCHAIN_BACKENDS for b in backends)
        enough = samples is None or samples >= min_samples
        workers = (os.cpu_count() or 1) if ((slow and enough) or address) else 1
    return Layout(int(workers), address)


def chunks(n: int, layout: Layout, batch_size: int | None = None, backends: Sequence[str] = ()
           ) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, stop), ...]`` covering ``0 .. n-1`` in order: at most
    ``batch_size`` samples each; in parallel, also small enough to give every worker
    :data:`TASKS_PER_WORKER` batches (load balancing; fewer for ``backends`` in
    :data:`TASKS_PER_WORKER_OF`)."""
    size = max(1, int(batch_size)) if batch_size else max(1, n)
    if layout.parallel:
        per = min([TASKS_PER_WORKER] + [TASKS_PER_WORKER_OF.get(b, TASKS_PER_WORKER) for b in backends])
        size = min(size, max(1, math.ceil(n / (layout.workers * per))))
    return [(i, min(n, i + size)) for i in range(0, n, size)]


def task_function(name: str) -> Callable[[Any, Task], Any]:
    """The function ``"package.module:function"`` (resolved in whichever process runs the task)."""
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def run_tasks(artifact: Any, fn: str, tasks: Sequence[Task], layout: Layout,
              on_result: Callable[[Task, Any], None] | None = None) -> list[Any]:
    """``fn(artifact, task)`` for every task, results in task order; ``on_result`` is called as
    each finishes (in any order: progress). ``artifact``: a loaded Artifact (its directory is
    shipped to Ray workers). Exceptions of a task propagate as they were raised."""
    if len(tasks) <= 1:
        return list(_in_process(artifact, fn, tasks, on_result))
    if not layout.parallel:
        from neurocc.backends import sessions

        with sessions():   # as a Ray worker does: one Lava worker / pyNN.nest process for every batch
            return list(_in_process(artifact, fn, tasks, on_result))
    from neurocc.runtime.ray_pool import run_on_ray

    return run_on_ray(artifact, fn, tasks, layout, on_result)


def _in_process(artifact: Any, fn: str, tasks: Sequence[Task],
                on_result: Callable[[Task, Any], None] | None) -> Iterator[Any]:
    call = task_function(fn)
    for t in tasks:
        value = call(artifact, t)
        if on_result is not None:
            on_result(t, value)
        yield value
