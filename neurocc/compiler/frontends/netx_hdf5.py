"""Read a lava-dl netx HDF5 file's ``/layer/<i>`` groups into plain dicts (h5py only), with one
ModelLoadError naming the file for a missing, unreadable, truncated or non-netx file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import ModelLoadError


def read_layers(path: Path, num_layers: int | None) -> list[dict[str, Any]]:
    """Every layer group as a plain dict (datasets read; ``neuron`` a nested dict)."""
    import h5py

    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ModelLoadError(f"not a readable HDF5 file ({err.__class__.__name__}: {str(err).splitlines()[0]})",
                             where=str(path), fix="the file is truncated or not a netx network.net; export it "
                                                  "again from lava-dl (block.export_hdf5)") from None
    with f:
        if "layer" not in f or not isinstance(f["layer"], h5py.Group):
            raise ModelLoadError("an HDF5 file without a '/layer' group is not a netx network", where=str(path),
                                 fix="pass a lava-dl netx file (network.net); NIR files use the .nir suffix")
        group = f["layer"]
        n = len(group) if num_layers is None else min(len(group), int(num_layers))
        missing = [str(i) for i in range(n) if str(i) not in group]
        if missing:
            raise ModelLoadError(f"layer groups {', '.join(missing)} are missing (netx reads /layer/0.."
                                 f"{len(group) - 1} in order)", where=str(path), fix="export the file again")
        try:
            return [group_dict(group[str(i)]) for i in range(n)]
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise ModelLoadError(f"a dataset cannot be read ({type(err).__name__}: {err})", where=str(path),
                                 fix="the file is damaged; export it again") from None


def group_dict(g: Any) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key, item in g.items():
        if isinstance(item, h5py.Group):
            out[key] = group_dict(item)
        else:
            v = item[()]
            if isinstance(v, np.ndarray) and v.dtype.kind == "S":
                v = v.reshape(-1)[0]
            out[key] = v.decode() if isinstance(v, bytes) else v
    return out
