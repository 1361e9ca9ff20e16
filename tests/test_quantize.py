"""quantize: float SNN → Loihi integer graph. Properties over random layers, hand-derived values
for the NIR paper neuron, Lava's spike times, and every refusal naming its node."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends import load
from neurocc.compiler.passes.discretize import discretize
from neurocc.compiler.passes.quantize import LayerStats, quantize, quantize_with_report
from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (IF, LI, LIF, Affine, Conv2d, CubaLIF, Delay, Flatten, I, Input, Linear,
                              MaxPool2d, Output, SumPool2d, Threshold)
from neurocc.ir.numerics.core import lava_dense_weights
from neurocc.ir.qnodes import QConv2d, QDense, QLI, QLIF
from neurocc.ir.types import ResetMode
from neurocc.targets import get_target

EMU = get_target("emulator")


def _lif(n: int, tau: float = 2e-2, th: float = 1.0, r: float = 1.0, **kw) -> LIF:
    return LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.full(n, th),
               v_reset=np.zeros(n), **kw)


def _dense_net(w1: np.ndarray, th: float = 1.0, r: float = 20.0, **lif_kw) -> Graph:
    n_out, n_in = w1.shape
    return Graph.chain(("in", Input(shape=(n_in,))), ("fc", Linear(weight=w1)),
                       ("lif", _lif(n_out, th=th, r=r, **lif_kw)), ("out", Output(shape=(n_out,)))).verify()


def _q(g: Graph, target=EMU, dt: float = 1e-3, **kw):
    return quantize_with_report(discretize(g, dt), target.numerics, target, **kw)


signs = st.sampled_from(["mixed", "positive", "negative"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), sign=signs, bits=st.sampled_from([8, 6, 4]),
       zeros=st.floats(0, 0.6), scale=st.floats(1e-3, 1e3))
def test_emitted_dense_weights_survive_lava_preprocessing(seed, sign, bits, zeros, scale):
    """Property: the quantized graph verifies, every mantissa fits its bits, Lava's Dense
    preprocessing of the emitted weights is the identity, thresholds fit 17 bits."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, scale, (7, 5)) * (rng.random((7, 5)) >= zeros)
    w = {"mixed": w, "positive": np.abs(w), "negative": -np.abs(w)}[sign]
    target = dataclasses.replace(EMU, limits=dataclasses.replace(EMU.limits, weight_bits=bits))
    q, rep = _q(_dense_net(w, th=float(scale)), target)
    q.verify()
    fc = q.nodes["fc"]
    assert isinstance(fc, QDense) and fc.num_weight_bits == bits
    np.testing.assert_array_equal(lava_dense_weights(fc.weight, fc.num_weight_bits), fc.weight)
    syn = rep["layers"]["lif"]["synapses"]["fc"]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if syn["sign_mode"] == "mixed" else (-(1 << bits) + 1, (1 << bits) - 1)
    assert lo <= syn["q_min"] <= syn["q_max"] <= hi
    vth = q.nodes["lif"].vth
    assert vth.min() >= 1 and vth.max() <= 131071
    assert [e for e in q.edges if e.src == "fc"] == [Edge("fc", "lif", 1)]


def test_lif_norse_parameters_by_hand_and_lava_spike_steps(nir_paper):
    """Affine(w=1) → LIF(tau 2.5 ms, v_th 0.1) at dt 1e-4: gain g = dt/τ = 0.04, so the layer scale
    is 255 / g (one excitatory weight at the top of [0, 255]); vth = rint(0.1 · 255 / g): with the
    file's float32 values (τ = 0.00249999994, θ = 0.100000001) that is 637.49999.. → 637 (in
    exact decimals it would be the tie 637.5); dv = rint(4096 · 0.04) = 164; du = 4095 (u has no
    memory). The emulator must then spike one step after Norse, as Lava's fixed-point model did."""
    g = discretize(load(nir_paper / "lif_norse.nir"), 1e-4)
    q = quantize(g, "loihi", EMU)
    fc, lif = q.nodes["0"], q.nodes["1"]
    tau, th = float(np.float32(0.0025)), float(np.float32(0.1))
    assert np.rint(th * 255 / (1e-4 / tau)) == 637
    assert (fc.weight.tolist(), fc.weight_exp) == ([[255]], 0)
    assert (lif.vth.tolist(), lif.dv.tolist(), lif.du.tolist()) == ([637], [164], [4095])
    assert (lif.bias_mant.tolist(), lif.bias_exp.tolist()) == ([0], [0])
    data = np.loadtxt(nir_paper / "lif_norse.csv", delimiter=",")
    lava = np.loadtxt(nir_paper / "lif_lava_cpu_fixed.csv", delimiter=",")
    z = simulate(q, {"input": data[:, 0].reshape(-1, 1, 1)}).outputs["output"][:, 0, 0]
    np.testing.assert_array_equal(np.flatnonzero(z), np.flatnonzero(lava[:, 2]))   # [461, 511, 711, 761]


def test_mixed_int8_weights_are_emitted_doubled_with_exponent_minus_one():
    w = np.array([[1.0, -0.5, 0.25], [-1.0, 0.75, 0.0]])
    q, rep = _q(_dense_net(w))
    fc = q.nodes["fc"]
    # gain 20 · dt/τ = 1, largest |w| = 1 → scale 127: mantissas rint(127 · w)
    np.testing.assert_array_equal(fc.weight, 2 * np.rint(127 * w).astype(int))
    assert fc.weight_exp == -1 and rep["layers"]["lif"]["synapses"]["fc"]["sign_mode"] == "mixed"
    np.testing.assert_array_equal(q.nodes["lif"].vth, [127, 127])


def test_small_thresholds_raise_the_dense_exponent():
    w = np.array([[1.0, 0.5]])
    q, rep = _q(_dense_net(w, th=0.01))     # vth at e=0 would be rint(255·0.01) = 3 LSBs
    assert rep["layers"]["lif"]["exp"] == 3     # 2**3 · 2.55 = 20.4 >= 16
    assert q.nodes["fc"].weight_exp == 3 and q.nodes["lif"].vth.tolist() == [20]


def test_threshold_that_rounds_to_zero_names_numbers_and_node():
    conv = Conv2d(weight=np.ones((2, 1, 3, 3)), bias=np.zeros(2), padding=(1, 1))
    g = Graph.chain(("in", Input(shape=(1, 4, 4))), ("c", conv),
                    ("if", IF(r=np.ones((2, 4, 4)), v_threshold=np.full((2, 4, 4), 1e-4), v_reset=np.zeros((2, 4, 4)))),
                    ("out", Output(shape=(2, 4, 4)))).verify()
    with pytest.raises(CompileError) as err:
        _q(g)
    assert "'if'" in str(err.value) and "0.0001" in str(err.value) and "131071" in str(err.value)


def test_conv_keeps_weight_exp_zero_and_sum_pool_stays_exact():
    rng = np.random.default_rng(1)
    g = Graph.chain(("in", Input(shape=(2, 6, 6))),
                    ("c1", Conv2d(weight=rng.normal(0, 0.3, (3, 2, 3, 3)), bias=np.zeros(3), padding=(1, 1))),
                    ("if1", IF(r=np.ones((3, 6, 6)), v_threshold=np.ones((3, 6, 6)), v_reset=np.zeros((3, 6, 6)))),
                    ("pool", SumPool2d()), ("flat", Flatten()),
                    ("fc", Affine(weight=rng.normal(0, 0.3, (4, 27)), bias=np.full(4, 0.05))),
                    ("if2", IF(r=np.ones(4), v_threshold=np.ones(4), v_reset=np.zeros(4))),
                    ("out", Output(shape=(4,)))).verify()
    q, rep = _q(g)
    assert isinstance(q.nodes["c1"], QConv2d) and q.nodes["c1"].weight_exp == 0
    assert q.nodes["pool"].kind == "QSumPool2d" and q.nodes["fc"].graded  # pooled counts are graded
    if1 = q.nodes["if1"]
    assert set(if1.du.ravel()) == {4095} and set(if1.dv.ravel()) == {0}   # IF: no current, no leak
    s = rep["layers"]["if2"]["scale"]   # Affine bias 0.05 → 64 · s · 0.05 state LSBs
    # loihi biases are quantized on netx's grid (bias_exp 6: multiples of 64 state LSBs, one weight
    # LSB) so that the artifact gets a network.net: the rounding error is at most half of 64
    b = q.nodes["if2"].bias_mant * 2.0 ** q.nodes["if2"].bias_exp
    assert set(q.nodes["if2"].bias_exp.ravel()) <= {0, 6, 7} and np.all(b % 64 == 0)
    np.testing.assert_allclose(b, 64 * s * 0.05, atol=32)


def test_cuba_and_threshold_and_integrator_register_values():
    dt = 1e-3
    n = 2
    g = Graph.chain(("in", Input(shape=(n,))), ("fc1", Linear(weight=np.eye(n))),
                    ("cuba", CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.full(n, 10.0),
                                     v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.full(n, 5.0))),
                    ("fc2", Linear(weight=np.eye(n))), ("th", Threshold(threshold=np.full(n, 0.5))),
                    ("fc3", Linear(weight=np.eye(n))), ("int", I(r=np.ones(n))), ("out", Output(shape=(n,)))).verify()
    q, _ = _q(g, dt=dt)
    cuba = q.nodes["cuba"]
    assert cuba.du.tolist() == [int(np.rint(4096 * 0.2)) - 1] * n    # Euler α_u = 1 − 1/5; Lava decays by du+1
    assert cuba.dv.tolist() == [int(np.rint(4096 * 0.1))] * n
    th = q.nodes["th"]
    assert isinstance(th, QLIF) and th.dv.tolist() == [4096] * n and th.du.tolist() == [4095] * n
    integ = q.nodes["int"]
    assert isinstance(integ, QLI) and integ.dv.tolist() == [0] * n


def test_recurrent_loop_keeps_one_step():
    n = 3
    g = Graph({"in": Input(shape=(n,)), "ff": Linear(weight=np.eye(n)), "lif": _lif(n, r=20.0),
               "rec": Linear(weight=-0.5 * np.ones((n, n))), "out": Output(shape=(n,))},
              (Edge("in", "ff"), Edge("ff", "lif"), Edge("lif", "rec", 1), Edge("rec", "lif"), Edge("lif", "out"))).verify()
    q, _ = _q(g)
    delays = {(e.src, e.dst): e.delay for e in q.edges}
    assert delays[("lif", "rec")] + delays[("rec", "lif")] == 1    # Lava: a spike at t arrives at t+1
    assert delays[("ff", "lif")] == 1


def test_every_refusal_is_listed_at_once():
    n = 2
    g = Graph({"in": Input(shape=(n,)), "d": Delay(delay=np.full(n, 1e-3)), "fc": Linear(weight=np.eye(n)),
               "lif": _lif(n, reset=ResetMode.SUBTRACT), "fc2": Linear(weight=np.eye(n)),
               "lif2": LIF(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                           v_reset=np.full(n, 0.2)),
               "out": Output(shape=(n,))},
              (Edge("in", "d"), Edge("d", "fc"), Edge("fc", "lif"), Edge("lif", "fc2"), Edge("fc2", "lif2"),
               Edge("lif2", "out"))).verify()
    with pytest.raises(CompileError) as err:
        # loihi1: fixed-function neurons (since issue 12 the emulator target and loihi2 run subtract
        # through neurocc's reset rule / Lava process model, so they no longer refuse it)
        _q(g, get_target("loihi1"))
    msg = str(err.value)
    assert "'d' (Delay)" in msg
    assert "'lif' (LIF): reset 'subtract'" in msg and "edge-cpu" in msg
    assert "'lif2' (LIF): v_reset = 0.2" in msg


def test_ann_layers_and_neurons_without_weights_are_refused():
    g = Graph.chain(("in", Input(shape=(1, 4, 4))), ("mp", MaxPool2d()), ("flat", Flatten()),
                    ("lif", _lif(4)), ("out", Output(shape=(4,)))).verify()
    with pytest.raises(CompileError) as err:
        _q(g)
    assert "'mp' (MaxPool2d)" in str(err.value) and "'lif' (LIF): input from 'flat'" in str(err.value)


def test_int8_profile_allows_subtract_and_adds_no_delay():
    w = np.array([[0.5, -1.0], [0.25, 0.5]])
    tgt = get_target("edge-cpu")
    q, rep = _q(_dense_net(w, reset=ResetMode.SUBTRACT), tgt)
    assert q.numerics == "int8" and q.nodes["lif"].reset is ResetMode.SUBTRACT
    np.testing.assert_array_equal(q.nodes["fc"].weight, np.rint(127 * w))   # int8 as is, no LSB trick
    assert all(e.delay == 0 for e in q.edges)


def test_pass_is_pure_and_deterministic():
    rng = np.random.default_rng(3)
    g = discretize(_dense_net(rng.normal(0, 1, (6, 4))), 1e-3)
    before = g.digest()
    a, b = quantize(g, "loihi", EMU), quantize(g, "loihi", EMU)
    assert g.digest() == before and a.digest() == b.digest()


def test_layer_stats_fix_the_scale_and_make_inputs_graded():
    w = np.array([[1.0, 0.5]])
    q, rep = _q(_dense_net(w), stats={"lif": LayerStats(scale=50.0), "in": LayerStats(scale=10.0)})
    assert rep["layers"]["lif"]["scale"] == 50.0 and q.nodes["lif"].vth.tolist() == [50]
    # graded input: one integer unit is 1/10, so the mantissa is rint(50 · 1 · w / 10)
    assert q.nodes["fc"].graded and rep["input_scales"] == {"in": 10.0}
    np.testing.assert_array_equal(lava_dense_weights(q.nodes["fc"].weight) * 2.0 ** q.nodes["fc"].weight_exp, [[5, 2]])


def test_undiscretised_graph_and_unknown_profile_are_refused():
    g = _dense_net(np.eye(2))
    with pytest.raises(CompileError, match="discretize"):
        quantize(g, "loihi", EMU)
    with pytest.raises(CompileError, match="posit"):
        quantize(discretize(g, 1e-3), "posit", get_target("spinnaker"))


def test_li_readout_reports_its_float_scale():
    g = Graph.chain(("in", Input(shape=(3,))), ("fc", Linear(weight=np.eye(3))),
                    ("li", LI(tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3))),
                    ("out", Output(shape=(3,)))).verify()
    q, rep = _q(g)
    out = rep["outputs"]["out"]
    assert out["values"] == "state" and out["source"] == "li"
    np.testing.assert_allclose(out["float_per_lsb"], 1 / rep["layers"]["li"]["state_scale"])


def test_affine_bias_into_a_cuba_layer_is_a_bias_on_the_current():
    """snnTorch's Linear bias into Synaptic adds to the current each step. Both profiles keep it
    there (QLIF.bias_u = rint(64 · s · g_u · g_v · b), no membrane bias; loihi2 through neurocc's
    Lava process model), and on loihi2 it starts with the layer's Dense-delayed input (bias_start 1);
    loihi1 (fixed-function neurons) keeps the steady-state membrane bias."""
    n, b = 4, 0.05
    rng = np.random.default_rng(0)
    cuba = CubaLIF(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 1e-2), r=np.full(n, 10.0), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.full(n, 5.0))   # euler: g_u = g_v = 1
    g = Graph.chain(("in", Input(shape=(6,))), ("fc", Affine(weight=rng.normal(0, 0.3, (n, 6)), bias=np.full(n, b))),
                    ("cuba", cuba), ("out", Output(shape=(n,)))).verify()
    q, rep = _q(g, get_target("edge-cpu"))
    node, s = q.nodes["cuba"], rep["layers"]["cuba"]["scale"]
    np.testing.assert_array_equal(node.bias_u, np.rint(np.full(n, 64 * s * b)))
    assert not np.any(node.bias_mant)
    assert node.bias_start == 0   # int8: no synapse delay
    q, rep = _q(g, get_target("loihi2"))
    node, s = q.nodes["cuba"], rep["layers"]["cuba"]["scale"]
    np.testing.assert_array_equal(node.bias_u, np.rint(np.full(n, 64 * s * b)))
    assert not np.any(node.bias_mant) and node.bias_start == 1 and rep["layers"]["cuba"]["bias_start"] == 1
    # loihi1's fixed-function neurons (Lava's own LIF): the bias moves to the membrane at the
    # current's steady state b / (1 − α_u), from step 0, and the report says so
    q, rep = _q(g, get_target("loihi1"))
    node, s = q.nodes["cuba"], rep["layers"]["cuba"]["scale"]
    assert node.bias_u is None and node.bias_start == 0 and "steady state" in rep["layers"]["cuba"]["notes"][0]
    np.testing.assert_allclose(node.bias_mant * 2.0 ** node.bias_exp, 64 * s * b / (1 - 0.8), atol=32)
