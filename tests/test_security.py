"""No code execution from model or data files (issue 13): payload files for every unpickling path.

Each payload creates a marker file when unpickled or evaluated. Against plain ``torch.export.load``
the payloads marked LIVE do run (checked here, so the test proves something); through neurocc they
must not, and the error must be a NeuroccError naming the file.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import neurocc
from hostile.payloads import cached_plain_pt2, npy_in_npz_pickle, npz_payload, pt2_payloads, pt_payload

REPO = Path(__file__).resolve().parents[1]
LIVE = {"sample_inputs", "sample_inputs_raw_pickle", "pickled_weight", "pickled_constant", "opaque_constant",
        "legacy_weights", "sympy_expr"}  # the payloads plain torch.export.load (torch 2.13) executes
KINDS = sorted(LIVE | {"custom_obj_constant", "aotinductor"})


@pytest.fixture(scope="module")
def pt2_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("pt2")
    marker = folder / "MARKER"
    src = cached_plain_pt2()
    return src, pt2_payloads(src, folder, marker), marker


@pytest.fixture(autouse=True)
def _quiet_torch_logs() -> None:
    logging.getLogger("torch").setLevel(logging.CRITICAL)


def _gone(marker: Path) -> None:
    if marker.exists():
        marker.unlink()


def test_plain_pt2_still_loads(pt2_files) -> None:
    src, _, _ = pt2_files
    graph = neurocc.load(src)
    assert [graph.nodes[n].kind for n in graph.nodes] == ["Input", "Affine", "ReLU", "Affine", "Output"]


@pytest.mark.parametrize("kind", sorted(LIVE))
def test_payload_is_live_against_plain_torch(pt2_files, kind: str) -> None:
    """The payload files are real: torch's own loader runs them (so the next tests mean something)."""
    import torch

    _, files, marker = pt2_files
    _gone(marker)
    try:
        torch.export.load(files[kind])
    except Exception:  # noqa: BLE001  (torch fails after the payload ran; only the marker matters)
        pass
    assert marker.exists(), f"{kind}: the payload did not run under torch.export.load"
    _gone(marker)


@pytest.mark.parametrize("kind", KINDS)
def test_pt2_payload_refused(pt2_files, kind: str) -> None:
    _, files, marker = pt2_files
    _gone(marker)
    for call in (lambda p: neurocc.load(p), lambda p: neurocc.plan(p, targets=["loihi2"])):
        with pytest.raises(neurocc.ModelLoadError) as err:
            call(files[kind])
        assert str(files[kind]) in str(err.value) and "trust" in str(err.value)
        assert not marker.exists(), f"{kind}: code in the archive ran"


@pytest.mark.parametrize("kind", KINDS)
def test_runtime_guard_alone_blocks_payload(pt2_files, kind: str) -> None:
    """Second layer: even without the archive check, the guarded torch.export.load runs nothing."""
    import torch

    from neurocc.compiler.frontends.torch.pt2 import Refused, guarded

    _, files, marker = pt2_files
    _gone(marker)
    with pytest.raises(Exception) as err, guarded():
        torch.export.load(files[kind])
    assert not marker.exists(), f"{kind}: code ran under the guard"
    assert isinstance(err.value, Refused) or kind in ("aotinductor", "custom_obj_constant"), repr(err.value)


def test_cli_refuses_pt2_payload_and_trust_pickle_is_explicit(pt2_files, tmp_path: Path) -> None:
    _, files, marker = pt2_files
    _gone(marker)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for cmd in (["compile", str(files["sample_inputs"]), "--target", "loihi2", "-o", str(tmp_path / "a")],):
        proc = subprocess.run([sys.executable, "-m", "neurocc", *cmd], capture_output=True, text=True, env=env,
                              timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "refuse" in proc.stderr or "would run code" in proc.stderr, proc.stderr
        assert not marker.exists()
    assert not (tmp_path / "a").exists()


def test_pt_payload_refused(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    path = pt_payload(tmp_path / "evil.pt", marker)
    for kw in ({}, {"entry": "torch.nn:Identity"}):
        with pytest.raises(neurocc.ModelLoadError):
            neurocc.load(path, **kw)
    with pytest.raises(neurocc.ModelLoadError):
        neurocc.load("torch.nn:Identity", weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("build", [npz_payload, npy_in_npz_pickle])
def test_npz_payload_refused_on_every_array_path(tmp_path: Path, build) -> None:
    from neurocc._files import read_npz
    from neurocc.runtime.evaluate import load_test_data
    from neurocc.runtime.run import load_inputs

    marker = tmp_path / "MARKER"
    path = build(tmp_path / "evil.npz", marker)
    for call in (lambda: read_npz(path, "--input"), lambda: load_inputs(path),
                 lambda: load_test_data(path, (4,)), lambda: neurocc.evaluate(tmp_path, path)):
        with pytest.raises(neurocc.NeuroccError):
            call()
    assert not marker.exists()


def test_artifact_arrays_payload_refused(tmp_path: Path) -> None:
    """An artifact whose graph arrays were replaced by an object-array .npz: refused, nothing runs."""
    import numpy as np

    marker = tmp_path / "MARKER"
    x = np.zeros((8, 4), np.float32)
    model = _mlp()
    art = neurocc.compile(model, "edge-cpu", tmp_path / "art", calibration={"x": x}, timesteps=4,
                          input_shape=(4,))
    for npz in Path(art).glob("*.npz"):
        npz_payload(npz, marker)
    with pytest.raises(neurocc.NeuroccError):
        neurocc.run(art, "emulator", {"input": np.zeros((4, 1, 4), np.float32)})
    assert not marker.exists()


def _mlp():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).eval()
