"""Kills during compile and deploy (issue 13): an existing output is intact or fully replaced, and no
temporary directory survives the next run.

Deterministic kill points run in a child process that kills itself at a chosen moment (inside the
write, between the two renames of a replacement); real SIGTERM/SIGKILL at several delays run the
CLI (a few in the default run, the whole matrix under ``-m long``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc._files import atomic_directory, recover_stale
from neurocc.ir.artifact import load_artifact

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import nir

    folder = tmp_path_factory.mktemp("kill")
    rng = np.random.default_rng(1)
    lif = nir.LIF(tau=np.full(6, 0.01), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6),
                  v_reset=np.zeros(6))
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([8])}),
                                   nir.Affine(weight=rng.normal(0, 0.5, (6, 8)), bias=np.zeros(6)), lif,
                                   nir.Output(output_type={"output": np.array([6])}))
    nir.write(folder / "m.nir", graph)
    return folder / "m.nir"


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _manifest(out: Path) -> bytes:
    return (out / "manifest.json").read_bytes()


CHILD = textwrap.dedent('''
    import os, signal, sys
    from pathlib import Path
    import neurocc._files as F
    out, where = Path(sys.argv[1]), sys.argv[2]
    real_replace = os.replace
    def replace(a, b):
        real_replace(a, b)
        if where == "between-renames" and Path(b).name.startswith("." + out.name + ".old-"):
            os.kill(os.getpid(), signal.SIGKILL)
    F.os.replace = replace
    F._exchange = lambda a, b: False  # the two-rename path (systems without RENAME_EXCHANGE)
    with F.atomic_directory(out, formats=("neurocc-artifact",)) as tmp:
        (tmp / "manifest.json").write_text('{"format": "neurocc-artifact", "new": true}')
        if where == "inside":
            os.kill(os.getpid(), signal.SIGKILL)
        if where == "inside-term":
            os.kill(os.getpid(), signal.SIGTERM)
''')


def _old_dir(tmp_path: Path) -> Path:
    out = tmp_path / "art"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": "neurocc-artifact", "old": true}')
    return out


@pytest.mark.parametrize("where", ["inside", "between-renames", "inside-term"])
def test_killed_replacement_keeps_or_restores_the_old_directory(tmp_path: Path, where: str) -> None:
    out = _old_dir(tmp_path)
    before = _manifest(out)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), where], env=ENV, capture_output=True, timeout=60)
    if where == "inside-term":  # SIGTERM: the clean-up ran in the child itself
        assert proc.returncode != 0 and _leftovers(out) == [], (proc.returncode, _leftovers(out))
        assert _manifest(out) == before
        return
    assert proc.returncode == -signal.SIGKILL
    assert _leftovers(out), "a SIGKILL leaves the temporary siblings behind"
    assert (out.exists() and _manifest(out) == before) or where == "between-renames"
    recover_stale(out)  # what the next run writing `out` does first
    assert _leftovers(out) == [] and _manifest(out) == before


def test_next_run_cleans_stale_temp_and_replaces(tmp_path: Path) -> None:
    out = _old_dir(tmp_path)
    subprocess.run([sys.executable, "-c", CHILD, str(out), "between-renames"], env=ENV, timeout=60)
    assert not out.exists() and _leftovers(out)
    with atomic_directory(out, formats=("neurocc-artifact",)) as tmp:
        (tmp / "manifest.json").write_text('{"format": "neurocc-artifact", "third": true}')
    assert json.loads(_manifest(out)) == {"format": "neurocc-artifact", "third": True}
    assert _leftovers(out) == []


def test_live_writer_temp_is_not_removed(tmp_path: Path) -> None:
    out = tmp_path / "art"
    live = tmp_path / f".art.tmp-{os.getpid()}-0123abcd"
    live.mkdir()
    dead = tmp_path / ".art.tmp-999999999-0123abcd"
    dead.mkdir()
    recover_stale(out)
    assert live.exists() and not dead.exists()


def _kill_cli(args: list[str], sig: int, delay: float, cwd: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "neurocc", *args], env=ENV, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in err and "internal error" not in err, err
    return proc.returncode


def _check_kill(out: Path, before: bytes, sig: int, redo: list[str], cwd: Path) -> None:
    assert out.exists(), "the existing output was lost"
    load = load_artifact if (out / "graph.json").exists() or not (out / "run.py").exists() else None
    if _manifest(out) != before and load is not None:
        load(out)  # replaced: then completely
    if sig == signal.SIGTERM:
        assert _leftovers(out) == [], _leftovers(out)
    subprocess.run([sys.executable, "-m", "neurocc", *redo], env=ENV, cwd=cwd, check=True, capture_output=True,
                   timeout=300)
    assert _leftovers(out) == []


KILLS = [(signal.SIGTERM, 1.5)]  # SIGKILL: the deterministic kill points above, and the long matrix
LONG_KILLS = [(s, d) for s in (signal.SIGTERM, signal.SIGKILL) for d in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)]


def _compile_kills(model: Path, tmp_path: Path, kills: list[tuple[int, float]]) -> None:
    out = tmp_path / "art"
    neurocc.compile(model, "emulator", out)
    args = ["compile", str(model), "--target", "emulator", "-o", str(out)]
    for sig, delay in kills:
        before = _manifest(out)
        _kill_cli(args, sig, delay, tmp_path)
        _check_kill(out, before, sig, args, tmp_path)


def test_compile_killed(model: Path, tmp_path: Path) -> None:
    _compile_kills(model, tmp_path, KILLS)


@pytest.mark.long
def test_compile_killed_matrix(model: Path, tmp_path: Path) -> None:
    _compile_kills(model, tmp_path, LONG_KILLS)


def _deploy_kills(model: Path, tmp_path: Path, kills: list[tuple[int, float]]) -> None:
    art = neurocc.compile(model, "edge-cpu", tmp_path / "art")
    bundle = tmp_path / "bundle"
    args = ["deploy", str(art), "-o", str(bundle)]
    subprocess.run([sys.executable, "-m", "neurocc", *args], env=ENV, check=True, capture_output=True, timeout=300)
    for sig, delay in kills:
        before = _manifest(bundle)
        _kill_cli(args, sig, delay, tmp_path)
        assert bundle.exists() and (_manifest(bundle) == before or (bundle / "run.py").exists())
        _check_kill(bundle, before, sig, args, tmp_path)


def test_deploy_killed(model: Path, tmp_path: Path) -> None:
    _deploy_kills(model, tmp_path, [(signal.SIGTERM, 2.0)])


@pytest.mark.long
def test_deploy_killed_matrix(model: Path, tmp_path: Path) -> None:
    _deploy_kills(model, tmp_path, LONG_KILLS)
