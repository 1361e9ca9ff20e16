"""Payload files: every way a model or data file could make a reader run code.

Each payload, when unpickled or evaluated, creates ``marker`` (an empty file). The tests assert
the marker never appears and the error is a :class:`neurocc.NeuroccError`.
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path


class Payload:
    """Unpickling this object runs ``open(marker, 'w')`` through ``builtins.exec``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: D105
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plain_pt2(path: Path) -> Path:
    """A valid torch.export archive of a small MLP (what users save)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    torch.export.save(torch.export.export(model.eval(), (torch.randn(2, 4),)), path)
    return path


_CACHE: dict[str, Path] = {}


def cached_plain_pt2() -> Path:
    """:func:`plain_pt2` once per process (torch.export takes seconds), in a temporary folder."""
    import tempfile

    if "pt2" not in _CACHE:
        _CACHE["pt2"] = plain_pt2(Path(tempfile.mkdtemp(prefix="neurocc-pt2-")) / "plain.pt2")
    return _CACHE["pt2"]


def _rewrite(src: Path, dest: Path, change: dict[str, bytes | None]) -> Path:
    """Copy the zip ``src`` to ``dest`` with entries replaced (bytes), removed (None) or added."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        root = next(n for n in zin.namelist() if n.endswith("archive_format"))[: -len("archive_format")]
        seen = set()
        for info in zin.infolist():
            rel = info.filename[len(root):]
            seen.add(rel)
            if rel in change:
                if change[rel] is not None:
                    zout.writestr(info.filename, change[rel])
            else:
                zout.writestr(info.filename, zin.read(info))
        for rel, data in change.items():
            if rel not in seen and data is not None:
                zout.writestr(root + rel, data)
    return dest


def _torch_save(obj: object) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _config(src: Path, rel: str) -> dict:
    with zipfile.ZipFile(src) as z:
        root = next(n for n in z.namelist() if n.endswith("archive_format"))[: -len("archive_format")]
        return json.loads(z.read(root + rel))


def pt2_payloads(src: Path, folder: Path, marker: Path) -> dict[str, Path]:
    """One ``.pt2`` per way torch.export.load runs stored code, built from the plain archive ``src``."""
    out = {}
    evil = _torch_save(Payload(marker))
    # 1. sample inputs: torch.load(weights_only=True) fails, torch falls back to weights_only=False
    out["sample_inputs"] = _rewrite(src, folder / "p_sample.pt2", {"data/sample_inputs/model.pt": evil})
    out["sample_inputs_raw_pickle"] = _rewrite(src, folder / "p_sample_raw.pt2",
                                               {"data/sample_inputs/model.pt": pickle.dumps(Payload(marker))})
    # 2. a weight flagged use_pickle (tensor subclasses are saved this way)
    wcfg = _config(src, "data/weights/model_weights_config.json")
    first = next(iter(wcfg["config"]))
    wcfg["config"][first]["use_pickle"] = True
    path_name = wcfg["config"][first]["path_name"]
    out["pickled_weight"] = _rewrite(src, folder / "p_weight.pt2", {
        "data/weights/model_weights_config.json": json.dumps(wcfg).encode(), f"data/weights/{path_name}": evil})
    # 3. constants: a pickled tensor constant, an opaque object (pickle.loads), a custom object
    for kind, name in (("pickled_constant", "tensor_0"), ("opaque_constant", "opaque_obj_0"),
                       ("custom_obj_constant", "custom_obj_0")):
        ccfg = {"config": {"evil": {"path_name": name, "is_param": False, "use_pickle": True,
                                    "tensor_meta": None}}}
        data = pickle.dumps(Payload(marker)) if kind == "opaque_constant" else evil
        out[kind] = _rewrite(src, folder / f"p_{kind}.pt2", {
            "data/constants/model_constants_config.json": json.dumps(ccfg).encode(), f"data/constants/{name}": data})
    # 4. the older layout: pickled weights blob
    out["legacy_weights"] = _rewrite(src, folder / "p_legacy.pt2", {"data/weights/model.pt": evil})
    # 5. a symbolic shape expression: sympy.sympify evaluates it with eval()
    out["sympy_expr"] = _rewrite(src, folder / "p_sympy.pt2", {"models/model.json": _sym_payload(src, marker)})
    # 6. AOTInductor native code (a shared library torch would dlopen)
    out["aotinductor"] = _rewrite(src, folder / "p_aoti.pt2", {"data/aotinductor/model/model.so": b"\x7fELF"})
    return out


def _sym_payload(src: Path, marker: Path) -> bytes:
    with zipfile.ZipFile(src) as z:
        root = next(n for n in z.namelist() if n.endswith("archive_format"))[: -len("archive_format")]
        doc = json.loads(z.read(root + "models/model.json"))
    code = f"__import__('builtins').exec(\"open({str(marker)!r}, 'w').close()\")"
    tensors = doc["graph_module"]["graph"]["tensor_values"]
    first = next(iter(tensors.values()))
    first["sizes"][0] = {"as_expr": {"expr_str": code, "hint": {"as_int": 2}}}
    return json.dumps(doc).encode()


def pt_payload(path: Path, marker: Path) -> Path:
    """A ``.pt`` whose pickle runs code (whole-module pickles look like this)."""
    import torch

    torch.save({"weight": Payload(marker)}, path)
    return path


def npz_payload(path: Path, marker: Path) -> Path:
    """An ``.npz`` holding an object array (read only with allow_pickle=True)."""
    import numpy as np

    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    np.savez(path, x=arr)
    return path


def npy_in_npz_pickle(path: Path, marker: Path) -> Path:
    """An ``.npz`` whose member is a raw pickle (not an .npy at all)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", pickle.dumps(Payload(marker)))
    return path
