"""Scoring a spiking model on spike data, as an snnTorch user does (docs/user-guide.md, "Scoring
a spiking model"): a tiny snnTorch net trained on rate-coded scikit-learn digits, compiled with
its own spike data, evaluated with ``neurocc evaluate --data test.npz`` on (samples, steps, 64)
spikes; the trained model, run by snnTorch itself, is the judge of the float reference."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.errors import InputError

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch", reason="snntorch is not installed")
nn = torch.nn
REPO = Path(__file__).resolve().parents[1]
T = 16


class DigitsSNN(nn.Module):
    """The snnTorch tutorial shape: Linear → Leaky → Linear → Leaky, one step per call."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.lif1 = snn.Leaky(beta=0.9, reset_mechanism="zero")
        self.fc2 = nn.Linear(32, 10)
        self.lif2 = snn.Leaky(beta=0.9, reset_mechanism="zero")

    def forward(self, x, mem1=None, mem2=None):  # type: ignore[no-untyped-def]
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2


def snntorch_run(net: DigitsSNN, xs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Output spikes and membranes (steps, batch, 10) of ``xs`` (steps, batch, 64), by snnTorch."""
    mem1, mem2 = torch.zeros(xs.shape[1], 32), torch.zeros(xs.shape[1], 10)
    spikes, mems = [], []
    for x in xs:
        spk, mem1, mem2 = net(x, mem1, mem2)
        spikes.append(spk)
        mems.append(mem2)
    return torch.stack(spikes).detach().numpy(), torch.stack(mems).detach().numpy()


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    spikes = (rng.random((len(d.data), T, 64)) < d.data[:, None, :] / 16.0).astype(np.float32)
    train, test = slice(0, 800), slice(1597, None)   # 200 test samples
    torch.manual_seed(0)
    net = DigitsSNN()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    xt, yt = torch.from_numpy(spikes[train]).transpose(0, 1), torch.from_numpy(d.target[train])
    for _ in range(8):
        for i in range(0, 800, 100):
            mem1, mem2 = torch.zeros(100, 32), torch.zeros(100, 10)
            count = 0
            for x in xt[:, i:i + 100]:
                spk, mem1, mem2 = net(x, mem1, mem2)
                count = count + spk
            loss = nn.functional.cross_entropy(count, yt[i:i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    root = tmp_path_factory.mktemp("digits_snn")
    x_test, y_test = spikes[test], d.target[test]
    np.savez(root / "test.npz", x=x_test, y=y_test)
    np.savez(root / "cal.npz", x=spikes[train][:100].transpose(1, 0, 2), y=d.target[train][:100])
    art = neurocc.compile(net.eval(), "loihi2", root / "art", calibration=root / "cal.npz", input_shape=(64,))
    with torch.no_grad():
        out, mem = snntorch_run(net, torch.from_numpy(x_test).transpose(0, 1))
    return {"root": root, "art": art, "x": x_test, "y": y_test, "spikes": out, "mem": mem}


def _confusion(y: np.ndarray, pred: np.ndarray) -> list[list[int]]:
    m = np.zeros((10, 10), int)
    for a, b in zip(y, pred):
        m[a, b] += 1
    return m.tolist()


def test_reference_scores_sequences_as_snntorch_does(digits):
    y, spikes = digits["y"], digits["spikes"]
    res = neurocc.evaluate(digits["art"], digits["root"] / "test.npz", backend="reference")
    pred = spikes.sum(0).argmax(1)
    assert res["accuracy"] > 0.6, res["accuracy"]          # the net learned something
    assert res["n"] == 200 and res["readout"] == "count" and res["latency_steps"] == 0
    assert res["confusion"] == _confusion(y, pred)        # every sample as snnTorch predicts it
    assert res["accuracy"] == pytest.approx(np.mean(pred == y))
    # first spike: earliest output neuron wins, its count breaks ties (snnTorch's spikes, scored here)
    fired = spikes > 0
    first = np.where(fired.any(0), fired.argmax(0), T)
    first_pred = np.array([max(range(10), key=lambda k: (-first[b, k], fired[:, b, k].sum())) for b in range(200)])
    assert neurocc.evaluate(digits["art"], digits["root"] / "test.npz", backend="reference",
                            readout="first")["confusion"] == _confusion(y, first_pred)
    # membrane: the largest membrane over the window, θ = 1. The reference keeps snnTorch's reset
    # timing (issue 12: Leaky's zero reset acts at the next step), so its v is snnTorch's mem as
    # snnTorch returns it, before the reset
    mem_pred = digits["mem"].max(0).argmax(1)
    assert neurocc.evaluate(digits["art"], {"x": digits["x"], "y": y}, backend="reference",
                            readout="membrane")["confusion"] == _confusion(y, mem_pred)


def test_emulator_compensates_the_latency_and_time_major_is_the_same(digits):
    root = digits["root"]
    res = neurocc.evaluate(digits["art"], root / "test.npz")
    assert res["latency_steps"] == 2 and res["timesteps"] == T   # one step per Dense under Loihi numerics
    assert res["accuracy"] > 0.6   # how close it is to the float model is `validate`'s question
    tm = {"x": digits["x"].transpose(1, 0, 2), "y": digits["y"]}
    assert neurocc.evaluate(digits["art"], tm, time_major=True)["confusion"] == res["confusion"]
    # what evaluate scores = a padded run's output spikes, counted
    out = neurocc.run(digits["art"], "emulator", {"input": tm["x"]}, pad="auto")["output"]
    assert out.shape[0] == T + 2
    pred = out[2:].sum(0).argmax(1)
    assert res["confusion"] == _confusion(digits["y"], pred)
    unpadded = neurocc.run(digits["art"], "emulator", {"input": tm["x"]})["output"]
    assert unpadded.sum() < out.sum()   # without the pad the last spikes are lost


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_evaluate_prints_accuracy_and_confusion(digits):
    root = digits["root"]
    r = _cli("evaluate", "art", "--data", "test.npz", "--readout", "first", "--json", "r.json", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "readout first" in r.stdout and "confusion (rows true, columns predicted)" in r.stdout
    assert "most confused" in r.stdout and "evaluate on emulator:" in r.stderr   # the one-line summary
    doc = json.loads((root / "r.json").read_text())
    assert doc["readout"] == "first" and np.sum(doc["confusion"]) == 200


def test_cli_run_says_the_lag_and_pads(digits):
    root = digits["root"]
    np.savez(root / "x.npz", input=digits["x"][:5].transpose(1, 0, 2))
    r = _cli("run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "outputs lag the input by 2 step(s)" in r.stdout and "--pad" in r.stdout
    r = _cli("run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", "--pad", cwd=root)
    assert r.returncode == 0 and "padded 2 zero steps" in r.stdout
    assert np.load(root / "y.npz")["output"].shape == (T + 2, 5, 10)


def test_cli_run_warns_about_batch_major_input_and_refuses_what_fits_no_order(digits):
    root = digits["root"]
    np.savez(root / "bm.npz", input=digits["x"][:40])               # (40 samples, 16 steps, 64)
    r = _cli("run", "art", "--backend", "emulator", "--input", "bm.npz", "--output", "y.npz", cwd=root)
    assert r.returncode == 0, r.stderr
    assert "runs as 40 steps x batch 16" in r.stderr and "calibrated on 16-step samples" in r.stderr
    np.savez(root / "odd.npz", input=np.zeros((16, 40, 63)))
    r = _cli("run", "art", "--backend", "emulator", "--input", "odd.npz", "--output", "y.npz", cwd=root)
    assert r.returncode == 1 and "no order of its axes fits" in r.stderr and "Traceback" not in r.stderr
    np.savez(root / "swapped.npz", input=digits["x"][:40].transpose(0, 2, 1))
    r = _cli("run", "art", "--backend", "emulator", "--input", "swapped.npz", "--output", "y.npz", cwd=root)
    assert r.returncode == 1 and "x.transpose(" in r.stderr


def test_evaluate_says_time_major_when_the_labels_fit_the_other_axis(digits):
    tm = {"x": digits["x"][:40].transpose(1, 0, 2), "y": digits["y"][:40]}   # time-major, flag forgotten
    with pytest.raises(InputError, match="pass --time-major"):
        neurocc.evaluate(digits["art"], tm)
    sq = {"x": digits["x"][:16].transpose(1, 0, 2), "y": digits["y"][:16]}   # 16 samples of 16 steps: fits
    with pytest.warns(UserWarning, match="calibrated on 16-step samples"):
        sq2 = {"x": np.zeros((16, 40, 64), np.float32), "y": np.zeros(16, int)}
        neurocc.evaluate(digits["art"], sq2)
    assert neurocc.evaluate(digits["art"], sq, time_major=True)["n"] == 16


def test_evaluate_warns_when_graded_inputs_leave_the_calibrated_range(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    x = (d.data / 16.0).astype(np.float32)
    art = neurocc.compile(ann, "emulator", tmp_path / "ann", calibration={"x": x[:64]}, timesteps=8)
    with pytest.warns(UserWarning, match=r"values in 0\.\.16, but the artifact was calibrated on 0\.\.1"):
        neurocc.evaluate(art, {"x": d.data[:20], "y": d.target[:20]})
