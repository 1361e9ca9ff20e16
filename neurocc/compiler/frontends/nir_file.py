"""Opening a NIR HDF5 file safely: every dataset is checked against the size budget before
``nir.read`` allocates anything (:mod:`neurocc._limits`), read errors become one
:class:`~neurocc.errors.ModelLoadError` naming the file, and text where numbers belong is
refused, every such parameter listed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import ModelLoadError


def read_file(path: Path) -> Any:
    import nir

    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    _check_hdf5(path)
    try:
        graph = nir.read(path, type_check=False)
    except (OSError, KeyError, ValueError, TypeError, AssertionError, AttributeError, RuntimeError,
            IndexError, RecursionError, UnicodeDecodeError) as err:
        raise ModelLoadError(
            f"cannot read this NIR file ({type(err).__name__}: {err}); it is truncated, corrupt, or not "
            "a NIR HDF5 file", where=str(path),
            fix="re-export the model to NIR (nir.write) and check the copy is complete") from None
    problems = _non_numeric(graph, "")
    if problems:
        raise ModelLoadError("the NIR file holds text where numbers belong", where=str(path), problems=problems,
                             fix="re-export the model to NIR (nir.write) with numeric parameters")
    return graph


def _check_hdf5(path: Path) -> None:
    """Before nir.read allocates anything: every dataset fits the size budget (:mod:`neurocc._limits`)."""
    import h5py

    from neurocc._limits import check_size

    datasets: list[tuple[str, Any]] = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: datasets.append((name, obj.shape, obj.dtype.itemsize))
                         if isinstance(obj, h5py.Dataset) else None)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(f"cannot read this NIR file ({type(err).__name__}: {err}); it is truncated, corrupt, "
                             "or not a NIR HDF5 file", where=str(path),
                             fix="re-export the model to NIR (nir.write) and check the copy is complete") from None
    for name, shape, itemsize in datasets:
        check_size(shape or (), itemsize, f"dataset '{name}'", str(path), error=ModelLoadError,
                   fix="check the shapes stored in the file")


def _non_numeric(graph: Any, prefix: str) -> list[str]:
    """Parameters (and input/output shapes) of every node, nested graphs included, that are not numbers."""
    import nir

    problems = []
    for name, node in getattr(graph, "nodes", {}).items():
        if isinstance(node, nir.NIRGraph):
            problems += _non_numeric(node, f"{prefix}{name}.")
            continue
        for key, value in vars(node).items():
            if key in ("metadata", "padding"):  # free-form, and "same"/"valid" padding
                continue
            values = value.values() if isinstance(value, dict) else [value]
            for v in values:
                if isinstance(v, (np.ndarray, str, bytes)) and np.asarray(v).dtype.kind not in "biuf":
                    problems.append(f"node '{prefix}{name}': {key} is {np.asarray(v).dtype} text, not numbers")
    return problems
