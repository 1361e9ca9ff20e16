"""A toolchain worker subprocess kept for many jobs (a Ray worker's life, :func:`neurocc.backends.sessions`).

The worker (the Lava worker's ``--serve FD``, the emitted PyNN script's ``--serve FD``) reads one
job per line on its stdin and answers ``"<exit status>\\n"`` on the pipe ``FD``; it ends at the
end of stdin. It runs in its own process group, so a job that outlives its time limit is ended
with everything it started (:func:`stop_group`). Used by :mod:`.loihi.runner` and
:mod:`.spinnaker.pynn_run`.
"""
from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """End ``proc``'s process group: SIGTERM first (Lava's processes exit and the multiprocessing
    resource tracker, which ignores SIGTERM, then unlinks their shared memory), SIGKILL whatever is
    left after ``grace_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        proc.poll()
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class KeptProcess:
    """``command + [FD]`` started once in a private temporary folder (its cwd; ``session.log``
    holds what it prints between jobs), then given jobs one line at a time (:meth:`run`)."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], prefix: str = "neurocc-session-") -> None:
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        read_fd, write_fd = os.pipe()
        with open(self.home / "session.log", "wb") as fh:
            self.proc = subprocess.Popen([*command, str(write_fd)], stdin=subprocess.PIPE, stdout=fh,
                                         stderr=subprocess.STDOUT, cwd=self.home, env=dict(env),
                                         pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        self.replies = os.fdopen(read_fd, "r")
        self.closed = False

    def run(self, line: str, timeout_s: float) -> int | None:
        """The job's exit status (the worker's exit status when it died on it); None when it
        outlived ``timeout_s`` (the worker is then stopped)."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"{line}\n".encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self.proc.wait()
        ready, _, _ = select.select([self.replies], [], [], timeout_s)
        if not ready:
            self.close(force=True)
            return None
        answer = self.replies.readline()
        return int(answer) if answer.strip() else self.proc.wait()   # no answer: the worker exited

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self, force: bool = False) -> None:
        """End of stdin (the worker then exits), or the process group stopped (``force``, or
        when it has not exited 30 s later); the temporary folder removed. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if force:
            stop_group(self.proc)
        else:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                stop_group(self.proc)
        self.replies.close()
        shutil.rmtree(self.home, ignore_errors=True)


def run_kept(kept: KeptProcess | None, start: Callable[[], KeptProcess], line: str, timeout_s: float
             ) -> tuple[int | None, KeptProcess | None]:
    """(the job's exit status, the worker for the next job): ``kept`` while it runs, else a new one
    from ``start``; a worker that died or timed out is cleaned up (its folder removed) and None
    is returned for it, so the next job starts a fresh one."""
    if kept is not None and not kept.alive():
        kept.close(force=True)
        kept = None
    kept = kept or start()
    rc = kept.run(line, timeout_s)
    if rc is None or not kept.alive():
        kept.close(force=True)
        return rc, None
    return rc, kept


@contextlib.contextmanager
def session(slots: MutableMapping[str, KeptProcess | None], key: str) -> Iterator[None]:
    """Within the block ``slots[key]`` is present: None until a run starts the kept worker
    (:func:`run_kept` then keeps it there); at the end of the block the worker is closed and the
    key removed. A nested block uses the outer one's worker."""
    if key in slots:
        yield
        return
    slots[key] = None
    try:
        yield
    finally:
        kept = slots.pop(key, None)
        if kept is not None:
            kept.close()
