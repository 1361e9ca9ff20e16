"""The batched float path (``device="cpu"``, ``float_dtype`` float64 | float32) against the
numpy reference: compiled event-driven float synapses (floatpath.matmul) within the rounding
bound of a reordered sum, float neuron windows bit-identical in float64 and the same
operations in float32, whole networks (feed-forward layer-major, conv, recurrent step-major),
and the errors for a bad ``float_dtype``."""
from __future__ import annotations

import numpy as np
import pytest
from test_emulator import rec_net  # tests/ is on sys.path
from test_emulator_torch import close
from test_numerics_spinnaker import ff_graph

from neurocc.backends.emulator import floatpath, prepare, simulate
from neurocc.errors import InputError
from neurocc.ir import nodes as N
from neurocc.ir.discrete import decay_factors
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.types import ResetMode

pytest.importorskip("numba")
U = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}     # unit roundoff


def batched(g, inputs, fdt, record=True):
    prog = prepare(g, device="cpu", float_dtype=fdt)
    assert prog.compiled, "the compiled float path should run"
    return simulate(g, inputs, record=record, program=prog)


def ref(g, inputs):
    return simulate(g, inputs, record=True, kernels="numpy")


# ---- synapses: one Affine layer --------------------------------------------------------------
def dense_graph(n_in, n_out, seed, bias=True):
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (n_out, n_in))
    fc = N.Affine(weight=w, bias=rng.normal(0, 1, n_out)) if bias else N.Linear(weight=w)
    return Graph({"x": N.Input(shape=(n_in,)), "fc": fc, "y": N.Output(shape=(n_out,))},
                 [Edge("x", "fc"), Edge("fc", "y")], name="dense").verify(), w, getattr(fc, "bias", np.zeros(n_out))


@pytest.mark.parametrize("fdt", ["float64", "float32"])
@pytest.mark.parametrize("inputs", ["spikes", "graded-sparse", "graded-dense"])
def test_synapse_within_the_rounding_bound(fdt, inputs, monkeypatch):
    """|y − y_ref| <= (n + 3)·u·(Σ_j |x_j w_j| + |b|) + 2·n·2**-53·(Σ_j |x_j w_j| + |b|): the
    batched sum adds the n <= n_in terms in another order (n − 1 roundings of relative size u
    each), float32 also rounds each weight, input and product (3 more), and the float64
    reference's own sum carries (n − 1)·2**-53 (textbook bounds of a recursive sum)."""
    from neurocc.backends.emulator import jit_float

    ran = []
    for name in ("gather_binary", "gather_graded"):   # a spy: which compiled sum ran (still runs it)
        fn = getattr(jit_float, name)
        monkeypatch.setattr(jit_float, name, lambda *a, _f=fn, _n=name: (ran.append(_n), _f(*a))[1])
    g, w, b = dense_graph(300, 64, 1)
    rng = np.random.default_rng(2)
    x = rng.random((20, 16, 300)) < (1.0 if inputs == "graded-dense" else 0.15)
    x = x * (1.0 if inputs == "spikes" else rng.normal(0, 2, x.shape))
    want = ref(g, {"x": x}).outputs["y"]
    got = batched(g, {"x": x}, fdt).outputs["y"]
    assert got.dtype == np.dtype(fdt)
    mag = np.abs(x) @ np.abs(w).T + np.abs(b)
    bound = ((300 + 3) * U[fdt] + 2 * 300 * U["float64"]) * mag
    assert np.all(np.abs(got - want) <= bound)
    assert ran == {"spikes": ["gather_binary"], "graded-sparse": ["gather_graded"], "graded-dense": []}[inputs]


# ---- neurons: Input → neuron → Output, no synapse ------------------------------------------------
def neuron(kind, n, reset=ResetMode.ZERO):
    one = np.ones(n)
    rng = np.random.default_rng(3)
    common = {"r": rng.uniform(0.5, 2, n), "v_leak": rng.uniform(-0.1, 0.3, n)}
    spike = {"v_threshold": rng.uniform(0.5, 1.5, n), "v_reset": rng.uniform(-0.2, 0.1, n), "reset": reset}
    return {"LIF": lambda: N.LIF(tau=one * 0.01, **common, **spike),
            "IF": lambda: N.IF(r=common["r"], **spike),
            "LI": lambda: N.LI(tau=one * 0.005, **common),
            "CubaLIF": lambda: N.CubaLIF(tau_syn=one * 0.004, tau_mem=one * 0.01, w_in=one * 1.5, **common, **spike),
            "CubaLI": lambda: N.CubaLI(tau_syn=one * 0.004, tau_mem=one * 0.01, w_in=one, **common)}[kind]()


def neuron_graph(kind, n=12, reset=ResetMode.ZERO):
    return Graph({"x": N.Input(shape=(n,)), "l": neuron(kind, n, reset), "y": N.Output(shape=(n,))},
                 [Edge("x", "l"), Edge("l", "y")], dt=1e-3, method="euler", name=f"n_{kind}").verify()


CASES = [("LIF", ResetMode.ZERO), ("LIF", ResetMode.SUBTRACT), ("IF", ResetMode.ZERO), ("LI", None),
         ("CubaLIF", ResetMode.SUBTRACT), ("CubaLI", None)]


@pytest.mark.parametrize("kind,reset", CASES)
def test_neurons_float64_bit_identical(kind, reset):
    g = neuron_graph(kind, reset=reset or ResetMode.ZERO)
    x = {"x": np.random.default_rng(4).normal(0.3, 1.0, (50, 5, 12))}
    want, got = ref(g, x), batched(g, x, "float64")
    assert want.traces.keys() == got.traces.keys()
    for k in want.traces:
        assert got.traces[k].dtype == want.traces[k].dtype and np.array_equal(got.traces[k], want.traces[k]), k


@pytest.mark.parametrize("kind,reset", CASES)
def test_neurons_float32_are_the_same_operations_in_float32(kind, reset):
    """The float32 window equals the neuron's equations (neurons.py docstring) written out here
    in float32 numpy, operation for operation."""
    g = neuron_graph(kind, reset=reset or ResetMode.ZERO)
    x = np.random.default_rng(5).normal(0.3, 1.0, (50, 5, 12))
    got = batched(g, {"x": x}, "float32")
    node, f = g.nodes["l"], np.float32
    d = decay_factors(node, g.dt, g.method)
    p = {k: None if getattr(d, k) is None else np.asarray(getattr(d, k), f)
         for k in ("alpha_u", "gain_u", "alpha_v", "gain_v", "bias_v")}
    u = v = np.zeros((5, 12), f)
    for t in range(50):
        i = x[t].astype(f)
        if p["alpha_u"] is not None:
            u = p["alpha_u"] * u + p["gain_u"] * i
            i = u
        v = p["alpha_v"] * v + p["gain_v"] * i
        if np.any(p["bias_v"]):
            v = v + p["bias_v"]
        if node.spiking:
            th = np.asarray(node.v_threshold, f)
            z = v > th
            v = np.where(z, v - th if reset is ResetMode.SUBTRACT else np.asarray(node.v_reset, f), v)
            assert np.array_equal(got.traces["l/out"][t], z.astype(f)), t
        assert np.array_equal(got.traces["l/v"][t], v), t
        if p["alpha_u"] is not None:
            assert np.array_equal(got.traces["l/u"][t], u), t


# ---- whole networks ---------------------------------------------------------------------------
def mlp(sizes=(120, 60, 40, 10), seed=0):
    """bench_edge_cpu's network shape, small: Affine → LIF per layer."""
    rng = np.random.default_rng(seed)
    nodes, edges, prev = {"x": N.Input(shape=(sizes[0],))}, [], "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        one = np.ones(b)
        nodes[f"fc{i}"] = N.Affine(weight=rng.normal(0, 2.5 / np.sqrt(a * 0.15), (b, a)), bias=rng.normal(0, 0.1, b))
        nodes[f"lif{i}"] = N.LIF(tau=one * 0.02, r=one * 20, v_leak=one * 0, v_threshold=one, v_reset=one * 0)
        edges += [Edge(prev, f"fc{i}"), Edge(f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["y"] = N.Output(shape=(sizes[-1],))
    return Graph(nodes, edges + [Edge(prev, "y")], dt=1e-3, method="euler", name="mlp").verify()


def conv_graph(seed=0):
    """Conv2d (numpy kernel, float64) → LIF → Flatten → Affine → LIF: the float path mixes with
    a kind it does not compile."""
    rng = np.random.default_rng(seed)
    shape = (4, 4, 3)
    one = np.ones(shape)
    nodes = {"x": N.Input(shape=(2, 6, 5)),
             "c": N.Conv2d(weight=rng.normal(0, 1, (4, 2, 3, 3)), bias=np.zeros(4), stride=(1, 1), padding=(0, 0)),
             "l0": N.LIF(tau=one * 0.02, r=one * 10, v_leak=one * 0, v_threshold=one, v_reset=one * 0),
             "f": N.Flatten(), "fc": N.Affine(weight=rng.normal(0, 1, (6, 48)), bias=np.zeros(6)),
             "l1": N.LIF(tau=np.full(6, 0.02), r=np.full(6, 10.0), v_leak=np.zeros(6), v_threshold=np.ones(6),
                         v_reset=np.zeros(6)),
             "y": N.Output(shape=(6,))}
    edges = [Edge("x", "c"), Edge("c", "l0"), Edge("l0", "f"), Edge("f", "fc"), Edge("fc", "l1"), Edge("l1", "y")]
    return Graph(nodes, edges, dt=1e-3, method="euler", name="conv").verify()


def networks():
    rng = np.random.default_rng(6)
    yield mlp(), {"x": (rng.random((60, 8, 120)) < 0.15) * 1.0}
    for kind in ("LIF", "CubaLIF", "IF"):
        yield ff_graph(kind), {"in": (rng.random((80, 4, 20)) < 0.2) * 1.0}
    yield conv_graph(), {"x": (rng.random((40, 3, 2, 6, 5)) < 0.3) * 1.0}
    yield rec_net(2, None), {"input": (rng.random((40, 8, 6)) < 0.3).astype(np.uint8)}   # recurrent: step-major


def test_networks_float64_agree_with_the_reference():
    """Spikes and outputs equal; other traces within 1e-12 (test_emulator_torch.close: the
    largest |Σ x w| here is < 300, so a reordered float64 sum moves by < 120·300·2**-52 < 1e-11
    in the worst case and ~1e-14 in fact; the neuron updates are the same operations)."""
    for g, x in networks():
        close(g, ref(g, x), batched(g, x, "float64"))


def test_networks_float32_run_in_float32_and_agree_closely():
    """float32 is measured, not the specification: the compiled nodes' traces are float32; in
    the first spiking layer (whose input spikes are the same on both sides) a spike can differ
    only at a step where the float64 membrane before the spike test lies within δ of the
    threshold, at the first difference of each neuron (after it the two states diverge by a
    reset). δ, from this run's magnitudes: a step's input differs by at most (n + 3)·2**-24·M
    (M = max Σ|x w| + |b|, the synapse bound above), the membrane update rounds about four
    float32 values of magnitude <= V (parameters, products, sums: 4·2**-24·V), and with a decay
    α_v < 1 those per-step errors add up to at most 1/(1 − α_v) of one step's."""
    for g, x in networks():
        prog = prepare(g, device="cpu", float_dtype="float32")
        want, got = ref(g, x), simulate(g, x, record=True, program=prog)
        assert got.traces.keys() == want.traces.keys() and set(got.outputs) == set(want.outputs)
        for k, a in got.traces.items():     # the compiled nodes in float32; conv keeps float64 (floatpath doc)
            n = k.split("/")[0]
            if n in prog.compiled or g.nodes[n].kind == "Conv2d":
                assert a.dtype == (np.float64 if g.nodes[n].kind == "Conv2d" else np.float32), k
    g, x = next(networks())
    want, got = ref(g, x), batched(g, x, "float32")
    w, b = g.nodes["fc0"].weight, g.nodes["fc0"].bias
    d = decay_factors(g.nodes["lif0"], g.dt, g.method)
    v_post, cur = want.traces["lif0/v"], want.traces["fc0/out"]
    v_prev = np.concatenate([np.zeros_like(v_post[:1]), v_post[:-1]])
    v_pre = d.alpha_v * v_prev + d.gain_v * cur + d.bias_v       # float64 membrane before the spike test
    M = (np.abs(x["x"]) @ np.abs(w).T + np.abs(b)).max()
    V = max(np.abs(v_pre).max(), np.abs(v_prev).max(), np.abs(d.gain_v * cur).max())
    step = d.gain_v.max() * (w.shape[1] + 3) * U["float32"] * M + 4 * U["float32"] * V
    delta = step / (1 - d.alpha_v.max())
    differ = want.traces["lif0/out"] != got.traces["lif0/out"]
    first = differ & (np.cumsum(differ, axis=0) == 1)
    assert delta < 0.05 and np.all(np.abs(v_pre[first] - 1.0) < delta)
    print(f"float32 vs float64: {int(differ.sum())} of {differ.size} first-layer spikes differ (δ = {delta:.2g})")


# ---- errors ------------------------------------------------------------------------------------
def test_bad_float_dtype_is_a_clear_error():
    g = mlp()
    with pytest.raises(InputError, match="unknown float dtype 'float16'") as e:
        prepare(g, device="cpu", float_dtype="float16")
    assert "--float-dtype" in str(e.value) and "float32" in str(e.value)
    with pytest.raises(InputError, match="batched path only") as e:
        prepare(g, float_dtype="float32")
    assert "--device cpu" in str(e.value)
    assert floatpath.check_float_dtype(None) == np.float64
    prepare(rec_net(0, "int8"), float_dtype="float32")   # integer graphs are exact: the option does not apply
