"""A small progress display for long commands (no dependency): one :class:`Step` per unit of work.

    with Step("loihi2", total=4, index=(2, 9)) as step:
        step.advance("compiling")            # sub-step 1 of 4 begins
        ...
        step.advance("evaluating on loihi")  # sub-step 2 of 4 begins
        step.done("97.1% emulator")          # the closing line's summary

On a terminal (the stream's ``isatty()``), a background thread redraws one line every
:data:`REFRESH_S` seconds: ``[2/9] loihi2 [#####.....] 2/4 evaluating on loihi  12.3 s`` (a
spinner instead of the bar when ``total`` is None), so the elapsed time moves while a sub-step
blocks; the step ends with its closing line. On anything else (a log file, a pipe, CI) nothing is
drawn and each step writes exactly one line when it ends: ``[2/9] loihi2: 97.1% emulator (14.2 s)``.
Everything goes to ``stream`` (default ``sys.stderr``), so the command's own output stays clean.
"""
from __future__ import annotations

import shutil
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

REFRESH_S = 0.1          # seconds between redraws on a terminal
BAR_WIDTH = 20           # characters of the bar
SPINNER = "|/-\\"

__all__ = ["REFRESH_S", "Step", "quiet", "rate"]


class _Null:
    """A stream that drops what it is given."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def quiet(progress: bool) -> dict[str, Any]:
    """:class:`Step` keywords: the default display when ``progress``, else nothing at all (the
    Python API's default; the CLI turns progress on)."""
    return {} if progress else {"live": False, "stream": _Null()}


class Step:
    """One step of a command: a live bar on a terminal, one closing line elsewhere.

    ``total``: sub-steps (a bar) or None (a spinner); ``index``: (this step, all steps) for the
    ``[i/n]`` prefix; ``live``: force the terminal display on or off (default: ``stream.isatty()``);
    ``unit``: count work items instead of sub-steps (``add(n)``), shown with their rate and the
    time left: ``evaluate [####......] 120/397 samples  35.2 samples/s  ETA 8 s  3.4 s``.
    """

    def __init__(self, label: str, total: int | None = None, *, index: tuple[int, int] | None = None,
                 stream: TextIO | None = None, live: bool | None = None, unit: str | None = None) -> None:
        self.label = label
        self.unit = unit
        self.total = total
        self.prefix = f"[{index[0]}/{index[1]}] " if index else ""
        self.stream = stream if stream is not None else sys.stderr
        self.live = _isatty(self.stream) if live is None else live
        self.count = 0
        self.detail = ""
        self.summary: str | None = None
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frame = 0
        self._begun = False

    # ----- the caller's side --------------------------------------------------------------------
    def advance(self, detail: str = "") -> None:
        """Begin the next sub-step, named by ``detail``: the first call begins sub-step 1 (nothing
        finished yet), each later call marks the previous sub-step finished."""
        with self._lock:
            if self._begun:
                self.count = min(self.count + 1, self.total) if self.total else self.count + 1
            self._begun = True
            self.detail = detail

    def add(self, n: int = 1) -> None:
        """``n`` more work items (``unit``) are done."""
        with self._lock:
            self.count += int(n)

    def note(self, detail: str) -> None:
        """Change the text shown next to the bar without advancing it."""
        with self._lock:
            self.detail = detail

    def done(self, summary: str) -> None:
        """The text of the closing line (default: ``done``)."""
        self.summary = summary

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    # ----- context manager ----------------------------------------------------------------------
    def __enter__(self) -> Step:
        self.start = time.monotonic()
        if self.live:
            self._thread = threading.Thread(target=self._loop, name=f"progress {self.label}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if kind is KeyboardInterrupt:
            summary = "interrupted"
        elif kind is not None:
            summary = f"stopped by {kind.__name__}"
        else:
            summary = self.summary or "done"
        line = f"{self.prefix}{self.label}: {summary} ({self.elapsed:.1f} s)"
        with self._lock:
            self._write(("\r\x1b[K" if self.live else "") + line + "\n")

    # ----- drawing ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._frame += 1
            if self.total:
                filled = round(BAR_WIDTH * min(self.count, self.total) / self.total)
                meter = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.count}/{self.total}"
                if self.unit:
                    meter += f" {self.unit}" + _rate(self.count, self.total, self.elapsed, self.unit)
            else:
                meter = SPINNER[self._frame % len(SPINNER)]
            text = f"{self.prefix}{self.label} {meter} {self.detail}"
            clock = f"  {self.elapsed:.1f} s"
            width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
            if len(text) + len(clock) > width:
                text = text[: max(0, width - len(clock) - 1)] + "~"
            self._write("\r\x1b[K" + text + clock)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):   # a closed or broken stream must not stop the work
            pass


def rate(done: int, total: int, elapsed: float, unit: str) -> str:
    """``  35.2 samples/s  ETA 8 s`` (empty until something is done): for a caller's own note."""
    return _rate(done, total, elapsed, unit)


def _rate(done: int, total: int, elapsed: float, unit: str) -> str:
    """``  35.2 samples/s  ETA 8 s`` once something is done."""
    if done <= 0 or elapsed <= 0:
        return ""
    rate = done / elapsed
    return f"  {rate:.3g} {unit}/s  ETA {max(0.0, (total - done) / rate):.0f} s"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
