"""Small file helpers shared by the CLI and the Python API: .npz arrays and atomic writes.

Arrays files are read without pickle (``np.load(allow_pickle=False)``); every file neurocc writes
appears complete or not at all: it is written beside its destination and renamed into place.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurocc.errors import InputError, NeuroccError

if TYPE_CHECKING:
    import numpy as np


def read_npz(path: Path, what: str) -> "dict[str, np.ndarray]":
    """Every array of the ``.npz`` at ``path``; InputError naming the file (``what`` = the option)."""
    import numpy as np

    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", where=f"{what} {path}",
                         fix="check the path; array files are .npz archives written by numpy.savez")
    if not zipfile.is_zipfile(path):
        raise InputError("not an .npz array archive", where=f"{what} {path}",
                         fix="write it with numpy.savez(path, name=array); .npy, CSV or pickle "
                             "files are not read")
    try:
        with np.load(path, allow_pickle=False) as data:
            return check_arrays({name: data[name] for name in data.files}, f"{what} {path}")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
            UnicodeDecodeError) as err:
        raise InputError(f"not a readable .npz array file ({err})", where=f"{what} {path}",
                         fix="write it with numpy.savez(path, name=array) using numeric arrays "
                             "(object arrays need pickle, which neurocc does not load)") from None


def check_arrays(arrays: "dict[str, Any]", where: str) -> "dict[str, np.ndarray]":
    """``arrays`` unchanged when every member is a numeric (bool/int/float) ndarray; else InputError.

    ``np.load`` returns the raw bytes of a member that is not an ``.npy`` (e.g. a pickle); such
    members, strings, objects and complex numbers are refused here, all listed at once.
    """
    import numpy as np

    bad = [f"{name!r}: " + (f"dtype {v.dtype}" if isinstance(v, np.ndarray) else f"{type(v).__name__}, not an "
                            "array (a member that is not .npy)")
           for name, v in arrays.items() if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf"]
    if bad:
        raise InputError("the file holds members that are not numeric arrays", where=where, problems=bad,
                         fix="save numeric arrays only: numpy.savez(path, name=np.asarray(values, np.float32))")
    return arrays


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` (same suffix); rename it to ``dest`` on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.tmp{os.getpid()}{dest.suffix}")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # temp-file helpers create 0600 files
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_npz(dest: Path, arrays: "dict[str, np.ndarray]") -> Path:
    """Write ``arrays`` (names may contain '/', e.g. ``lif1/v``) to ``dest`` atomically."""
    import numpy as np

    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
    return dest


def is_replaceable(path: Path, manifest: str, formats: tuple[str, ...]) -> bool:
    """True when ``path`` is an empty directory or holds ``manifest`` whose format is in ``formats``."""
    if not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    try:
        return json.loads((path / manifest).read_text()).get("format") in formats
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path, *, manifest: str = "manifest.json", formats: tuple[str, ...],
                     what: str = "neurocc artifact", error: type[NeuroccError] = NeuroccError) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``out_dir``; on success it replaces ``out_dir``.

    On any exception the temporary directory is removed and ``out_dir`` is left as it was. An
    existing ``out_dir`` is replaced only when it is empty or its ``manifest`` names one of
    ``formats`` (so a user's unrelated directory is never deleted).
    """
    out = Path(out_dir).absolute()
    if out.exists() and not is_replaceable(out, manifest, formats):
        raise error(f"the output path exists and is not a {what}, so it is not replaced",
                    where=str(out), fix="choose a new -o directory, or remove this one yourself")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp, old = out.parent / f".{out.name}.tmp-{tag}", out.parent / f".{out.name}.old-{tag}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            if old.exists():
                os.replace(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def npz_bytes(arrays: "dict[str, np.ndarray]") -> bytes:
    """An ``.npz`` (deflated) with fixed zip dates and sorted members: same arrays, same bytes."""
    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[key]), allow_pickle=False)
    return buf.getvalue()


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary sibling renamed into place)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
