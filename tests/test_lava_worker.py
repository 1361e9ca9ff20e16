"""The Lava backend's plumbing: shim, process isolation, worker failures, and the pure lowering.

Lava itself is imported only in subprocesses here (never in the pytest process).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from neurocc.backends.loihi import check, lower, run_lava
from neurocc.backends.loihi.plan import JOB_FORMAT, LavaNet, LProc, load_net, save_net
from neurocc.backends.loihi.runner import invoke_worker, prepare_inputs
from neurocc.backends.loihi.shim import INSTALL_HINT, lava_available
from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d
from neurocc.ir.types import ResetMode


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def lif(n, cls=QLIF, **kw):
    a = lambda v: np.full(n, v, np.int32)  # noqa: E731
    args = dict(du=a(kw.get("du", 0)), dv=a(kw.get("dv", 0)), bias_mant=a(0), bias_exp=a(0))
    if cls is QLIF:
        args.update(vth=a(kw.get("vth", 10)), reset=kw.get("reset", ResetMode.ZERO),
                    refractory=kw.get("refractory", 0))
    return cls(**args)


def small_graph() -> Graph:
    nodes = {"x": Input(shape=(3,)), "d": QDense(weight=np.full((2, 3), 5, np.int32)), "n": lif(2), "o": Output()}
    return Graph(nodes, (Edge("x", "d"), Edge("d", "n", 1), Edge("n", "o")), numerics="loihi", name="small")


# ----- shim and isolation ---------------------------------------------------------------------
@pytest.mark.lava
def test_shim_restores_dataclasses(lava_ok):
    code = (
        "import dataclasses\n"
        "orig = dataclasses._get_field\n"
        "from neurocc.backends.loihi.shim import import_lava\n"
        "import_lava()\n"
        "assert dataclasses._get_field is orig, 'not restored'\n"
        "@dataclasses.dataclass\nclass B:\n    y: int = 0\n"
        "try:\n"
        "    @dataclasses.dataclass\n    class C:\n        b: B = B()\n"
        "except ValueError:\n    print('still-strict')\n"
    )
    proc = _py(code)
    assert proc.returncode == 0, proc.stderr
    assert "still-strict" in proc.stdout  # the patch did not leak past Lava's import


def test_missing_lava_names_the_install_command():
    code = ("import sys; sys.modules['lava'] = None\n"
            "from neurocc.backends.loihi.shim import import_lava\n"
            "from neurocc.errors import BackendError\n"
            "try:\n    import_lava()\nexcept BackendError as e:\n    print(e)\n")
    proc = _py(code)
    assert proc.returncode == 0, proc.stderr
    assert "Lava is not installed" in proc.stdout
    assert "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0" in proc.stdout
    assert "pip install --no-deps --ignore-requires-python lava-nc==0.10.0" in INSTALL_HINT


def test_lava_available_is_false_for_an_interpreter_without_it(tmp_path):
    assert lava_available(str(tmp_path / "no-such-python")) is False


@pytest.mark.lava
def test_run_leaves_the_caller_free_of_lava(lava_ok):
    import multiprocessing

    before = multiprocessing.get_start_method(allow_none=True)
    x = np.zeros((4, 1, 3), np.int32)
    x[0] = 1
    out = run_lava(small_graph(), {"x": x})
    assert out["o"].shape == (4, 1, 2)
    assert not any(m == "lava" or m.startswith("lava.") for m in sys.modules)
    assert multiprocessing.get_start_method(allow_none=True) == before


# ----- worker failures ----------------------------------------------------------------------------
def test_hung_worker_is_killed_and_reported(tmp_path):
    cmd = [sys.executable, "-c", "print('worker started', flush=True); import time; time.sleep(120)"]
    t0 = time.monotonic()
    with pytest.raises(BackendError) as err:
        invoke_worker(tmp_path, timeout_s=2, command=cmd)
    assert time.monotonic() - t0 < 30
    assert "did not finish within 2 s" in str(err.value)
    assert "worker started" in str(err.value)  # the log tail


@pytest.mark.lava
def test_failing_run_reports_the_log_tail(lava_ok, tmp_path):
    net = LavaNet("bad", (LProc("p", "bogus", (1,)),), (), (), (), ())
    save_net(net, tmp_path, "net0")
    np.savez(tmp_path / "r_in.npz")
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"format": JOB_FORMAT, "runs": [{"id": "r", "net": "net0", "procs": ["p"], "steps": 2, "data": "r_in.npz"}]}))
    with pytest.raises(BackendError) as err:
        invoke_worker(tmp_path, timeout_s=120)
    assert "exit status 1" in str(err.value)
    assert "unknown process kind 'bogus'" in str(err.value)
    assert not json.loads((tmp_path / "r_status.json").read_text())["ok"]


@pytest.mark.lava
def test_neurocc_neurons_skip_lavas_model_search(lava_ok, tmp_path):
    """A loihi2 neuron (neurocc's ``NeuroccLIF``, here with a bias start) runs with the model
    named for it: Lava's compiler never executes neurocc's modules looking for one (that search
    cost ~0.5 s per neuron process per digit), and each run equals the emulator."""
    import dataclasses

    from neurocc.backends.emulator import simulate
    from neurocc.backends.loihi.runner import assemble, feed_data

    g = small_graph()
    n = dataclasses.replace(g.nodes["n"], bias_mant=np.full(2, 3, np.int32), bias_exp=np.full(2, 6, np.int32),
                            bias_start=2)
    g = Graph({**g.nodes, "n": n}, g.edges, numerics="loihi", name="biased")
    x = np.zeros((6, 2, 3), np.int32)
    x[0, 0], x[1:3, 1] = 1, 1
    net = lower(g, record=False)
    assert net.proc("n").params["semantics"]["bias_start"] == 2
    save_net(net, tmp_path, "net0")
    runs = []
    for b in range(2):
        np.savez(tmp_path / f"r{b}_in.npz", **feed_data(net, {"x": x}, b))
        runs.append({"id": f"r{b}", "net": "net0", "procs": net.components()[0], "steps": 6, "data": f"r{b}_in.npz"})
    (tmp_path / "manifest.json").write_text(json.dumps({"format": JOB_FORMAT, "runs": runs}))
    invoke_worker(tmp_path, timeout_s=300)
    log = (tmp_path / "worker.log").read_text()
    assert "searching ProcessModels" not in log, log
    em = simulate(g, {"x": x}).outputs["o"]
    assert em.sum() > 0
    per_batch = []
    for b in range(2):
        with np.load(tmp_path / f"r{b}_out.npz") as z:
            per_batch.append({k: z[k] for k in z.files})
    np.testing.assert_array_equal(assemble(net, per_batch)["o"], em)


def test_worker_rejects_a_foreign_job_dir(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else", "runs": []}))
    with pytest.raises(BackendError) as err:
        invoke_worker(tmp_path, timeout_s=60)
    assert "exit status 2" in str(err.value) and "not a neurocc-lava-job/1 job" in str(err.value)


# ----- inputs -----------------------------------------------------------------------------------
def test_inputs_are_checked_before_lava_starts():
    g = small_graph()
    with pytest.raises(InputError, match="missing input 'x'"):
        prepare_inputs(g, {"y": np.zeros((2, 1, 3))}, None)
    with pytest.raises(InputError, match="non-integer"):
        prepare_inputs(g, {"x": np.full((2, 1, 3), 0.5)}, None)
    with pytest.raises(InputError, match=r"expected \(steps, batch, 3\)"):
        prepare_inputs(g, {"x": np.zeros((2, 3))}, None)
    steps, batch, arrays = prepare_inputs(g, {"x": np.ones((2, 4, 3))}, 5)
    assert (steps, batch) == (5, 4) and arrays["x"].dtype == np.int32
    assert arrays["x"][:, 0, 0].tolist() == [1, 1, 0, 0, 0]  # steps past the input are zeros


# ----- lowering (pure, no Lava) -------------------------------------------------------------------
def test_lowering_maps_every_piece():
    g = small_graph()
    net = lower(g, record=True)
    kinds = {p.name: p.kind for p in net.procs}
    assert kinds == {"n": "lif", "d->n": "dense", "in:x:0:3": "source"}
    assert {(r.key, r.var) for r in net.readouts} == {("o", "s"), ("n/u", "u"), ("n/v", "v")}
    assert net.proc("n").params == {"du": 0, "dv": 0, "vth": 10}  # uniform → one Lava scalar
    assert net.components() == [["n", "d->n", "in:x:0:3"]]


def test_lowering_round_trips_through_files(tmp_path):
    net = lower(small_graph(), record=True)
    save_net(net, tmp_path, "n")
    back = load_net(tmp_path, "n")
    assert back.conns == net.conns and back.readouts == net.readouts and back.feeds == net.feeds
    for a, b in zip(net.procs, back.procs):
        assert (a.name, a.kind, a.shape, dict(a.params)) == (b.name, b.kind, b.shape, dict(b.params))
        assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def test_lowering_refuses_what_lava_cannot_express_all_at_once():
    conv = QConv2d(weight=np.ones((1, 1, 1, 1), np.int32), bias=np.ones(1, np.int32), weight_exp=2)
    nodes = {
        "x": Input(shape=(4,)), "d0": QDense(weight=np.ones((4, 4), np.int32)),
        "sub": lif(4, reset=ResetMode.SUBTRACT), "o1": Output(),
        "d1": QDense(weight=np.ones((4, 4), np.int32)), "refr": lif(4, refractory=2), "o2": Output(),
        "d2": QDense(weight=np.ones((4, 4), np.int32)), "d3": QDense(weight=np.ones((4, 4), np.int32)),
        "chain": lif(4), "o3": Output(),
        "d4": QDense(weight=np.ones((4, 4), np.int32)), "nodelay": lif(4), "o4": Output(),
        "img": Input(shape=(1, 4, 4)), "pool": QSumPool2d(), "c": conv, "cn": lif((1, 2, 2)), "o5": Output(),
    }
    edges = [("x", "d0"), ("d0", "sub", 1), ("sub", "o1"), ("x", "d1"), ("d1", "refr", 1), ("refr", "o2"),
             ("x", "d2"), ("d2", "d3"), ("d3", "chain", 1), ("chain", "o3"),
             ("x", "d4"), ("d4", "nodelay", 0), ("nodelay", "o4"),
             ("img", "pool"), ("pool", "c"), ("c", "cn", 1), ("cn", "o5")]
    g = Graph(nodes, tuple(Edge(*e) for e in edges), numerics="loihi", name="bad").verify()
    with pytest.raises(BackendError) as err:
        lower(g)
    text = str(err.value)
    # 'sub' (reset=subtract) is no longer refused: since issue 12 it lowers to neurocc's Lava process model
    assert "node 'sub'" not in text
    for expected in ("node 'refr' (QLIF): refractory=2",
                     "node 'd3' (QDense): reads QDense 'd2'", "node 'nodelay' (QLIF): reads synapse 'd4' with total delay 0",
                     "node 'c' (QConv2d): reads QSumPool2d 'pool'", "fuse the pooling into the convolution",
                     "node 'c' (QConv2d): weight_exp=2", "node 'c' (QConv2d): has a bias",
                     "node 'd2' (QDense): its output must go to a QLIF/QLI"):
        assert expected in text, f"missing: {expected}\n{text}"


def test_check_names_numerics_and_outputs():
    g = small_graph().replace(numerics="int8")
    found = check(g)
    assert any("numerics 'int8'" in p for p in found)
    nodes = {"x": Input(shape=(2,)), "d": QDense(weight=np.ones((2, 2), np.int32)), "li": lif(2, cls=QLI),
             "d2": QDense(weight=np.ones((2, 2), np.int32)), "n": lif(2), "o": Output(), "ox": Output()}
    edges = (Edge("x", "d"), Edge("d", "li", 1), Edge("li", "d2"), Edge("d2", "n", 1), Edge("n", "o"), Edge("x", "ox"))
    found = check(Graph(nodes, edges, numerics="loihi", name="g"))
    assert any("node 'd2' (QDense): reads QLI 'li'" in p for p in found)
    assert any("node 'ox' (Output): reads Input 'x'" in p for p in found)


def test_long_delays_use_delay_dense_or_shifted_inputs():
    nodes = {"x": Input(shape=(2,)), "d": QDense(weight=np.ones((2, 2), np.int32)), "n": lif(2),
             "r": QDense(weight=np.ones((2, 2), np.int32)), "f": Flatten(), "o": Output()}
    edges = (Edge("x", "d"), Edge("d", "n", 4), Edge("n", "r"), Edge("r", "n", 3), Edge("n", "f"), Edge("f", "o"))
    net = lower(Graph(nodes, edges, numerics="loihi", name="g"))
    assert net.proc("r->n@3").kind == "delay_dense" and net.proc("r->n@3").params["delays"] == 2
    assert net.proc("d->n@4").kind == "dense"  # input-only synapse: the RingBuffer is shifted instead
    assert [f.shift for f in net.feeds] == [3]
    too_long = Graph(nodes, edges[:3] + (Edge("r", "n", 70),) + edges[4:], numerics="loihi", name="g")
    assert any("delay 70" in p for p in check(too_long))


def test_run_accepts_an_artifact_directory_or_a_graph(nir_paper, tmp_path):
    from neurocc.backends.loihi import _graph_of
    from neurocc.compiler.frontends.nir import read_nir
    from neurocc.compiler.pipeline import compile_model

    out = compile_model(read_nir(nir_paper / "two_lif_neurons.nir"), "loihi2", tmp_path / "a", dt=1e-3)
    g = _graph_of(out)
    assert g.numerics == "loihi" and check(g) == []
    assert _graph_of(g) is g
    with pytest.raises(BackendError, match="not an artifact directory or a graph"):
        _graph_of(42)
