"""The measured cost in `evaluate`, `report` and `plan --data`, on a small converted ANN compiled for
the emulator target (Loihi numerics): each figure is checked against an independent path (one
direct `measure` of the same encoded samples, or the plan's own event formula)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import neurocc
from neurocc import cli
from neurocc.ir.artifact import load_artifact
from neurocc.ir.encoding import encode
from neurocc.runtime.evaluate import METRIC_BATCH, artifact_encoding
from neurocc.runtime.metrics import measure
from neurocc.runtime.run import latency, prepare_inputs

N_TEST = METRIC_BATCH + 6          # two recorded batches: the per-sample figures are merged


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 4))
    rng = np.random.default_rng(0)
    x = rng.random((150 + N_TEST, 8)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).argmax(1).numpy()
    root = tmp_path_factory.mktemp("metrics")
    out = neurocc.compile(net, "emulator", root / "art", calibration={"x": x[:150], "y": y[:150]}, timesteps=12,
                          input_shape=(8,))
    np.savez(root / "test.npz", x=x[150:150 + N_TEST], y=y[150:150 + N_TEST])
    return Path(out), root / "test.npz"


def _direct(path: Path, data: Path):
    """The same samples encoded as evaluate encodes them, measured in one run."""
    a = load_artifact(path)
    x = np.load(data)["x"]
    enc = artifact_encoding(a.manifest)
    xs = encode(x, enc, enc.timesteps + latency(a.graph))
    return measure(a.graph, prepare_inputs(a, {"input": xs}, "emulator"))


def test_evaluate_prints_and_returns_the_metrics(art, capsys, tmp_path: Path) -> None:
    path, data = art
    assert cli.main(["evaluate", str(path), "--data", str(data), "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "synaptic ops" in text and "activation sparsity" in text and "energy estimate" in text
    doc = json.loads((tmp_path / "r.json").read_text())
    got, ref = doc["metrics"], _direct(path, data)
    assert got["samples"] == ref.samples == N_TEST and got["steps"] == ref.steps
    for k in ("acs", "macs", "dense_ops", "skipped_silent", "skipped_zero_weight", "spikes", "activation_sparsity"):
        assert got[k] == pytest.approx(getattr(ref, k)), k
    assert got["macs"] > 0 and got["acs"] > 0          # graded input current, binary hidden spikes
    assert doc["energy"]["estimate"] is True and doc["energy"]["joules"] is None   # emulator: no figures
    assert cli.main(["evaluate", str(path), "--data", str(data), "--no-metrics"]) == 0
    assert "synaptic ops" not in capsys.readouterr().out


def test_plan_data_uses_the_measured_activity(art) -> None:
    """On an all-dense network the plan's events (rate · steps · synapses per connection) are the
    effective operations plus those skipped for zero weights: every active input meets every synapse."""
    path, data = art
    row = neurocc.plan(path, ["loihi1"], data=data)[0]
    ref = _direct(path, data)
    assert "emulator, integer network" in row.activity and row.steps == ref.steps
    assert row.synops == pytest.approx(ref.acs + ref.macs + ref.skipped_zero_weight)


def test_plan_data_needs_an_artifact(tmp_path: Path) -> None:
    np.savez(tmp_path / "t.npz", x=np.zeros((2, 3)), y=np.zeros(2, int))
    with pytest.raises(neurocc.InputError, match="not one") as err:
        neurocc.plan(nn.Sequential(nn.Linear(3, 2)), ["loihi1"], data=tmp_path / "t.npz", input_shape=(3,))
    assert "--calibration" in str(err.value)


def test_report_shows_the_measured_cost(art) -> None:
    from neurocc.runtime.report import write_report
    from neurocc.runtime.report.data import RATE_SAMPLES, SEED
    from neurocc.runtime.validate import sample_inputs

    path, _ = art
    page = write_report(path, backends=["emulator"])
    summary = (page.parent / "summary.txt").read_text()
    assert "cost per sample" in summary and "Measured cost" in page.read_text()
    a = load_artifact(path)
    inputs, _ = sample_inputs(a, RATE_SAMPLES, seed=SEED)
    ref = measure(a.graph, prepare_inputs(a, inputs, "emulator"))
    from neurocc.runtime.plan import _si

    assert f"{_si(ref.synops, '')} synaptic ops" in summary


def test_sigma_delta_artifact_counts_graded_messages(art, tmp_path: Path) -> None:
    """The same ANN converted to sigma-delta neurons: no binary spike is sent, every message is
    graded and every synaptic operation a multiply-accumulate; evaluate's figures equal a direct
    measure of the same samples."""
    path, data = art
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 4))
    x = np.load(path.parent / "test.npz")["x"]
    sd = neurocc.compile(net, "emulator", tmp_path / "sd", calibration={"x": x}, encoding="sigma-delta",
                         input_shape=(8,))
    got = neurocc.evaluate(sd, data, metrics=True)["metrics"]
    ref = _direct(Path(sd), data)
    assert got["acs"] == ref.acs == 0 and got["spikes"] == ref.spikes == 0
    assert got["macs"] == pytest.approx(ref.macs) and ref.macs > 0
    assert got["graded_events"] == pytest.approx(ref.graded_events) and ref.graded_events > 0
