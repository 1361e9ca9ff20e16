"""Independent trials of a search, and where they run: here, in order (:class:`InProcess`), or on
Ray workers (:class:`neurocc.runtime.ray_tasks.RayTasks`, handed to the compile by the runtime).

A search asks a :class:`Runner` for :meth:`~Runner.first`: ``fn(shared, item)`` for ``items`` in
order up to the first result that ``stop`` accepts, and gets exactly the results a loop in this
process gets: that prefix, in order; an exception raised by ``fn`` on an item of the prefix is
raised. A parallel runner may start every item at once (the later ones speculatively) but
returns, and raises, only what the loop would have: so the search takes the same decisions, and
writes the same artifact and report, with 1 or N workers.

``fn`` is a module-level function (pickled by reference) and must be deterministic;
``shared`` is what every item needs (a float model, calibration data): :meth:`Runner.share`
sends it to the workers once (``ray.put``) and returns the handle to pass as ``shared``;
``labels`` name the items in errors (a worker that died on one).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

__all__ = ["InProcess", "Runner", "never"]


class Runner(Protocol):
    """Where a search's trials run (see the module docstring)."""

    def share(self, obj: Any) -> Any: ...

    def first(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
              stop: Callable[[Any], bool], labels: Sequence[str] | None = None) -> list[Any]: ...


class InProcess:
    """Trials in this process, one after the other: the reference behaviour."""

    def share(self, obj: Any) -> Any:
        return obj

    def first(self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any],
              stop: Callable[[Any], bool], labels: Sequence[str] | None = None) -> list[Any]:
        out = []
        for item in items:
            out.append(fn(shared, item))
            if stop(out[-1]):
                break
        return out


def never(_result: Any) -> bool:
    """``stop`` of a runner call that needs every result."""
    return False
