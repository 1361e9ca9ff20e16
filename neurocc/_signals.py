"""SIGTERM handled like Ctrl-C while neurocc writes outputs, so clean-up code runs.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process at once, which
leaves temporary directories behind. Inside :func:`terminate_cleanly` (used by the atomic
writers in :mod:`neurocc._files`, and by the CLI for a whole command) SIGTERM raises
:class:`Terminated` instead: ``finally`` blocks remove temporary files and the previous output
stays in place. Only the main thread can own signal handlers; elsewhere, or when the program
installed its own SIGTERM handler, nothing is changed. SIGKILL cannot be caught: what it leaves is
cleaned by the next run (:func:`neurocc._files.recover_stale`).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a KeyboardInterrupt, so code that handles Ctrl-C handles it too)."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports a process killed by SIGTERM


_RECEIVED: list[int] = []   # SIGTERMs turned into Terminated inside the current terminate_cleanly block


def _raise(signum: int, _frame: Any) -> None:
    _RECEIVED.append(signum)
    raise Terminated(f"terminated by signal {signum}")


def exit_code(err: KeyboardInterrupt) -> int:
    """The exit status for an interrupted command: 143 after SIGTERM, 130 after Ctrl-C. A SIGTERM
    counts even when a library re-raised its :class:`Terminated` as a plain KeyboardInterrupt
    (Ray's ``ray.wait`` does: its signal check maps any KeyboardInterrupt to its own)."""
    return int(getattr(err, "exit_code", 0) or (Terminated.exit_code if _RECEIVED else 130))


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (when the default handler was in place)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        yield
        return
    if previous not in (signal.SIG_DFL, None):
        yield  # someone else's handler (or an enclosing terminate_cleanly): leave it
        return
    _RECEIVED.clear()
    signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
