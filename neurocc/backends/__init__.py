"""Backends behind a small registry of lazy imports (a backend's toolchain loads only when used).

Each backend module exposes::

    check(graph, target) -> list[str]          # every unsupported thing at once (empty = fine)
    run(artifact, inputs, steps=None, record=False) -> dict[str, np.ndarray]

Inputs and outputs are time-major arrays ``(steps, batch, *shape)`` keyed by graph input/output
name; with ``record=True`` also ``"<node>/<var>"`` state traces. Third-party toolchains (lava,
pyNN, onnxruntime) are imported only inside the backend module's functions.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from neurocc.errors import BackendError

REGISTRY: dict[str, str] = {
    "emulator": "neurocc.backends.emulator",
    "reference": "neurocc.backends.reference",
    "loihi": "neurocc.backends.loihi",
    "spinnaker": "neurocc.backends.spinnaker",
    "edge-cpu": "neurocc.backends.edge_cpu",
}


def get_backend(name: str) -> ModuleType:
    """Import and return the backend module called ``name`` (BackendError if unknown/missing)."""
    if name not in REGISTRY:
        raise BackendError(f"unknown backend '{name}'", where="--backend",
                           fix=f"use one of: {', '.join(REGISTRY)}")
    try:
        return importlib.import_module(REGISTRY[name])
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("neurocc"):
            raise BackendError(f"backend '{name}' is not available in this version of neurocc",
                               where="--backend", fix="use one of the available backends") from err
        raise
