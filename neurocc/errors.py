"""Errors a user can meet, each one paragraph naming what, where and how to fix it.

Every error neurocc raises on bad input is a :class:`NeuroccError`. The CLI prints
``str(error)`` and exits non-zero; ``--debug`` adds the traceback. Code that finds several
problems at once collects them and raises one error listing all of them.
"""
from __future__ import annotations

from collections.abc import Iterable


class NeuroccError(Exception):
    """Base class: ``what`` went wrong, ``where`` (file, node, key, target), ``fix``."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None,
                 problems: Iterable[str] = ()) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.problems = list(problems)
        super().__init__(self.message())

    def __reduce__(self) -> tuple:
        """Pickle every field (a Ray worker's error reaches the driver whole, subclasses too)."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def message(self) -> str:
        head = f"{self.where}: {self.what}" if self.where else self.what
        parts = [head]
        if self.problems:
            parts.append("\n".join(f"  - {p}" for p in self.problems))
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        return "\n".join(parts)


def _rebuild(cls: type, args: tuple, state: dict) -> NeuroccError:
    """Unpickle a :class:`NeuroccError` without calling its ``__init__`` (whose signature varies)."""
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ModelLoadError(NeuroccError):
    """A model file is missing, corrupt, of an unknown format, or uses unsupported ops."""


class GraphError(NeuroccError):
    """A graph is not well formed (shapes, edges, cycles, parameters)."""


class TargetsError(NeuroccError):
    """targets.yaml (or a --targets file) is invalid, or a target name is unknown."""


class CompileError(NeuroccError):
    """A pass cannot compile the graph for the target (unsupported node, unrepresentable value)."""


class BackendError(NeuroccError):
    """A backend cannot run: toolchain missing, artifact incompatible, bad inputs."""


class InputError(NeuroccError):
    """An input/data file has the wrong names, shapes or dtypes."""


class OutputError(NeuroccError):
    """An output path cannot be written: a NUL or non-UTF-8 name, a directory or file in the way,
    no permission or no such place (e.g. under /proc)."""


class InputWarning(UserWarning):
    """Inputs that run but look wrong against the artifact (transposed, out of the calibrated range)."""
