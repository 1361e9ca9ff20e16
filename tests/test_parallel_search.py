"""The accuracy-budget search and ``plan`` on Ray workers (neurocc.runtime.ray_tasks): the same
artifact, trials report and plan tables with 1 worker (in this process, no Ray) and with 2, and a
worker killed in the middle of a search is retried once, then reported by trial.

A 64-16-10 ReLU MLP trained here on scikit-learn's digits (torch) is converted at 4 timesteps for
edge-cpu with a 2-point budget: the search then needs every kind of step (measured: phase 1 fails
at 4 and 8 timesteps, per-tensor and per-channel, and passes at 16; phase 2 stops each layer at a
failing bit width), so the parallel run starts trials the sequential one never runs and must
ignore them. One local Ray instance with 2 CPUs serves the module (Ray takes several seconds to
start here); ``ray_pool.ray_instance`` leaves it running for every command.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.errors import BackendError, CompileError, InputError
from neurocc.runtime.parallel import FAULT_ENV, Layout

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray", reason="ray is not installed (requirements/base.txt)")


@pytest.fixture(scope="module")
def digits(digits_mlp: dict) -> dict:
    x, y, net = digits_mlp["x"], digits_mlp["y"], digits_mlp["net"]
    graph = neurocc.load(net, input_shape=(64,))
    return {"graph": graph, "net": net, "cal": {"x": x[:200], "y": y[:200]}}


@pytest.fixture(scope="module")
def local_ray() -> object:
    from neurocc.runtime.ray_pool import ray_instance

    with ray_instance(Layout(2)) as r:
        yield r


def _compile(digits: dict, out: Path, workers: int, budget: float = 2.0) -> Path:
    return neurocc.compile(digits["graph"], "edge-cpu", out, calibration=digits["cal"], timesteps=4,
                           accuracy_budget=budget, workers=workers)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sequential(digits: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The reference: the search in this process (--workers 1)."""
    return _files(_compile(digits, tmp_path_factory.mktemp("seq") / "a", workers=1))


def test_budget_search_same_artifact_for_1_and_2_workers(digits: dict, sequential: dict[str, bytes],
                                                         local_ray: object, tmp_path: Path) -> None:
    import json

    doc = json.loads(sequential["manifest.json"])["accuracy_budget"]
    steps = [(t["phase"], t["timesteps"], t["per_channel"], t["within"]) for t in doc["trials"] if t["phase"] == 1]
    assert steps[-1][1:] == (16, False, True) and not any(s[3] for s in steps[:-1])   # phase 1 needed 3 timesteps
    assert any(t["phase"] == 2 and not t["within"] for t in doc["trials"])                # phase 2 stopped a layer
    two = _files(_compile(digits, tmp_path / "b", workers=2))
    assert sorted(two) == sorted(sequential)
    for name, data in sequential.items():
        assert two[name] == data, name
    # an unreachable budget fails with the same trials listed
    msgs = []
    for w in (1, 2):
        with pytest.raises(CompileError) as err:
            _compile(digits, tmp_path / f"u{w}", workers=w, budget=0.1)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1] and "cannot be met" in msgs[0]


def test_budget_worker_killed_midway_is_retried_then_reported(digits: dict, sequential: dict[str, bytes],
                                                              local_ray: object, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Task 4 is phase 2's second trial (tasks 0-2: phase 1's timesteps 4, 8, 16; then layer '1' at
    6, 4, 3, 2 bits), which the search needs: a worker dying on it once changes nothing; dying every
    time stops the compile with the trial named and nothing written."""
    marker = tmp_path / "died-once"
    monkeypatch.setenv(FAULT_ENV, f"4:{marker}")
    again = _files(_compile(digits, tmp_path / "a", workers=2))
    assert marker.exists(), "the worker was meant to die on task 4"
    assert again == sequential
    monkeypatch.setenv(FAULT_ENV, "4")
    with pytest.raises(BackendError, match="a worker died while running accuracy-budget trial with layer '1' at "
                                           "4-bit weights, and again on a fresh worker") as err:
        _compile(digits, tmp_path / "b", workers=2)
    assert "--workers 1" in str(err.value)
    assert not (tmp_path / "b").exists()


def test_sigma_delta_fraction_search_same_for_1_and_2_workers(digits: dict, local_ray: object,
                                                              tmp_path: Path) -> None:
    out = {}
    for w in (1, 2):
        art = neurocc.compile(digits["graph"], "loihi2", tmp_path / f"w{w}", calibration=digits["cal"],
                              encoding="sigma-delta", accuracy_budget=0.0, workers=w)   # 3 of 6 fractions
        out[w] = _files(Path(art))
    assert out[2] == out[1]


def test_plan_many_models_same_for_1_and_2_workers(digits: dict, sequential: dict[str, bytes], local_ray: object,
                                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`neurocc plan A B --target edge-cpu,loihi2,spinnaker`: one table per model, in order; the
    same text with --workers 2 ((model, target) pairs as Ray tasks)."""
    from neurocc.cli import main

    model = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(digits["net"], (torch.zeros(1, 64),)), model)
    art = tmp_path / "art"
    art.mkdir()
    for name, data in sequential.items():
        (art / name).parent.mkdir(parents=True, exist_ok=True)
        (art / name).write_bytes(data)
    np.savez(tmp_path / "cal.npz", **digits["cal"])
    args = ["plan", str(model), str(art), "--target", "edge-cpu,loihi2,spinnaker",
            "--calibration", str(tmp_path / "cal.npz")]
    texts = []
    for extra in ([], ["--workers", "2"]):
        assert main(args + extra) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]
    assert texts[0].count("target     backend") == 2 and texts[0].startswith(f"{model}:\n")
    assert f"\n\n{art}:\n" in texts[0]


def test_cli_compile_with_2_workers_writes_the_same_artifact(digits: dict, tmp_path: Path) -> None:
    """The real CLI with its own Ray (`compile --accuracy-budget 2 --workers 2`) writes the artifact
    that `--workers 1` writes, file by file, and keeps Ray's messages (a cancelled speculative
    trial, the raylet's) off the terminal."""
    import os
    import subprocess
    import sys

    model = tmp_path / "mlp.pt2"
    torch.export.save(torch.export.export(digits["net"], (torch.zeros(1, 64),)), model)
    np.savez(tmp_path / "cal.npz", **digits["cal"])
    args = [str(model), "--target", "edge-cpu", "--calibration", str(tmp_path / "cal.npz"), "--timesteps", "4",
            "--accuracy-budget", "2", "--no-source-check"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "neurocc", "compile", *args, "-o", str(tmp_path / "two"),
                           "--workers", "2"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for noise in ("Unhandled error", "Traceback", "raylet", "TaskCancelled"):
        assert noise not in proc.stderr + proc.stdout, noise
    from neurocc.cli import main

    assert main(["compile", *args, "-o", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert _files(tmp_path / "two") == _files(tmp_path / "one")


def test_bad_worker_counts_are_clear_errors(digits: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    from neurocc.cli import main

    for argv in (["compile", "x.nir", "--target", "loihi2", "-o", str(tmp_path / "o"), "--workers", "0"],
                 ["plan", "x.nir", "--workers", "two"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert "is not a positive integer" in capsys.readouterr().err
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InputError, match="workers must be a positive integer") as err, \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _compile(digits, tmp_path / "never", workers=bad)   # type: ignore[arg-type]
        assert err.value.where == "--workers"
    assert not (tmp_path / "never").exists()
