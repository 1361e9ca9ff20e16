"""Lanes (:mod:`neurocc.backends.loihi.lanes`): k samples side by side in one Lava runtime equal
the one-sample-per-lane path and the emulator bit for bit (spikes, u, v), on random nets with a
recurrent synapse, biases (``bias_start``), snnTorch's subtract reset (neurocc's ``NeuroccLIF``),
graded inputs, excitatory/inhibitory/mixed weights, and batches that are not a multiple of k; a
worker that cuts the lanes back in the wrong order is caught; the fallback predicate.

Lava runs in worker subprocesses only (``NEUROCC_LAVA_LANES`` sets the worker's most lanes)."""
from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.backends.loihi import lanes, lower
from neurocc.backends.loihi.plan import LavaNet, LConn, LProc
from neurocc.backends.loihi.runner import LavaJob, run_jobs
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QDense
from neurocc.ir.types import ResetMode, ResetTiming


def _lif(rng, n, **kw):
    r = lambda lo, hi: rng.integers(lo, hi, n).astype(np.int32)
    return QLIF(du=r(0, 4096), dv=r(0, 1500), vth=r(20, 200), bias_mant=kw.pop("bias", np.zeros(n, np.int32)),
                bias_exp=np.full(n, kw.pop("exp", 3), np.int32), **kw)


def recurrent_net(seed: int) -> Graph:
    """x(12) → fc → lif ⟲ rec → fc2 (inhibitory, 6 weight bits) → lif2 → fc3 → QLI; biases start
    with each layer's latency (bias_start 1, 2, 3)."""
    rng = np.random.default_rng(seed)
    w = lambda lo, hi, shape: rng.integers(lo, hi, shape).astype(np.int32)
    nodes = {"x": Input(shape=(12,)), "fc": QDense(weight=w(-100, 128, (16, 12))),
             "lif": _lif(rng, 16, bias=w(-30, 60, 16), bias_start=1),
             "rec": QDense(weight=w(-60, 60, (16, 16))),
             "fc2": QDense(weight=w(-40, 0, (8, 16)), num_weight_bits=6),
             "lif2": _lif(rng, 8, exp=6, bias=w(150, 400, 8), bias_start=2),
             "fc3": QDense(weight=w(0, 128, (3, 8)), weight_exp=1),
             "li": QLI(du=np.full(3, 300, np.int32), dv=np.full(3, 200, np.int32), bias_mant=w(-5, 5, 3),
                       bias_exp=np.zeros(3, np.int32), bias_start=3),
             "y": Output(shape=(8,)), "z": Output(shape=(3,))}
    edges = [Edge("x", "fc"), Edge("fc", "lif", 1), Edge("lif", "rec", 1), Edge("rec", "lif"),
             Edge("lif", "fc2"), Edge("fc2", "lif2", 1), Edge("lif2", "fc3"), Edge("fc3", "li", 1),
             Edge("lif2", "y"), Edge("li", "z")]
    return Graph(nodes, edges, dt=1e-3, numerics="loihi", name=f"recurrent{seed}").verify()


def subtract_net(seed: int) -> Graph:
    """snnTorch's Leaky: subtract reset at the next step, v >= vth, a bias on the current (bias_u)."""
    rng = np.random.default_rng(seed)
    sem = {"reset": ResetMode.SUBTRACT, "reset_timing": ResetTiming.NEXT_STEP, "fire_at_threshold": True}
    nodes = {"x": Input(shape=(10,)), "fc": QDense(weight=rng.integers(-90, 128, (14, 10)).astype(np.int32)),
             "lif": _lif(rng, 14, bias_u=rng.integers(-3000, 9000, 14).astype(np.int32), bias_start=1, **sem),
             "fc2": QDense(weight=rng.integers(-128, 128, (5, 14)).astype(np.int32)),
             "lif2": _lif(rng, 5, bias=rng.integers(-20, 80, 5).astype(np.int32), bias_start=2, **sem),
             "y": Output(shape=(5,))}
    edges = [Edge("x", "fc"), Edge("fc", "lif", 1), Edge("lif", "fc2"), Edge("fc2", "lif2", 1), Edge("lif2", "y")]
    return Graph(nodes, edges, dt=1e-3, numerics="loihi", name=f"subtract{seed}").verify()


def graded_net(seed: int) -> Graph:
    """Graded (24-bit message) input values into mixed weights, Lava's own LIF (no semantics)."""
    rng = np.random.default_rng(seed)
    nodes = {"x": Input(shape=(9,)), "fc": QDense(weight=rng.integers(-128, 128, (6, 9)).astype(np.int32),
                                                  weight_exp=-3, graded=True),
             "lif": QLIF(du=np.full(6, 1000, np.int32), dv=np.full(6, 700, np.int32), vth=np.full(6, 900, np.int32),
                         bias_mant=np.zeros(6, np.int32), bias_exp=np.zeros(6, np.int32)),
             "y": Output(shape=(6,))}
    edges = [Edge("x", "fc"), Edge("fc", "lif", 1), Edge("lif", "y")]
    return Graph(nodes, edges, dt=1e-3, numerics="loihi", name=f"graded{seed}").verify()


def _cases() -> list[tuple[Graph, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(7)
    spikes = lambda t, b, n, p: (rng.random((t, b, n)) < p).astype(np.int32)
    return [(recurrent_net(1), {"x": spikes(30, 7, 12, 0.3)}),
            (subtract_net(3), {"x": spikes(30, 6, 10, 0.4)}),
            (graded_net(4), {"x": rng.integers(-3000, 3000, (20, 3, 9)).astype(np.int32)})]


def _run(cases, monkeypatch, most: int, command=None) -> list[dict[str, np.ndarray]]:
    monkeypatch.setenv(lanes.ENV, str(most))
    return run_jobs([LavaJob(g, x, record=True) for g, x in cases], command=command)


def _equal(a: dict, b: dict) -> list[str]:
    return [k for k in b if k not in a or not np.array_equal(a[k], b[k])]


@pytest.mark.lava
def test_lanes_equal_one_sample_per_lane_and_the_emulator(lava_ok, monkeypatch):
    cases = _cases()
    monkeypatch.setenv(lanes.ENV, "4")
    # at most 4 lanes: 7 samples → 2 groups of 4 (one silent lane), 6 → 2 groups of 3, 3 → one group
    assert [lanes.lane_count(lower(g), sorted(p.name for p in lower(g).procs), x["x"].shape[1])
            for g, x in cases] == [4, 3, 3]
    # one sample per lane runs Lava's Dense, lanes run Sparse: equal integers below check that too
    assert all({p.kind for p in lower(g).procs} == {"source", "dense", "lif"} for g, _ in cases)
    assert {p.kind for p in lanes.widen(lower(cases[0][0]), [p.name for p in lower(cases[0][0]).procs], 4).procs} == {
        "source", "sparse", "lif"}
    laned, single = _run(cases, monkeypatch, 4), _run(cases, monkeypatch, 1)
    for (g, x), got, one in zip(cases, laned, single):
        em = simulate(g, x, record=True)
        want = {**em.outputs, **{k: v for k, v in em.traces.items() if k in one}}
        assert {"y", "lif/u", "lif/v"} <= set(want), (g.name, sorted(want))
        assert not _equal(one, want), (g.name, _equal(one, want))
        assert not _equal(got, want), (g.name, _equal(got, want))
        assert em.outputs["y"].astype(np.int64).sum() > 0, g.name   # the outputs spike, and every
        per_sample = {b"".join(np.asarray(want[k])[:, b].tobytes() for k in sorted(want)) for b in range(x["x"].shape[1])}
        assert len(per_sample) == x["x"].shape[1], g.name          # sample differs: a lane mix-up shows


MISSPLIT = """
import os, sys
from neurocc.backends.loihi import worker
real = worker.split
def reversed_lanes(net, outs, k, samples):
    flip = lambda a: a.reshape(a.shape[0], k, -1)[:, ::-1].reshape(a.shape)
    return real(net, [{key: flip(a) for key, a in out.items()} for out in outs], k, samples)
worker.split = reversed_lanes
sys.exit(worker.main([os.getcwd()]))
"""


@pytest.mark.lava
def test_a_worker_that_reverses_the_lanes_is_caught(lava_ok, monkeypatch):
    g, x = _cases()[0]
    got = _run([(g, x)], monkeypatch, 4, command=[sys.executable, "-c", MISSPLIT])[0]
    em = simulate(g, x, record=True)
    wrong = _equal(got, {**em.outputs, **em.traces})
    assert {"y", "lif/v", "lif2/u"} <= set(wrong), wrong


def _net(*procs: LProc, ops=()) -> LavaNet:
    conns = tuple(LConn(a.name, "s_out" if a.kind != "dense" else "a_out", b.name, "s_in" if b.kind == "dense" else "a_in",
                        ops if i == 0 else ()) for i, (a, b) in enumerate(itertools.pairwise(procs)))
    return LavaNet("n", procs, conns, (), (), ())


def _lproc(name, kind, shape, **params):
    return LProc(name, kind, shape, params, {"weights": np.ones(shape, np.int32)} if len(shape) == 2 else {})


def test_the_fallback_predicate():
    src, syn, lif = _lproc("s", "source", (4,)), _lproc("d", "dense", (3, 4)), _lproc("n", "lif", (3,))
    names = ["s", "d", "n"]
    assert lanes.lanes_ok(_net(src, syn, lif), names)
    refused = {
        "conv": _net(src, _lproc("d", "conv", (3,)), lif),
        "delay_dense": _net(src, _lproc("d", "delay_dense", (3, 4), delays=2), lif),
        "learning_dense": _net(src, _lproc("d", "learning_dense", (3, 4)), lif),
        "periodic reset": _net(src, syn, _lproc("n", "lif", (3,), reset_interval=8)),
        "learning neuron": _net(src, syn, _lproc("n", "lif", (3,), learning={"x": 1})),
        "2-D population": _net(_lproc("s", "source", (2, 2)), syn, lif),
        "reshape on a port": _net(src, syn, lif, ops=(("reshape", (4,)),)),
    }
    assert [k for k, net in refused.items() if lanes.lanes_ok(net, names)] == []
    assert [k for k, net in refused.items() if lanes.lane_count(net, names, 50) != 1] == []


def test_lane_count_rule(monkeypatch):
    names = ["s", "d", "n"]
    net = _net(_lproc("s", "source", (64,)), _lproc("d", "dense", (10, 64)), _lproc("n", "lif", (10,)))
    monkeypatch.delenv(lanes.ENV, raising=False)
    assert lanes.lane_count(net, names, 1) == 1
    assert lanes.lane_count(net, names, 20) == 20                 # one group
    assert lanes.lane_count(net, names, 450) == 225               # 2 groups of 225 (not 256 + 194)
    many = _net(_lproc("s", "source", (3000,)), _lproc("d", "dense", (10, 3000)), _lproc("n", "lif", (10,)))
    assert lanes.lane_count(many, names, 450) == 21               # 2**16 neurons: 22 groups of 21 lanes
    heavy = _net(_lproc("s", "source", (3000,)), _lproc("d", "dense", (1000, 3000)), _lproc("n", "lif", (1000,)))
    assert lanes.lane_count(heavy, names, 450) == 1               # 2 lanes would pass 2**22 weights
    monkeypatch.setenv(lanes.ENV, "8")
    assert lanes.lane_count(net, names, 450) == 8                 # 57 groups: 56 of 8 and one of 2 + 6 silent
    monkeypatch.setenv(lanes.ENV, "1")
    assert lanes.lane_count(net, names, 450) == 1


def test_widen_stack_split_round_trip():
    rng = np.random.default_rng(0)
    w = rng.integers(-5, 5, (3, 4)).astype(np.int32)
    net = LavaNet("n", (LProc("s", "source", (4,)), LProc("d", "dense", (3, 4), {"weight_exp": 0}, {"weights": w}),
                        LProc("n", "lif", (3,), {"du": 1}, {"bias_mant": np.arange(3)})), (), (), (), ())
    wide = lanes.widen(net, ["s", "d", "n"], 3)
    dense = wide.proc("d").arrays["weights"].toarray()
    assert wide.proc("d").kind == "sparse" and dense.shape == (9, 12)
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(dense[3 * i:3 * i + 3, 4 * j:4 * j + 4], w if i == j else 0)
    assert wide.proc("n").arrays["bias_mant"].tolist() == [0, 1, 2] * 3 and wide.proc("n").params == {"du": 1}
    datas = [{"s": np.full((4, 5), b)} for b in range(4)]
    groups = lanes.stack(datas, 3)
    assert len(groups) == 2 and groups[1]["s"][4:].max() == 0    # the last group's silent lanes
    back = lanes.split(net, [{"s/x": g["s"].T} for g in groups], 3, 4)
    assert [int(b["s/x"].max()) for b in back] == [0, 1, 2, 3] and back[0]["s/x"].shape == (5, 4)
