"""Calibrated compile: input-scale choice, register headroom, per-channel scales, the
emulator-in-the-loop diagnostics (and the named "quantization killed the activity" failure),
the accuracy-budget search, and the errors for bad input. Small hand-built graphs, seconds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.pipeline import compile_graph, compile_model
from neurocc.errors import CompileError, InputError
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import IF, LIF, Affine, I, Input, Linear, Output
from neurocc.ir.qnodes import QDense


def _lif(n: int) -> LIF:
    # r = 20, tau = 20 ms at dt = 1 ms: gain r·dt/tau = 1, so effective weights equal W
    return LIF(tau=np.full(n, 2e-2), r=np.full(n, 20.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
               v_reset=np.zeros(n))


def _spikes(steps: int, batch: int, n: int, p: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, batch, n)) < p).astype(np.float32)


def test_graded_input_scale_is_the_largest_power_of_two_the_bias_allows():
    """Affine(max |w| 0.5, bias 3) → IF(θ 1): at input scale S the layer scale is s = S · 127/0.5
    (mixed-sign 8-bit weights), its bias 64 · s · 3 state LSBs must fit 4095.5 << 7, so
    S <= 4095.5 · 128 / (64 · 254 · 3) = 10.75; thresholds allow 131071/254 = 516, the input
    register ~68 (u_absmax <= 3.8): the largest power of two is 8."""
    w = np.array([[0.5, -0.25, 0.1, 0.2]])
    g = Graph.chain(("in", Input(shape=(4,))), ("fc", Affine(weight=w, bias=np.array([3.0]))),
                    ("if", IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))),
                    ("out", Output(shape=(1,))), name="graded").verify()
    x = np.random.default_rng(0).random((20, 6, 4))                   # graded, time-major
    c = compile_graph(g, "emulator", calibration={"x": x})
    info = c.quantization["calibration"]["inputs"]["in"]
    assert info["values"] == "graded" and info["scale"] == 8.0 and c.quantization["input_scales"] == {"in": 8.0}
    assert info["bound_by"]["if"]["bias"] == pytest.approx(4095.5 * 128 / (64 * 254 * 3))
    assert info["bound_by"]["if"]["vth"] == pytest.approx(131071 / 254)
    assert c.quantization["layers"]["if"]["scale"] == pytest.approx(8 * 254)


def test_integrator_readout_is_sized_for_its_calibrated_range():
    """A non-spiking integrator summing 2000 steps of excitatory input: default scaling saturates
    its 24-bit membrane; calibration lowers the layer exponent so that 64 · s · v_absmax stays
    within half of 2^23 − 1, and the emulator then counts no saturation."""
    rng = np.random.default_rng(1)
    g = Graph.chain(("in", Input(shape=(3,))), ("fc", Linear(weight=rng.uniform(0.5, 1.0, (2, 3)))),
                    ("acc", I(r=np.ones(2))), ("out", Output(shape=(2,))), name="integrator").verify()
    x = _spikes(2000, 2, 3, 0.5)
    plain = compile_graph(g, "emulator")
    assert simulate(plain.graph, {"in": x}).events["acc"]["v_saturate"] > 0
    c = compile_graph(g, "emulator", calibration={"x": x})
    lay = c.quantization["layers"]["acc"]
    vmax, s0 = lay["calibrated"]["v_absmax"], lay["scale"] / 2 ** lay["exp"]
    assert lay["exp"] == math.floor(math.log2(0.5 * (2**23 - 1) / (64 * s0 * vmax))) < 0
    (diag,) = c.diagnostics.layers
    assert diag.events.get("v_saturate", 0) == 0 and 0.2 < diag.v_range <= 0.5 and diag.cosine > 0.999


def test_spiking_layer_is_sized_for_its_negative_membrane_excursion():
    """An IF neuron whose inputs all inhibit (no leak, reset to zero, no floor) sinks by its input
    every step: 2000 steps × 8 inputs × rate 0.5 × 0.9 ≈ 7200 float units (360 thresholds), while
    the weight-range scale s = 127/0.9 holds only 2^23 / (64 · s) ≈ 929 units, so the plain
    compile saturates v. Calibration measures v_negmax and lowers the exponent so that
    64 · s · v_negmax stays within half of 2^23 − 1; the emulator then counts no saturation, and
    the excitatory neuron beside it still fires like the float model (cosine)."""
    w = np.array([[0.9] * 8, [-0.9] * 8])
    g = Graph.chain(("in", Input(shape=(8,))), ("fc", Linear(weight=w)),
                    ("if", IF(r=np.ones(2), v_threshold=np.full(2, 20.0), v_reset=np.zeros(2))),
                    ("out", Output(shape=(2,))), name="inhibited").verify()
    x = _spikes(2000, 2, 8, 0.5)
    plain = compile_graph(g, "emulator")
    assert simulate(plain.graph, {"in": x}).events["if"]["v_saturate"] > 0
    c = compile_graph(g, "emulator", calibration={"x": x})
    lay = c.quantization["layers"]["if"]
    vneg, s0 = lay["calibrated"]["v_negmax"], lay["scale"] / 2 ** lay["exp"]
    assert vneg > 0.45 * 0.9 * 8 * 2000                  # ~ T · rate · |sum of weights|: no floor in float
    assert lay["exp"] == math.floor(math.log2(0.5 * (2**23 - 1) / (64 * s0 * vneg))) < lay["calibrated"]["default_exp"]
    assert "v_neg" in lay["calibrated"]["limits"]
    res = simulate(c.graph, {"in": x})
    assert res.events.get("if", {}).get("v_saturate", 0) == 0, res.events
    (diag,) = c.diagnostics.layers
    assert diag.events.get("v_saturate", 0) == 0 and diag.cosine > 0.999


def test_per_channel_scales_use_every_rows_mantissa_and_per_neuron_thresholds():
    w = np.array([[1.0, -0.5, 0.25], [0.01, -0.004, 0.002]])
    g = Graph.chain(("in", Input(shape=(3,))), ("fc", Linear(weight=w)), ("lif", _lif(2)),
                    ("out", Output(shape=(2,))), name="rows").verify()
    layer = compile_graph(g, "edge-cpu")
    chan = compile_graph(g, "edge-cpu", per_channel=True)
    np.testing.assert_array_equal(layer.graph.nodes["fc"].weight[1], np.rint(127 * w[1]))   # [1, -1, 0]
    np.testing.assert_array_equal(chan.graph.nodes["fc"].weight, np.rint(127 * w / np.abs(w).max(1, keepdims=True)))
    np.testing.assert_array_equal(chan.graph.nodes["lif"].vth, [127, 12700])                # θ · 127 / max|row|
    assert chan.quantization["layers"]["lif"]["per_channel"] is True
    assert chan.quantization["layers"]["lif"]["scale"] == pytest.approx([127.0, 12700.0])


def _outlier_net() -> Graph:
    """Neuron 0 has one huge weight (100) from input 0; neurons 1, 2 get 0.3 from every input."""
    w = np.full((3, 4), 0.3)
    w[0] = [100.0, 0, 0, 0]
    return Graph.chain(("in", Input(shape=(4,))), ("fc", Linear(weight=w)), ("lif", _lif(3)),
                       ("out", Output(shape=(3,))), name="outlier").verify()


def test_quantization_that_silences_a_layer_fails_naming_the_cause(tmp_path):
    """Input 0 never spikes, so in float only neurons 1 and 2 fire (about 0.3 · 1.8 per step from
    three inputs at p = 0.6). The outlier sets the scale (single-sign weights): at 8 bits
    255/100 = 2.55, and 0.3 → rint(0.765) = 1 survives; at 4 bits 15/100 = 0.15, and 0.3 →
    rint(0.045) = 0: 8 of the 9 non-zero weights vanish and the layer goes silent. The compile
    fails and says so, with the numbers."""
    x = _spikes(40, 6, 4, 0.6)
    x[:, :, 0] = 0
    from neurocc.compiler.passes.quantize import LayerStats

    with pytest.raises(CompileError) as err:
        compile_model(_outlier_net(), "emulator", tmp_path / "a", calibration={"x": x},
                      stats={"lif": LayerStats(weight_bits=4)})
    msg = str(err.value)
    assert "quantization silenced 1 layer(s)" in msg
    assert "layer 'lif': 0 spikes quantized vs" in msg and "weights rounded to zero: 89% of the non-zero weights of 'fc'" in msg
    assert not (tmp_path / "a").exists()
    c = compile_graph(_outlier_net(), "emulator", calibration={"x": x})      # 8 bits: fine
    assert c.diagnostics.failures == () and c.diagnostics.layers[0].spikes_quant > 0


def _labelled_net(seed: int = 0) -> tuple[Graph, dict[str, np.ndarray]]:
    """A 20 → 20 → 10 LIF classifier of 10 spike-rate prototypes (a relay layer, then templates
    ``W1 = 3 · (p_c − mean p)``); labels are the float reference's own decisions (accuracy 1)."""
    from neurocc.compiler.passes.discretize import discretize

    rng = np.random.default_rng(seed)
    protos = rng.uniform(0.05, 0.6, (10, 20))
    w0 = 1.5 * np.eye(20) + rng.normal(0, 0.1, (20, 20))
    g = Graph.chain(("in", Input(shape=(20,))), ("fc0", Linear(weight=w0)), ("lif0", _lif(20)),
                    ("fc1", Linear(weight=3 * (protos - protos.mean(0)))), ("lif1", _lif(10)),
                    ("out", Output(shape=(10,))), name="labelled").verify()
    x = (rng.random((60, 80, 20)) < protos[np.arange(80) % 10]).astype(np.float32)
    y = simulate(discretize(g, 1e-3), {"in": x}).outputs["out"].sum(0).argmax(1)
    return g, {"x": x, "y": y}


def test_accuracy_budget_lowers_weight_bits_and_reports_every_trial(tmp_path):
    g, cal = _labelled_net(seed=1)
    out = compile_model(g, "emulator", tmp_path / "a", calibration=cal, accuracy_budget=10.0)
    art = load_artifact(out)
    doc = art.manifest["accuracy_budget"]
    assert doc["met"] and doc["metric"] == "accuracy" and doc["points"] == 10.0
    assert doc["trials"][0]["phase"] == 1 and doc["trials"][0]["within"]
    assert all(t["loss_points"] is not None or t.get("error") for t in doc["trials"])
    chosen = doc["chosen"]
    assert chosen["loss_points"] <= 10.0 and chosen["weight_bits"]                 # something was saved
    for layer, bits in chosen["weight_bits"].items():
        syn = art.graph.predecessors(layer)[0]
        assert isinstance(art.graph.nodes[syn], QDense) and art.graph.nodes[syn].num_weight_bits == bits
    for t in doc["trials"]:       # a layer stops at the first width that breaks the budget
        if t["phase"] == 2 and not t["within"]:
            assert t["loss_points"] is None or t["loss_points"] > 10.0 or t["silenced_layers"]
    assert art.manifest["diagnostics"]["loss_points"] == pytest.approx(chosen["loss_points"])


def test_unreachable_accuracy_budget_is_an_error_with_the_numbers(tmp_path):
    x = _spikes(40, 6, 4, 0.6)
    x[:, :, 0] = 0
    from neurocc.compiler.passes.quantize import LayerStats

    with pytest.raises(CompileError) as err:
        compile_model(_outlier_net(), "emulator", tmp_path / "a", calibration={"x": x}, accuracy_budget=0.5,
                      stats={"lif": LayerStats(weight_bits=4)})
    msg = str(err.value)
    assert "the accuracy budget of 0.5 points cannot be met" in msg and "the best trial lost" in msg
    assert "timesteps 40, per_channel False" in msg and "1 layer(s) silenced" in msg
    with pytest.raises(CompileError, match="needs calibration data"):
        compile_model(_outlier_net(), "emulator", tmp_path / "b", accuracy_budget=1.0)


def test_bad_calibration_and_models_without_neurons_name_the_numbers(tmp_path):
    from neurocc.ir.nodes import ReLU

    ann = Graph.chain(("in", Input(shape=(4,))), ("fc", Affine(weight=np.ones((3, 4)), bias=np.zeros(3))),
                      ("relu", ReLU()), ("fc2", Affine(weight=np.ones((2, 3)), bias=np.zeros(2))),
                      ("out", Output(shape=(2,))), name="ann").verify()
    with pytest.raises(InputError) as err:
        compile_model(ann, "emulator", tmp_path / "a", calibration={"x": np.zeros((10, 5))})
    assert "key 'x' has shape (10, 5); expected (samples, 4)" in str(err.value)
    with pytest.raises(InputError, match="'y' has 3 labels but 'x' has 10 samples"):
        compile_model(ann, "emulator", tmp_path / "a", calibration={"x": np.zeros((10, 4)), "y": np.zeros(3, int)})
    linear = Graph.chain(("in", Input(shape=(4,))), ("fc", Linear(weight=np.ones((2, 4)))),
                         ("out", Output(shape=(2,))), name="linear").verify()
    with pytest.raises(CompileError, match="the model has no neurons \\(3 nodes of kinds Input, Linear, Output\\)"):
        compile_model(linear, "emulator", tmp_path / "b")


def test_validate_samples_are_drawn_from_the_kept_calibration_data(tmp_path):
    """`validate --samples N` runs the first N calibration samples (time-major spikes here),
    not random trains; asking for more than the artifact keeps is a clear error."""
    from neurocc.runtime.validate import sample_inputs, validate_artifact

    g, cal = _labelled_net()
    out = compile_model(g, "emulator", tmp_path / "a", calibration=cal)
    art = load_artifact(out)
    kept = art.manifest["calibration_sample"]
    assert kept["file"] == "calibration_sample.npz" and not kept["static"]
    x, source = sample_inputs(art, 3)
    (name,) = x
    np.testing.assert_array_equal(x[name], cal["x"][:, :3])
    assert "calibration" in source
    report = validate_artifact(out, backends=["emulator"], samples=3)
    assert report["inputs"]["batch"] == 3 and "calibration" in report["inputs"]["source"]
    with pytest.raises(InputError, match="more samples than the artifact keeps"):
        sample_inputs(art, kept["samples"] + 1)
