"""The ``neurocc`` command line as a user runs it (a subprocess of ``python -m neurocc``), plus
in-process checks of its error paths (exit statuses 1, 2, 3 and --debug)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc import cli

REPO = Path(__file__).resolve().parents[1]
NAMES = ["loihi2", "loihi1", "spinnaker", "spinnaker2", "edge-cpu", "edge-cpu-f32", "emulator"]
USER_TARGETS = """\
extends: builtin
targets:
  tinychip:
    description: a user-added chip
    backend: emulator
    numerics: int8
    dt: 0.002
    limits: {chips: 1, cores_per_chip: 2, neurons_per_core: 64}
"""


def neurocc_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _needs(module: str, attr: str) -> None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        mod = None
    if mod is None or not hasattr(mod, attr):
        print(f"SKIP reason: {module}.{attr} is not in this version yet")
        pytest.skip(f"{module}.{attr} is not in this version yet")


# ----- targets -----------------------------------------------------------------------------------
def test_targets_table(tmp_path: Path) -> None:
    r = neurocc_cmd("targets", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for name in NAMES:
        assert f"\n{name} " in r.stdout
    assert "23.6" in r.stdout  # Loihi 1 pJ per synaptic op
    assert "Traceback" not in r.stderr


def test_targets_detail(tmp_path: Path) -> None:
    r = neurocc_cmd("targets", "spinnaker", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "123,469,792" in r.stdout and "routing_entries_per_chip" in r.stdout


def test_user_targets_file_before_or_after_the_command(tmp_path: Path) -> None:
    (tmp_path / "my.yaml").write_text(USER_TARGETS)
    for args in (["--targets", "my.yaml", "targets"], ["targets", "--targets", "my.yaml"]):
        r = neurocc_cmd(*args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "tinychip" in r.stdout and "loihi2" in r.stdout
    r = neurocc_cmd("targets", "tinychip", "--targets", "my.yaml", cwd=tmp_path)
    assert r.returncode == 0 and "a user-added chip" in r.stdout


def test_bad_targets_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(USER_TARGETS.replace("numerics: int8", "numerics: int9"))
    r = neurocc_cmd("targets", "--targets", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert "bad.yaml" in r.stderr and "line 6: targets.tinychip.numerics" in r.stderr  # 6th line of USER_TARGETS
    assert "Fix:" in r.stderr and "Traceback" not in r.stderr


def test_unknown_target(tmp_path: Path) -> None:
    r = neurocc_cmd("compile", "model.nir", "--target", "loihi3", "-o", "out", cwd=tmp_path)
    assert r.returncode == 1
    assert "unknown target 'loihi3'" in r.stderr and "did you mean 'loihi2'" in r.stderr
    assert "edge-cpu-f32" in r.stderr and "Traceback" not in r.stderr


# ----- models ------------------------------------------------------------------------------------
def _nir_counts(path: Path) -> tuple[set[str], int]:
    """Node names and spiking-neuron count read with the nir package itself (not neurocc)."""
    import nir

    graph = nir.read(str(path))
    neurons = sum(int(np.prod(np.shape(n.v_threshold))) for n in graph.nodes.values()
                  if type(n).__name__ in ("IF", "LIF", "CubaLIF"))
    return set(graph.nodes), neurons


def test_inspect_the_nir_paper_cnn(tmp_path: Path, nir_paper: Path) -> None:
    _needs("neurocc.compiler.frontends", "load")
    model = nir_paper / "cnn_sinabs.nir"
    r = neurocc_cmd("inspect", str(model), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    names, neurons = _nir_counts(model)
    table = {line.split()[1] for line in r.stdout.splitlines() if line[:3].strip().isdigit()}
    assert names <= table
    assert f"{neurons:,} neurons" in r.stdout
    assert "recurrent edges: none" in r.stdout


@pytest.mark.parametrize("target", NAMES)
def test_compile_and_run_for_every_target(tmp_path: Path, nir_paper: Path, target: str) -> None:
    """`neurocc compile` prints its tables and writes an artifact for every shipped target."""
    out = tmp_path / "art"
    r = neurocc_cmd("compile", str(nir_paper / "lif_norse.nir"), "--target", target, "--dt", "1e-4",
                    "-o", str(out), cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert f"compiled 'lif_norse' for {target}" in r.stdout
    integer = target not in ("spinnaker2", "edge-cpu-f32")  # float32 numerics: nothing is quantized
    assert ("quantization" in r.stdout) == integer, r.stdout
    assert (out / "manifest.json").is_file() and (out / "mapping.json").is_file()


def test_export_nir_round_trip(tmp_path: Path, nir_paper: Path) -> None:
    _needs("neurocc.compiler.frontends.nir", "write_nir")
    model = nir_paper / "cnn_sinabs.nir"
    r = neurocc_cmd("export-nir", str(model), "sub/out.nir", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "sub" / "out.nir"
    assert _nir_counts(out)[1] == _nir_counts(model)[1]
    assert [p.name for p in out.parent.iterdir()] == ["out.nir"]  # no temp file left
    again = neurocc_cmd("inspect", str(out), cwd=tmp_path)
    first = neurocc_cmd("inspect", str(model), cwd=tmp_path)
    total = lambda s: next(line for line in s.splitlines() if line.startswith("total:"))  # noqa: E731
    assert total(again.stdout) == total(first.stdout)


def test_missing_model_file(tmp_path: Path) -> None:
    r = neurocc_cmd("inspect", "missing.nir", cwd=tmp_path)
    assert r.returncode == 1
    assert "missing.nir" in r.stderr and "Traceback" not in r.stderr
    r = neurocc_cmd("inspect", "missing.nir", "--debug", cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_missing_and_bad_array_files(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    r = neurocc_cmd("run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", cwd=tmp_path)
    assert r.returncode == 1 and "--input x.npz: file not found" in r.stderr
    (tmp_path / "x.npz").write_text("not an archive")
    r = neurocc_cmd("run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", cwd=tmp_path)
    assert r.returncode == 1 and "not an .npz" in r.stderr and "Traceback" not in r.stderr
    np.savez(tmp_path / "test.npz", x=np.zeros((2, 3)))
    r = neurocc_cmd("evaluate", "art", "--data", "test.npz", cwd=tmp_path)
    assert r.returncode == 1 and "lacks array(s) y" in r.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert neurocc_cmd("bogus", cwd=tmp_path).returncode == 2
    assert neurocc_cmd("compile", "m.nir", cwd=tmp_path).returncode == 2  # --target and -o missing
    r = neurocc_cmd("inspect", "m.nir", "--input-shape", "a,b", cwd=tmp_path)
    assert r.returncode == 2 and "not a shape" in r.stderr


def test_every_command_has_help_with_common_options(tmp_path: Path) -> None:
    for name, *_ in cli.COMMANDS:
        text = cli.build_parser()._subparsers._group_actions[0].choices[name].format_help()  # type: ignore[union-attr]
        assert "--targets" in text and "--debug" in text, name
    r = neurocc_cmd("--version", cwd=tmp_path)
    assert r.returncode == 0 and neurocc.__version__ in r.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "neurocc"
    if not script.exists():
        print(f"SKIP reason: no console script beside {sys.executable}")
        pytest.skip("neurocc console script not installed in this environment")
    r = subprocess.run([str(script), "targets"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "loihi2" in r.stdout


# ----- error paths, in process -------------------------------------------------------------------
def test_internal_error_is_one_paragraph(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(neurocc, "load", broken)
    assert cli.main(["inspect", "x.nir"]) == 3
    err = capsys.readouterr().err
    assert "internal error in neurocc: ValueError: boom" in err and "--debug" in err
    assert "Traceback" not in err
    with pytest.raises(ValueError):
        cli.main(["inspect", "x.nir", "--debug"])


def test_missing_feature_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def future(*_: object, **__: object) -> None:
        neurocc.feature("neurocc.not_yet_written", "thing", "a future feature")

    monkeypatch.setattr(neurocc, "load", future)
    assert cli.main(["inspect", "x.nir"]) == 2
    err = capsys.readouterr().err
    assert "a future feature is not available yet" in err and "Traceback" not in err
