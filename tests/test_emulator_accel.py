"""The compiled (numba) emulator kernels against the numpy reference: bit-identical outputs,
traces (values and dtypes) and event counts on every quantized network the emulator tests
build, on random networks (hypothesis), and the numpy fallback chosen explicitly."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_emulator import int8_neuron, loihi_wrap_net, qlif, rec_net, spikes  # tests/ is on sys.path
from test_emulator_loihi import build_graph, one_neuron, paper_loihi_graph, random_net
from test_numerics_spinnaker import ff_graph

from neurocc.backends.emulator import accel, prepare, simulate
from neurocc.backends.emulator.neurons import IntNeuron
from neurocc.errors import BackendError
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.numerics import get_profile
from neurocc.ir.types import ResetMode

NUMBA, WHY = accel.numba_status()
needs_numba = pytest.mark.skipif(not NUMBA, reason=f"compiled kernels unavailable: {WHY}")


def both(g: Graph, inputs: dict, expect_compiled: set[str] | None = None, steps: int | None = None):
    """Run ``g`` on the numpy reference and on the compiled kernels; assert every output, trace
    and event count is identical (values and dtypes). Returns the reference result."""
    ref = simulate(g, inputs, steps, record=True, kernels="numpy")
    prog = prepare(g, kernels="numba")
    got = simulate(g, inputs, steps, record=True, program=prog)
    if expect_compiled is not None:
        assert set(prog.compiled) == expect_compiled
    for what in ("outputs", "traces"):
        a, b = getattr(ref, what), getattr(got, what)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype, k
            assert np.array_equal(a[k], b[k]), f"{what} {k} differ"
    assert ref.events == got.events
    plain = simulate(g, inputs, steps, program=prog)     # not recording: the compiled loops' other branch
    for k in ref.outputs:
        assert plain.outputs[k].dtype == ref.outputs[k].dtype and np.array_equal(plain.outputs[k], ref.outputs[k]), k
    assert plain.events == ref.events
    return ref


# ---- the emulator tests' networks ----------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("numerics", ["loihi", "int8"])
@pytest.mark.parametrize("seed,B", [(0, 1), (1, 3), (2, 5)])
def test_recurrent_nets(numerics, seed, B):
    both(rec_net(seed, numerics), {"input": spikes(seed, 40, B)}, {"d0", "l0", "r0", "d1", "l1"})


@needs_numba
@pytest.mark.parametrize("kind", ["QLIF", "QLI"])
@pytest.mark.parametrize("weight_exp", [0, 6, 9])
def test_loihi_wrap_and_saturation_nets(kind, weight_exp):
    ref = both(loihi_wrap_net(weight_exp, kind), {"input": spikes(11, 80, 2, n=60, p=0.5)}, {"d", "l"})
    if weight_exp:
        assert ref.events["l"]["u_wrap"] > 0 and ref.events["l"]["v_saturate"] > 0


@needs_numba
@pytest.mark.parametrize("kw", [dict(du=4095, dv=0, vth=2, reset=ResetMode.SUBTRACT),
                                dict(du=4095, dv=0, vth=0, refractory=2),
                                dict(du=100, dv=300, vth=1, refractory=3, reset=ResetMode.SUBTRACT)])
def test_int8_neuron_nets(kw):
    both(int8_neuron(**kw), {"input": np.ones((12, 2, 1), np.int64)}, {"d", "l"})


@needs_numba
def test_int8_graded_u_wrap_and_large_sums():
    g = Graph({"input": N.Input(shape=(1,)), "d": Q.QDense(weight=np.array([[1]]), graded=True),
               "l": qlif(1, du=4095, dv=4096, vth=1 << 17), "output": N.Output(shape=(1,))},
              [Edge("input", "d"), Edge("d", "l"), Edge("l", "output")], numerics="int8")
    assert both(g, {"input": np.array([[[1 << 17]], [[-(1 << 17)]], [[1 << 40]]])}).events["l"]["u_wrap"] >= 1
    rng = np.random.default_rng(1)
    big = Graph.chain(("input", N.Input(shape=(3000,))), ("d", Q.QDense(weight=rng.integers(0, 128, (4, 3000)),
                                                                           graded=True)),
                      ("output", N.Output(shape=(4,))), numerics="int8")
    both(big, {"input": rng.integers(0, 1025, (3, 2, 3000)) * (rng.random((3, 2, 3000)) < 0.05)}, {"d"})


@needs_numba
def test_int8_sums_of_more_rows_than_one_int16_partial():
    rng = np.random.default_rng(4)
    w = np.concatenate([np.full((1, 700), 127), np.full((1, 700), -128), rng.integers(-128, 128, (3, 700))])
    g = Graph.chain(("input", N.Input(shape=(700,))), ("d", Q.QDense(weight=w)),
                    ("output", N.Output(shape=(5,))), numerics="int8")
    x = (rng.random((4, 2, 700)) < 0.97).astype(np.uint8)
    x[0, 0] = 1    # 700 rows: 248 + 248 + 204 (25 passes of 8, then 4 single rows); other rows: odd counts
    assert np.abs(both(g, {"input": x}, {"d"}).outputs["output"]).max() > 2**16


@needs_numba
@pytest.mark.parametrize("seed", range(8))
def test_lava_oracle_nets(seed):
    layers, x = random_net(seed, edge=seed % 2 == 1)
    g = build_graph(layers, x.shape[1])
    both(g, {"input": np.stack([x, x[::-1]], axis=1)})


@needs_numba
def test_directed_loihi_corner_nets():
    both(paper_loihi_graph(), {"input": (np.arange(300) % 50 == 0).astype(np.uint8).reshape(-1, 1, 1)})
    both(one_neuron(np.full((1, 8), -128), weight_exp=7, du=4095), {"input": np.ones((3, 1, 8), np.uint8)})
    ref = both(one_neuron(np.full((1, 8), 128), weight_exp=7, du=4095), {"input": np.ones((2, 1, 8), np.uint8)})
    assert ref.traces["l/u"][1, 0, 0] == 2**23                 # +2^23 itself is kept (Lava's off-by-one)
    both(one_neuron(np.full((1, 8), 127), weight_exp=7, dv=0), {"input": np.ones((6, 1, 8), np.uint8)})
    both(one_neuron([[3, -1, 127]], bias_mant=-4000, bias_exp=-3, vth=0), {"input": np.ones((5, 2, 3), np.uint8)})


def conv_net(numerics: str, seed: int, graded: bool = False) -> Graph:
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (4, 1, 3, 3)) if numerics == "int8" else rng.integers(-255, 256, (4, 1, 3, 3))
    conv = Q.QConv2d(weight=w, bias=np.zeros(4), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                     graded=graded)
    pool = Q.QSumPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0))     # conv (4, 4, 6) → (4, 3, 5)
    return Graph({"input": N.Input(shape=(2, 7, 6)), "c": conv, "p": pool, "f": N.Flatten(), "l": qlif(60, vth=3),
                  "output": N.Output()},
                 [Edge("input", "c"), Edge("c", "p"), Edge("p", "f"), Edge("f", "l", 1 if numerics == "loihi" else 0),
                  Edge("l", "output")], numerics=numerics, name="conv")


@needs_numba
@pytest.mark.parametrize("numerics", ["loihi", "int8"])
def test_conv_nets(numerics):
    g = conv_net(numerics, 0)
    assert g.shapes()["f"] == (60,)
    both(g, {"input": spikes(2, 9, 3, n=84).reshape(9, 3, 2, 7, 6)}, {"c", "l"})
    gg = conv_net(numerics, 1, graded=True)
    both(gg, {"input": np.random.default_rng(3).integers(-9, 10, (6, 2, 2, 7, 6))}, {"c", "l"})


@needs_numba
def test_loihi_qconv_wraps_to_24_bits():
    g = Graph.chain(("input", N.Input(shape=(1, 2, 2))),
                    ("c", Q.QConv2d(weight=np.full((1, 1, 2, 2), 1 << 22), bias=np.zeros(1))),
                    ("output", N.Output()), numerics="loihi")
    assert both(g, {"input": np.ones((1, 1, 1, 2, 2), np.uint8)}, {"c"}).events["c"]["out_wrap"] == 1


@needs_numba
@pytest.mark.parametrize("kind", ["LIF", "IF"])
def test_spinnaker_nets(kind):
    from neurocc.compiler.passes.quantize_spinnaker import quantize_spinnaker

    q, _ = quantize_spinnaker(ff_graph(kind), None)
    x = (np.random.default_rng(1).random((120, 2, 20)) < 0.2).astype(np.float64)
    prog = prepare(q, kernels="numba")
    assert prog.compiled and all(q.nodes[n].kind == "QSpiNNakerDense" for n in prog.compiled)
    both(q, {"in": x})


# ---- random networks ------------------------------------------------------------------------
@st.composite
def random_layers(draw):
    numerics = draw(st.sampled_from(["loihi", "int8"]))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 30, draw(st.integers(2, 4)))]
    nodes, edges, prev = {"input": N.Input(shape=(sizes[0],))}, [], "input"
    graded_in = draw(st.booleans())
    for k, (m, n) in enumerate(zip(sizes, sizes[1:])):
        wmax = int(rng.choice([2, 128, 256, 1 << 12]) if numerics == "loihi" else 128)
        w = rng.integers(-wmax, wmax, (n, m)) * (rng.random((n, m)) < rng.uniform(0.2, 1))
        nodes[f"d{k}"] = Q.QDense(weight=w, weight_exp=int(rng.integers(-4, 8)), graded=graded_in and k == 0,
                                  num_weight_bits=int(rng.choice([8, 6])) if numerics == "loihi" else 8)
        par = dict(du=rng.integers(-1, 4096, n), dv=rng.integers(0, 4097, n), bias_mant=rng.integers(-4096, 4096, n),
                   bias_exp=rng.integers(-7, 8, n))
        last = k == len(sizes) - 2
        if last and rng.random() < 0.4:
            nodes[f"l{k}"] = Q.QLI(**par)
        else:
            extra = {}
            if numerics == "int8":
                extra = dict(reset=[ResetMode.ZERO, ResetMode.SUBTRACT][int(rng.integers(2))],
                             refractory=int(rng.integers(0, 4)))
            nodes[f"l{k}"] = Q.QLIF(vth=rng.integers(0, 1 << 17, n) >> int(rng.integers(0, 17)), **par, **extra)
        edges += [Edge(prev, f"d{k}"), Edge(f"d{k}", f"l{k}", 1 if numerics == "loihi" else int(rng.integers(0, 2)))]
        if not last and rng.random() < 0.3:
            nodes[f"r{k}"] = Q.QDense(weight=rng.integers(-128, 128, (n, n)))
            edges += [Edge(f"l{k}", f"r{k}"), Edge(f"r{k}", f"l{k}", 1)]
        prev = f"l{k}"
    nodes["output"] = N.Output(shape=(sizes[-1],))
    edges.append(Edge(prev, "output"))
    T, B = int(rng.integers(1, 40)), int(rng.integers(1, 5))
    if graded_in:
        x = rng.integers(-300, 300, (T, B, sizes[0])) * (rng.random((T, B, sizes[0])) < 0.4)
    else:
        x = (rng.random((T, B, sizes[0])) < rng.uniform(0, 0.8)).astype(np.uint8)
    return Graph(nodes, edges, numerics=numerics, name="rand"), x


@needs_numba
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_layers())
def test_random_nets_identical(net):
    g, x = net
    both(g, {"input": x})


# ---- dispatch and fallback ------------------------------------------------------------------
def test_numpy_kernels_chosen_explicitly():
    g = rec_net(0, "int8")
    prog = prepare(g, kernels="numpy")
    assert prog.compiled == []
    assert all(type(k).__module__ != accel.__name__ for k in prog.kernels.values())
    assert simulate(g, {"input": spikes(0, 5, 2)}, program=prog).outputs["output"].shape == (5, 2, 8)


def test_float_graphs_never_use_compiled_kernels():
    assert prepare(rec_net(0, None), kernels="auto").compiled == []


def test_missing_numba(monkeypatch):
    monkeypatch.setattr(accel, "numba_status", lambda: (False, "numba is not installed (test)"))
    g = rec_net(0, "loihi")
    assert prepare(g, kernels="auto").compiled == []           # auto: the numpy reference
    with pytest.raises(BackendError, match="numba is not installed"):
        prepare(g, kernels="numba")
    with pytest.raises(BackendError, match="unknown emulator kernels"):
        prepare(g, kernels="fast")


def test_reset_none_runs_the_numpy_kernel_and_both_paths_agree():
    # reset "none" (issue 12) is not in the compiled neuron loop: it must fall back, not run as zero
    g = rec_net(0, "int8")
    nodes = dict(g.nodes)
    nodes["l1"] = nodes["l1"].replace(reset="none")
    g2 = g.replace(nodes=nodes)
    assert accel.kernel_class(IntNeuron, nodes["l1"], get_profile("int8")) is IntNeuron
    if NUMBA:
        assert "l1" not in prepare(g2, kernels="numba").compiled
        both(g2, {"input": spikes(0, 20, 2)})


def test_unknown_node_options_fall_back_per_layer():
    # a neuron with a field the compiled kernel does not implement (as a future option would
    # be), set away from its default, runs the numpy kernel; the other layers stay compiled.
    # At its default the option means the behaviour the compiled kernel has: it stays compiled.
    @dataclasses.dataclass(frozen=True, eq=False)
    class QLIFX(Q.QLIF):
        reset_delay: int = 0

    g = rec_net(0, "int8")
    nodes = dict(g.nodes)
    old = nodes["l1"]
    same = {f.name: getattr(old, f.name) for f in dataclasses.fields(Q.QLIF)}
    assert accel.kernel_class(IntNeuron, QLIFX(**same), get_profile("int8")) is accel.NbIntNeuron
    nodes["l1"] = QLIFX(**same, reset_delay=1)
    g2 = g.replace(nodes=nodes)
    assert accel.kernel_class(IntNeuron, nodes["l1"], get_profile("int8")) is IntNeuron
    assert accel.kernel_class(IntNeuron, old, get_profile("int8")) is accel.NbIntNeuron
    if NUMBA:
        compiled = prepare(g2, kernels="numba").compiled
        assert "l1" not in compiled and "l0" in compiled
        both(g2, {"input": spikes(0, 20, 2)})


@needs_numba
@pytest.mark.parametrize("start", [1, 7, 90])
def test_bias_start_on_the_compiled_kernel(start):
    """QLIF.bias_start (loihi: a layer's bias waits for its delayed input): the compiled kernel
    runs the gated steps on the numpy kernel and the rest compiled; identical to numpy, also when
    the gate spans the whole run (90 > 80 steps) and with a dense input after the gate."""
    g = one_neuron([[30, -10, 90]], du=500, dv=300, vth=60, bias_mant=700, bias_exp=1)
    g = g.with_node("l", dataclasses.replace(g.nodes["l"], bias_start=start))
    x = np.zeros((80, 2, 3), np.uint8)
    x[10:] = spikes(4, 70, 2, n=3, p=0.5)
    ref = both(g, {"input": x}, {"d", "l"})
    v = ref.traces["l/v"][:, :, 0]
    gated = min(start, 10)    # no input before step 10: v is 0 until the bias starts
    assert not v[:gated].any() and (start >= 80 or v[start:].any())


# ---- sigma-delta (the fused compiled update against numerics.sigma_delta) --------------------
def sdn_net(seed: int, *, variant: str, cum_error: bool, relu: bool, big: bool) -> Graph:
    """Input(12) → graded QDense → QSigmaDelta(delta, the input layer) → graded QDense →
    QSigmaDelta(sigma_delta) → graded QDense → QSigmaDelta(sigma read-out); ``big`` weights
    inputs and a bias near 2**31 drive the int32 registers past their range (wraps counted)."""
    from neurocc.ir.qnodes_sdn import QSigmaDelta

    rng = np.random.default_rng(seed)
    wmax = 128
    sd = dict(variant=variant, state_exp=6)
    nodes = {"input": N.Input(shape=(12,)),
             "d0": Q.QDense(weight=np.eye(12, dtype=np.int64), graded=True),
             "s0": QSigmaDelta(vth=np.full(12, 64), bias=np.zeros(12, np.int64), mode="delta", input_shift=6,
                               cum_error=cum_error and variant == "lava-0.10", **sd),
             "d1": Q.QDense(weight=rng.integers(-wmax, wmax, (9, 12)), graded=True),
             "s1": QSigmaDelta(vth=rng.integers(0, 2000, 9), bias=rng.integers(-500, 500, 9) + ((1 << 31) - 600 if big else 0),
                               mode="sigma_delta",
                               relu=relu, cum_error=cum_error and variant == "lava-0.10", **sd),
             "d2": Q.QDense(weight=rng.integers(-wmax, wmax, (5, 9)), graded=True),
             "s2": QSigmaDelta(vth=np.zeros(5, np.int64), bias=np.zeros(5, np.int64), mode="sigma", **sd),
             "output": N.Output(shape=(5,))}
    names = list(nodes)
    return Graph(nodes, [Edge(a, b) for a, b in zip(names, names[1:])], numerics="loihi", name="sdn")


@needs_numba
@pytest.mark.parametrize("variant,cum_error", [("lava-0.10", False), ("lava-0.10", True), ("lava-pr875", False)])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("big", [False, True])
def test_sigma_delta_nets(variant, cum_error, relu, big):
    g = sdn_net(3, variant=variant, cum_error=cum_error, relu=relu, big=big)
    rng = np.random.default_rng(5)
    x = rng.integers(-2000, 2000, (25, 3, 12)) * (rng.random((25, 3, 12)) < 0.6) * (1 << 16 if big else 1)
    ref = both(g, {"input": x}, {"d0", "s0", "d1", "s1", "d2", "s2"})
    assert np.count_nonzero(ref.outputs["output"]) > 0
    if big:
        ev = ref.events
        assert ev["s0"]["act_wrap"] and ev["s0"]["delta_wrap"] and ev["s1"]["act_wrap"] and ev["s1"]["sigma_wrap"]
        assert ev["s2"]["sigma_wrap"]


@needs_numba
def test_sigma_delta_auto_mode_before_the_switch_runs_the_numpy_rule(monkeypatch):
    # kernels="auto" before the process has spent LOAD_S in numpy: the compiled class must hand
    # over to the numpy rule (window -> step -> numpy step), not call itself back
    monkeypatch.setattr(accel, "_state", {"spent": 0.0, "loaded": False})
    monkeypatch.setattr(accel, "LOAD_S", 1e9)
    g = sdn_net(4, variant="lava-0.10", cum_error=True, relu=True, big=False)
    x = np.random.default_rng(8).integers(-500, 500, (10, 2, 12))
    prog = prepare(g, kernels="auto")
    assert {"s0", "s1", "s2"} <= set(prog.compiled)
    got = simulate(g, {"input": x}, record=True, program=prog)
    ref = simulate(g, {"input": x}, record=True, kernels="numpy")
    for k in ref.traces:
        assert np.array_equal(got.traces[k], ref.traces[k]), k
    assert got.events == ref.events and not accel._state["loaded"]
