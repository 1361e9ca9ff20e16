"""Edge CPU backend: integer ONNX graphs equal the emulator bit for bit (every output and state,
window and step forms), float32 graphs reproduce an independent torch Euler/ZOH simulation and
the float reference's spikes, NIR paper graphs validate end to end, and bad input is refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurocc.backends import edge_cpu
from neurocc.backends.emulator import simulate
from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.types import ResetMode


def qlif(rng: np.random.Generator, shape: tuple[int, ...], profile: str) -> Q.QLIF:
    r = lambda lo, hi: rng.integers(lo, hi, shape).astype(np.int32)  # noqa: E731
    extra = {}
    if profile == "int8":
        extra = {"reset": ResetMode.SUBTRACT if rng.random() < 0.5 else ResetMode.ZERO,
                 "refractory": int(rng.integers(0, 3))}
    return Q.QLIF(du=r(-1, 4096), dv=r(0, 4097), vth=r(1, 300), bias_mant=r(-40, 40), bias_exp=r(0, 4), **extra)


def dense_graph(profile: str, seed: int) -> Graph:
    """x(20) → fc1 → lif1 ⟲ rec (delay 1) → fc2 → lif2 → li (non-spiking) → outputs."""
    rng = np.random.default_rng(seed)
    d = 1 if profile == "loihi" else 0
    w = lambda o, i: rng.integers(-128, 128, (o, i))  # noqa: E731
    nodes = {"x": N.Input(shape=(20,)), "fc1": Q.QDense(weight=w(30, 20), weight_exp=-1),
             "lif1": qlif(rng, (30,), profile), "rec": Q.QDense(weight=w(30, 30), weight_exp=1),
             "fc2": Q.QDense(weight=w(6, 30)), "lif2": qlif(rng, (6,), profile),
             "fc3": Q.QDense(weight=w(4, 6), weight_exp=2),
             "li": Q.QLI(du=rng.integers(0, 4096, 4), dv=rng.integers(0, 4096, 4), bias_mant=np.zeros(4, np.int32),
                         bias_exp=np.zeros(4, np.int32)),
             "spikes": N.Output(shape=(6,)), "potential": N.Output(shape=(4,))}
    edges = [Edge("x", "fc1"), Edge("fc1", "lif1", d), Edge("lif1", "rec"), Edge("rec", "lif1", 1),
             Edge("lif1", "fc2"), Edge("fc2", "lif2", d), Edge("lif2", "spikes"), Edge("lif2", "fc3"),
             Edge("fc3", "li", d), Edge("li", "potential")]
    return Graph(nodes, edges, dt=1e-3, numerics=profile, name=f"dense_{profile}_{seed}").verify()


def conv_graph(profile: str, seed: int, graded: bool = False, wide: bool = False) -> Graph:
    """x(2,8,8) → conv → lif → sumpool → lif → flatten → dense → lif → output.

    ``wide`` conv weights (±400) and ``graded`` inputs take the byte-plane ConvInteger path."""
    rng = np.random.default_rng(seed)
    d = 1 if profile == "loihi" else 0
    lim = 400 if wide else 128
    nodes = {"x": N.Input(shape=(2, 8, 8)),
             "conv": Q.QConv2d(weight=rng.integers(-lim, lim, (4, 2, 3, 3)), bias=np.zeros(4), padding=(1, 1),
                               weight_exp=0 if profile == "loihi" else -1, graded=graded, input_shape=(8, 8)),
             "lif1": qlif(rng, (4, 8, 8), profile), "pool": Q.QSumPool2d(kernel_size=(2, 2), stride=(2, 2)),
             "lif2": qlif(rng, (4, 4, 4), profile), "flat": N.Flatten(),
             "fc": Q.QDense(weight=rng.integers(-128, 128, (5, 64))),
             "lif3": qlif(rng, (5,), profile), "y": N.Output(shape=(5,))}
    edges = [Edge("x", "conv"), Edge("conv", "lif1", d), Edge("lif1", "pool"), Edge("pool", "lif2", d),
             Edge("lif2", "flat"), Edge("flat", "fc"), Edge("fc", "lif3", d), Edge("lif3", "y")]
    return Graph(nodes, edges, dt=1e-3, numerics=profile, name=f"conv_{profile}_{seed}").verify()


def spikes(rng: np.random.Generator, shape: tuple[int, ...], rate: float = 0.3) -> np.ndarray:
    return (rng.random(shape) < rate).astype(np.float32)


def assert_same_as_emulator(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ref = simulate(graph, inputs, record=True)
    expected = {**ref.outputs, **ref.traces}
    got = edge_cpu.run(graph, inputs, record=True)
    keys = sorted(set(expected) & set(got))
    # every output, every node's per-step output, every state variable
    want = set(graph.outputs) | {f"{n}/out" for n in graph.nodes} | {
        f"{n}/{v}" for n, node in graph.nodes.items() for v in node.state_vars}
    assert want <= set(keys), sorted(want - set(keys))
    bad = {k: int(np.count_nonzero(expected[k] != got[k])) for k in keys if not np.array_equal(expected[k], got[k])}
    assert not bad, f"mismatching elements per array: {bad}"
    return expected


@pytest.mark.parametrize("profile", ["loihi", "int8"])
@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_dense_equals_emulator(profile: str, seed: int) -> None:
    g = dense_graph(profile, seed)
    x = spikes(np.random.default_rng(100 + seed), (60, 3, 20))
    out = assert_same_as_emulator(g, {"x": x})
    assert out["lif1/out"].any() and out["spikes"].any()  # the comparison is not between silent runs


@pytest.mark.parametrize("profile,graded,wide", [
    ("loihi", False, False), ("int8", False, False), ("loihi", True, False), ("int8", True, False),
    ("loihi", False, True),   # Lava's Conv keeps 24-bit weights: only loihi allows ±400
])
def test_conv_equals_emulator(profile: str, graded: bool, wide: bool) -> None:
    g = conv_graph(profile, 3, graded, wide)
    rng = np.random.default_rng(7)
    x = rng.integers(-3000, 3000, (30, 2, 2, 8, 8)).astype(np.float32) if graded else spikes(rng, (30, 2, 2, 8, 8))
    out = assert_same_as_emulator(g, {"x": x})
    assert out["lif1/out"].any()


def test_delay_node_shifts_each_element_by_its_own_steps() -> None:
    g = Graph({"x": N.Input(shape=(3,)), "d": N.Delay(delay=np.array([0.0, 1e-3, 3e-3])), "y": N.Output(shape=(3,))},
              [("x", "d"), ("d", "y")], dt=1e-3, numerics="int8", name="delay").verify()
    x = np.arange(1, 19).reshape(6, 1, 3)
    y = edge_cpu.run(g, {"x": x})["y"][:, 0]
    assert y[:, 0].tolist() == [1, 4, 7, 10, 13, 16]   # 0 steps
    assert y[:, 1].tolist() == [0, 2, 5, 8, 11, 14]    # 1 step
    assert y[:, 2].tolist() == [0, 0, 0, 3, 6, 9]      # 3 steps


# ----- float32 ------------------------------------------------------------------------------
def float_graph(method: str) -> Graph:
    rng = np.random.default_rng(5)
    n1, n2 = 12, 4
    lif = N.LIF(tau=rng.uniform(4e-3, 2e-2, n1), r=rng.uniform(0.5, 2.0, n1), v_leak=rng.uniform(-0.1, 0.1, n1),
                v_threshold=np.full(n1, 0.3), v_reset=np.zeros(n1), reset=ResetMode.SUBTRACT)
    cuba = N.CubaLIF(tau_syn=np.full(n2, 5e-3), tau_mem=np.full(n2, 1e-2), r=np.ones(n2), v_leak=np.zeros(n2),
                     v_threshold=np.full(n2, 0.05), v_reset=np.zeros(n2), w_in=np.full(n2, 2.0))
    nodes = {"x": N.Input(shape=(6,)), "fc1": N.Affine(weight=rng.normal(0, 1, (n1, 6)), bias=rng.normal(0, .1, n1)),
             "lif": lif, "rec": N.Linear(weight=rng.normal(0, 0.3, (n1, n1))),
             "fc2": N.Linear(weight=rng.normal(0, 1, (n2, n1))), "cuba": cuba, "y": N.Output(shape=(n2,))}
    edges = [Edge("x", "fc1"), Edge("fc1", "lif"), Edge("lif", "rec"), Edge("rec", "lif", 1), Edge("lif", "fc2"),
             Edge("fc2", "cuba"), Edge("cuba", "y")]
    return Graph(nodes, edges, dt=1e-3, method=method, name=f"float_{method}").verify()


def torch_oracle(g: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The NIR ODEs stepped in float64 torch, written from the equations (independent oracle):
    euler: v += dt/τ·(v_leak − v + r·I); exact (zero-order hold): v = v∞ + (v − v∞)·e^(−dt/τ)."""
    import torch

    t = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731
    n = g.nodes
    dt, exact = g.dt, g.method.value == "exact"

    def relax(state, tau, target):  # one step of τ ds/dt = target − s
        if exact:
            return target + (state - target) * torch.exp(-dt / tau)
        return state + dt / tau * (target - state)

    lif, cuba = n["lif"], n["cuba"]
    v1 = torch.zeros(x.shape[1], 12, dtype=torch.float64)
    z1 = torch.zeros_like(v1)
    u2 = torch.zeros(x.shape[1], 4, dtype=torch.float64)
    v2 = torch.zeros_like(u2)
    out = {"lif/v": [], "lif/out": [], "cuba/v": [], "y": []}
    with torch.no_grad():
        for xt in t(x):
            i1 = xt @ t(n["fc1"].weight).T + t(n["fc1"].bias) + z1 @ t(n["rec"].weight).T
            v1 = relax(v1, t(lif.tau), t(lif.v_leak) + t(lif.r) * i1)
            z1 = (v1 > t(lif.v_threshold)).double()
            v1 = v1 - z1 * t(lif.v_threshold)
            i2 = z1 @ t(n["fc2"].weight).T
            u2 = relax(u2, t(cuba.tau_syn), t(cuba.w_in) * i2)
            v2 = relax(v2, t(cuba.tau_mem), t(cuba.v_leak) + t(cuba.r) * u2)
            z2 = (v2 > t(cuba.v_threshold)).double()
            v2 = torch.where(z2 > 0, t(cuba.v_reset), v2)
            for k, v in (("lif/v", v1), ("lif/out", z1), ("cuba/v", v2), ("y", z2)):
                out[k].append(v.numpy().copy())
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_float32_matches_torch_oracle_and_reference(method: str) -> None:
    g = float_graph(method)
    x = np.random.default_rng(9).normal(0.5, 1.0, (80, 4, 6)).astype(np.float32)
    oracle = torch_oracle(g, x)
    got = edge_cpu.run(g, {"x": x}, record=True)
    ref = simulate(g, {"x": x}, record=True)
    assert oracle["y"].sum() > 10 and oracle["lif/out"].sum() > 100
    for key in ("lif/out", "y"):
        np.testing.assert_array_equal(got[key], oracle[key])
        np.testing.assert_array_equal(got[key], {**ref.outputs, **ref.traces}[key])
    for key in ("lif/v", "cuba/v"):  # float32 against float64: rounding only
        np.testing.assert_allclose(got[key], oracle[key], rtol=1e-5, atol=1e-5 * np.abs(oracle[key]).max())


# ----- artifacts, the NIR paper graphs, validate ----------------------------------------------
def compile_paper(nir_paper: Path, name: str, target: str, out: Path) -> Path:
    from neurocc.compiler.frontends.nir import read_nir
    from neurocc.compiler.pipeline import compile_model

    return compile_model(read_nir(nir_paper / name), target, out, dt=1e-3 if "cnn" in name else 1e-4)


@pytest.mark.parametrize("name", ["lif_norse.nir", "two_lif_neurons.nir", "lif_rockpool.nir", "cnn_sinabs.nir"])
@pytest.mark.parametrize("target", ["edge-cpu", "loihi2"])
def test_nir_paper_graphs_validate_exactly(nir_paper: Path, tmp_path: Path, name: str, target: str) -> None:
    from neurocc.runtime.validate import validate_artifact

    art = compile_paper(nir_paper, name, target, tmp_path / "build")
    doc = validate_artifact(art, ["emulator", "edge-cpu"], samples=2)
    (res,) = [r for r in doc["results"] if r["backend"] == "edge-cpu"]
    assert res["reference"] == "emulator" and res["rule"] == "exact"
    assert res["passed"] and res["exact"] and res["mismatches"] == 0 and res["compared"] > 0, res


def test_validate_cli_and_artifact_files(nir_paper: Path, tmp_path: Path) -> None:
    from neurocc.cli import main

    art = compile_paper(nir_paper, "cnn_sinabs.nir", "edge-cpu", tmp_path / "build")
    manifest = json.loads((art / "manifest.json").read_text())
    for f in (edge_cpu.MODEL_FILE, edge_cpu.STEP_FILE, edge_cpu.SIDECAR):
        assert f in manifest["files"]
    side = json.loads((art / edge_cpu.SIDECAR).read_text())
    assert side["numerics"] == "int8" and {s["name"] for s in side["states"]} >= {"1/u", "1/v"}
    assert main(["validate", str(art), "--backends", "emulator,edge-cpu", "--samples", "1"]) == 0
    doc = json.loads((art / "validation.json").read_text())
    assert [r["exact"] for r in doc["results"] if r["backend"] == "edge-cpu"] == [True]


def test_float_paper_cnn_spikes_equal_reference(nir_paper: Path, tmp_path: Path) -> None:
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.run import run_artifact
    from neurocc.runtime.validate import random_inputs

    art = load_artifact(compile_paper(nir_paper, "cnn_sinabs.nir", "edge-cpu-f32", tmp_path / "f32"))
    x = random_inputs(art, 1, steps=60)
    ref = run_artifact(art, "reference", x, record=True)
    got = run_artifact(art, "edge-cpu", x, record=True)
    spiking = [n for n, node in art.graph.nodes.items() if node.spiking]
    assert sum(ref[f"{n}/out"].sum() for n in spiking) > 0
    for n in spiking:
        np.testing.assert_array_equal(got[f"{n}/out"], ref[f"{n}/out"])
        v = ref[f"{n}/v"]
        np.testing.assert_allclose(got[f"{n}/v"], v, rtol=0, atol=1e-5 * max(1.0, float(np.abs(v).max())))


def test_stored_model_must_belong_to_the_artifact(nir_paper: Path, tmp_path: Path) -> None:
    from neurocc.ir.artifact import load_artifact

    art = load_artifact(compile_paper(nir_paper, "lif_norse.nir", "edge-cpu", tmp_path / "a"))
    other = dense_graph("int8", 0)
    model = edge_cpu.emit(other, "window")
    art.path.joinpath(edge_cpu.MODEL_FILE).chmod(0o644)
    art.path.joinpath(edge_cpu.MODEL_FILE).write_bytes(model.SerializeToString())
    with pytest.raises(BackendError, match="not made from this artifact"):
        edge_cpu.run(art, {"input": np.zeros((3, 1, 1))})


# ----- refusals ---------------------------------------------------------------------------------
def test_check_lists_every_problem() -> None:
    g = Graph({"x": N.Input(shape=(4,)), "lif": N.LIF(tau=np.full(4, .01), r=np.ones(4), v_leak=np.zeros(4),
                                                       v_threshold=np.ones(4), v_reset=np.zeros(4)),
               "relu": N.ReLU(), "y": N.Output(shape=(4,)), "y2": N.Output(shape=(4,))},
              [("x", "lif"), ("lif", "y"), ("x", "relu"), ("relu", "y2")], name="bad").verify()
    found = edge_cpu.check(g)
    assert any("dt" in p and "'lif'" in p for p in found)
    assert any("'relu' (ReLU)" in p for p in found)
    q = dense_graph("int8", 0).replace(numerics="spinnaker")
    assert any("spinnaker" in p for p in edge_cpu.check(q))
    with pytest.raises(BackendError, match="cannot run"):
        edge_cpu.emit(g)


def test_bad_inputs_are_refused() -> None:
    g = dense_graph("int8", 0)
    with pytest.raises(InputError, match="non-integer"):
        edge_cpu.run(g, {"x": np.full((4, 1, 20), 0.5, np.float32)})
    with pytest.raises(InputError, match="missing input 'x'"):
        edge_cpu.run(g, {"z": np.zeros((4, 1, 20))})
    with pytest.raises(InputError, match="int32"):
        edge_cpu.run(g, {"x": np.full((4, 1, 20), 1 << 40, np.int64)})


@pytest.mark.parametrize("profile", ["loihi", "int8"])
def test_recurrent_block_driven_only_by_bias(profile: str) -> None:
    # lif ⟲ rec has no edge from the Input: the window graph's Scan still runs every step
    rng = np.random.default_rng(4)
    lif = Q.QLIF(du=np.full(5, 100), dv=np.full(5, 200), vth=np.full(5, 50), bias_mant=rng.integers(100, 900, 5),
                 bias_exp=np.full(5, 3))
    g = Graph({"x": N.Input(shape=(2,)), "lif": lif, "rec": Q.QDense(weight=rng.integers(-60, 60, (5, 5))),
               "y": N.Output(shape=(5,)), "echo": N.Output(shape=(2,))},
              [Edge("lif", "rec"), Edge("rec", "lif", 1), Edge("lif", "y"), Edge("x", "echo")],
              dt=1e-3, numerics=profile, name="bias_loop").verify()
    out = assert_same_as_emulator(g, {"x": spikes(rng, (40, 2, 2))})
    assert out["y"].any()


def test_emission_is_deterministic_and_checked() -> None:
    import onnx

    g = conv_graph("int8", 2)
    for mode in ("step", "window"):
        a, b = edge_cpu.emit(g, mode), edge_cpu.emit(conv_graph("int8", 2), mode)
        assert a.SerializeToString() == b.SerializeToString()
        onnx.checker.check_model(a, full_check=True)
        assert [o.version for o in a.opset_import] == [17]
        ops = {n.op_type for n in a.graph.node}
        assert "BitShift" not in ops and "QLinearMatMul" not in ops
    assert {"ConvInteger", "MatMulInteger", "Scan"} <= {n.op_type for n in edge_cpu.emit(g, "window").graph.node}


@pytest.mark.parametrize("seed", [0, 1])
def test_bias_on_the_current_equals_emulator(seed: int) -> None:
    """int8 QLIF.bias_u (snnTorch's Linear bias into a Synaptic, on u): ONNX Runtime equals the
    emulator in every node and state, including u's 24-bit wrap (large biases, du = -1 neurons)."""
    import dataclasses

    g = dense_graph("int8", seed)
    rng = np.random.default_rng(50 + seed)
    lif1 = g.nodes["lif1"]
    du = lif1.du.copy()
    du[:5] = -1                                            # no current decay: u grows until it wraps
    bias_u = rng.integers(-3000, 3000, 30).astype(np.int64)
    bias_u[:5] = rng.choice([-1, 1], 5) * (1 << 21)        # wraps within a few steps
    nodes = dict(g.nodes, lif1=dataclasses.replace(lif1, du=du, bias_u=bias_u),
                 lif2=dataclasses.replace(g.nodes["lif2"], bias_u=rng.integers(-500, 500, 6).astype(np.int64)))
    g = g.replace(nodes=nodes).verify()
    out = assert_same_as_emulator(g, {"x": spikes(np.random.default_rng(9 + seed), (40, 3, 20))})
    assert out["lif1/out"].any() and out["spikes"].any()
    u = out["lif1/u"][:, :, :5]
    assert np.any(np.diff(np.sign(u), axis=0) * np.sign(bias_u[:5]) < 0), "no u wrap was exercised"


@pytest.mark.parametrize("start", [0, 1, 7, 40, 90])
def test_loihi_bias_u_and_bias_start_equal_emulator(start: int) -> None:
    """loihi QLIF/QLI with ``bias_u`` (the shifted input wrap32(wrap32(a << 6) + bias_u)) and
    ``bias_start`` (bias and bias_u are 0 before it): ONNX Runtime (window and step graphs) equals
    the emulator in every node and state, with the gate at 0, inside the 40-step run, at its end
    and beyond it, on a recurrent block (lif1) and on feed-forward Scans (lif2, li)."""
    import dataclasses

    g = dense_graph("loihi", 2)
    rng = np.random.default_rng(77)
    lif1, lif2, li = g.nodes["lif1"], g.nodes["lif2"], g.nodes["li"]
    du = lif1.du.copy()
    du[:4] = -1                                            # no current decay: u drifts to the 24-bit wrap
    bias_u = rng.integers(-3000, 3000, 30).astype(np.int64)
    bias_u[:4] = rng.choice([-1, 1], 4) * (1 << 21)
    nodes = dict(g.nodes, lif1=dataclasses.replace(lif1, du=du, bias_u=bias_u, bias_start=start),
                 lif2=dataclasses.replace(lif2, bias_u=rng.integers(-500, 500, 6).astype(np.int64), bias_start=start),
                 li=dataclasses.replace(li, bias_mant=rng.integers(-40, 40, 4).astype(np.int32), bias_start=start))
    g = g.replace(nodes=nodes).verify()
    assert not edge_cpu.check(g), edge_cpu.check(g)
    out = assert_same_as_emulator(g, {"x": spikes(np.random.default_rng(5), (40, 3, 20))})
    assert out["lif1/out"].any() and out["spikes"].any()
    u = out["lif1/u"][:, :, :4]
    if start < 30:
        assert np.any(np.diff(np.sign(u), axis=0) * np.sign(bias_u[:4]) < 0), "no u wrap was exercised"


def test_loihi_bias_u_int32_wrap_of_the_shifted_input_equals_emulator() -> None:
    """Graded inputs near 2**25 put wrap32(a << 6) + bias_u past 2**31 (the process model's
    second int32 wrap) on both signs; the gate (bias_start=2) switches it on mid-run."""
    one = lambda v: np.full(3, v, np.int32)  # noqa: E731
    lif = Q.QLIF(du=one(800), dv=one(400), vth=one(50), bias_mant=one(2), bias_exp=one(6),
                 bias_u=np.array([(1 << 23) - 1, -(1 << 23) + 1, 5], np.int64), bias_start=2)
    g = Graph({"x": N.Input(shape=(3,)), "l": lif, "y": N.Output(shape=(3,))}, [Edge("x", "l"), Edge("l", "y")],
              numerics="loihi", name="wrap").verify()
    x = np.zeros((8, 2, 3), np.float32)
    x[:, 0, 0], x[:, 0, 1], x[:, :, 2] = (1 << 25) - 2, -(1 << 25), 3
    shifted = x[0, 0, :2].astype(np.int64) * 64          # 2**31 − 128 and −2**31: still int32
    assert shifted[0] + lif.bias_u[0] > 2**31 - 1 and shifted[1] + lif.bias_u[1] < -(2**31)
    assert_same_as_emulator(g, {"x": x})
