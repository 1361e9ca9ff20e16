"""The Ray side of :mod:`neurocc.runtime.parallel`: a quiet Ray instance, worker actors, retries.

:func:`ray_instance` joins ``layout.address`` or starts a local instance with ``num_cpus =
workers``, no dashboard, worker logs kept out of the terminal (``log_to_driver=False``), and shuts
it down on the way out (even on Ctrl-C). A Ray instance the caller already started is used as it
is and left running.

Each :class:`Session` actor (``num_cpus=1``) receives the artifact directory as bytes (so a worker
on another machine needs no shared file system), unpacks it into a private temporary folder,
loads it once, and opens its backend sessions (:func:`neurocc.backends.sessions`): the Lava
backend keeps one worker subprocess for all of the actor's batches, the spinnaker backend one
pyNN.nest process (PyNN imported once, the NEST kernel reset per batch), so Lava (which switches
its interpreter to the ``fork`` start method) is never imported into a Ray worker. Tasks are
handed out one per free actor, so a slow batch never holds back the others.

A task whose actor dies (``ActorDiedError``: the process exited or was killed) is retried once on
a fresh actor; a second death raises a BackendError naming the backend and sample range. An
exception raised by the task function itself (a NeuroccError, or a bug) is re-raised here
unchanged, and no other task's result is used.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from neurocc.errors import BackendError
from neurocc.runtime.parallel import FAULT_ENV, Layout, Task, task_function

RETRIES = 1   # fresh workers a task gets after its worker died
WAIT_S = 0.2  # seconds per wait for a finished task (the driver reacts to signals between waits)


def pack_directory(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative POSIX path → bytes)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def unpack_directory(files: dict[str, bytes], into: Path) -> Path:
    for rel, data in files.items():
        dst = into / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    return into


class Session:
    """One Ray worker: the artifact loaded once, backend sessions kept open across tasks."""

    def __init__(self, files: dict[str, bytes], fault: str | None = None, prefix: str = "neurocc-worker-") -> None:
        from neurocc.backends import sessions
        from neurocc.ir.artifact import load_artifact

        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        tempfile.tempdir = str(self.dir)   # this process is ours: Lava job folders go here too, removed with it
        self.artifact = load_artifact(unpack_directory(files, self.dir / "artifact"))
        self.fault = fault
        self.stack = contextlib.ExitStack()
        self.stack.enter_context(sessions())

    def pid(self) -> int:
        return os.getpid()

    def run(self, fn: str, task: Task) -> Any:
        fault(self.fault, task)
        return task_function(fn)(self.artifact, task)

    def close(self) -> None:
        self.stack.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def fault(spec: str | None, task: Task) -> None:
    """Tests only (``$NEUROCC_TEST_FAULT``, read by the driver and given to each actor): ``I``
    ends the worker process with ``os._exit(70)`` whenever it starts task ``I``; ``I:PATH`` does
    so only while ``PATH`` does not exist, creating it first (the worker dies once)."""
    if not spec:
        return
    index, _, marker = spec.partition(":")
    if int(index) != task.index:
        return
    if marker:
        if os.path.exists(marker):
            return
        Path(marker).touch()
    os._exit(70)


@contextlib.contextmanager
def ray_instance(layout: Layout) -> Iterator[Any]:
    """The ``ray`` module, initialised for ``layout`` for the duration of the block (see the
    module docstring)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")   # no usage-stats notice on the terminal
    # Ray runs its workers at nice 15; this process (and --workers 1) runs at 0, so on a shared
    # machine 2 niced workers could be slower than 1: a local instance's workers get this process's
    # priority (as Ray's own job submission does); RAY_worker_niceness set by the user wins.
    os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
             "configure_logging": True}
    saved = _signal_handlers()
    with _raylet_messages_to_log():
        if layout.address:
            _reachable(layout.address)
            try:
                ray.init(address=layout.address, **quiet)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise BackendError(f"cannot join the Ray cluster at '{layout.address}': "
                                   f"{(str(err).strip().splitlines() or [type(err).__name__])[0]}",
                                   where="--ray-address / RAY_ADDRESS",
                                   fix="start it there (`ray start --head`), correct the address, or leave "
                                       "--ray-address out and unset RAY_ADDRESS for a local Ray") from None
        else:
            ray.init(address="local", num_cpus=layout.workers, **quiet)
        _restore(saved)
        try:
            yield ray
        finally:
            ray.shutdown()
            _restore(saved)


def _reachable(address: str, timeout_s: float = 5.0) -> None:
    """BackendError at once when a ``host:port`` address has nobody listening (Ray itself waits a
    minute or more, then exits the process). Other forms (``auto``, ``ray://...``) go to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise BackendError(f"cannot join the Ray cluster at '{address}': nothing answers there ({err})",
                           where="--ray-address / RAY_ADDRESS",
                           fix="start it there (`ray start --head`), correct the address, or leave --ray-address "
                               "out and unset RAY_ADDRESS for a local Ray") from None


def _signal_handlers() -> dict[int, Any]:
    """The SIGTERM/SIGINT handlers of the main thread (empty elsewhere): ``ray.init`` replaces them
    (SIGTERM then prints a stack dump and exits at once), so neurocc puts its own back after it
    (:mod:`neurocc._signals`: clean up, exit 143 or 130)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}


def _restore(saved: dict[int, Any]) -> None:
    import signal

    for sig, handler in saved.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


@contextlib.contextmanager
def _raylet_messages_to_log() -> Iterator[None]:
    """Ray's driver prints the raylet's error messages (a worker died: several lines each) on
    stdout even with ``log_to_driver=False``; while Ray runs for neurocc they go to the
    ``neurocc.ray`` logger instead (neurocc's own error names the samples). Ray 2.60 prints them
    through ``ray._private.worker.print_to_stdstream``; where that is absent nothing is changed."""
    from ray._private import worker

    original = getattr(worker, "print_to_stdstream", None)
    if original is None:
        yield
        return
    log = logging.getLogger("neurocc.ray")

    def to_log(data: dict, ignore_prefix: bool = False) -> None:
        if data.get("pid") == "raylet":
            for line in data.get("lines", []):
                log.info("%s", line)
        else:
            original(data, ignore_prefix)

    worker.print_to_stdstream = to_log
    try:
        yield
    finally:
        worker.print_to_stdstream = original


def run_on_ray(artifact: Any, fn: str, tasks: Sequence[Task], layout: Layout,
               on_result: Callable[[Task, Any], None] | None = None) -> list[Any]:
    """:func:`neurocc.runtime.parallel.run_tasks` on Ray (results in task order)."""
    if artifact.path is None:
        raise BackendError("an artifact without a directory cannot be sent to Ray workers", where="--workers",
                           fix="load it from its directory, or pass --workers 1")
    with ray_instance(layout) as ray:
        actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(Session)
        files = ray.put(pack_directory(Path(artifact.path)))
        spec = os.environ.get(FAULT_ENV) or None
        prefix = f"neurocc-worker-{uuid.uuid4().hex[:12]}-"
        cpus = int(ray.cluster_resources().get("CPU", 1))   # more actors than CPUs would wait forever
        n = max(1, min(layout.workers, len(tasks), cpus))
        actors = [actor_class.remote(files, spec, prefix) for _ in range(n)]
        ok = False
        try:
            out = _schedule(ray, fn, tasks, actors, lambda: actor_class.remote(files, spec, prefix), on_result)
            ok = True
            return out
        finally:
            _close(ray, actors, graceful=ok)   # after an error or Ctrl-C: end the workers at once
            for left in Path(tempfile.gettempdir()).glob(f"{prefix}*"):   # of workers that died, on this machine
                shutil.rmtree(left, ignore_errors=True)


def _schedule(ray: Any, fn: str, tasks: Sequence[Task], actors: list[Any], fresh: Callable[[], Any],
              on_result: Callable[[Task, Any], None] | None) -> list[Any]:
    """One task per free actor; a died actor is replaced and its task retried (:data:`RETRIES`)."""
    from ray.exceptions import RayActorError, RayTaskError

    pending = deque(tasks)
    free = list(actors)
    running: dict[Any, tuple[Any, Task]] = {}
    tries = {t.index: 0 for t in tasks}
    results: dict[int, Any] = {}
    while pending or running:
        while free and pending:
            actor, task = free.pop(), pending.popleft()
            running[actor.run.remote(fn, task)] = (actor, task)
        done: list[Any] = []
        while not done:   # short waits: Ctrl-C and SIGTERM are handled between them, not after the batch
            done, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
        actor, task = running.pop(done[0])
        try:
            value = ray.get(done[0])
        except RayActorError as err:
            tries[task.index] += 1
            if tries[task.index] > RETRIES:
                raise _died(task, err) from None
            actors.remove(actor)
            replacement = fresh()
            actors.append(replacement)
            free.append(replacement)
            pending.appendleft(task)
            continue
        except RayTaskError as err:
            cause = getattr(err, "cause", None)
            raise (cause if isinstance(cause, BaseException) else err) from None
        results[task.index] = value
        free.append(actor)
        if on_result is not None:
            on_result(task, value)
    return [results[t.index] for t in tasks]


def _died(task: Task, err: Exception, fix: str | None = None) -> BackendError:
    """The error of a task whose worker died twice (``fix``: other advice than the sample batch's)."""
    detail = (str(err).strip().splitlines() or ["(no detail)"])[0]
    return BackendError(f"a worker died while running {task.where()}, and again on a fresh worker",
                        where=f"task {task.index}", problems=[detail],
                        fix=fix or "run these samples alone with --workers 1 to see the backend's own error; a "
                                   "worker killed for memory needs a smaller batch")


def _close(ray: Any, actors: list[Any], graceful: bool = True) -> None:
    """End every actor; ``graceful``: first close its sessions (temporary folder, the Lava worker,
    which otherwise ends by itself at the end of its stdin once its job is done)."""
    if graceful:   # all at once (each ends its Lava worker: ~1 s); a dead actor has nothing left to close
        closing = []
        for a in actors:
            with contextlib.suppress(Exception):
                closing.append(a.close.remote())
        for ref in closing:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=30)
    for a in actors:
        with contextlib.suppress(Exception):
            ray.kill(a)
