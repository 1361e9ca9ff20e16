"""Importing Lava 0.10 on Python 3.11, and finding out cheaply whether it is installed.

Two facts shape this module (research note ``lava-loihi.md`` §7):

* ``lava.magma.compiler.var_model`` declares dataclass fields whose default is a mutable
  dataclass instance (``x: ByteEncoder = ByteEncoder()``). Python 3.11's ``dataclasses`` rejects
  that with ``ValueError: mutable default``. :func:`import_lava` patches
  ``dataclasses._get_field`` **only while that one module is imported**, turning such a default
  into ``default_factory=deepcopy(default)``, then restores the original function and checks
  that it is restored. The affected encoders belong to Loihi-hardware spike I/O, which the CPU
  simulator never uses.
* importing Lava's runtime calls ``multiprocessing.set_start_method('fork')`` for the whole
  interpreter. So Lava is imported **only in the worker subprocess**
  (:mod:`neurocc.backends.loihi.worker`), never in the user's process; :func:`lava_available`
  asks a throw-away subprocess instead of importing anything here.

A third, found on PilotNet-LIF: Lava's Conv model fails under numpy 2 for inputs wider than 127
(int8 parameters, NEP 50 promotion); :func:`_widen_conv_parameters` fixes it in the worker.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import importlib
import importlib.util
import os
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

from neurocc.errors import BackendError

INSTALL_HINT = ("pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0 "
                "scipy 'asteval>=0.9.31,<0.10'  (Lava's own pins ask for Python <3.11 and numpy <2; "
                "the fixed-point CPU simulation works without them)")

_VAR_MODEL = "lava.magma.compiler.var_model"


def _patched(original: Callable[..., Any]) -> Callable[..., Any]:
    """``_get_field`` that first replaces an unhashable dataclass-instance default by a factory."""

    @functools.wraps(original)
    def _get_field(cls: type, a_name: str, a_type: Any, *args: Any, **kw: Any) -> Any:
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if (default is not dataclasses.MISSING and not isinstance(default, dataclasses.Field)
                and dataclasses.is_dataclass(default) and type(default).__hash__ is None):
            setattr(cls, a_name, dataclasses.field(default_factory=functools.partial(copy.deepcopy, default)))
        return original(cls, a_name, a_type, *args, **kw)

    return _get_field


def _import_var_model() -> None:
    """Import ``var_model`` under the patch; the original ``_get_field`` is always put back."""
    original = dataclasses._get_field  # type: ignore[attr-defined]
    dataclasses._get_field = _patched(original)  # type: ignore[attr-defined]
    try:
        importlib.import_module(_VAR_MODEL)
    finally:
        dataclasses._get_field = original  # type: ignore[attr-defined]
    if dataclasses._get_field is not original:  # type: ignore[attr-defined]
        raise RuntimeError("dataclasses._get_field was not restored after importing Lava")


def import_lava() -> types.SimpleNamespace:
    """Import the Lava pieces the worker needs and return them as one namespace.

    Call only inside the worker subprocess (see the module docstring). Raises BackendError with
    the install command when Lava (or scipy/asteval, which it needs) is missing.
    """
    try:
        if sys.version_info >= (3, 11) and _VAR_MODEL not in sys.modules:
            _import_var_model()
        from lava.magma.core.learning.learning_rule import Loihi2FLearningRule
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import DelayDense, Dense, LearningDense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF, LIFReset
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import Sparse
        from lava.utils.weightutils import SignMode

        from neurocc.backends.loihi.lava_learning import MODEL_MAP as LEARNING_MODEL_MAP
        from neurocc.backends.loihi.lava_learning import NeuroccLearningLIF
        from neurocc.backends.loihi.lava_models import MODEL_MAP, NeuroccLIF
        from neurocc.backends.loihi.lava_recorders import (
            MODEL_MAP as RECORDER_MODEL_MAP,
        )
        from neurocc.backends.loihi.lava_recorders import NeuroccProbe, NeuroccSpikes
    except ModuleNotFoundError as err:
        raise BackendError(f"Lava is not installed (missing module '{err.name}')",
                           where="backend 'loihi'", fix=INSTALL_HINT) from err
    _widen_conv_parameters()
    return types.SimpleNamespace(RunSteps=RunSteps, Loihi2SimCfg=Loihi2SimCfg, Conv=Conv, Dense=Dense,
                                 DelayDense=DelayDense, Sink=Sink, Source=Source, LIF=LIF, LIFReset=LIFReset,
                                 Monitor=Monitor, Sparse=Sparse, NeuroccLIF=NeuroccLIF,
                                 MODEL_MAP={**MODEL_MAP, **LEARNING_MODEL_MAP, **RECORDER_MODEL_MAP},
                                 NeuroccLearningLIF=NeuroccLearningLIF, NeuroccSpikes=NeuroccSpikes,
                                 NeuroccProbe=NeuroccProbe,
                                 LearningDense=LearningDense, Loihi2FLearningRule=Loihi2FLearningRule,
                                 SignMode=SignMode)


def _widen_conv_parameters() -> None:
    """Lava 0.10's ``fixed_pt`` Conv model holds ``kernel_size``, ``stride``, ``padding`` and
    ``dilation`` as int8 Vars (``LavaPyType(np.ndarray, np.int8)``), and ``conv.utils.output_shape``
    adds them to the input's width, a Python int. numpy >= 2 (NEP 50) keeps the int8 type and
    raises ``OverflowError: Python integer 200 out of bounds for int8`` for any input wider or
    taller than 127 (PilotNet's 200 x 66 frames); numpy 1.x, which Lava's metadata pins, promoted
    the sum. The worker therefore hands ``conv.utils.conv`` int64 copies of those four small
    parameters (same values, so the same arithmetic); nothing changes under numpy 1.x."""
    import numpy as np
    from lava.proc.conv import utils

    if int(np.__version__.split(".")[0]) < 2 or getattr(utils.conv, "neurocc_widened", False):
        return
    original = utils.conv

    def conv(input_: Any, weight: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
             groups: Any) -> Any:
        wide = [np.asarray(a, dtype=np.int64) for a in (kernel_size, stride, padding, dilation)]
        return original(input_, weight, *wide, int(groups))

    conv.neurocc_widened = True  # type: ignore[attr-defined]
    utils.conv = conv


_SLAYER_STUBS = ("lava.lib.dl.slayer", "lava.lib.dl.slayer.neuron", "lava.lib.dl.slayer.neuron.rf")


def _no_rf(*_: Any, **__: Any) -> Any:
    raise BackendError("netx RF neurons need lava-dl's slayer (torch, torchvision), which neurocc does not use",
                       where="backend 'loihi' (netx)", fix="write CUBA layers only (neurocc does)")


def import_netx() -> types.ModuleType:
    """Import ``lava.lib.dl.netx.hdf5`` without torch or slayer (research note §5.1); worker only.

    netx imports three slayer modules (only for RF neurons) and, through its package
    ``__init__``, ``sequential_modules`` (``import torch``). Plain modules stand in for them; the
    ``sequential_modules`` stand-in has ``__file__`` set to the real path, because Lava's compiler
    calls ``inspect.getfile`` on every module of the netx package. Returns the ``hdf5`` module.
    """
    import_lava()
    for name in _SLAYER_STUBS:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["lava.lib.dl.slayer.neuron.rf"].neuron_params = _no_rf  # type: ignore[attr-defined]
    seq = "lava.lib.dl.netx.sequential_modules"
    if seq not in sys.modules:
        spec = importlib.util.find_spec("lava.lib.dl")
        if spec is None or not spec.submodule_search_locations:
            raise BackendError("lava-dl (netx) is not installed", where="backend 'loihi' (netx)", fix=INSTALL_HINT)
        stub = types.ModuleType(seq)
        stub.__file__ = os.path.join(next(iter(spec.submodule_search_locations)), "netx", "sequential_modules.py")
        sys.modules[seq] = stub
    try:
        from lava.lib.dl.netx import hdf5
    except ModuleNotFoundError as err:
        raise BackendError(f"lava-dl's netx cannot be imported (missing module '{err.name}')",
                           where="backend 'loihi' (netx)", fix=INSTALL_HINT) from err
    return hdf5


_PROBE = ("import neurocc.backends.loihi.shim as s; s.import_lava(); "
          "import lava.magma.runtime.runtime; print('lava-ok')")


@functools.cache
def lava_available(python: str | None = None) -> bool:
    """True when Lava imports (under the shim) in a fresh subprocess; cached per interpreter.

    Nothing from Lava is imported into this process.
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    try:
        proc = subprocess.run([python or sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "lava-ok" in proc.stdout


def unavailable_reason(python: str | None = None) -> str:
    """One line saying why Lava cannot be used (for skip messages); empty when it can."""
    if lava_available(python):
        return ""
    return f"Lava 0.10 is not importable by {python or sys.executable}; install it with: {INSTALL_HINT}"
