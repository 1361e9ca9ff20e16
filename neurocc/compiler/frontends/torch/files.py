"""torch files: ``.pt``/``.pth`` (a state_dict + an ``entry`` factory, or a trusted pickled
module) and ``.pt2`` archives (``torch.export.save``, read at the aten level by :mod:`.aten`).

Whole pickled modules (``torch.save(model)``) execute code when loaded and are refused unless
``trust_pickle=True``; state_dicts are loaded with ``weights_only=True``. Errors name the file.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from neurocc.compiler.frontends.torch.aten import Aten
from neurocc.compiler.frontends.torch.trace import from_module
from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Graph

ENTRY_FIX = "name what builds the model: --entry pkg.module:factory (Python: entry='pkg.module:factory')"
PICKLE_FIX = ("save it in a safe form instead: torch.export.save(torch.export.export(model, (x,)), "
              "'model.pt2') (ANN layers), or torch.save(model.state_dict(), 'weights.pt') and load it with "
              "entry='your_package.module:factory' (CLI --entry; any model, SNNs included); or, only if you "
              "made the file yourself, pass trust_pickle=True (CLI --trust-pickle)")


def load_entry(entry: str, weights: str | Path | None, *, input_shape: tuple[int, ...] | None = None,
               dt: float | None = None) -> Graph:
    """Build the model with ``entry`` (``"pkg.module:factory"``), load the state_dict ``weights``, read it.

    Errors about the model name the weights file (or ``entry`` when there is none).
    """
    model = _build(entry)
    if weights is not None:
        state = _load_weights_only(Path(weights))
        if not isinstance(state, dict):
            raise ModelLoadError(f"holds a {type(state).__name__}, not a state_dict", where=str(weights),
                                 fix="save the weights with torch.save(model.state_dict(), path)")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise ModelLoadError(f"the weights do not fit the model built by {entry}: {err}", where=str(weights),
                                 fix="use the factory that built the model the weights were saved from") from None
    return from_module(model, input_shape=input_shape, dt=dt, source=str(weights) if weights is not None else entry)


def _build(entry: str) -> Any:
    """Call the factory named by ``entry``; it must return a ``torch.nn.Module``."""
    import torch

    mod_name, _, fn_name = entry.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as err:
        raise ModelLoadError(f"cannot import the model factory ({err})", where=entry,
                             fix="give entry as 'package.module:function', importable from the current "
                                 "environment") from None
    try:
        model = factory()
    except Exception as err:  # noqa: BLE001  (the user's code: any exception type can come out)
        raise ModelLoadError(f"the model factory raised {type(err).__name__}: {err} (an error in your code, "
                             "not in neurocc)", where=entry,
                             fix="fix the factory so that calling it with no arguments returns the model "
                                 "(try it in Python first)") from err
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"the factory returned a {type(model).__name__}, not a torch.nn.Module", where=entry,
                             fix="the factory must return the (untrained) model")
    return model


def _load_weights_only(path: Path) -> Any:
    import pickle

    import torch

    if not path.exists():
        raise ModelLoadError("file not found", where=str(path), fix="check the path")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelLoadError(
                "this file is a whole pickled model (torch.save(model)); loading it needs weights_only=False, "
                "which runs arbitrary code stored in the file, so neurocc refuses it", where=str(path),
                fix=PICKLE_FIX) from None
        raise _corrupt(path, err) from None
    except Exception as err:  # noqa: BLE001  (torch's restricted unpickler raises any type on a damaged file)
        raise _corrupt(path, err) from None


def _corrupt(path: Path, err: Exception) -> ModelLoadError:
    """torch's own message is kept whole up to its first line break (later lines are its traceback hints)."""
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    detail = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return ModelLoadError(f"cannot read this torch file ({detail}); it is truncated, "
                          "corrupt or not a torch.save file", where=str(path),
                          fix="save the model again and check the copy is complete")


def read_torch_file(path: Path, *, entry: str | None = None, input_shape: tuple[int, ...] | None = None,
                    trust_pickle: bool = False, dt: float | None = None) -> Graph:
    """``.pt``/``.pth``: a state_dict with ``entry``, or (``trust_pickle=True`` only) a pickled module."""
    import torch

    if entry is not None:
        return load_entry(entry, path, input_shape=input_shape, dt=dt)
    if trust_pickle:
        try:
            obj = torch.load(path, weights_only=False, map_location="cpu")
        except Exception as err:  # unpickling runs the file's code: any exception type can come out
            raise _corrupt(path, err) from None
    else:
        obj = _load_weights_only(path)
    if isinstance(obj, torch.nn.Module):
        return from_module(obj, input_shape=input_shape, dt=dt, source=str(path))
    raise _not_a_model(path, obj)


def _not_a_model(path: Path, obj: Any) -> ModelLoadError:
    """A .pt holding weights (or anything else) but no model: say what it holds and ask for --entry."""
    import torch

    fix = f"{ENTRY_FIX}; the file's state_dict is then loaded into the model it returns"
    if isinstance(obj, dict):
        tensors = sum(isinstance(v, torch.Tensor) for v in obj.values())
        if tensors == len(obj):
            return ModelLoadError(f"holds a state_dict ({tensors} tensors), not a model", where=str(path), fix=fix)
        keys = ", ".join(repr(k) for k in list(obj)[:5]) + (", ..." if len(obj) > 5 else "")
        return ModelLoadError(f"holds a dict ({keys}; {tensors} of its {len(obj)} values are tensors), not a model",
                              where=str(path),
                              fix="save the model's state_dict alone (torch.save(model.state_dict(), 'weights.pt')), "
                                  f"then {ENTRY_FIX}")
    return ModelLoadError(f"holds a {type(obj).__name__}, not a model", where=str(path), fix=fix)


def read_exported(path: Path, *, dt: float | None = None, trust_pickle: bool = False) -> Graph:
    """A ``torch.export.save`` archive (``.pt2``), read at the aten level (ANN layers only).

    Without ``trust_pickle`` the archive is opened by :func:`.pt2.load_program`, which cannot run
    code stored in the file (pickled parts, custom objects, native code, sympy expressions).
    """
    from neurocc.compiler.frontends.torch.pt2 import load_program

    try:
        ep = load_program(path, trust_pickle=trust_pickle)
    except ModelLoadError as err:
        raise ModelLoadError(err.what, where=err.where or str(path), fix=err.fix, problems=err.problems) from None
    except Exception as err:  # torch.export.load raises zip/pickle/runtime errors on bad archives
        raise _corrupt(path, err) from None
    return Aten(ep, path.stem, str(path), dt).run()
