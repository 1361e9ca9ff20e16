"""Issue 12's reset semantics on the integer side: the emulator and the edge-cpu ONNX graphs stay
bit-exact for every reset mode × timing × reset_now × ``>=`` test (one integer rule,
:mod:`neurocc.ir.numerics.reset`), an snnTorch net compiles for edge-cpu and runs identically on
both and on Lava (loihi2, neurocc's Lava process model), fixed-function targets (loihi1, spinnaker)
refuse by node name, and snnTorch's Leaky zero reset (whose spikes the after-spike form reproduces
exactly) is rewritten for them."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurocc.backends import edge_cpu
from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends import load
from neurocc.compiler.pipeline import compile_model
from neurocc.errors import CompileError
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.types import ResetMode, ResetTiming

snn = pytest.importorskip("snntorch", reason="snntorch is not installed")

CASES = [(m, t, now, ge) for m, t, now, ge in itertools.product(
    ResetMode, ResetTiming, (False, True), (False, True))
    if not (now and (t is ResetTiming.AFTER_SPIKE or m is ResetMode.NONE))]


def _graph(mode: ResetMode, timing: ResetTiming, now: bool, ge: bool, floor: bool = False) -> Graph:
    """x(10) → fc → lif ⟲ rec (delay 1) → fc2 → lif2 → out, int8, random integer parameters."""
    rng = np.random.default_rng(5)
    sem = dict(reset=mode, reset_timing=timing, reset_now=now, fire_at_threshold=ge)

    def lif(n: int) -> Q.QLIF:
        r = lambda lo, hi: rng.integers(lo, hi, n).astype(np.int32)  # noqa: E731
        v_min = rng.integers(-200 * 64, -10 * 64, n) if floor else None  # Sinabs min_v_mem, in v's units
        return Q.QLIF(du=r(0, 4096), dv=r(100, 1500), vth=r(20, 200), bias_mant=r(-10, 10),
                      bias_exp=np.zeros(n, np.int32), v_min=v_min, **sem)

    nodes = {"x": N.Input(shape=(10,)), "fc": Q.QDense(weight=rng.integers(-100, 128, (16, 10))),
             "lif": lif(16), "rec": Q.QDense(weight=rng.integers(-60, 60, (16, 16))),
             "fc2": Q.QDense(weight=rng.integers(-80, 128, (4, 16))), "lif2": lif(4), "y": N.Output(shape=(4,))}
    edges = [Edge("x", "fc"), Edge("fc", "lif"), Edge("lif", "rec", 1), Edge("rec", "lif"), Edge("lif", "fc2"),
             Edge("fc2", "lif2"), Edge("lif2", "y")]
    return Graph(nodes, edges, dt=1e-3, numerics="int8", name="reset_case").verify()


@pytest.mark.parametrize("mode,timing,now,ge,floor", [(*c, False) for c in CASES] + [
    (ResetMode.SUBTRACT, ResetTiming.AFTER_SPIKE, False, True, True),    # Sinabs: >=, min_v_mem
    (ResetMode.ZERO, ResetTiming.AFTER_SPIKE, False, False, True),       # the fast zero-reset path excluded
    (ResetMode.SUBTRACT, ResetTiming.NEXT_STEP, True, False, True)], ids=lambda v: getattr(v, "value", str(v)))
def test_every_reset_semantic_is_exact_on_edge_cpu(mode: ResetMode, timing: ResetTiming, now: bool,
                                                    ge: bool, floor: bool) -> None:
    g = _graph(mode, timing, now, ge, floor)
    x = (np.random.default_rng(1).random((40, 3, 10)) < 0.4).astype(np.float32)
    ref = simulate(g, {"x": x}, record=True)
    got = edge_cpu.run(g, {"x": x}, record=True)
    want = {**ref.outputs, **ref.traces}
    bad = {k: int(np.count_nonzero(want[k] != got[k])) for k in want if k in got and not np.array_equal(want[k], got[k])}
    assert {"y", "lif/v", "lif2/v", "lif/out"} <= set(got) and not bad, bad
    assert ref.outputs["y"].any() and ref.traces["lif/out"].any()  # not a comparison of silent runs


def _snn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 20), snn.RLeaky(beta=0.9, linear_features=20, init_hidden=True),
                        nn.Linear(20, 10), snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True, reset_mechanism="zero"),
                        nn.Linear(10, 5), snn.Leaky(beta=0.9, init_hidden=True))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    return net.eval()


def test_snntorch_net_compiles_for_edge_cpu_and_equals_the_emulator(tmp_path: Path) -> None:
    xs = (np.random.default_rng(0).random((50, 8, 12)) < 0.3).astype(np.float32)
    art = compile_model(load(_snn_net()), "edge-cpu", tmp_path / "e", calibration=xs)
    qg = load_artifact(art).graph
    assert qg.nodes["1"].reset_timing is ResetTiming.NEXT_STEP and qg.nodes["1"].reset is ResetMode.SUBTRACT
    assert qg.nodes["3"].reset_timing is ResetTiming.NEXT_STEP_END
    em = simulate(qg, {"input": xs}, record=True)
    ed = edge_cpu.run(art, {"input": xs}, record=True)
    assert em.outputs["output"].sum() > 20
    np.testing.assert_array_equal(ed["output"], em.outputs["output"])
    bad = [k for k in em.traces if k in ed and not np.array_equal(em.traces[k], ed[k])]
    assert not bad, bad


def test_fixed_function_targets_refuse_snntorch_timings_by_node(tmp_path: Path) -> None:
    xs = (np.random.default_rng(0).random((20, 4, 12)) < 0.3).astype(np.float32)
    g = load(_snn_net())
    for target in ("loihi1", "spinnaker"):
        with pytest.raises(CompileError) as err:
            compile_model(g, target, tmp_path / target, calibration=xs)
        text = str(err.value)
        assert "node '1' (LIF): reset 'subtract'" in text, text
        assert "node '3' (CubaLIF): reset 'zero' with snnTorch's timing 'next_step_end'" in text, text
        assert "loihi2" in text and "edge-cpu" in text


def test_leaky_zero_reset_is_rewritten_for_loihi1(tmp_path: Path) -> None:
    """snnTorch Leaky(reset_mechanism='zero'): next_step zero = after_spike zero in spikes, so a
    fixed-function target gets Lava's own reset (the float reference of the artifact is unchanged)."""
    from neurocc.backends.reference import simulate as ref_sim

    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(8, 12), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"),
                        nn.Linear(12, 3), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"))
    xs = (np.random.default_rng(3).random((30, 2, 8)) < 0.4).astype(np.float32)
    g = load(net)
    art = compile_model(g, "loihi1", tmp_path / "l", calibration=xs)
    qg = load_artifact(art).graph
    assert qg.nodes["1"].reset_timing is ResetTiming.AFTER_SPIKE
    f = load_artifact(art).float_graph
    np.testing.assert_array_equal(ref_sim(f, {"input": xs}).outputs["output"], ref_sim(g, {"input": xs}).outputs["output"])


def test_soft_reset_and_snntorch_timings_on_lava_equal_the_emulator(lava_ok: None, tmp_path: Path) -> None:
    """loihi2 runs snnTorch's subtract (next_step, reset_delay=False) and Synaptic/RLeaky zero
    (next_step_end) through neurocc's Lava process model: bit-exact with the emulator, every u and v."""
    from neurocc.backends import loihi

    xs = (np.random.default_rng(0).random((25, 2, 12)) < 0.3).astype(np.float32)
    net = _snn_net()
    net[5].reset_delay = False
    art = compile_model(load(net), "loihi2", tmp_path / "l", calibration=xs)
    qg = load_artifact(art).graph
    assert qg.nodes["1"].reset is ResetMode.SUBTRACT and qg.nodes["5"].reset_now
    # the Linear bias into the Synaptic layer '3' acts on the current (bias_u), and every biased
    # layer's bias starts with its Dense-delayed input (bias_start = its latency: 1, 2, 3)
    assert qg.nodes["3"].bias_u is not None and np.any(qg.nodes["3"].bias_u)
    assert [qg.nodes[n].bias_start for n in ("1", "3", "5")] == [1, 2, 3]
    em = simulate(qg, {"input": xs}, record=True)
    lv = loihi.run(art, {"input": xs}, record=True)
    assert em.outputs["output"].sum() > 5
    np.testing.assert_array_equal(lv["output"], em.outputs["output"])
    keys = [k for k in em.traces if k in lv]
    assert {"1/v", "3/u", "3/v", "5/v"} <= set(keys)
    bad = {k: int(np.count_nonzero(em.traces[k] != lv[k])) for k in keys if not np.array_equal(em.traces[k], lv[k])}
    assert not bad, bad


def test_edge_cpu_f32_reproduces_the_reference_with_the_new_semantics(tmp_path: Path) -> None:
    """The float32 ONNX graph (edge-cpu-f32) against the float64 reference: reset_now, next_step_end,
    reset none (snnTorch) and v >= θ with v_min (Sinabs); spikes equal, membranes within float32."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 20), snn.RLeaky(beta=0.9, linear_features=20, init_hidden=True, reset_delay=False),
                        nn.Linear(20, 10), snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True, reset_mechanism="zero"),
                        nn.Linear(10, 5), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="none"))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    xs = (np.random.default_rng(0).random((50, 8, 12)) < 0.3).astype(np.float32)
    graphs = {"snntorch": load(net.eval())}
    sinabs = pytest.importorskip("sinabs.layers", reason="sinabs is not installed")
    from sinabs.activation import SingleSpike

    torch.manual_seed(1)
    # own threshold tensors: Sinabs' default spike_threshold is one tensor shared by every layer
    # built without one, and the p.mul_ below would double it for the rest of the process
    sin = nn.Sequential(nn.Linear(12, 16), sinabs.IAF(spike_fn=SingleSpike, min_v_mem=-0.5,
                                                      spike_threshold=torch.tensor(1.0)), nn.Linear(16, 5),
                        sinabs.LIF(tau_mem=6.0, spike_fn=SingleSpike, norm_input=False,
                                   spike_threshold=torch.tensor(1.0)))
    with torch.no_grad():
        for p in sin.parameters():
            p.mul_(2.0)
    graphs["sinabs"] = load(sin.eval(), input_shape=(12,))
    from neurocc.backends.reference import simulate as ref_sim

    for name, g in graphs.items():
        art = compile_model(g, "edge-cpu-f32", tmp_path / name, calibration=xs)
        got = edge_cpu.run(art, {"input": xs}, record=True)
        want = ref_sim(g, {"input": xs}, record=True)
        assert want.outputs["output"].sum() > 20, name
        np.testing.assert_array_equal(got["output"], want.outputs["output"], err_msg=name)
        for k, v in want.traces.items():
            if k.endswith("/v"):
                assert np.abs(got[k] - v).max() <= 50 * 4 * 2.0 ** -24 * max(1.0, float(np.abs(v).max())), (name, k)


@pytest.mark.parametrize("mode", [ResetMode.ZERO, ResetMode.SUBTRACT])
def test_loihi_bias_start_and_bias_u_on_edge_cpu_equal_the_emulator(mode: ResetMode) -> None:
    """A loihi graph's bias start and bias on the current (neurocc's Lava process model) are
    lowered to ONNX: the edge-cpu window and step graphs equal the emulator bit for bit, and the
    gate is visible (no u before step 1 + bias_start without input)."""
    one = lambda v: np.full(3, v, np.int32)  # noqa: E731
    lif = Q.QLIF(du=one(800), dv=one(400), vth=one(50), bias_mant=one(2), bias_exp=one(6),
                 bias_u=np.array([90, -40, 700], np.int64), bias_start=3, reset=mode)
    g = Graph({"x": N.Input(shape=(4,)), "d": Q.QDense(weight=np.ones((3, 4), np.int32)), "l": lif,
               "y": N.Output(shape=(3,))}, [Edge("x", "d"), Edge("d", "l", 1), Edge("l", "y")],
              numerics="loihi", name="gated").verify()
    x = np.zeros((12, 2, 4), np.float32)
    x[6:, 1] = 1.0
    want = simulate(g, {"x": x}, record=True)
    got = edge_cpu.run(g, {"x": x}, record=True)
    for k in ("y", "l/out", "l/u", "l/v"):
        assert np.array_equal(np.asarray(got[k]), np.asarray((want.outputs | want.traces)[k])), k
    u = got["l/u"][:, 0]
    assert not u[:3].any() and u[3:].all() and got["y"].any()
