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

from neurocc._signals import terminate_cleanly
from neurocc.errors import InputError, NeuroccError, OutputError

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


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """``path`` as an absolute Path, refused (OutputError) when it holds NUL, is not valid UTF-8 or is empty.

    Nothing is written before this check, so a bad name never leaves a partial file behind.
    """
    text = os.fspath(path)
    problem = ("is empty" if not str(text).strip() else "contains a NUL character" if "\x00" in str(text)
               else None)
    if problem is None:
        try:
            str(text).encode("utf-8")
        except UnicodeEncodeError:
            problem = "is not valid UTF-8"
    if problem:
        raise OutputError(f"the {what} path {problem}", where=repr(str(text))[:200],
                          fix="choose a path of printable UTF-8 characters")
    return Path(text).absolute()


def _write_error(dest: Path, err: OSError, what: str) -> OutputError:
    reason = err.strerror or type(err).__name__
    return OutputError(f"cannot write the {what} here ({reason})", where=str(dest),
                       fix="choose a path in a writable directory (not /proc, /sys or a read-only place), "
                           "or check the permissions and free space")


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` (same suffix); rename it to ``dest`` on success.

    A directory at ``dest`` is never replaced; write errors (no permission, no space, no such
    place) become an OutputError naming ``dest``.
    """
    dest = check_output_path(dest, "file")
    if dest.is_dir():
        raise OutputError("a directory exists at this path, so no file is written there", where=str(dest),
                          fix="give a file name (e.g. out.npz), not a directory")
    tmp = dest.with_name(f".{dest.stem}.tmp{os.getpid()}{dest.suffix}")
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            os.chmod(tmp, 0o666 & ~_umask())  # temp-file helpers create 0600 files
            os.replace(tmp, dest)
        except OSError as err:
            raise _write_error(dest, err, "file") from None
    finally:
        with contextlib.suppress(OSError):
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

    On any exception (SIGTERM/SIGINT included, see :func:`neurocc._signals.terminate_cleanly`) the
    temporary directory is removed and ``out_dir`` is left as it was. An existing ``out_dir`` is
    replaced only when it is empty or its ``manifest`` names one of ``formats`` (so a user's
    unrelated directory is never deleted), and in one step where the system allows it (Linux
    ``renameat2(RENAME_EXCHANGE)``): at every instant ``out_dir`` is the old or the new one. Temporary
    siblings left by a killed run (even SIGKILL) are removed, and a replaced directory a kill left
    aside is put back, by the next run writing the same ``out_dir`` (:func:`recover_stale`).
    """
    with terminate_cleanly():
        with _atomic_directory(out_dir, manifest, formats, what, error) as tmp:
            yield tmp


@contextlib.contextmanager
def _atomic_directory(out_dir: str | Path, manifest: str, formats: tuple[str, ...], what: str,
                      error: type[NeuroccError]) -> Iterator[Path]:
    out = check_output_path(out_dir, "output directory")
    if out.exists() and not out.is_dir():
        raise error(f"a file exists at the output path, so it is not replaced by a {what}", where=str(out),
                    fix="choose a new -o directory, or remove this file yourself")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        recover_stale(out)
        if out.exists() and not is_replaceable(out, manifest, formats):
            raise error(f"the output path exists and is not a {what}, so it is not replaced",
                        where=str(out), fix="choose a new -o directory, or remove this one yourself")
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp, old = out.parent / f".{out.name}.tmp-{tag}", out.parent / f".{out.name}.old-{tag}"
        tmp.mkdir()
    except OSError as err:
        raise _write_error(out, err, what) from None
    try:
        yield tmp
        try:
            _swap_in(tmp, out, old)
        except OSError as err:
            raise _write_error(out, err, what) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def _swap_in(tmp: Path, out: Path, old: Path) -> None:
    """Put ``tmp`` at ``out``; a previous ``out`` ends at ``old`` (removed by the caller)."""
    if out.exists() and _exchange(tmp, out):
        os.replace(tmp, old)  # tmp now holds the previous directory
        return
    if out.exists():
        os.replace(out, old)  # a kill between these two renames is undone by recover_stale
    try:
        os.replace(tmp, out)
    except BaseException:
        if old.exists() and not out.exists():
            os.replace(old, out)
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(out: Path) -> list[Path]:
    """Clean what killed runs writing ``out`` left beside it; the paths removed or restored.

    ``.NAME.tmp-PID-TAG`` (an unfinished new directory) is removed when process PID is gone;
    ``.NAME.old-PID-TAG`` (a previous directory moved aside just before the new one was renamed
    in) is renamed back to NAME when NAME is missing, else removed. Names without a PID (older
    versions) are removed when older than an hour.
    """
    import re
    import time

    done = []
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(?:(\d+)-)?[0-9a-f]{{8}}")
    for entry in sorted(out.parent.iterdir()) if out.parent.is_dir() else []:
        m = pattern.fullmatch(entry.name)
        if not m:
            continue
        pid = int(m.group(2)) if m.group(2) else None
        with contextlib.suppress(OSError):
            if pid is not None and _pid_alive(pid) or pid is None and time.time() - entry.stat().st_mtime < 3600:
                continue
            if m.group(1) == "old" and not out.exists():
                os.replace(entry, out)
            else:
                shutil.rmtree(entry)
            done.append(entry)
    return done


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
    path = check_output_path(path, "file")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path
