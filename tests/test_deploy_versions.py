"""Deploy bundles pin the minimum versions they need (ranges), and the bundle's self-test passes
with the oldest pair installable here; the README says how to read the class from the outputs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from neurocc.compiler.pipeline import compile_model
from neurocc.runtime.deploy import MIN_VERSIONS, deploy_artifact
from test_deploy import dense_graph, run_py


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    art = compile_model(dense_graph(), "edge-cpu", root / "art")
    return deploy_artifact(art, root / "bundle")


def _minimums(bundle: Path) -> dict[str, str]:
    lines = [ln for ln in (bundle / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    found = dict(re.fullmatch(r"([a-z_]+)>=([0-9.]+)", ln).groups() for ln in lines)  # type: ignore[union-attr]
    return found


def test_requirements_are_ranges_from_the_minimums_and_the_readme_says_how_to_read_the_class(bundle):
    assert _minimums(bundle) == MIN_VERSIONS                       # ranges, no == pins
    readme = (bundle / "README.md").read_text()
    assert "**Reading the class**" in readme and ".argmax(axis=-1)" in readme
    assert f"numpy >={MIN_VERSIONS['numpy']}" in readme


@pytest.mark.long   # a venv with the oldest pair, cached under the temp dir (~1 min the first time)
def test_selftest_passes_with_the_oldest_versions_installable_here(bundle, tmp_path):
    mins = _minimums(bundle)
    python = shutil.which("python3.11") or sys.executable
    venv = Path(tempfile.gettempdir()) / ("neurocc-oldest-" + "-".join(f"{k}{v}" for k, v in sorted(mins.items())))
    vpy = venv / "bin" / "python"
    if not vpy.is_file():
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
        pip = subprocess.run([str(vpy), "-m", "pip", "install", "-q", *(f"{k}=={v}" for k, v in mins.items())],
                             capture_output=True, text=True, timeout=900)
        if pip.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            reason = f"cannot install the oldest pair here: {pip.stderr.strip().splitlines()[-1:]}"
            print(f"SKIP: {reason}")
            pytest.skip(reason)
    got = subprocess.run([str(vpy), "-c", "import numpy, onnxruntime; print(numpy.__version__, "
                          "onnxruntime.__version__)"], capture_output=True, text=True, timeout=120)
    assert got.stdout.split() == [mins["numpy"], mins["onnxruntime"]], got.stdout + got.stderr
    device = Path(shutil.copytree(bundle, tmp_path / "device" / "bundle"))
    res = run_py(device, "--selftest", python=str(vpy), cwd=tmp_path / "device")
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr
