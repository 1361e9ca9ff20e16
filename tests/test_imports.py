"""Every dependency of every backend imports in the one environment the set-up builds.

Toolchains that print banners, write config or patch the interpreter (NEST, sPyNNaker, Lava) are
imported in a subprocess; Lava is never imported in the pytest process (it sets the global
multiprocessing start method, lava-loihi.md §7).
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

IN_PROCESS = ["torch", "onnx", "onnxruntime", "onnxscript", "nir", "networkx", "yaml", "h5py",
              "scipy", "sklearn", "matplotlib", "snntorch", "pyNN", "brian2", "pytest", "hypothesis",
              "xdist"]


def _python(code: str, tmp_path: Path, timeout: int = 240, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, OPENBLAS_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("module", IN_PROCESS)
def test_dependency_imports(module: str) -> None:
    if module == "matplotlib":
        os.environ.setdefault("MPLBACKEND", "Agg")
    mod = importlib.import_module(module)
    assert mod.__name__ == module


def test_versions_that_matter() -> None:
    """Pins the backends rely on (install.md): numpy < 2.4 for brian2, torch 2.13 CPU."""
    import numpy
    import torch

    major, minor = (int(p) for p in numpy.__version__.split(".")[:2])
    assert (major, minor) < (2, 4), f"brian2 2.9 breaks on numpy {numpy.__version__}"
    assert torch.__version__.startswith("2.13.0")
    assert torch.version.cuda is None, "expected the CPU wheel (an unpinned torch pulls CUDA packages)"


@pytest.mark.pynn
def test_pynn_nest_imports_in_a_subprocess(tmp_path: Path) -> None:
    r = _python("import pyNN.nest as sim; import nest; print('NEST', nest.__version__)", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "NEST" in r.stdout


@pytest.mark.pynn
def test_pynn_spinnaker_imports_with_a_private_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    r = _python("import pyNN.spiNNaker as sim; print('ok', sim.__name__)", tmp_path, HOME=str(home))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "ok" in r.stdout


@pytest.mark.lava
def test_lava_imports_under_its_shim_in_a_subprocess(tmp_path: Path) -> None:
    if importlib.util.find_spec("neurocc.backends.loihi.shim") is None:
        print("SKIP reason: neurocc.backends.loihi.shim is not written yet")
        pytest.skip("neurocc.backends.loihi.shim is not written yet")
    code = ("from neurocc.backends.loihi.shim import import_lava; import_lava(); "
            "import lava.magma.core.run_configs as rc; print('lava ok', rc.Loihi2SimCfg.__name__)")
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lava ok Loihi2SimCfg" in r.stdout


def test_import_neurocc_is_light(tmp_path: Path) -> None:
    """`import neurocc` loads no toolchain (torch, onnx, lava, pyNN) and not even numpy."""
    code = ("import sys, neurocc; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'torch', 'onnx', 'onnxruntime', 'lava', 'pyNN', 'nest', 'brian2', 'nir', 'yaml'}); "
            "print(heavy)")
    r = _python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_lava_is_not_in_the_test_process() -> None:
    assert not [m for m in sys.modules if m == "lava" or m.startswith("lava.")]
