"""Sample batches on Ray workers (neurocc.runtime.parallel): the same answer for any layout, and a
worker that dies is retried once or reported by sample range, with nothing written.

A small digits MLP (scikit-learn digits, trained here with torch) is compiled for loihi2; the
reference for every comparison is the same command run in this process with one batch
(``workers=1``: no Ray). One local Ray instance with 2 CPUs serves the in-process tests (Ray takes
~6-10 s to start on this machine); one CLI test starts and stops its own.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.errors import BackendError
from neurocc.runtime.evaluate import evaluate
from neurocc.runtime.parallel import FAULT_ENV, Layout, Task, chunks, resolve_workers

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray", reason="ray is not installed (requirements/base.txt)")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, digits_mlp: dict) -> dict:
    """A 64-16-10 ReLU MLP trained on digits, compiled for loihi2 (8 timesteps); 8 test digits."""
    x, y, net = digits_mlp["x"], digits_mlp["y"], digits_mlp["net"]
    root = tmp_path_factory.mktemp("parallel")
    # netx cannot express fractional weights (the Lava-process path runs it): a UserWarning, issued
    # once per graph name and process (loihi/emit.py), so not on every run of this fixture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        art = neurocc.compile(net, "loihi2", root / "loihi2", calibration={"x": x[:200], "y": y[:200]},
                              timesteps=8, input_shape=(64,))
    return {"art": Path(art), "data": {"x": x[1000:1008], "y": y[1000:1008]}, "root": root}


@pytest.fixture(scope="module")
def local_ray() -> object:
    """One quiet local Ray instance (2 CPUs) for this module's in-process tests."""
    from neurocc.runtime.ray_pool import ray_instance

    with ray_instance(Layout(2)) as r:
        yield r


def test_layout_defaults_and_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_workers(None, ["emulator"]).workers == 1             # software backends stay here
    assert resolve_workers(None, ["loihi"], samples=450).workers == (os.cpu_count() or 1)
    assert resolve_workers(None, ["loihi"], samples=4).workers == 1     # too few samples to pay for Ray
    assert resolve_workers(3, ["emulator"]).workers == 3
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_workers(None, ["emulator"]).address == "10.0.0.1:6379"
    # every sample exactly once, in order, whatever the layout
    for n, layout, size in ((10, Layout(1), 3), (10, Layout(2), None), (1, Layout(4), 256), (450, Layout(2), 256)):
        ranges = chunks(n, layout, size)
        assert [i for a, b in ranges for i in range(a, b)] == list(range(n))


def test_bad_worker_count_is_a_neurocc_error() -> None:
    from neurocc.errors import InputError

    with pytest.raises(InputError, match="--workers"):
        resolve_workers(0, ["loihi"])


def test_unreachable_cluster_is_a_neurocc_error(digits: dict) -> None:
    """A --ray-address nobody listens at fails at once with the address and the fix (Ray itself
    would wait a minute, then exit the process). Runs before this module starts its own Ray."""
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process: neurocc would use it")
    with pytest.raises(BackendError, match="cannot join the Ray cluster at '127.0.0.1:1'"):
        evaluate(digits["art"], digits["data"], "emulator", workers=2, ray_address="127.0.0.1:1")


@pytest.mark.lava
def test_evaluate_same_for_any_layout(digits: dict, local_ray: object, lava_ok: None) -> None:
    """emulator and loihi: 1 worker in one batch == 2 Ray workers in batches of 1 (and of 3)."""
    for backend, sizes in (("emulator", (1, 3)), ("loihi", (1,))):
        one = neurocc.evaluate(digits["art"], digits["data"], backend, workers=1)
        for size in sizes:
            many = evaluate(digits["art"], digits["data"], backend, batch_size=size, workers=2)
            assert many == one, (backend, size)
        assert one["n"] == 8


@pytest.mark.lava
def test_validate_same_for_any_layout_and_worker_retried(digits: dict, local_ray: object, lava_ok: None,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """validation.json (mismatches, first divergence, overflow) is the same from 1 worker and from
    2 workers in batches of 1 sample, also when a worker dies once mid-run (its batch is redone)."""
    kw = {"backends": ["emulator", "loihi"], "samples": 4}
    one = neurocc.validate(digits["art"], json_path=tmp_path / "one.json", workers=1, **kw)
    assert [r["backend"] for r in one["results"]] == ["emulator", "loihi"]
    assert one["results"][1]["compared"] > 0
    from neurocc.runtime.validate import validate_artifact

    two = validate_artifact(digits["art"], json_path=tmp_path / "two.json", workers=2, batch_size=1, **kw)
    assert two == one
    assert (tmp_path / "two.json").read_text() == (tmp_path / "one.json").read_text()
    marker = tmp_path / "died-once"
    monkeypatch.setenv(FAULT_ENV, f"5:{marker}")     # task 5: loihi on sample 1 (4 tasks per backend)
    again = validate_artifact(digits["art"], json_path=tmp_path / "again.json", workers=2, batch_size=1, **kw)
    assert marker.exists(), "the worker was meant to die on task 5"
    assert again == one


def test_worker_that_keeps_dying_is_reported_by_range(digits: dict, local_ray: object, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = chunks(8, Layout(2), 4)[1]                   # task 1: 4 batches per worker
    monkeypatch.setenv(FAULT_ENV, "1")                 # task 1 ends its worker every time
    with pytest.raises(BackendError, match="worker died while running " + re.escape(Task(1, "emulator", a, b).where())
                       ) as err:
        evaluate(digits["art"], digits["data"], "emulator", batch_size=4, workers=2)
    assert "--workers 1" in str(err.value)


def test_cli_killed_worker_writes_nothing(digits: dict, tmp_path: Path) -> None:
    """The real CLI with its own Ray: a worker dying on every try stops `validate` with exit 1, a
    one-paragraph message naming the samples, no validation.json, and Ray's own noise kept off
    the terminal."""
    report = tmp_path / "validation.json"
    env = dict(os.environ, PYTHONPATH=str(REPO), **{FAULT_ENV: "1"})
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "neurocc", "validate", str(digits["art"]), "--backends", "emulator",
                           "--samples", "4", "--workers", "2", "--json", str(report)],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "a worker died while running backend 'emulator', sample 1, and again on a fresh worker" in proc.stderr
    assert "Traceback" not in proc.stderr and "raylet" not in proc.stderr + proc.stdout
    assert not report.exists()
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.long
@pytest.mark.pynn
def test_nest_validate_and_evaluate_same_for_any_layout(digits: dict, digits_mlp: dict, local_ray: object,
                                                        tmp_path: Path) -> None:
    """The spinnaker backend (pyNN.nest: a kept process per batch series, in this process and per
    Ray worker): 1 worker == 2 workers."""
    from neurocc.runtime.validate import validate_artifact

    x, y = digits_mlp["x"], digits_mlp["y"]
    art = neurocc.compile(digits_mlp["net"],
                          "spinnaker", tmp_path / "spinnaker", calibration={"x": x[:200], "y": y[:200]},
                          timesteps=8, input_shape=(64,))
    kw = {"backends": ["spinnaker"], "samples": 4}
    one = validate_artifact(art, json_path=tmp_path / "one.json", workers=1, **kw)
    two = validate_artifact(art, json_path=tmp_path / "two.json", workers=2, batch_size=1, **kw)
    assert two == one and one["results"][0]["compared"] > 0
    assert evaluate(art, digits["data"], "spinnaker", workers=1) == evaluate(art, digits["data"], "spinnaker",
                                                                             workers=2, batch_size=2)




@pytest.mark.lava
def test_kept_lava_worker_serves_many_calls(digits: dict, lava_ok: None) -> None:
    """Inside ``sessions()`` (a Ray worker's life) the loihi backend runs every call in one kept
    Lava process, with the same outputs as a fresh worker per call; it ends with the block."""
    from neurocc.backends import sessions
    from neurocc.backends.loihi import runner
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.run import run_artifact
    from neurocc.runtime.validate import sample_inputs

    inputs, _ = sample_inputs(load_artifact(digits["art"]), 2)
    fresh = run_artifact(digits["art"], "loihi", inputs, record=True)
    with sessions():
        first = run_artifact(digits["art"], "loihi", inputs, record=True)
        kept = runner._KEPT["worker"]
        second = run_artifact(digits["art"], "loihi", inputs, record=True)
        assert runner._KEPT["worker"] is kept and kept.alive()
    assert "worker" not in runner._KEPT and not kept.alive()
    for got in (first, second):
        assert sorted(got) == sorted(fresh)
        for k in fresh:
            np.testing.assert_array_equal(got[k], fresh[k], err_msg=k)


def test_sigterm_during_a_ray_wait_exits_143(digits: dict, local_ray: object, lava_ok: None) -> None:
    """SIGTERM while the driver waits on its Ray workers: Ray's wait turns neurocc's Terminated
    into a plain KeyboardInterrupt, and the command still reports SIGTERM (143, not Ctrl-C's 130);
    the workers are ended and no result is returned."""
    import signal
    import threading

    from neurocc._signals import exit_code, terminate_cleanly

    # 64 one-digit batches: a Lava start per batch (~0.3 s even with lanes) keeps the workers busy
    # well past the signal, which comes while the actors are still starting Lava or running batches
    data = {k: np.concatenate([v] * 8) for k, v in digits["data"].items()}
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    with terminate_cleanly():
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt) as err:
                evaluate(digits["art"], data, "loihi", batch_size=1, workers=2)
        finally:
            timer.cancel()
    print(f"raised {type(err.value).__name__}")
    assert exit_code(err.value) == 143
