"""Emulator behaviour shared by all profiles: errors, execution strategies that must not change
results (window vs step, chunking, gather vs GEMM, batching), int8 semantics, conv/pool."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocc.backends import emulator
from neurocc.backends.emulator import linalg, program, simulate
from neurocc.errors import BackendError, InputError, NeuroccError
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.types import ResetMode


def qlif(n, **kw):
    p = dict(du=0, dv=0, vth=10, bias_mant=0, bias_exp=0) | kw
    extra = {k: p.pop(k) for k in ("reset", "refractory") if k in p}
    return Q.QLIF(**{k: np.full(n, v) for k, v in p.items()}, **extra)


def rec_net(seed: int, numerics: str | None, n_in=6, n=8) -> Graph:
    """input → dense → neuron (recurrent through a second dense) → dense → neuron → output."""
    rng = np.random.default_rng(seed)
    if numerics is None:
        lif = lambda: N.LIF(tau=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.full(n, 0.5), v_reset=np.zeros(n))
        dense = lambda m: N.Linear(weight=rng.normal(0, 0.6, (n, m)))  # noqa: E731
        delay = 0
    else:
        lif = lambda: qlif(n, du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)), vth=int(rng.integers(20, 200)))  # noqa: E731
        dense = lambda m: Q.QDense(weight=rng.integers(-128, 128, (n, m)))  # noqa: E731
        delay = 1 if numerics == "loihi" else 0
    nodes = {"input": N.Input(shape=(n_in,)), "d0": dense(n_in), "l0": lif(), "r0": dense(n), "d1": dense(n),
             "l1": lif(), "output": N.Output(shape=(n,))}
    edges = [Edge("input", "d0"), Edge("d0", "l0", delay), Edge("l0", "r0"), Edge("r0", "l0", 1),
             Edge("l0", "d1"), Edge("d1", "l1", delay), Edge("l1", "output")]
    return Graph(nodes, edges, dt=1e-3, method="euler", numerics=numerics, name=f"rec{seed}")


def spikes(seed, T, B, n=6, p=0.3):
    return (np.random.default_rng(seed).random((T, B, n)) < p).astype(np.uint8)


def same(a: emulator.SimResult, b: emulator.SimResult) -> bool:
    """Integer traces bit-equal. Float traces: BLAS sums in a different order for a window GEMM
    than for a one-row product, so float64 values may differ in the last bits (<= 1e-12 here);
    spikes must still be equal."""
    if a.traces.keys() != b.traces.keys():
        return False
    for k, x in a.traces.items():
        y = b.traces[k]
        if x.dtype.kind == "f" and not k.endswith("/out"):
            if not np.allclose(x, y, rtol=0, atol=1e-12):
                return False
        elif x.dtype.kind == "f" and k.startswith("d"):
            if not np.allclose(x, y, rtol=0, atol=1e-12):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


# ---- strategies that must not change results ------------------------------------------------
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), numerics=st.sampled_from([None, "loihi", "int8"]), B=st.integers(2, 4))
def test_batched_run_equals_per_sample_runs(seed, numerics, B):
    g = rec_net(seed, numerics)
    x = spikes(seed, 30, B)
    whole = simulate(g, {"input": x}, record=True)
    for b in range(B):
        one = simulate(g, {"input": x[:, b:b + 1]}, record=True)
        for k, arr in one.traces.items():
            assert np.array_equal(whole.traces[k][:, b:b + 1], arr), k


@pytest.mark.parametrize("numerics", [None, "loihi", "int8"])
def test_step_mode_and_chunking_equal_window_mode(numerics, monkeypatch):
    g = rec_net(3, numerics)
    x = spikes(3, 40, 2)
    ref = simulate(g, {"input": x}, record=True)
    monkeypatch.setattr(program, "WINDOW_BYTES", 1)              # one step per window
    assert same(ref, simulate(g, {"input": x}, record=True))
    monkeypatch.setattr(program, "WINDOW_BYTES", 1 << 28)
    prog = emulator.prepare(g)
    for blk in prog.blocks:
        blk.cyclic = True                                          # every node step by step
    assert same(ref, simulate(g, {"input": x}, record=True, program=prog))


@pytest.mark.parametrize("path", ["gather", "gemm"])
@pytest.mark.parametrize("numerics", [None, "loihi", "int8"])
def test_gather_and_gemm_paths_agree(path, numerics, monkeypatch):
    g = rec_net(5, numerics)
    x = spikes(5, 30, 3)
    ref = simulate(g, {"input": x}, record=True)
    monkeypatch.setattr(linalg, "C_GATHER" if path == "gemm" else "C_GEMM", 1.0)   # force the other path
    monkeypatch.setattr(linalg, "C_ROW", 1.0 if path == "gemm" else 0.0)
    assert same(ref, simulate(g, {"input": x}, record=True))


def test_large_sums_use_an_exact_path():
    # 3000 graded inputs up to 1024 times int8 weights: sums reach ~1e8 > 2^24, where float32
    # GEMM would round; the emulator must pick float64 (exact below 2^53) and match int64 math.
    rng = np.random.default_rng(1)
    w = rng.integers(0, 128, (4, 3000))
    g = Graph.chain(("input", N.Input(shape=(3000,))), ("d", Q.QDense(weight=w, graded=True)),
                    ("output", N.Output(shape=(4,))), numerics="int8")
    x = rng.integers(0, 1025, (3, 2, 3000))
    got = simulate(g, {"input": x}).outputs["output"]
    want = np.einsum("tbi,oi->tbo", x.astype(np.int64), w.astype(np.int64))
    assert np.abs(want).max() > 2**24 and np.array_equal(got, want)


def test_int8_gather_sums_more_rows_than_one_int16_partial():
    # 700 inputs, nearly all active: one row sums up to 700 int8 weights, i.e. three int16
    # partials of <= 255 rows; the result must equal plain int64 arithmetic (sums far beyond
    # int16 in both directions). Binary input, int8 profile, weight_exp 0.
    rng = np.random.default_rng(4)
    w = np.concatenate([np.full((1, 700), 127), np.full((1, 700), -128), rng.integers(-128, 128, (3, 700))])
    g = Graph.chain(("input", N.Input(shape=(700,))), ("d", Q.QDense(weight=w)),
                    ("output", N.Output(shape=(5,))), numerics="int8")
    x = (rng.random((4, 2, 700)) < 0.97).astype(np.uint8)
    got = simulate(g, {"input": x}).outputs["output"]
    want = np.einsum("tbi,oi->tbo", x.astype(np.int64), w.astype(np.int64))
    assert np.abs(want).max() > 2**16 and np.array_equal(got, want)


def loihi_wrap_net(weight_exp: int, kind: str = "QLIF") -> Graph:
    """input(60) → QDense → QLIF/QLI under loihi, scaled so that u wraps and v saturates."""
    rng = np.random.default_rng(7)
    n = 12
    par = {"du": rng.integers(-1, 4096, n), "dv": rng.integers(0, 4097, n),
           "bias_mant": rng.integers(-4096, 4096, n), "bias_exp": rng.integers(-7, 8, n)}
    neuron = Q.QLIF(vth=rng.integers(0, 1 << 17, n), **par) if kind == "QLIF" else Q.QLI(**par)
    return Graph({"input": N.Input(shape=(60,)), "d": Q.QDense(weight=rng.integers(-128, 128, (n, 60)),
                                                             weight_exp=weight_exp),
                  "l": neuron, "output": N.Output(shape=(n,))},
                 [Edge("input", "d"), Edge("d", "l", 1), Edge("l", "output")], numerics="loihi")


@pytest.mark.parametrize("kind", ["QLIF", "QLI"])
@pytest.mark.parametrize("weight_exp", [0, 6, 9])
def test_loihi_fast_neuron_path_equals_the_profile_path(kind, weight_exp, monkeypatch):
    # The loihi window fast path (no impossible int32 wraps, range checks before wrap/saturate)
    # must give the same traces and the same event counts as the generic per-step profile
    # calls. weight_exp 6 makes u wrap and v saturate inside the fast path (|a| <= 81536 here);
    # 9 makes |a << 6| exceed 2^24, so the fast path must decline.
    from neurocc.backends.emulator.neurons import IntNeuron

    g = loihi_wrap_net(weight_exp, kind)
    x = spikes(11, 80, 2, n=60, p=0.5)
    used = []
    fast = IntNeuron._window_fast
    monkeypatch.setattr(IntNeuron, "_window_fast", lambda self, *a: used.append(1) or fast(self, *a))
    ref = simulate(g, {"input": x}, record=True)
    monkeypatch.setattr(IntNeuron, "_fast_ok", lambda self, a: False)
    generic = simulate(g, {"input": x}, record=True)
    assert same(ref, generic) and ref.events == generic.events
    assert bool(used) == (weight_exp < 9)
    if weight_exp:
        assert ref.events["l"].get("u_wrap", 0) > 0 and ref.events["l"].get("v_saturate", 0) > 0


# ---- int8 profile ---------------------------------------------------------------------------
def int8_neuron(**kw) -> Graph:
    return Graph({"input": N.Input(shape=(1,)), "d": Q.QDense(weight=np.array([[1]])), "l": qlif(1, **kw),
                  "output": N.Output(shape=(1,))}, [Edge("input", "d"), Edge("d", "l"), Edge("l", "output")],
                 numerics="int8")


def drive(g, a, T):
    return simulate(g, {"input": np.full((T, 1, 1), a, np.int64)}, record=True)


def test_int8_subtract_reset_and_no_implicit_delay():
    # binary QDense, weight 1: u = 64 every step (du = 4095), no leak (dv = 0), vth<<6 = 128:
    # v = 64, 128 (not > 128), 192 > 128 → 64, 128, 192 → 64, 128: spikes at 2 and 4, and the
    # input of step 0 is in v at step 0 (int8 adds no Dense delay)
    g = int8_neuron(du=4095, dv=0, vth=2, reset=ResetMode.SUBTRACT)
    r = drive(g, 1, 6)
    assert r.outputs["output"][:, 0, 0].tolist() == [0, 0, 1, 0, 1, 0]
    assert r.traces["l/v"][:, 0, 0].tolist() == [64, 128, 64, 128, 64, 128]


def test_int8_refractory_holds_v():
    g = int8_neuron(du=4095, dv=0, vth=0, refractory=2)
    r = drive(g, 1, 8)
    assert r.outputs["output"][:, 0, 0].tolist() == [1, 0, 0, 1, 0, 0, 1, 0]   # min ISI = refractory + 1
    assert r.traces["l/ref"][:, 0, 0].tolist() == [2, 1, 0, 2, 1, 0, 2, 1]


def test_int8_u_wraps_true_twos_complement():
    g = Graph({"input": N.Input(shape=(1,)), "d": Q.QDense(weight=np.array([[1]]), graded=True),
               "l": qlif(1, du=4095, dv=4096, vth=1 << 17), "output": N.Output(shape=(1,))},
              [Edge("input", "d"), Edge("d", "l"), Edge("l", "output")], numerics="int8")
    r = simulate(g, {"input": np.array([[[1 << 17]], [[-(1 << 17)]]])}, record=True)
    assert r.traces["l/u"][:, 0, 0].tolist() == [-(2**23), -(2**23)]   # +2^23 wraps, -2^23 stays
    assert r.events["l"]["u_wrap"] == 1


# ---- conv and pooling -----------------------------------------------------------------------
def naive_conv(x, w, stride, pad, groups):
    C, H, W_ = x.shape
    co, cig, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (H + 2 * pad - kh) // stride + 1, (W_ + 2 * pad - kw) // stride + 1
    y = np.zeros((co, ho, wo))
    for o in range(co):
        g = o // (co // groups)
        for i in range(ho):
            for j in range(wo):
                y[o, i, j] = np.sum(w[o] * xp[g * cig:(g + 1) * cig, i * stride:i * stride + kh, j * stride:j * stride + kw])
    return y


def test_conv_and_pool_match_naive_loops():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 1, 3, 3))
    b = rng.normal(size=4)
    g = Graph.chain(("input", N.Input(shape=(2, 7, 6))),
                    ("c", N.Conv2d(weight=w, bias=b, stride=(2, 2), padding=(1, 1), groups=2)),
                    ("p", N.AvgPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(0, 0))),
                    ("f", N.Flatten()), ("output", N.Output()))
    x = rng.normal(size=(3, 2, 2, 7, 6))
    out = simulate(g, {"input": x}, record=True)
    for t in range(3):
        for bb in range(2):
            c = naive_conv(x[t, bb], w, 2, 1, 2) + b[:, None, None]
            assert np.allclose(out.traces["c/out"][t, bb], c)
            pool = (c[:, :-1, :-1] + c[:, 1:, :-1] + c[:, :-1, 1:] + c[:, 1:, 1:]) / 4
            assert np.allclose(out.outputs["output"][t, bb], pool.ravel())


def test_loihi_qconv_wraps_to_24_bits():
    w = np.full((1, 1, 2, 2), 1 << 22)
    g = Graph.chain(("input", N.Input(shape=(1, 2, 2))), ("c", Q.QConv2d(weight=w, bias=np.zeros(1))),
                    ("output", N.Output()), numerics="loihi")
    r = simulate(g, {"input": np.ones((1, 1, 1, 2, 2), np.uint8)})
    assert r.outputs["output"].ravel().tolist() == [0]                 # 4·2^22 = 2^24 wraps to 0
    assert r.events["c"]["out_wrap"] == 1


# ---- errors ---------------------------------------------------------------------------------
def test_bad_inputs_are_named():
    g = rec_net(0, "loihi")
    for bad, match in [({}, "missing input 'input'"), ({"input": spikes(0, 5, 1), "x": spikes(0, 5, 1)}, "unknown input 'x'"),
                       ({"input": np.zeros((5, 1, 7))}, r"expected \(steps, batch, 6\)"),
                       ({"input": np.full((5, 1, 6), 0.5)}, "non-integer values"),
                       ({"input": np.array([["a"] * 6])}, "dtype")]:
        with pytest.raises(InputError, match=match):
            simulate(g, bad)
    with pytest.raises(InputError, match="steps must be a positive integer"):
        simulate(g, {"input": spikes(0, 5, 1)}, steps=0)


def test_graph_not_quantized_for_the_profile():
    g = rec_net(0, "loihi")
    nodes = dict(g.nodes)
    nodes["l1"] = qlif(8, reset=ResetMode.SUBTRACT)  # allowed since issue 12 (neurocc's Lava process model)
    nodes["l0"] = qlif(8, refractory=2)
    with pytest.raises(BackendError) as err:
        simulate(g.replace(nodes=nodes), {"input": spikes(0, 5, 1)})
    assert "node 'l1'" not in str(err.value) and "node 'l0' (QLIF): refractory" in str(err.value)
    f = rec_net(0, None)
    assert emulator.check(f.replace(numerics="loihi"), None)        # float neurons in a quantized graph
    assert any("integer kind" in p for p in emulator.check(g.replace(numerics=None), None))


def test_internal_failure_names_node_and_step(monkeypatch):
    g = rec_net(1, "int8")
    prog = emulator.prepare(g)
    calls = {"n": 0}

    def boom(a):
        calls["n"] += 1
        if calls["n"] == 4:
            raise FloatingPointError("synthetic")
        return a

    monkeypatch.setattr(prog.kernels["l1"], "_update", boom)
    with pytest.raises(NeuroccError, match=r"while executing node 'l1' \(QLIF\) at step 3"):
        simulate(g, {"input": spikes(1, 6, 1)}, program=prog)


def test_run_accepts_a_graph_and_record_keys():
    g = rec_net(2, "loihi")
    out = emulator.run(g, {"input": spikes(2, 7, 2)}, record=True)
    assert out["output"].shape == (7, 2, 8) and out["l0/u"].shape == (7, 2, 8)
    assert {"input/out", "d0/out", "l0/v", "l1/out"} <= set(out)
