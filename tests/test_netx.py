"""The netx HDF5 export (``network.net``): what it writes, what it refuses, and proof that lava-dl's
own loader runs the written files exactly like the emulator.

Part 1 (no Lava): netx's weight re-quantization on hand-derived cases from research note
lava-loihi.md §5.3; the planner's refusals, each naming its node; the file's schema (§5.2) read
back with h5py; the compile hook's files.

Part 2 (``lava``): seeded random chains (dense, delayed dense, dense_rec, input neuron, graded
input, conv + flatten, leaky-integrator readout) and the NIR paper graphs compiled for loihi2,
written to netx files, loaded by ``lava.lib.dl.netx.hdf5.Network`` in the Lava worker and run in
``fixed_pt``: outputs and every u/v trace must equal the emulator's. Two layers the planner refuses
are written anyway to show netx really zeroes them. All runs share one worker call.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurocc.backends.loihi import NetxJob, plan_netx, run_netx_many
from neurocc.backends.loihi.emit import emit
from neurocc.backends.loihi.netx_file import NET_FILE, SIDECAR, write_net
from neurocc.backends.loihi.netx_weights import (
    netx_dense_effect,
    netx_weight_bits,
    same_values,
)
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d

NIR_MODELS = {"two_lif_neurons.nir": 1e-3, "lif_norse.nir": 1e-4, "lif_rockpool.nir": 1e-3, "cnn_sinabs.nir": 1e-3}


def lif(shape, du=4095, dv=0, vth=10, bias_mant=0, bias_exp=0, cls=QLIF):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    full = lambda v: np.broadcast_to(np.asarray(v, np.int32), shape).copy()
    kw = {"du": full(du), "dv": full(dv), "bias_mant": full(bias_mant), "bias_exp": full(bias_exp)}
    if cls is QLIF:
        kw["vth"] = full(vth)
    return cls(**kw)


def dense(w, **kw) -> QDense:
    return QDense(weight=np.asarray(w, np.int32), **kw)


def graph(nodes: dict, edges: list, name: str = "g") -> Graph:
    return Graph(nodes, tuple(Edge(*e) for e in edges), numerics="loihi", name=name).verify()


def two_layer(w1, w2=None, **kw1) -> Graph:
    w1 = np.asarray(w1)
    w2 = np.ones((2, w1.shape[0]), np.int32) * 50 if w2 is None else np.asarray(w2)
    nodes = {"x": Input(shape=(w1.shape[1],)), "d1": dense(w1, **kw1), "l1": lif(w1.shape[0]),
             "d2": dense(w2), "l2": lif(w2.shape[0]), "o": Output()}
    return graph(nodes, [("x", "d1"), ("d1", "l1", 1), ("l1", "d2"), ("d2", "l2", 1), ("l2", "o")])


# ----- Part 1: netx's weight arithmetic (research note §5.3, derived by hand) ------------------------
def test_int8_mixed_weights_are_doubled_with_exponent_minus_one():
    """w = [[3, -5], [127, -128]]: MIXED, scale = min(127/127, -128/-128) = 1, sb = 0 + 1 = 1;
    3 is odd so n = 0 - 1 = -1; num_weight_bits = 8 - 1 + 1 = 8, weight_exp = -1, weights 2w.
    Lava (MIXED, 8 bits) drops 1 LSB of even numbers: nothing lost; 2w * 2**-1 = w."""
    w = np.array([[3, -5], [127, -128]])
    shifted, nwb, exp = netx_weight_bits(w)
    assert (shifted.tolist(), nwb, exp) == ([[6, -10], [254, -256]], 8, -1)
    eff, _, exp = netx_dense_effect(w)
    assert same_values(eff, exp, w)


def test_weights_netx_silently_zeroes():
    """EXC with max 300: scale 255/300 < 1, sb = -1, numpy shifts by -1 give 0. [[-3, 0, -5, -200]]:
    netx says MIXED (max 0 is not < 0): sb = floor(log2(128/200)) + 1 = 0, odd so n = -1,
    num_weight_bits 9; Lava says INHIBITORY (max <= 0): drop 8 - 9 = -1 bits → every weight 0."""
    for w in (np.array([[0, 300], [7, 1]]), np.array([[-3, 0, -5, -200]])):
        eff, _, exp = netx_dense_effect(w)
        assert not eff.any(), w
        assert not same_values(eff, exp, w)
    assert netx_weight_bits(np.zeros((2, 2), int)) is None  # netx divides 255 by 0 and crashes


def test_minus_128_with_a_zero_is_not_safe():
    """[[-128, 0, -3]]: netx says MIXED, scale = -128/-128 = 1, sb = 0 + 1 = 1 → [-256, 0, -6],
    num_weight_bits 8, weight_exp -1; Lava says INHIBITORY and clips -256 to -255 (no bits
    dropped): -255 · 2**-1 ≠ -128. (The research note's "min >= -128" row holds for min >= -127.)"""
    w = np.array([[-128, 0, -3]])
    eff, _, exp = netx_dense_effect(w)
    assert (eff.tolist(), exp) == ([[-255, 0, -6]], -1)
    assert not same_values(eff, exp, w)
    assert same_values(*netx_dense_effect(w + (w == -128))[::2], w + (w == -128))


def test_safe_envelopes_stay_exact():
    """§5.3 "yes" rows: mixed in [-256, 254], all >= 0 up to 255, all < 0 down to -255, all <= 0
    with a zero down to -128, small ranges (scaled up losslessly)."""
    rng = np.random.default_rng(0)
    cases = [(-256, 255), (0, 256), (-255, 0), (-16, 17), (0, 4)]
    for lo, hi in cases:
        for _ in range(50):
            w = rng.integers(lo, hi, (6, 7))
            if not w.any():
                continue
            eff, _, exp = netx_dense_effect(w)
            assert same_values(eff, exp, w), (lo, hi, w)
    w = np.array([[-100, 0, -5]])
    eff, _, exp = netx_dense_effect(w)
    assert same_values(eff, exp, w)


# ----- Part 1: the planner's refusals ------------------------------------------------------------
def _problems(g: Graph) -> list[str]:
    return list(plan_netx(g).problems)


@pytest.mark.parametrize("case", ["odd_half", "exc_big", "inh_zero_odd", "zero", "per_neuron_vth", "bias_frac"])
def test_refused_layers_name_their_node(case):
    w = np.array([[1, 3], [5, 7]])
    g = {
        "odd_half": lambda: two_layer(w, weight_exp=-1),                 # EXC effective weights 1,3,5,7: /2 not integer
        "exc_big": lambda: two_layer(w * 30, weight_exp=1),             # values up to 420 > 255
        "inh_zero_odd": lambda: two_layer([[-3, 0], [-5, -200]]),       # the ≤0-with-zero case
        "zero": lambda: two_layer(np.zeros((2, 2))),                    # netx crashes
        "per_neuron_vth": lambda: graph({"x": Input(shape=(2,)), "d": dense(w),
                                         "l": dataclasses.replace(lif(2), vth=np.array([5, 6], np.int32)),
                                         "o": Output()}, [("x", "d"), ("d", "l", 1), ("l", "o")]),
        "bias_frac": lambda: graph({"x": Input(shape=(2,)), "d": dense(w), "l": lif(2, bias_mant=3, bias_exp=2),
                                    "o": Output()}, [("x", "d"), ("d", "l", 1), ("l", "o")]),
    }[case]()
    found = _problems(g)
    want_node = {"per_neuron_vth": "l", "bias_frac": "l"}.get(case, "d1")
    assert found and all(f"node '{want_node}'" in p for p in found), found


def test_structural_refusals():
    """Pool, a branch, two synapses into one neuron, a delayed dense_rec: each is named."""
    pool = graph({"x": Input(shape=(2, 4, 4)), "c": QConv2d(weight=np.ones((2, 2, 1, 1), np.int32), bias=np.zeros(0)),
                  "n1": lif((2, 4, 4)), "p": QSumPool2d(kernel_size=(2, 2), stride=(2, 2)), "n2": lif((2, 2, 2)),
                  "o": Output()},
                 [("x", "c"), ("c", "n1", 1), ("n1", "p"), ("p", "n2", 1), ("n2", "o")])
    assert any("node 'p' (QSumPool2d)" in p and "'pool'" in p for p in _problems(pool)), _problems(pool)
    w = np.full((3, 2), 20)
    branch = graph({"x": Input(shape=(2,)), "a": dense(w), "la": lif(3), "b": dense(w), "lb": lif(3),
                    "oa": Output(), "ob": Output()},
                   [("x", "a"), ("a", "la", 1), ("x", "b"), ("b", "lb", 1), ("la", "oa"), ("lb", "ob")])
    assert any("node 'x'" in p and "chain" in p for p in _problems(branch)), _problems(branch)
    rec = graph({"x": Input(shape=(2,)), "d": dense(w), "l": lif(3), "r": dense(np.eye(3) * 9),
                 "o": Output()}, [("x", "d"), ("d", "l", 2), ("l", "r"), ("r", "l", 1), ("l", "o")])
    assert any("node 'r'" in p and "dense_rec" in p for p in _problems(rec)), _problems(rec)
    assert plan_netx(dataclasses.replace(rec, edges=tuple(
        Edge(e.src, e.dst, 1 if (e.src, e.dst) == ("d", "l") else e.delay) for e in rec.edges))).expressible


# ----- Part 1: the file ------------------------------------------------------------------------
def conv_net() -> Graph:
    rng = np.random.default_rng(3)
    conv = QConv2d(weight=rng.integers(-60, 61, (3, 2, 3, 2)).astype(np.int32), bias=np.zeros(0),
                   stride=(2, 1), padding=(1, 0))
    nodes = {"x": Input(shape=(2, 7, 6)), "c": conv,
             "n1": lif((3, 4, 5), du=1000, dv=300, vth=40, bias_mant=np.arange(3)[:, None, None] * 16, bias_exp=2),
             "f": Flatten(), "d": dense(rng.integers(-128, 128, (4, 60)), weight_exp=-1),
             "n2": lif(4, du=-1, dv=4096, cls=QLI), "o1": Output(), "o2": Output()}
    return graph(nodes, [("x", "c"), ("c", "n1", 1), ("n1", "f"), ("f", "d"), ("d", "n2", 1),
                         ("n1", "o1"), ("n2", "o2")], "convnet")


def test_schema_read_back(tmp_path):
    h5py = pytest.importorskip("h5py")
    g = conv_net()
    plan = plan_netx(g)
    assert plan.expressible, plan.problems
    write_net(plan, tmp_path / NET_FILE)
    with h5py.File(tmp_path / NET_FILE, "r") as f:
        lay = f["layer"]
        assert [lay[str(i)]["type"][0] for i in range(len(lay))] == [b"input", b"conv", b"flatten", b"dense"]
        assert lay["1/type"].dtype == np.dtype("S10") and lay["1/type"].shape == (1,)
        assert lay["0/shape"][()].tolist() == [2, 7, 6] and lay["1/shape"][()].tolist() == [3, 4, 5]
        assert lay["1/weight"].dtype == np.float32 and lay["1/weight"].shape == (3, 2, 3, 2)
        assert np.array_equal(lay["1/weight"][()], g.nodes["c"].weight)
        assert lay["1/stride"][()].tolist() == [2, 1] and lay["1/padding"][()].tolist() == [1, 0]
        assert lay["1/bias"][()].tolist() == [0.0, 1.0, 2.0]  # per channel: (16·c << 2) / 64 = c
        n = lay["1/neuron"]
        assert (n["type"][()], int(n["iDecay"][()]), int(n["vDecay"][()]), int(n["vThMant"][()])) == (b"CUBA", 1001, 300, 40)
        # mixed int8 weights with weight_exp -1: Lava keeps even values, the file holds them halved
        w = g.nodes["d"].weight.astype(np.int64)
        assert np.array_equal(lay["3/weight"][()], np.floor_divide(w - (w % 2), 2))
        assert "neuron" not in lay["3"]  # du = -1, dv = 4096, no bias: netx's own neuron-less dense
    doc_plan = [(lay.type, lay.block) for lay in plan.layers]
    assert doc_plan == [("input", None), ("conv", 0), ("flatten", None), ("dense", 1)]


def test_compile_hook_writes_files_and_lists_them(tmp_path, nir_paper):
    from neurocc.compiler.frontends import load
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact
    from neurocc.targets import get_target

    out = compile_model(load(nir_paper / "cnn_sinabs.nir"), get_target("loihi2"), tmp_path / "a", dt=1e-3)
    art = load_artifact(out)
    assert {NET_FILE, SIDECAR} <= set(art.manifest["files"])
    doc = json.loads((out / SIDECAR).read_text())
    assert doc["netx"]["file"] == NET_FILE and doc["netx"]["not_expressible"] == []
    assert [lay["type"] for lay in doc["netx"]["layers"]] == ["input", "conv", "conv", "conv", "flatten", "dense", "dense"]
    assert doc["graph_digest"] == art.graph.digest()
    assert doc["placement"]["fits"] and doc["placement"]["slices"]


def test_unexpressible_graph_gets_no_file_and_a_warning(tmp_path):
    g = graph({"x": Input(shape=(2, 4, 4)), "c": QConv2d(weight=np.ones((2, 2, 1, 1), np.int32), bias=np.zeros(0)),
               "n1": lif((2, 4, 4)), "p": QSumPool2d(kernel_size=(2, 2), stride=(2, 2)), "n2": lif((2, 2, 2)),
               "o": Output()}, [("x", "c"), ("c", "n1", 1), ("n1", "p"), ("p", "n2", 1), ("n2", "o")], "pooled")
    with pytest.warns(UserWarning, match=r"netx cannot express it.*node 'p' \(QSumPool2d\)"):
        emit(tmp_path, g, None)
    assert not (tmp_path / NET_FILE).exists()
    doc = json.loads((tmp_path / SIDECAR).read_text())
    assert doc["netx"]["file"] is None and doc["netx"]["nodes"]["p"] == "not expressible"
    assert doc["lava"]["problems"] == []  # the Lava-process path runs the pooling


# ----- Part 2: random chains in netx vs the emulator ---------------------------------------------
def _weights(rng, regime: str, shape) -> tuple[np.ndarray, dict]:
    """Weights inside netx's exact envelopes, by construction (the planner must agree)."""
    if regime == "mixed8":
        return rng.integers(-128, 128, shape), {}
    if regime == "mixed_half":
        return rng.integers(-128, 128, shape), {"weight_exp": -1}
    if regime == "exc":
        return rng.integers(0, 256, shape), {}
    if regime == "inh":
        return rng.integers(-255, 0, shape), {}
    if regime == "inh_zero":
        return rng.integers(-127, 1, shape), {}
    if regime == "small_exp":
        return rng.integers(-20, 21, shape), {"weight_exp": 2}
    return rng.integers(-128, 128, shape), {"num_weight_bits": 6}


REGIMES = ("mixed8", "mixed_half", "exc", "inh", "inh_zero", "small_exp", "nwb6")


def _rlif(rng, shape, cls=QLIF):
    du = int(rng.choice([0, 4095, int(rng.integers(0, 4096))]))
    dv = int(rng.choice([0, 4096, int(rng.integers(0, 4096))]))
    b = int(rng.integers(-20, 21)) if rng.random() < 0.5 else 0
    return lif(shape, du=du, dv=dv, vth=int(rng.integers(0, 400)), bias_mant=b * 8, bias_exp=3, cls=cls)


def _rdense(rng, n_out, n_in, **extra):
    regime = REGIMES[int(rng.integers(len(REGIMES)))]
    w, kw = _weights(rng, regime, (n_out, n_in))
    if regime != "inh":  # zeros are safe everywhere but in an all-negative matrix reaching below -128
        w = np.where(rng.random(w.shape) < 0.2, 0, w)
    return dense(w, **kw, **extra)


def random_chain(seed: int) -> tuple[Graph, dict, int]:
    rng = np.random.default_rng(seed)
    kind = ("dense", "input_neuron", "rec", "conv", "graded")[seed % 5]
    steps = int(rng.integers(20, 36))
    n = [int(rng.integers(3, 24)) for _ in range(4)]
    if kind == "conv":
        c, h, w = 2, int(rng.integers(5, 9)), int(rng.integers(5, 9))
        conv = QConv2d(weight=rng.integers(-90, 91, (3, c, 3, 3)).astype(np.int32), bias=np.zeros(0),
                       stride=(1, 2), padding=(1, 1))
        s1 = conv.out_shape((c, h, w))
        nodes = {"x": Input(shape=(c, h, w)), "c": conv, "n1": _rlif(rng, s1), "f": Flatten(),
                 "d": _rdense(rng, n[1], int(np.prod(s1))), "n2": _rlif(rng, (n[1],), QLI), "o1": Output(), "o2": Output()}
        edges = [("x", "c"), ("c", "n1", 1), ("n1", "f"), ("f", "d"), ("d", "n2", 1), ("n1", "o1"), ("n2", "o2")]
        x = rng.random((steps, 1, c, h, w)) < 0.3
        return graph(nodes, edges, f"netx_conv{seed}"), {"x": x.astype(np.int32)}, steps
    nodes = {"x": Input(shape=(n[0],)), "d1": _rdense(rng, n[1], n[0], graded=kind == "graded"), "l1": _rlif(rng, (n[1],)),
             "d2": _rdense(rng, n[2], n[1]), "l2": _rlif(rng, (n[2],), QLI if seed % 2 else QLIF),
             "o1": Output(), "o2": Output()}
    edges = [("x", "d1"), ("d1", "l1", 1), ("l1", "d2"), ("d2", "l2", int(rng.integers(1, 5))), ("l1", "o1"), ("l2", "o2")]
    if kind == "input_neuron":
        nodes["l0"] = dataclasses.replace(_rlif(rng, (n[0],)), bias_mant=np.zeros(n[0], np.int32))
        edges = [("x", "l0"), ("l0", "d1")] + edges[1:]
    if kind == "rec":
        nodes["r"] = dense(rng.integers(-60, 61, (n[1], n[1])))
        edges += [("l1", "r"), ("r", "l1", 1)]
    x = rng.integers(0, 4, (steps, 1, n[0])) if kind == "graded" else rng.random((steps, 1, n[0])) < 0.3
    return graph(nodes, edges, f"netx_{kind}{seed}"), {"x": np.asarray(x, np.int32)}, steps


N_RANDOM = 10


def _nir_jobs(nir_paper: Path, tmp: Path) -> list[NetxJob]:
    from neurocc.backends.loihi.netx_run import artifact_net
    from neurocc.compiler.frontends import load
    from neurocc.compiler.passes.quantize import bias_from_step_zero
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact

    rng = np.random.default_rng(11)
    jobs = []
    for name, dt in NIR_MODELS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = compile_model(load(nir_paper / name), "loihi2", tmp / name, dt=dt)
        # biased layers start their bias with their delayed input (bias_start), which netx cannot
        # say: the netx file is that of the graph with biases from step 0, compared with that graph
        g = bias_from_step_zero(load_artifact(out).graph)
        net = artifact_net(out, g) if (out / NET_FILE).exists() else write_net(plan_netx(g), tmp / f"{name}.net")
        x = {i: (rng.random((30, 1, *g.nodes[i].shape)) < 0.4).astype(np.int32) for i in g.inputs}
        jobs.append(NetxJob(g, x, None, True, net))
    return jobs


def _forced_jobs() -> list[tuple[NetxJob, Graph]]:
    """Layers the planner refuses, written anyway; paired with the graph netx really computes as
    the planner's model predicts (all weights zero in the first two; -128 → -255/2 in the third)."""
    rng = np.random.default_rng(5)
    out = []
    cases = ((rng.integers(50, 150, (6, 5)), 1), (np.array([[-3, 0, -5, -200, -7]] * 6), 0),
             (np.array([[-128, 0, -3, -128, -9]] * 6), 0))
    for w1, e in cases:
        g = two_layer(w1, np.full((2, 6), 90), weight_exp=e)
        plan = plan_netx(g)
        assert not plan.expressible
        eff, _, exp = netx_dense_effect((w1 << e).astype(np.int64))
        predicted = dense(eff, weight_exp=exp)
        from neurocc.ir.numerics.core import lava_dense_weights

        assert np.array_equal(lava_dense_weights(eff, 8), eff)  # the emulator keeps them as they are
        zeroed = dataclasses.replace(g, nodes={**g.nodes, "d1": predicted})
        x = (rng.random((12, 1, 5)) < 0.6).astype(np.int32)
        out.append((NetxJob(g, {"x": x}, None, True, plan=dataclasses.replace(plan, problems=())), zeroed))
    return out


@pytest.fixture(scope="module")
def netx_runs(lava_ok, nir_paper, tmp_path_factory):
    randoms = [random_chain(s) for s in range(N_RANDOM)]
    for g, _, _ in randoms:
        assert plan_netx(g).expressible, (g.name, plan_netx(g).problems)
    jobs = [NetxJob(g, x, steps, True) for g, x, steps in randoms]
    nir = _nir_jobs(nir_paper, tmp_path_factory.mktemp("nir"))
    forced = _forced_jobs()
    results = run_netx_many(jobs + nir + [j for j, _ in forced])
    return {"random": list(zip(jobs, results[: len(jobs)])),
            "nir": list(zip(nir, results[len(jobs): len(jobs) + len(nir)])),
            "forced": list(zip(forced, results[len(jobs) + len(nir):]))}


def _compare(pairs) -> tuple[int, int, list[str]]:
    from neurocc.backends.emulator import simulate

    compared = spikes = 0
    bad = []
    for job, got in pairs:
        res = simulate(job.graph, job.inputs, job.steps, record=True)
        emu = {**res.outputs, **res.traces}
        assert all(o in got for o in job.graph.outputs)
        for key, arr in got.items():
            compared += arr.size
            spikes += int(np.count_nonzero(arr)) if arr.dtype == np.uint8 else 0
            if not np.array_equal(np.asarray(emu[key]), arr):
                bad.append(f"{job.graph.name} {key}: first difference at {np.argwhere(emu[key] != arr)[0].tolist()}")
    return compared, spikes, bad


@pytest.mark.lava
def test_random_netx_files_match_emulator(netx_runs):
    compared, spikes, bad = _compare(netx_runs["random"])
    print(f"netx vs emulator: {N_RANDOM} random networks, {compared} elements ({spikes} spikes), {len(bad)} arrays differ")
    assert not bad, "\n".join(bad[:20])
    assert spikes > 0


@pytest.mark.lava
def test_nir_paper_netx_files_match_emulator(netx_runs):
    compared, spikes, bad = _compare(netx_runs["nir"])
    print(f"netx vs emulator: {len(NIR_MODELS)} NIR paper graphs (loihi2), {compared} elements ({spikes} spikes), "
          f"{len(bad)} arrays differ")
    assert not bad, "\n".join(bad[:20])


@pytest.mark.lava
def test_refused_layers_really_change_in_netx(netx_runs):
    """What the planner predicts netx does to a refused layer is what Lava runs, and it differs
    from the graph: the refusal was needed."""
    from neurocc.backends.emulator import simulate

    for (job, zeroed), got in netx_runs["forced"]:
        want = simulate(zeroed, job.inputs, record=True)
        assert all(np.array_equal({**want.outputs, **want.traces}[k], v) for k, v in got.items()), job.graph.name
        honest = simulate(job.graph, job.inputs, record=True)
        assert not np.array_equal(honest.traces["l1/u"], got["l1/u"])
