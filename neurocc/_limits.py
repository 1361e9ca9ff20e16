"""Size guards: no allocation derived from an input (a shape in a file, ``--steps``) is attempted
before checking it fits a budget, so a shape in the billions gives a neurocc error saying what
would be needed instead of a MemoryError.

The budget is ``NEUROCC_MAX_ARRAY_BYTES`` (bytes, default 4 GiB) for one array or one run's
buffers; raise it to run larger models on a machine with more memory.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable

from neurocc.errors import InputError, NeuroccError

DEFAULT_MAX_BYTES = 4 * 2 ** 30
ENV = "NEUROCC_MAX_ARRAY_BYTES"


def max_bytes() -> int:
    """The current budget (``NEUROCC_MAX_ARRAY_BYTES`` when set to a positive integer)."""
    try:
        value = int(os.environ.get(ENV, ""))
    except ValueError:
        return DEFAULT_MAX_BYTES
    return value if value > 0 else DEFAULT_MAX_BYTES


def human(nbytes: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} EiB"


def check_size(dims: Iterable[int], itemsize: int, what: str, where: str, *, fix: str | None = None,
               error: type[NeuroccError] = InputError) -> int:
    """The byte count of ``dims`` × ``itemsize``; ``error`` when it exceeds :func:`max_bytes`."""
    dims = [int(d) for d in dims]
    if any(d < 0 for d in dims):
        raise error(f"{what} has a negative size {tuple(dims)}", where=where, fix=fix or "check the shapes")
    nbytes = math.prod(dims) * int(itemsize)
    if nbytes > max_bytes():
        raise error(f"{what} would need {human(nbytes)} of memory ({' x '.join(map(str, dims))} values of "
                    f"{itemsize} bytes), more than the {human(max_bytes())} budget", where=where,
                    fix=(fix + "; or " if fix else "") + f"raise the budget with {ENV}=BYTES if the machine has "
                    "that much memory")
    return nbytes


DT_RANGE = (1e-9, 1e3)  # seconds: a nanosecond to a quarter hour per step


def check_dt(dt: object, where: str = "--dt") -> float | None:
    """``dt`` as a float when it is a finite number of seconds in :data:`DT_RANGE` (None passes)."""
    if dt is None:
        return None
    try:
        value = float(dt)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if isinstance(dt, bool) or not DT_RANGE[0] <= value <= DT_RANGE[1]:
        raise InputError(f"dt must be a number of seconds between {DT_RANGE[0]:g} and {DT_RANGE[1]:g}, got {dt!r}",
                         where=where, fix="give the step length in seconds, e.g. 0.001 for 1 ms")
    return value
