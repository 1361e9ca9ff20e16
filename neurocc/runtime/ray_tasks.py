"""Trials of a search as Ray tasks: the parallel :class:`~neurocc.compiler.trials.Runner`.

Used by ``compile --accuracy-budget P --workers N`` (the budget search's configurations, bit
widths and sigma-delta thresholds) and ``plan`` over many models and targets. :class:`RayTasks`
starts (or joins) Ray on its first use with :func:`neurocc.runtime.ray_pool.ray_instance` (quiet,
neurocc's signal handling kept) and stops it when its ``with`` block ends.

:meth:`RayTasks.first` hands every item to a Ray task (``num_cpus=1``; at most ``workers`` at a
time, in item order), then returns exactly what a loop in one process would: the results up to
and including the first that ``stop`` accepts. As soon as the results up to such an item are all
in, the later tasks (speculative: the loop would never have run them) are cancelled and their
results, or errors, ignored. So the search decides, writes and reports the same for any number of
workers; with N workers its wall time is about that of its longest chain of needed trials.

:meth:`RayTasks.share` puts what every trial needs into Ray's object store once (``ray.put``).
A task whose worker process dies (killed, out of memory) is retried once; a second death raises
the BackendError of :mod:`neurocc.runtime.ray_pool` naming the trial, but only if the loop would
have run it. An exception raised by the trial itself is re-raised unchanged (if needed).
"""
from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from neurocc.runtime.parallel import FAULT_ENV, Layout, Task, resolve_workers

__all__ = ["RayTasks", "runner_for"]

CANCEL_WAIT_S = 10.0   # seconds a cancelled task may take to stop at the end, before it is ended by force


@dataclass(frozen=True)
class TrialTask(Task):
    """A :class:`~neurocc.runtime.parallel.Task` that names a trial rather than a sample range."""

    label: str = ""

    def where(self) -> str:
        return self.label or super().where()


def _run(fn: Callable[[Any, Any], Any], shared: Any, item: Any, fault_spec: str | None, task: Task) -> Any:
    """The body of every Ray task (``shared`` arrives resolved from the object store)."""
    from neurocc.runtime.ray_pool import fault

    fault(fault_spec, task)
    return fn(shared, item)


class RayTasks:
    """The Ray :class:`~neurocc.compiler.trials.Runner` for ``layout`` (a context manager)."""

    def __init__(self, layout: Layout, what: str = "trial") -> None:
        self.layout, self.what = layout, what
        self._stack = contextlib.ExitStack()
        self._ray: Any = None
        self._remote: Any = None
        self._next = 0            # task index of the next item (NEUROCC_TEST_FAULT counts these)
        self._cancelled: list[Any] = []   # refs of cancelled tasks, until their end is collected

    def __enter__(self) -> RayTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._ray is not None and exc[0] is None:
                self._collect(CANCEL_WAIT_S)
        finally:
            self._stack.close()

    def _collect(self, timeout: float) -> None:
        """Collect the end of cancelled tasks (Ray logs an "Unhandled error" on the terminal for a
        failed task whose result nobody read); after ``timeout`` s the rest are ended by force."""
        if not self._cancelled:
            return
        ray = self._ray
        done, self._cancelled = ray.wait(self._cancelled, num_returns=len(self._cancelled), timeout=timeout)
        if self._cancelled and timeout:
            for ref in self._cancelled:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            more, _ = ray.wait(self._cancelled, num_returns=len(self._cancelled), timeout=timeout)
            done, self._cancelled = done + more, []
        for ref in done:
            with contextlib.suppress(Exception):
                ray.get(ref)

    def _start(self) -> Any:
        if self._ray is None:
            from neurocc.runtime.ray_pool import ray_instance

            self._ray = self._stack.enter_context(ray_instance(self.layout))
            self._remote = self._ray.remote(num_cpus=1, max_retries=0)(_run)
        return self._ray

    def share(self, obj: Any) -> Any:
        return self._start().put(obj)

    def first(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
              stop: Callable[[Any], bool], labels: Sequence[str] | None = None) -> list[Any]:
        ray = self._start()
        base, self._next = self._next, self._next + len(items)
        labels = labels or [f"{i + 1} of {len(items)}" for i in range(len(items))]
        tasks = [TrialTask(base + i, self.what, i, i + 1, label=f"{self.what} {label}")
                 for i, label in enumerate(labels)]
        outcome = _Outcomes(len(items), stop)
        spec = os.environ.get(FAULT_ENV) or None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        width = max(1, min(self.layout.workers, cpus))
        pending = deque(range(len(items)))
        running: dict[Any, int] = {}
        tries = [0] * len(items)
        try:
            while outcome.end() is None:
                while pending and len(running) < width:
                    i = pending.popleft()
                    running[self._remote.remote(fn, shared, items[i], spec, tasks[i])] = i
                i, value, died = _next_done(ray, running)
                if died is not None and tries[i] < 1:
                    tries[i] += 1
                    pending.appendleft(i)
                    continue
                if died is not None:
                    from neurocc.runtime.ray_pool import _died

                    value = _died(tasks[i], died, fix=f"run the command with --workers 1 to see the {self.what}'s "
                                                      "own error; a worker killed for memory needs fewer workers")
                outcome.set(i, value)
        finally:
            for ref in running:   # speculative trials the loop would not have run, or the rest after an error
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=False)
            self._cancelled += list(running)
            self._collect(0)
        return outcome.results()


class _Outcomes:
    """Results (or exceptions) by item, and where a loop over them would have ended."""

    def __init__(self, n: int, stop: Callable[[Any], bool]) -> None:
        self.n, self.stop, self.got = n, stop, {}

    def set(self, i: int, value: Any) -> None:
        self.got[i] = value

    def end(self) -> int | None:
        """The index the loop stops after (a stop or an exception), once every result up to it is in."""
        for i in range(self.n):
            if i not in self.got:
                return None
            v = self.got[i]
            if isinstance(v, BaseException) or self.stop(v):
                return i
        return self.n - 1

    def results(self) -> list[Any]:
        end = self.end()
        out = []
        for i in range(0 if end is None else end + 1):
            if isinstance(self.got[i], BaseException):
                raise self.got[i]
            out.append(self.got[i])
        return out


def _next_done(ray: Any, running: dict[Any, int]) -> tuple[int, Any, Exception | None]:
    """(item, result or the task's own exception, None) of the next finished task, or (item,
    None, error) when its worker died (the process ended, or Ray killed it for memory)."""
    from ray import exceptions

    from neurocc.runtime.ray_pool import WAIT_S

    died = tuple(e for e in (exceptions.WorkerCrashedError, getattr(exceptions, "OutOfMemoryError", None)) if e)
    done: list[Any] = []
    while not done:   # short waits: Ctrl-C and SIGTERM are handled between them
        done, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
    i = running.pop(done[0])
    try:
        return i, ray.get(done[0]), None
    except died as err:
        return i, None, err
    except exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        return i, (cause if isinstance(cause, BaseException) else err), None


@contextlib.contextmanager
def runner_for(workers: int | None, ray_address: str | None = None, what: str = "trial") -> Iterator[Any]:
    """The runner for ``--workers``/``--ray-address`` of a search: None (the caller's default, in
    this process) unless they ask for more than one worker or a cluster (``$RAY_ADDRESS`` too),
    else a :class:`RayTasks` (Ray started on first use, stopped at the end of the block).
    InputError for a bad worker count."""
    layout = resolve_workers(workers, (), ray_address)
    if not layout.parallel:
        yield None
        return
    with RayTasks(layout, what) as runner:
        yield runner
