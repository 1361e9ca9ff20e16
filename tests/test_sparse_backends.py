"""Pruned (sparse) networks on every backend: the emulator's sparse scatter path equals its other
paths bit for bit, edge-cpu and Lava (``Sparse`` processes) equal the emulator bit for bit, and
the PyNN lowering lists only the non-zero synapses and passes SpiNNaker's validation rule."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends.emulator import linalg
from neurocc.compiler.pipeline import compile_model
from neurocc.compiler.prune import prune_graph
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output
from neurocc.runtime.validate import random_inputs, validate_artifact


def pruned_net(seed: int = 0, sizes=(40, 60, 10), fraction: str = "0.8") -> Graph:
    rng = np.random.default_rng(seed)
    nodes = [("in", Input(shape=(sizes[0],)))]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes += [(f"fc{i}", Linear(weight=rng.normal(0.3, 1.2, (b, a)))),
                  (f"lif{i}", LIF(tau=np.full(b, 2e-2), r=np.full(b, 20.0), v_leak=np.zeros(b),
                                  v_threshold=np.ones(b), v_reset=np.zeros(b)))]
    g = Graph.chain(*nodes, ("out", Output(shape=(sizes[-1],))), name="pruned").verify()
    return prune_graph(g, fraction)


@pytest.mark.parametrize("dtype,density", [(np.int8, 0.1), (np.int16, 0.05), (np.int32, 0.2)])
def test_sparse_scatter_equals_exact_product(dtype, density):
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    w = rng.integers(info.min // 2, info.max // 2, size=(70, 90)).astype(np.int64)
    w[rng.random(w.shape) >= density] = 0
    W = linalg.Weights.prepare(w, integer=True)
    assert W.csr is not None
    x_bin = rng.random((33, 90)) < 0.2
    x_int = rng.integers(-50, 50, size=(33, 90)) * (rng.random((33, 90)) < 0.3)
    for x, binary in ((x_bin, True), (x_int, False)):
        exact = (np.asarray(x, np.int64) @ (w >> W.scale_shift).T)
        for path in (linalg._sparse_scatter, linalg._gather_rows, linalg._gemm):
            np.testing.assert_array_equal(path(x, W, binary).astype(np.int64), exact)


def _ids(graph):
    return {n for n, node in graph.nodes.items() if node.kind == "QDense"}


def test_emulator_takes_the_sparse_path_and_it_changes_nothing(tmp_path, monkeypatch):
    from neurocc.backends.emulator import simulate

    art = compile_model(pruned_net(sizes=(400, 3000, 10), fraction="0.99"), "emulator", tmp_path / "emu")
    g = load_artifact(art).graph
    x = random_inputs(load_artifact(art), 4, steps=40, seed=1, rate=0.05)
    calls = []
    real = linalg._sparse_scatter
    monkeypatch.setattr(linalg, "_sparse_scatter", lambda *a: calls.append(1) or real(*a))
    fast = simulate(g, x, steps=40, record=True)
    assert calls, "the pruned layers did not use the sparse scatter path"
    monkeypatch.setattr(linalg, "SPARSE_DENSITY", -1.0)   # CSR copies refused: gather / GEMM only
    slow = simulate(g, x, steps=40, record=True)
    assert fast.traces.keys() == slow.traces.keys()
    for k in fast.traces:
        np.testing.assert_array_equal(fast.traces[k], slow.traces[k], err_msg=k)
    spikes = sum(float(np.asarray(fast.traces[f"{n}/out"]).sum()) for n in ("lif0", "lif1") if f"{n}/out" in fast.traces)
    assert spikes > 0


def test_sparse_path_wins_over_the_compiled_gather_too(tmp_path, monkeypatch):
    # once the compiled kernels are in use (numba's "auto" switch is per process), a pruned layer
    # must still take the sparse scatter where the cost model says it is cheapest
    from neurocc.backends.emulator import accel

    if not accel.numba_status()[0]:
        pytest.skip(f"numba unavailable: {accel.numba_status()[1]}")
    monkeypatch.setitem(accel._state, "loaded", True)
    test_emulator_takes_the_sparse_path_and_it_changes_nothing(tmp_path, monkeypatch)


def test_edge_cpu_equals_emulator_on_a_pruned_net(tmp_path):
    art = compile_model(pruned_net(1), "edge-cpu", tmp_path / "edge")
    (r,) = validate_artifact(art, backends=["edge-cpu"], samples=3)["results"]
    assert r["error"] is None and r["reference"] == "emulator"
    assert r["exact"] and r["passed"] and r["compared"] > 0


@pytest.mark.slow
@pytest.mark.lava
def test_lava_sparse_processes_equal_emulator(tmp_path, lava_ok):
    from neurocc.backends.loihi.lower import lower

    art = compile_model(pruned_net(2), "loihi2", tmp_path / "lava")
    kinds = [p.kind for p in lower(load_artifact(art).graph).procs]
    assert kinds.count("sparse") == 2 and "dense" not in kinds
    x = random_inputs(load_artifact(art), 2, steps=30, seed=0, rate=0.3)
    (r,) = validate_artifact(art, backends=["loihi"], inputs=x)["results"]
    assert r["error"] is None and r["reference"] == "emulator"
    assert r["exact"] and r["passed"] and r["first_divergence"] is None and r["compared"] > 0


def test_pynn_lists_only_nonzero_synapses():
    from neurocc.backends.spinnaker.lower import lower
    from test_numerics_spinnaker import ff_graph

    g = prune_graph(ff_graph("LIF", seed=3), "0.75")
    net = lower(g)
    for layer, w in (("l0", g.nodes["w0"].weight), ("l1", g.nodes["w1"].weight)):
        projs = [j for j in net.projections if j.post == layer]
        assert sum(j.n_synapses for j in projs) == np.count_nonzero(w) == round(0.25 * w.size)
        for j in projs:
            assert np.all(np.asarray(w)[j.post_idx, j.pre_idx] != 0)


@pytest.mark.pynn
def test_spinnaker_rule_on_a_pruned_net(tmp_path):
    from test_spinnaker import need

    need("nest")
    from test_numerics_spinnaker import ff_graph

    g = prune_graph(ff_graph("LIF", seed=4), "0.6")
    art = compile_model(Graph(g.nodes, g.edges, name="ffp"), "spinnaker", tmp_path / "sp", method="exact")
    (r,) = validate_artifact(art, backends=["spinnaker"], samples=2)["results"]
    print("validate:", r["cosine"], r["mismatches"], "/", r["compared"])
    assert r["error"] is None and r["passed"] and r["rule"] == "cosine"
