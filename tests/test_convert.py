"""convert: ANN → IF network by data-based normalisation.

The normalisation math is checked on a hand-built graph with numbers worked out below; accuracy
is checked on small digits models (scikit-learn's bundled 8×8 digits, trained in seconds) with
torch as the ANN oracle and the shared reference simulator running the converted network.

Accuracy bound used below: with ``reset=subtract`` and a constant input current I per step, an
IF with threshold 1 emits floor(T·I) spikes in T steps (for 0 ≤ I ≤ 1), so each layer's rate is
off by less than 1/T of its λ, plus the clipping of the 0.1 % of activations above the 99.9th
percentile. At T = 128 that is < 0.8 % of each layer's range, far below the logit margins of
all but a few test digits, so the SNN must stay within 2 percentage points of the ANN (it
measures 0-1 points; 2 points leaves room for a different BLAS and torch build).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from neurocc.compiler.passes.convert import convert, measure_tradeoff, robust_max
from neurocc.errors import CompileError, InputError
from neurocc.ir.encoding import Encoding
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Affine, Input, Output, ReLU

torch = pytest.importorskip("torch", reason="torch trains the digits models and is the ANN oracle")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digits.py"


def _digits():
    spec = importlib.util.spec_from_file_location("neurocc_example_digits", EXAMPLES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def mlp(digits):
    from neurocc.compiler.frontends import load

    model = digits.train_digits_ann(0, hidden=(32,), epochs=15)
    x_tr, y_tr, x_te, y_te = digits.load_digits_split(0)
    return load(model, input_shape=(64,)), digits.ann_accuracy(model, x_te, y_te), (x_tr, y_tr, x_te, y_te)


# ----- normalisation math by hand --------------------------------------------------------------
def test_robust_max_is_the_percentile_of_positive_activations():
    acts = np.zeros((200, 2, 1))
    acts[::2, 0, 0] = np.arange(1, 101)        # channel 0: 1..100 between zeros
    acts[1::2, 1, 0] = -5.0                     # channel 1: never positive
    # percentile 99 of 1..100 (linear interpolation): 1 + 0.99 · 99 = 99.01
    np.testing.assert_allclose(robust_max(acts, 99, per_channel=True), [99.01, 1.0])
    np.testing.assert_allclose(robust_max(acts, 99, per_channel=False), [99.01])
    np.testing.assert_allclose(robust_max(acts, 100, per_channel=False, absolute=True), [100.0])


def _hand_graph() -> Graph:
    return Graph.chain(
        ("x", Input(shape=(2,))),
        ("fc1", Affine(weight=np.array([[1.0, 0.0], [0.0, 2.0]]), bias=np.zeros(2))),
        ("relu1", ReLU()),
        ("fc2", Affine(weight=np.array([[1.0, 1.0]]), bias=np.array([0.5]))),
        ("y", Output(shape=(1,))))


@pytest.mark.parametrize("per_channel", [False, True])
def test_weights_are_rescaled_by_the_hand_computed_lambdas(per_channel):
    # calibration rows (k, k), k = 1..4: relu1 = (k, 2k), logits = 3k + 0.5; percentile 100 = max
    # λ1 = 8 (per layer) or (4, 8) (per channel); readout λ = max |logit| = 12.5; input unit 1/2.
    x = np.array([[k, k] for k in range(1, 5)], float)
    enc = Encoding("constant", timesteps=8, scale=2.0)
    snn, rep = convert(_hand_graph(), x, timesteps=8, percentile=100, per_channel=per_channel, encoding=enc,
                       sweep=(8,))
    lam1 = np.array([4.0, 8.0]) if per_channel else np.array([8.0, 8.0])
    np.testing.assert_allclose(snn.nodes["fc1"].weight, np.diag([1.0, 2.0]) * 0.5 / lam1[:, None], rtol=1e-6)
    np.testing.assert_allclose(snn.nodes["fc2"].weight, [lam1 / 12.5], rtol=1e-6)
    np.testing.assert_allclose(snn.nodes["fc2"].bias, [0.5 / 12.5], rtol=1e-6)
    assert snn.nodes["relu1"].kind == "IF" and np.all(snn.nodes["relu1"].v_threshold == 1)
    assert snn.nodes["y_readout"].kind == "I"
    assert [lay.lam for lay in rep.layers] == [list(lam1[:1] if not per_channel else lam1), [12.5]]
    json.dumps(rep.to_dict())  # the report is JSON-able


@pytest.mark.parametrize("timesteps,factor", [(8, 1.0), (64, 2.0), (256, 3.0)])
def test_zero_reset_raises_thresholds_by_sqrt_t_over_16_and_input_is_untouched(timesteps, factor):
    g = _hand_graph()
    before = g.text()
    x = np.array([[k, k] for k in range(1, 5)], float)
    sub, rep_s = convert(g, x, timesteps=timesteps, reset="subtract", percentile=100, sweep=(8,))
    zero, rep_z = convert(g, x, timesteps=timesteps, reset="zero", percentile=100, sweep=(8,))
    assert g.text() == before
    assert sub.nodes["relu1"].reset.value == "subtract" and zero.nodes["relu1"].reset.value == "zero"
    # clip(sqrt(T / 16), 1, 3): 8 → 1, 64 → 2, 256 → 3 (clipped from 4)
    assert rep_z.layers[0].lam[0] == factor * rep_s.layers[0].lam[0] == factor * 8.0
    assert rep_z.layers[1].lam == rep_s.layers[1].lam  # the integrator readout has no threshold


# ----- accuracy on digits ----------------------------------------------------------------------
def test_mlp_converts_within_two_points_of_the_ann(mlp):
    graph, ann_acc, (x_tr, y_tr, x_te, y_te) = mlp
    snn, rep = convert(graph, x_tr, timesteps=128, reset="subtract", calibration_y=y_tr, sweep=(8, 128),
                       sweep_samples=300)
    kinds = {n.kind for n in snn.nodes.values()}
    assert "ReLU" not in kinds and "IF" in kinds
    assert [r.timesteps for r in rep.tradeoff] == [8, 128]
    rows, ann_test = measure_tradeoff(snn, x_te, encoding=Encoding(timesteps=128), steps=(8, 128), y=y_te, ann=graph)
    assert ann_test == pytest.approx(ann_acc)  # the simulator's ANN pass agrees with torch
    assert abs(rows[-1].accuracy - ann_acc) <= 0.02, rows
    assert rows[-1].agreement >= rows[0].agreement


def test_cnn_with_batchnorm_and_avgpool_converts(digits):
    from neurocc.compiler.frontends import load

    model = digits.train_digits_ann(0, arch="cnn", hidden=(4, 8), epochs=8)
    x_tr, _, x_te, y_te = digits.load_digits_split(0, image=True)
    ann_acc = digits.ann_accuracy(model, x_te, y_te)
    graph = load(model, input_shape=(1, 8, 8))
    snn, _ = convert(graph, x_tr[:500], timesteps=64, sweep=(64,), sweep_samples=100)
    kinds = [n.kind for n in snn.nodes.values()]
    assert kinds.count("SumPool2d") == 2 and not {"AvgPool2d", "BatchNorm", "ReLU"} & set(kinds)
    rows, _ = measure_tradeoff(snn, x_te[:200], encoding=Encoding(timesteps=64), steps=(64,), y=y_te[:200])
    ann_sub = digits.ann_accuracy(model, x_te[:200], y_te[:200])
    assert abs(rows[0].accuracy - ann_sub) <= 0.03, (rows, ann_sub, ann_acc)


def test_maxpool_is_refused_naming_the_node():
    from neurocc.compiler.frontends import load

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, 3)).eval()
    graph = load(model, input_shape=(1, 8, 8))
    (pool,) = [n for n, v in graph.nodes.items() if v.kind == "MaxPool2d"]
    with pytest.raises(CompileError) as err:
        convert(graph, np.zeros((2, 1, 8, 8)), timesteps=8)
    assert f"MaxPool2d '{pool}'" in str(err.value) and "use AvgPool2d" in str(err.value)


def test_calibration_of_the_wrong_shape_is_an_input_error():
    with pytest.raises(InputError, match=r"expected \(samples, 2\)"):
        convert(_hand_graph(), np.zeros((4, 3)), timesteps=8)


# ----- residual join ---------------------------------------------------------------------------
class _Residual(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(6, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 4)
        self.relu1, self.relu2, self.relu3 = torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.ReLU()

    def forward(self, x):
        h = self.relu1(self.fc1(x))
        return self.fc3(self.relu3(self.fc2(h) + h))


def test_residual_add_joins_currents_with_a_scaling_synapse_on_the_skip():
    from neurocc.compiler.frontends import load

    model = _Residual().eval()
    graph = load(model, input_shape=(6,))
    assert any(v.kind == "Add" for v in graph.nodes.values())
    x = np.random.default_rng(0).uniform(0, 1, size=(200, 6))
    snn, rep = convert(graph, x, timesteps=512, reset="subtract", percentile=100, sweep=(512,))
    assert not any(v.kind == "Add" for v in snn.nodes.values())
    lam = {lay.node: lay.lam[0] for lay in rep.layers}
    skip = [n for n in snn.nodes if "__to__" in n]
    assert len(skip) == 1
    # the skip carries relu1's spikes (unit λ1) into relu3's input (unit λ3): weight λ1 / λ3
    np.testing.assert_allclose(np.diag(snn.nodes[skip[0]].weight), lam["relu1"] / lam["relu3"], rtol=1e-6)
    from neurocc.backends.emulator import simulate

    with torch.no_grad():
        logits = model(torch.from_numpy(x[:50]).float()).numpy()
    (out,) = snn.outputs
    v = simulate(snn, {snn.inputs[0]: np.broadcast_to(x[:50], (512, 50, 6))}, steps=512).outputs[out]
    approx = np.asarray(v[-1]) / 512 * lam[f"{out}_readout"]
    # three IF layers, each off by < λ/T in rate: the logits agree to a few hundredths of their range
    assert np.max(np.abs(approx - logits)) < 0.03 * np.max(np.abs(logits))
