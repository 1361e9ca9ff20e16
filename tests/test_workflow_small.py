"""The small items of the everyday workflow (issue 15): backend names checked up front, τ equal
to dt up to float32 rounding, the report drawn from calibration data with accuracy and the
compile diagnostics (its header's cosine as the table prints it), progress lines, and the netx
warning printed once."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.compiler.passes.discretize import discretize
from neurocc.errors import CompileError
from neurocc.ir.discrete import decay_factors
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output

torch = pytest.importorskip("torch")
nn = torch.nn
REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def ann_art(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits MLP trained for a few epochs, compiled for the emulator target with labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(ann.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x[:1000]), torch.from_numpy(y[:1000])
    for _ in range(60):
        loss = nn.functional.cross_entropy(ann(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    root = tmp_path_factory.mktemp("ann")
    np.savez(root / "test.npz", x=x[1000:1200], y=y[1000:1200])
    return neurocc.compile(ann, "emulator", root / "art", calibration={"x": x[:200], "y": y[:200]}, timesteps=16)


def test_validate_refuses_an_unknown_backend_before_running_anything(ann_art):
    r = _cli("validate", "art", "--backends", "emulator,lava", "--json", "v.json", cwd=ann_art.parent)
    assert r.returncode == 1, r.stderr
    assert "unknown backend 'lava': did you mean 'loihi'?" in r.stderr and "Traceback" not in r.stderr
    assert not (ann_art.parent / "v.json").exists()     # no FAIL row written for a typo
    np.savez(ann_art.parent / "x.npz", input=np.zeros((16, 1, 64), np.float32))
    r = _cli("run", "art", "--backend", "emulatr", "--input", "x.npz", "--output", "y.npz", cwd=ann_art.parent)
    assert r.returncode == 1 and "did you mean 'emulator'?" in r.stderr


def test_cli_validate_prints_a_one_line_summary_off_a_terminal(ann_art):
    r = _cli("validate", "art", "--backends", "emulator", "--samples", "2", "--json", "v.json", cwd=ann_art.parent)
    assert r.returncode == 0, r.stderr
    assert "validate: ran emulator, reference on 2 sample(s) x 16 steps" in r.stderr


def _lif(tau: float) -> Graph:
    n = 2
    return Graph.chain(("in", Input(shape=(n,))), ("fc", Linear(weight=np.eye(n))),
                       ("lif", LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                                   v_threshold=np.ones(n), v_reset=np.zeros(n))),
                       ("out", Output(shape=(n,)))).verify()


def test_tau_equal_to_dt_up_to_float32_rounding_is_decay_zero():
    tau = float(np.nextafter(np.float32(1e-3), np.float32(0)))     # 0.00099999993: float32 just below 1 ms
    g = discretize(_lif(tau), 1e-3)
    f = decay_factors(g.nodes["lif"], 1e-3)
    assert np.all(f.alpha_v == 0.0) and np.all(f.gain_v == 1.0)      # valid Euler: no memory
    with pytest.raises(CompileError) as err:
        discretize(_lif(1e-3 * (1 - 1e-5)), 1e-3)                   # really shorter than dt
    msg = str(err.value)
    assert "tau = 0.00099999 s < dt = 0.001 s" in msg


def test_report_uses_calibration_samples_shows_accuracy_and_compile_tables(ann_art):
    from neurocc.runtime.report import write_report

    page = write_report(ann_art, backends=["reference", "emulator"])
    html = page.read_text()
    assert "calibration samples" in html and "random spikes" not in html
    assert "accuracy</b>: reference" in html and "Compile: quantization and diagnostics" in html
    assert "quantization diagnostics" in html           # the table compile printed
    doc = json.loads((ann_art / "validation.json").read_text())
    emu = next(r for r in doc["results"] if r["backend"] == "emulator")
    summary = (ann_art / "report" / "summary.txt").read_text()
    assert f"emulator {'PASS' if emu['passed'] else 'FAIL'} (cosine {emu['cosine']:.4f})" in summary
    acc = neurocc.evaluate(ann_art, ann_art.parent / "test.npz")["accuracy"]
    r = _cli("report", "art", "--data", "test.npz", cwd=ann_art.parent)
    assert r.returncode == 0, r.stderr
    assert f"emulator {acc * 100:.2f}% on 200 samples of test.npz" in r.stdout
    assert "report: wrote" in r.stderr                   # the closing line of the progress


def test_progress_shows_items_rate_and_eta_on_a_terminal(monkeypatch):
    from neurocc.progress import REFRESH_S, Step

    monkeypatch.setenv("COLUMNS", "200")   # the bar is cut to the terminal's width (pytest's may be narrow)

    buf = io.StringIO()
    with Step("evaluate on emulator", total=10, unit="samples", live=True, stream=buf) as step:
        step.add(4)
        deadline = time.monotonic() + 30   # the redraw thread may wait for a core on a loaded machine
        time.sleep(3 * REFRESH_S)
        while "ETA" not in buf.getvalue() and time.monotonic() < deadline:
            time.sleep(REFRESH_S)
        step.done("40.00% of 10 samples")
    text = buf.getvalue()
    assert "4/10 samples" in text and "samples/s" in text and "ETA" in text
    assert text.rstrip().endswith("s)") and "evaluate on emulator: 40.00% of 10 samples" in text


def test_the_netx_warning_is_short_and_printed_once(tmp_path):
    snn = pytest.importorskip("snntorch")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 4)
            # per-neuron decays: netx's CUBA block holds one du/dv per layer, so no network.net
            self.lif = snn.Leaky(beta=torch.tensor([0.9, 0.8, 0.7, 0.6]), reset_mechanism="zero")

        def forward(self, x, mem=None):  # type: ignore[no-untyped-def]
            spk, mem = self.lif(self.fc(x), mem)
            return spk, mem

    torch.manual_seed(0)
    net = Net()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for i in range(2):
            neurocc.compile(net, "loihi2", tmp_path / f"a{i}", input_shape=(8,))
    netx = [str(w.message) for w in seen if "network.net" in str(w.message)]
    assert len(netx) == 1, netx
    assert len(netx[0]) < 300 and "--backend loihi" in netx[0]
