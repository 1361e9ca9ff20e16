"""Regression tests for the failures listed in issue 13: each bad input gives a one-paragraph neurocc
error naming the file/key and the fix (exit 1 from the CLI), never a foreign exception."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc._files import atomic_directory, atomic_path, check_output_path

REPO = Path(__file__).resolve().parents[1]


def _nir(path: Path, *, w: float = 0.3, thr: float = 1.0, meta: dict | None = None) -> Path:
    import nir

    g = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([4])}),
                               nir.Affine(weight=np.full((3, 4), w), bias=np.zeros(3)),
                               nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3),
                                       v_threshold=np.full(3, thr), v_reset=np.zeros(3)),
                               nir.Output(output_type={"output": np.array([3])}))
    if meta:
        g.metadata.update(meta)
    nir.write(path, g)
    return path


@pytest.mark.parametrize("text, words", [
    ("version: 1\ntargets: &a\n  x: *a\n", "alias"),
    ("version: 1\ntargets:\n  - loihi2\n", "mapping"),
    ("extends: builtin\ntargets:\n  big:\n    description: x\n    backend: emulator\n    numerics: int8\n"
     "    dt: 0.001\n    limits:\n      chips: " + "9" * 400 + "\n", "too large"),
    ("extends: builtin\ntargets:\n  nan:\n    description: x\n    backend: emulator\n    numerics: int8\n"
     "    dt: .nan\n", "finite"),
])
def test_bad_targets_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(neurocc.TargetsError) as err:
        neurocc.load_targets(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_nan_weights_warned_at_load_and_refused_at_compile(tmp_path: Path) -> None:
    path = _nir(tmp_path / "nan.nir", w=float("nan"))
    with pytest.warns(UserWarning, match="NaN"):
        neurocc.load(path)
    with pytest.raises(neurocc.CompileError, match="node 'affine'"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        neurocc.compile(path, "emulator", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zero_threshold_warned(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="thresholds of 0"):
        neurocc.load(_nir(tmp_path / "z.nir", thr=0.0))


def test_text_dataset_in_nir(tmp_path: Path) -> None:
    import h5py

    path = _nir(tmp_path / "s.nir")
    with h5py.File(path, "r+") as f:
        name = next(k for k in f["node/nodes"] if "affine" in k)
        del f[f"node/nodes/{name}/weight"]
        f[f"node/nodes/{name}/weight"] = np.bytes_(b"EULER")
    with pytest.raises(neurocc.ModelLoadError, match="text"):
        neurocc.load(path)


@pytest.mark.parametrize("dt", [float("nan"), float("inf"), -1.0, 0.0, 1e-300, 1e300])
def test_bad_dt(tmp_path: Path, dt: float) -> None:
    with pytest.raises(neurocc.InputError, match="dt must be"):
        neurocc.compile(_nir(tmp_path / "m.nir"), "emulator", tmp_path / "out", dt=dt)


@pytest.mark.parametrize("kw", [{"method": "EULER"}, {"timesteps": 10 ** 12}, {"timesteps": -3}])
def test_bad_compile_options_keep_the_existing_artifact(tmp_path: Path, kw: dict) -> None:
    model = _nir(tmp_path / "m.nir")
    art = neurocc.compile(model, "emulator", tmp_path / "art")
    before = (art / "manifest.json").read_bytes()
    with pytest.raises(neurocc.InputError):
        neurocc.compile(model, "emulator", art, **kw)
    assert (art / "manifest.json").read_bytes() == before


def test_huge_steps_say_what_is_needed(tmp_path: Path) -> None:
    art = neurocc.compile(_nir(tmp_path / "m.nir"), "emulator", tmp_path / "art")
    x = np.zeros((2, 1, 4), np.float32)
    with pytest.raises(neurocc.InputError, match=r"(?s)would need .*TiB.*NEUROCC_MAX_ARRAY_BYTES"):
        neurocc.run(art, "emulator", {"input": x}, steps=10 ** 12)


def test_output_paths(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "keep").write_text("user data")
    for bad in (tmp_path / "file", tmp_path / "dir", "/proc/neurocc-out", tmp_path / "a\x00b", ""):
        with pytest.raises(neurocc.NeuroccError), atomic_directory(bad, formats=("x",)):
            pass
    with pytest.raises(neurocc.OutputError, match="directory"), atomic_path(tmp_path / "dir"):
        pass
    with pytest.raises(neurocc.OutputError, match="UTF-8"):
        check_output_path(os.fsdecode(b"\xff\xfe"))
    assert (tmp_path / "dir" / "keep").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]


def test_user_factory_error_is_reported_as_user_code(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text("def broken():\n    return 1 / 0\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "neurocc", "inspect", "mymodels:broken"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "ZeroDivisionError" in proc.stderr and "your code" in proc.stderr and "internal" not in proc.stderr


@pytest.mark.parametrize("name", ["a\x00b", "\udcff", "x" * 300])
def test_bad_node_names_refused_before_writing(tmp_path: Path, name: str) -> None:
    import nir

    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}),
                            name: nir.Affine(weight=np.full((3, 4), 0.3), bias=np.zeros(3)),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", name), (name, "output")])
    with pytest.raises(neurocc.GraphError, match="node name"):
        neurocc.compile(g, "emulator", tmp_path / "art")
    assert list(tmp_path.iterdir()) == []


def test_damaged_manifest(tmp_path: Path) -> None:
    import json

    art = neurocc.compile(_nir(tmp_path / "m.nir"), "emulator", tmp_path / "art")
    doc = json.loads((art / "manifest.json").read_text())
    for key, value in (("inputs", [3]), ("target", "x"), ("files", None), ("quantization", "../../etc/passwd")):
        bad = dict(doc, **{key: value})
        (art / "manifest.json").write_text(json.dumps(bad))
        with pytest.raises(neurocc.NeuroccError, match=key):
            neurocc.run(art, "emulator", {"input": np.zeros((2, 1, 4), np.float32)})
