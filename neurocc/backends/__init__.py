"""Backends behind a small registry of lazy imports (a backend's toolchain loads only when used).

Each backend module exposes::

    check(graph, target) -> list[str]          # every unsupported thing at once (empty = fine)
    run(artifact, inputs, steps=None, record=False) -> dict[str, np.ndarray]

Inputs and outputs are time-major arrays ``(steps, batch, *shape)`` keyed by graph input/output
name; with ``record=True`` also ``"<node>/<var>"`` state traces. Third-party toolchains (lava,
pyNN, onnxruntime) are imported only inside the backend module's functions.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType

from neurocc.errors import BackendError

REGISTRY: dict[str, str] = {
    "emulator": "neurocc.backends.emulator",
    "reference": "neurocc.backends.reference",
    "loihi": "neurocc.backends.loihi",
    "spinnaker": "neurocc.backends.spinnaker",
    "edge-cpu": "neurocc.backends.edge_cpu",
}


# what users type for a backend by the name of its toolchain or simulator
ALIASES = {"lava": "loihi", "lava-dl": "loihi", "netx": "loihi", "nest": "spinnaker", "pynn": "spinnaker",
           "brian2": "spinnaker", "spynnaker": "spinnaker", "onnx": "edge-cpu", "onnxruntime": "edge-cpu",
           "edge_cpu": "edge-cpu", "cpu": "edge-cpu", "float": "reference", "emu": "emulator"}


def suggest(name: str) -> str | None:
    """The registered backend ``name`` most likely means (its toolchain's name, or a close spelling)."""
    import difflib

    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(REGISTRY), n=1, cutoff=0.6)
    return close[0] if close else None


def check_names(names: list[str], where: str = "--backend") -> None:
    """BackendError listing every unknown backend name at once, each with its suggestion."""
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        problems = [f"unknown backend '{n}'" + (f": did you mean '{suggest(n)}'?" if suggest(n) else "")
                    for n in bad]
        raise BackendError(problems[0] if len(bad) == 1 else f"{len(bad)} unknown backends", where=where,
                           problems=problems if len(bad) > 1 else (),
                           fix=f"use one of: {', '.join(REGISTRY)}")


def get_backend(name: str) -> ModuleType:
    """Import and return the backend module called ``name`` (BackendError if unknown/missing)."""
    check_names([name])
    try:
        return importlib.import_module(REGISTRY[name])
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("neurocc"):
            raise BackendError(f"backend '{name}' is not available in this version of neurocc",
                               where="--backend", fix="use one of the available backends") from err
        raise


@contextlib.contextmanager
def sessions() -> Iterator[None]:
    """Keep the toolchains' sessions open in this process for the block (a Ray worker's life, see
    :mod:`neurocc.runtime.ray_pool`): the ``loihi`` backend then runs every call in one kept Lava
    worker subprocess, the ``spinnaker`` backend every pyNN.nest call in one kept PyNN process,
    instead of starting one per call. Nothing starts before it is needed."""
    from neurocc.backends.loihi.runner import keep_worker
    from neurocc.backends.spinnaker.pynn_run import keep_session

    with keep_worker(), keep_session():
        yield
