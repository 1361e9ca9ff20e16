"""`plan` counts operations the way each backend executes them (events vs dense MACs), marks the
arithmetic-only CPU energy as a lower bound, takes --steps/--rate/--dt, measured activity from
calibration data or a compiled artifact, and an ANN with calibration data."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.errors import InputError
from neurocc.runtime.plan import Activity, format_plan, plan
from neurocc.targets import Energy
from test_partition import dense_chain, target

REPO = Path(__file__).resolve().parents[1]


def test_events_versus_dense_macs_by_hand():
    g = dense_chain(20, 30, 10)          # synapses: in->l0 600, l0->l1 300; neurons 40
    chip = dataclasses.replace(target("chip", neurons_per_core=16, cores_per_chip=8, chips=1),
                               energy=Energy(pj_per_synop=2.0, pj_per_neuron_update=5.0, step_time_s=1e-3))
    cpu = dataclasses.replace(target("cpu"), backend="edge-cpu", energy=Energy(pj_per_synop=0.5))
    act = Activity(steps=10, rate=0.5, rates={"l0": 0.2})  # the input at the assumed 0.5, l0 measured 0.2
    rows = {r.target: r for r in plan(g, {"chip": chip, "cpu": cpu}, activity=act)}
    assert rows["chip"].ops == "events" and rows["chip"].synops == 0.5 * 10 * 600 + 0.2 * 10 * 300
    assert rows["cpu"].ops == "dense" and rows["cpu"].synops == 10 * 900       # every synapse every step
    assert rows["cpu"].lower_bound and not rows["chip"].lower_bound
    assert rows["cpu"].energy_j == pytest.approx(9000 * 0.5e-12)
    text = format_plan(list(rows.values()))
    assert "dense MACs" in text and "≥ " in text and "lower bound" in text
    graded = Activity(steps=10, rate=0.1, graded=frozenset({"in"}))  # a graded input: every element, every step
    (row,) = plan(g, {"chip": chip}, activity=graded)
    assert row.synops == 1.0 * 10 * 600 + 0.1 * 10 * 300


def test_dt_sets_a_real_time_targets_latency():
    g = dense_chain(8, 4)
    rt = dataclasses.replace(target("rt"), energy=Energy(step_time_s=1e-3))    # step time = its dt
    (row,) = plan(g, {"rt": rt}, steps=50, dt=2e-3)
    assert row.latency_s == pytest.approx(50 * 2e-3)


@pytest.mark.long   # ~17 s: the ANN conversion and its sweep on 2 loaded cores
def test_measured_activity_of_an_ann_with_calibration_data():
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    x = (load_digits().data[:40] / 16.0).astype(np.float32)
    torch.manual_seed(0)
    ann = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    with pytest.raises(InputError, match="--calibration"):
        neurocc.plan(ann, ["loihi1"], input_shape=(64,))
    rows = neurocc.plan(ann, ["loihi1", "edge-cpu"], calibration={"x": x}, steps=32, input_shape=(64,))
    loihi, cpu = rows
    assert "measured on 40 calibration samples" in loihi.activity
    assert cpu.synops == 32 * (64 * 32 + 32 * 10)
    # events: the graded input sends every non-zero pixel every step; the hidden IF layer at its
    # rate measured by running the converted network (the reference) on the same data
    hidden = loihi.synops - np.mean(x != 0) * 32 * 64 * 32
    assert 0 < hidden < 32 * 32 * 10   # a rate strictly between silent and firing every step


def test_cli_plan_of_an_artifact_uses_its_measured_activity(tmp_path, nir_paper):
    env = {"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "neurocc", *a], cwd=tmp_path, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    spikes = (np.random.default_rng(0).random((40, 8, 1)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "cal.npz", x=spikes)
    r = run("compile", str(nir_paper / "lif_norse.nir"), "--target", "loihi2", "-o", "art", "--dt", "1e-4",
            "--calibration", "cal.npz")
    assert r.returncode == 0, r.stderr
    r = run("plan", "art", "--target", "loihi1,edge-cpu")
    assert r.returncode == 0, r.stderr
    assert "40 steps; activity measured on 8 calibration samples" in r.stdout and "dense MACs" in r.stdout
    r = run("plan", str(nir_paper / "lif_norse.nir"), "--target", "spinnaker", "--steps", "50", "--rate", "0.05",
            "--dt", "2e-3")
    assert r.returncode == 0, r.stderr
    assert "50 steps; assumed activity 0.05" in r.stdout and "100 ms" in r.stdout
