"""Opening a ``torch.export`` archive (``.pt2``) without running code stored in it.

``torch.export.load`` trusts its file: it unpickles weights and constants saved with pickle
(``torch.load(weights_only=False)``), falls back to full unpickling when the sample inputs are
not plain tensors, unpickles TorchScript/opaque custom objects, loads AOTInductor shared
libraries, and parses symbolic shape expressions with ``sympy.sympify`` (which calls ``eval``).
Any of these runs code chosen by whoever wrote the file. Unless ``trust_pickle=True``:

1. :func:`check_archive` reads the zip directory and the JSON payload configs (no unpickling)
   and refuses, listing every problem at once, any entry outside the plain layout that
   ``torch.export.save`` writes for ordinary tensors (``models/*.json``, raw ``weight_*`` and
   ``tensor_*`` records, their configs, ``sample_inputs/*.pt``, ``extra/``, version files),
   every payload flagged ``use_pickle`` and every custom/opaque object constant;
2. :func:`guarded` runs the load with ``torch.load`` forced to ``weights_only=True`` (torch's
   restricted unpickler: tensors, containers and primitive types only; an explicit request for
   full unpickling is refused), ``pickle.loads``/``torch._C._pickle_load_obj``/AOTInductor
   loading replaced by refusals, and every symbolic expression checked against a strict
   grammar (:data:`SYM_NAMES`, numbers, arithmetic) before sympy sees it.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neurocc.errors import ModelLoadError

MAX_ENTRIES = 100_000
PLAIN = (r"archive_format", r"archive_version", r"byteorder", r"\.data/[A-Za-z0-9_.]+",
         r"models/[A-Za-z0-9_]+\.json", r"data/weights/[A-Za-z0-9_]+_weights_config\.json",
         r"data/weights/weight_\d+", r"data/constants/[A-Za-z0-9_]+_constants_config\.json",
         r"data/constants/tensor_\d+", r"data/sample_inputs/[A-Za-z0-9_]+\.pt", r"extra/[^\x00]*")
PLAIN_RE = re.compile("|".join(f"(?:{p})" for p in PLAIN))
SYM_NAMES = frozenset("""FloorDiv ModularIndexing Where PythonMod Mod CleanDiv CeilToInt FloorToInt CeilDiv
    LShift RShift PowByNatural FloatPow FloatTrueDiv IntTrueDiv IsNonOverlappingAndDenseIndicator TruncToFloat
    TruncToInt RoundToInt RoundDecimal ToFloat Identity Max Min Abs Eq Ne Lt Le Gt Ge And Or Not True False oo
    floor ceiling sqrt""".split())
SYM_CHARS = re.compile(r"[A-Za-z0-9_ +\-*/%(),<>=!.&|~]*")
SYM_SYMBOL = re.compile(r"[a-z]+\d+")
TRUST_FIX = ("re-export the model from plain tensors (torch.export.save(torch.export.export(model, (x,)), "
             "'model.pt2') with ordinary nn layers), or, only if you made the file yourself, pass "
             "trust_pickle=True (CLI --trust-pickle)")
_LOCK = threading.Lock()


class Refused(ModelLoadError):
    """A part of the archive that only code execution could read."""


def check_archive(path: Path) -> None:
    """Refuse an archive holding anything but plain tensors and JSON (see the module docstring)."""
    if not zipfile.is_zipfile(path):
        raise ModelLoadError("not a torch.export archive (not a zip file)", where=str(path),
                             fix="write it with torch.export.save(program, 'model.pt2'); check the copy is complete")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                raise ModelLoadError(f"the archive has {len(infos):,} entries (more than {MAX_ENTRIES:,})",
                                     where=str(path), fix="write it with torch.export.save")
            root = _root(infos, path)
            problems = _layout_problems(infos, root) + _config_problems(zf, infos, root)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise ModelLoadError(f"cannot read the archive ({type(err).__name__}: {err})", where=str(path),
                             fix="save the model again with torch.export.save and check the copy is complete") from None
    if problems:
        raise Refused("the archive holds parts that only code execution can read (pickle, custom objects or "
                      "native code), so neurocc refuses to open it", where=str(path), problems=problems,
                      fix=TRUST_FIX)


def _root(infos: list[zipfile.ZipInfo], path: Path) -> str:
    roots = {i.filename[: -len("archive_format")] for i in infos if i.filename.endswith("archive_format")
             and i.filename.count("/") <= 1}
    if len(roots) != 1:
        raise Refused("not a torch.export archive of this torch version (no single archive_format record; "
                      "older .pt2 layouts are read with full unpickling)", where=str(path), fix=TRUST_FIX)
    return roots.pop()


def _layout_problems(infos: list[zipfile.ZipInfo], root: str) -> list[str]:
    problems = []
    for info in infos:
        name = info.filename
        rel = name[len(root):] if name.startswith(root) else None
        if rel is None or "\x00" in name or ".." in name.split("/"):
            problems.append(f"entry {name!r} lies outside the archive folder {root!r}")
        elif not PLAIN_RE.fullmatch(rel) and not name.endswith("/"):
            kind = ("AOTInductor native code" if rel.startswith("data/aotinductor/") else
                    "a pickled blob (older layout)" if rel.endswith((".pt", ".pkl")) else "an unknown part")
            problems.append(f"entry {rel!r}: {kind}")
    return problems


def _config_problems(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], root: str) -> list[str]:
    problems = []
    for info in infos:
        rel = info.filename[len(root):]
        if not re.fullmatch(r"data/(weights|constants)/[A-Za-z0-9_]+_config\.json", rel):
            continue
        try:
            config = json.loads(zf.read(info).decode())["config"]
            items = list(config.items())
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
            problems.append(f"{rel}: not a payload config ({type(err).__name__}: {err})")
            continue
        for fqn, meta in items:
            if not isinstance(meta, dict):
                problems.append(f"{rel}: {fqn!r} is not a payload entry")
            elif meta.get("use_pickle") is not False:
                problems.append(f"{rel}: {fqn!r} is stored with pickle (a tensor subclass or custom object)")
            elif not re.fullmatch(r"(weight|tensor)_\d+", str(meta.get("path_name"))):
                problems.append(f"{rel}: {fqn!r} is a custom or opaque object ({meta.get('path_name')!r}), "
                                "read with pickle")
    return problems


def check_sym_expr(expr: Any) -> None:
    """A symbolic shape expression must be names of :data:`SYM_NAMES`, symbols (``s0``), numbers, arithmetic."""
    text = str(expr)
    names = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text)
    bad = [n for n in names if n not in SYM_NAMES and not SYM_SYMBOL.fullmatch(n)]
    if (not isinstance(expr, str) or len(text) > 10_000 or not SYM_CHARS.fullmatch(text) or "__" in text
            or re.search(r"\.(?!\d)|(?<!\d)\.", text) or bad):
        raise Refused(f"a symbolic shape expression is not plain arithmetic ({text[:80]!r}); sympy would "
                      "evaluate it as Python code", fix=TRUST_FIX)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run ``torch.export.load`` with every code-executing reader replaced (module docstring, point 2)."""
    import torch
    from torch._export.serde import serialize
    from torch.export.pt2_archive import _package

    real_load, real_parse = torch.load, serialize.GraphModuleDeserializer._parse_sym_expr
    real_pickle, real_obj, real_aoti = _package.pickle, torch._C._pickle_load_obj, _package._load_aoti

    def safe_load(f: Any, *args: Any, weights_only: bool | None = None, **kw: Any) -> Any:
        if weights_only is False:
            raise Refused("a pickled part of the archive (sample inputs, weights or constants) holds objects "
                          "other than tensors and plain containers; reading it would run code", fix=TRUST_FIX)
        kw.pop("pickle_module", None)
        return real_load(f, *args, weights_only=True, **kw)

    def refuse(*_: Any, **__: Any) -> Any:
        raise Refused("the archive holds a custom object or native code that loading would run", fix=TRUST_FIX)

    def parse(self: Any, expr_str: Any, *args: Any, **kw: Any) -> Any:
        check_sym_expr(expr_str)
        return real_parse(self, expr_str, *args, **kw)

    with _LOCK:
        torch.load = safe_load
        serialize.GraphModuleDeserializer._parse_sym_expr = parse
        _package.pickle = types.SimpleNamespace(loads=refuse, load=refuse, dumps=real_pickle.dumps)
        torch._C._pickle_load_obj = refuse
        _package._load_aoti = refuse
        try:
            yield
        finally:
            torch.load = real_load
            serialize.GraphModuleDeserializer._parse_sym_expr = real_parse
            _package.pickle, torch._C._pickle_load_obj, _package._load_aoti = real_pickle, real_obj, real_aoti


def load_program(path: Path, *, trust_pickle: bool = False) -> Any:
    """The ExportedProgram in ``path``; without ``trust_pickle`` nothing in the file can run code."""
    import torch

    if trust_pickle:
        return torch.export.load(path)
    check_archive(path)
    with guarded():
        return torch.export.load(path)
