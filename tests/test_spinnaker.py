"""The spinnaker backend: pure lowering, and real runs on pyNN.nest / pyNN.brian2 against the
float reference (after SpiNNaker's one tick per projection)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_numerics_spinnaker import (  # tests/ is on sys.path (rootdir conftest)
    ff_graph,
    spikes,
)

from neurocc.backends import spinnaker
from neurocc.backends.emulator import convpool, simulate
from neurocc.backends.spinnaker.lower import compose, lower, problems, psc_scale
from neurocc.backends.spinnaker.pynn_run import available
from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import IF, Conv2d, Flatten, Input, Output, SumPool2d
from neurocc.ir.types import ResetMode
from neurocc.runtime import compare


def need(sim: str) -> None:
    why = available(sim)
    if why:
        print(f"SKIP reason: {why}")
        pytest.skip(why)


# ---- pure lowering ---------------------------------------------------------------------------
def test_lowering_splits_signs_and_delays_one_tick_per_projection():
    g = ff_graph("LIF")
    net = lower(g)
    assert [p.kind for p in net.populations] == ["source", "IF_curr_exp", "IF_curr_exp"]
    assert [p.lag for p in net.populations] == [0, 1, 2]
    for j in net.projections:
        assert j.delay == 1 and j.ir_delay == 0
        assert np.all(j.weight > 0) if j.receptor == "excitatory" else np.all(j.weight < 0)
    w = np.asarray(g.nodes["w0"].weight)
    assert sum(j.n_synapses for j in net.projections if j.post == "l0") == np.count_nonzero(w)
    for p in net.populations[1:]:   # the ring buffer can never saturate: M >= Σ|w| of every neuron
        assert p.max_summed_weight[0] > 0 and p.max_summed_weight[1] > 0


def test_conv_and_pool_paths_are_expanded_exactly():
    rng = np.random.default_rng(0)
    conv = Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), bias=rng.normal(size=3), padding=(1, 1))
    g = Graph({"in": Input(shape=(2, 6, 6)), "c": conv, "p": SumPool2d(), "f": Flatten(),
               "l": IF(r=np.ones(27), v_threshold=np.ones(27), v_reset=np.zeros(27)), "o": Output()},
              (Edge("in", "c"), Edge("c", "p"), Edge("p", "f"), Edge("f", "l"), Edge("l", "o")), dt=1e-3,
              method="exact")
    M, b = compose(g, "in", ["c", "p", "f"])
    x = rng.random((4, 2, 6, 6))
    y = convpool.sum_pool(convpool.conv(x, np.asarray(conv.weight), (1, 1), (1, 1), (1, 1), 1, integer=False)
                          + conv.bias.reshape(-1, 1, 1), (2, 2), (2, 2), (0, 0)).reshape(4, -1)
    np.testing.assert_allclose(x.reshape(4, -1) @ M.T + b, y, atol=1e-12)


def test_unmappable_graphs_list_every_problem():
    g = ff_graph("IF")
    nodes = dict(g.nodes)
    nodes["l0"] = nodes["l0"].replace(reset=ResetMode.SUBTRACT)
    nodes["l1"] = nodes["l1"].replace(reset=ResetMode.SUBTRACT)
    found = problems(g.replace(nodes=nodes))
    assert len(found) == 2 and all("subtract" in p for p in found)
    with pytest.raises(BackendError):
        lower(g.replace(nodes=nodes))


def test_psc_scale_matches_exact_integration():
    """NEST's exact response to a current jump, k steps on, over SpiNNaker's per-tick response is
    constant; psc_scale is its inverse (checked by integrating the ODE with a fine Euler step)."""
    tm, ts, dt = 20.0, 5.0, 1.0
    h = 1e-4
    v, i, out = 0.0, 1.0, []
    for n in range(int(5 / h)):
        v += h * (-v / tm + i)      # cm = 1: dv/dt = −v/τm + I
        i -= h * i / ts
        if (n + 1) % int(dt / h) == 0:
            out.append(v)
    b, a = np.exp(-dt / tm), np.exp(-dt / ts)
    init = ts / dt * (1 - a)
    spinn = [(1 - b) * tm * init * (b ** k - a ** k) / (b - a) for k in range(1, 6)]
    ratio = np.array(out) / np.array(spinn)
    np.testing.assert_allclose(ratio, 1.0 / psc_scale(np.array(tm), np.array(ts), dt), rtol=2e-3)


def test_graded_inputs_are_refused_before_any_simulator_starts():
    g = ff_graph("LIF")
    with pytest.raises(InputError, match="spikes"):
        spinnaker.run(g, {"in": np.full((5, 1, 20), 0.5)})


# ---- real simulators ------------------------------------------------------------------------
def _agreement(g: Graph, got: dict, x: np.ndarray) -> dict[str, tuple[float, float, float]]:
    ref = simulate(g, {"in": x}, record=True)
    out = {}
    for layer in ("l0", "l1"):
        a, b = ref.traces[f"{layer}/out"], got[f"{layer}/out"]
        n = len(a) - 2                                   # the last steps are past SpiNNaker's latency
        a, b = a[:n], b[:n]
        out[layer] = (compare.activity_cosine(a, b), float((a == b).mean()), float(a.sum()))
    return out


@pytest.mark.pynn
@pytest.mark.parametrize("kind", ["LIF", "CubaLIF", "IF"])
def test_nest_reproduces_the_float_reference(kind):
    """pyNN.nest (on_grid, psc_scale) gives the float reference's spikes, step for step."""
    need("nest")
    g = ff_graph(kind, seed=3)
    x = spikes((120, 2, 20), seed=4)
    got = spinnaker.run(g, {"in": x}, record=True, simulator="nest", timeline="reference")
    for layer, (cos, same, n) in _agreement(g, got, x).items():
        print(kind, layer, f"cosine {cos:.5f}, identical elements {same:.5f}, reference spikes {n:.0f}")
        assert n > 50 and cos >= 0.99 and same >= 0.999


@pytest.mark.pynn
@pytest.mark.slow
def test_brian2_reproduces_the_float_reference_on_a_small_net():
    """pyNN.brian2 (numpy codegen) on ~1.2k synapses: its projection build is O(n²) in synapses."""
    need("brian2")
    g = ff_graph("CubaLIF", sizes=(20, 30, 20), seed=5)
    x = spikes((60, 1, 20), seed=6)
    got = spinnaker.run(g, {"in": x}, record=True, simulator="brian2", timeline="reference")
    for layer, (cos, same, n) in _agreement(g, got, x).items():
        print("brian2", layer, f"cosine {cos:.5f}, identical elements {same:.5f}, reference spikes {n:.0f}")
        assert n > 20 and cos >= 0.99 and same >= 0.999


@pytest.mark.pynn
def test_compiled_artifact_validates_and_its_script_runs_standalone(tmp_path: Path):
    """`compile --target spinnaker` writes the script; `validate --backends spinnaker` passes; the
    script, run as a file on NEST, gives the backend's outputs."""
    need("nest")
    from neurocc.compiler.pipeline import compile_model
    from neurocc.runtime.validate import validate_artifact

    g = ff_graph("LIF", seed=7)
    raw = Graph(g.nodes, g.edges, name="ff")
    art = compile_model(raw, "spinnaker", tmp_path / "art", method="exact")
    script = art / "pynn" / "pynn_network.py"
    assert script.read_bytes() == Path(spinnaker.__file__).with_name("pynn_template.py").read_bytes()
    rep = validate_artifact(art, backends=["spinnaker"], samples=2)
    (res,) = rep["results"]
    print("validate:", res["cosine"], res["cosine_per_layer"], res["mismatches"], "/", res["compared"])
    assert res["passed"] and res["cosine"] >= 0.99
    x = spikes((50, 1, 20), seed=8)
    np.savez(tmp_path / "x.npz", **{"in": x})
    r = subprocess.run([sys.executable, str(script), "--simulator", "nest", "--input", str(tmp_path / "x.npz"),
                        "--output", str(tmp_path / "y.npz")], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    y = np.load(tmp_path / "y.npz")
    via_backend = spinnaker.run(art, {"in": x}, simulator="nest")
    np.testing.assert_array_equal(y["out"], via_backend["out"])
