"""The divergence localiser: a one-bit change planted in a copy of a network is found at exactly
its node and the first step it can act, with the right class. Expected steps and indices are
derived from the inputs (or from the unchanged run's own recorded values and the documented
equations), never from the localiser."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.pipeline import compile_model
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output
from neurocc.ir.qnodes import QLIF, QDense
from neurocc.ir.types import ResetMode
from neurocc.runtime.divergence import Divergence, localise
from neurocc.runtime.run import run_artifact
from neurocc.runtime.validate import _result, random_inputs

N_IN, N = 6, 4


def _net(numerics: str = "int8", *, weight: np.ndarray | None = None, weight_exp: int = 0, du: int = 100,
         dv: int = 200, vth: int = 300, bias: int = 0, bias_exp: int = 0, reset: str = "zero",
         extra_delay: int = 0, names: tuple[str, str] = ("fc", "lif")) -> Graph:
    """in -> QDense -> QLIF -> out; the loihi profile puts one step on the dense -> neuron edge."""
    w = np.random.default_rng(0).integers(1, 60, (N, N_IN)).astype(np.int32) if weight is None else weight
    full = lambda v: np.full(w.shape[0], v, np.int32)
    fc, lif = names
    nodes = {"in": Input(shape=(w.shape[1],)), fc: QDense(weight=w, weight_exp=weight_exp),
             lif: QLIF(du=full(du), dv=full(dv), vth=full(vth), bias_mant=full(bias), bias_exp=full(bias_exp),
                       reset=ResetMode(reset)),
             "out": Output(shape=(w.shape[0],))}
    delay = (1 if numerics == "loihi" else 0) + extra_delay
    return Graph(nodes, [Edge("in", fc), Edge(fc, lif, delay), Edge(lif, "out")], dt=1e-3,
                 numerics=numerics, name="planted").verify()


def _rec(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    r = simulate(graph, {"in": x}, record=True)
    return {**r.outputs, **r.traces}


def _spikes(seed: int = 1, steps: int = 40, batch: int = 2, rate: float = 0.2) -> np.ndarray:
    x = (np.random.default_rng(seed).random((steps, batch, N_IN)) < rate).astype(np.float32)
    x[:3] = 0   # a silent start, so "the first step" is not trivially 0
    return x


def _first(mask: np.ndarray) -> tuple[int, ...]:
    """(step, *index) of the first True in step-major C order."""
    return tuple(int(i) for i in np.argwhere(mask)[0])


def test_weight_lsb_flip_names_the_dense_at_the_first_spike_of_that_input():
    x = _spikes()
    w = np.random.default_rng(0).integers(1, 60, (N, N_IN)).astype(np.int32)
    w2 = w.copy()
    w2[2, 3] ^= 1
    d = localise(_rec(_net(weight=w), x), _rec(_net(weight=w2), x), _net(weight=w))
    t, b = _first(x[:, :, 3] == 1)          # the first step input 3 spikes, first batch item
    assert (d.node, d.step, d.index, d.var) == ("fc", t, (b, 2), "out")
    assert abs(d.got - d.expected) == 1 and d.cls == "arithmetic"


def test_dv_lsb_flip_is_a_rounding_difference_in_v():
    x = _spikes(rate=0.3)
    # small weights, u forgotten each step (du = 4095) and vth<<6 = 1920 < 4096: v stays in
    # [0, 4096) before each decay, so a factor one LSB off changes the product by at most one LSB.
    w = np.random.default_rng(0).integers(0, 3, (N, N_IN)).astype(np.int32)
    g0, g1 = _net(weight=w, du=4095, vth=30), _net(weight=w, du=4095, vth=30, dv=201)
    e = _rec(g0, x)
    assert 0 < e["out"].sum() < e["out"].size // 2       # spiking, but not every step
    d = localise(e, _rec(g1, x), g0)
    # v[t] = trunc(v[t-1]·(4096 − dv) / 4096) + u[t]: the two dv first give different products at
    # the first step whose previous v makes trunc(v·3896/4096) != trunc(v·3895/4096).
    v_prev = np.concatenate([np.zeros_like(e["lif/v"][:1]), e["lif/v"][:-1]])
    prod = lambda f: np.trunc(v_prev * f / 4096.0)
    t, b, i = _first(prod(4096 - 200) != prod(4096 - 201))
    assert (d.node, d.step, d.index, d.var) == ("lif", t, (b, i), "v")
    assert d.cls == "rounding" and abs(d.got - d.expected) == 1


def test_extra_edge_delay_is_timing_at_the_first_input():
    x = _spikes()
    g0 = _net()
    d = localise(_rec(g0, x), _rec(_net(extra_delay=1), x), g0)
    t, b, _ = _first(x != 0)               # all weights > 0: the first input spike reaches every neuron
    assert (d.node, d.step, d.index, d.var) == ("lif", t, (b, 0), "u")
    assert d.cls == "timing" and "1 step" in d.explanation


def test_reset_zero_vs_subtract_is_reset_at_the_first_spike():
    x = _spikes(rate=0.3)
    g0 = _net(reset="zero")
    e = _rec(g0, x)
    d = localise(e, _rec(_net(reset="subtract"), x), g0)
    t, b, i = _first(e["out"] != 0)        # the first output spike of the unchanged run
    assert (d.node, d.step, d.index, d.var) == ("lif", t, (b, i), "v")
    assert d.cls == "reset" and d.expected == 0 and d.got > 0


def _ramp_net(numerics: str, weight: int, weight_exp: int) -> Graph:
    """One input, one neuron with no current decay (du = −1) and no voltage memory (dv = 4096)."""
    nodes = {"in": Input(shape=(1,)), "fc": QDense(weight=np.full((1, 1), weight, np.int32), weight_exp=weight_exp),
             "lif": QLIF(du=np.full(1, -1, np.int32), dv=np.full(1, 4096, np.int32), vth=np.full(1, 1 << 17, np.int32),
                         bias_mant=np.zeros(1, np.int32), bias_exp=np.zeros(1, np.int32)),
             "out": Output(shape=(1,))}
    return Graph(nodes, [Edge("in", "fc"), Edge("fc", "lif", 1), Edge("lif", "out")], dt=1e-3,
                 numerics=numerics, name="ramp").verify()


def _two_spikes(steps: int = 12, at: tuple[int, int] = (2, 5)) -> np.ndarray:
    x = np.zeros((steps, 1, 1), np.float32)
    x[list(at)] = 1
    return x


def test_u_wrap_at_plus_2_23_is_overflow():
    """u = 64·2^10·64 per spike: two spikes put u at exactly +2^23, which Lava's 24-bit wrap keeps
    and a true two's-complement register (the int8 profile) wraps to −2^23."""
    x = _two_spikes()
    g = _ramp_net("loihi", 64, 10)
    d = localise(_rec(g, x), _rec(dataclasses.replace(g, numerics="int8"), x), g)
    assert (d.node, d.step, d.index, d.var) == ("lif", 5 + 1, (0, 0), "u")   # second spike + the synapse delay
    assert (d.expected, d.got) == (1 << 23, -(1 << 23)) and d.cls == "overflow"


def test_weight_exp_change_driving_u_past_2_23():
    """weight_exp + 1 doubles the dense output. With every trace recorded, the dense is named
    (scaling). With what Lava records (u, v and outputs), u is first: 100·2^11·64 > 2^23 wraps."""
    x = _two_spikes()
    g0, g1 = _ramp_net("loihi", 100, 10), _ramp_net("loihi", 100, 11)
    e, got = _rec(g0, x), _rec(g1, x)
    d = localise(e, got, g0)
    assert (d.node, d.step, d.var, d.cls) == ("fc", 2, "out", "scaling") and d.got == 2 * d.expected
    lava_like = lambda r: {k: v for k, v in r.items() if k in ("lif/u", "lif/v", "out")}
    d = localise(lava_like(e), lava_like(got), g0)
    assert (d.node, d.step, d.var, d.cls) == ("lif", 3, "u", "overflow")
    assert d.expected == 100 * 2 ** 16 and d.got == 100 * 2 ** 17 - 2 ** 24
    assert "'fc'" in d.explanation         # the unrecorded predecessor is named


def test_bias_exp_change_is_scaling_of_the_bias():
    x = _spikes()
    g0 = _net(bias=3)
    d = localise(_rec(g0, x), _rec(_net(bias=3, bias_exp=1), x), g0)
    assert (d.node, d.step, d.index, d.var) == ("lif", 0, (0, 0), "v")    # the bias acts from step 0
    assert d.cls == "scaling" and d.got - d.expected == 3


def test_first_by_step_then_graph_order_then_update_order():
    """Names chosen so alphabetical order disagrees with the step order."""
    g = _net(names=("z_fc", "a_lif"))
    x = _spikes()
    e = _rec(g, x)
    got = {k: v.copy() for k, v in e.items()}
    got["a_lif/v"][7, 0, 1] += 5
    got["a_lif/out"][7, 0, 2] ^= 1
    got["z_fc/out"][7, 1, 3] += 5
    assert localise(e, got, g).node == "z_fc"
    got["z_fc/out"][7, 1, 3] -= 5
    assert (localise(e, got, g).var, localise(e, got, g).index) == ("v", (0, 1))
    got["a_lif/u"][7, 1, 0] += 5
    assert localise(e, got, g).var == "u"
    got["a_lif/u"][6, 1, 3] += 5
    assert localise(e, got, g).step == 6
    assert localise(e, {k: v.copy() for k, v in e.items()}, g) is None


def test_shape_mismatch_and_dict_forms():
    g = _net()
    x = _spikes()
    e = _rec(g, x)
    d = localise(e, {**e, "lif/v": e["lif/v"][:, :, :2]}, g)
    assert d.cls == "shape" and d.node == "lif"
    d = localise(e, {**e, "lif/v": e["lif/v"] + 2}, g)
    assert isinstance(d, Divergence)
    assert set(d.contract()) == {"node", "step", "index", "var", "expected", "got"}
    assert d.to_dict()["class"] == d.cls and isinstance(d.to_dict()["index"], list)


@pytest.fixture(scope="module")
def int8_art(tmp_path_factory):
    rng = np.random.default_rng(0)
    nodes = [("in", Input(shape=(20,)))]
    for i, (a, b) in enumerate(zip((20, 40), (40, 10))):
        nodes += [(f"fc{i}", Linear(weight=rng.normal(0, 0.5, (b, a)))),
                  (f"lif{i}", LIF(tau=np.full(b, 2e-2), r=np.full(b, 20.0), v_leak=np.zeros(b),
                                  v_threshold=np.ones(b), v_reset=np.zeros(b)))]
    g = Graph.chain(*nodes, ("out", Output(shape=(10,))), name="lifnet").verify()
    return load_artifact(compile_model(g, "edge-cpu", tmp_path_factory.mktemp("d") / "lif"))


def _flip_weight(graph: Graph, node: str, o: int, j: int) -> Graph:
    n = graph.nodes[node]
    w = n.weight.copy()
    w[o, j] ^= 1
    return graph.with_node(node, dataclasses.replace(n, weight=w))


def test_compiled_network_one_bit_weight_flip_and_validation_fields(int8_art):
    """An int8 network compiled by the pipeline: one weight LSB of fc1 flipped in a copy, run on
    the emulator as the 'backend'; fc1 is named at the first step lif0 neuron 2 spikes."""
    art = int8_art
    assert art.graph.nodes["fc1"].weight_exp == 0 and art.graph.in_edges("fc1")[0].delay == 0
    x = random_inputs(art, 2, steps=40, seed=3)
    e = run_artifact(art, "emulator", x, record=True)
    bad_graph = _flip_weight(art.graph, "fc1", 4, 2)
    r = simulate(bad_graph, x, record=True)
    got = {**r.outputs, **r.traces}
    t, b = _first(e["lif0/out"][:, :, 2] != 0)      # fc1 input j = 2 first spikes here
    d = localise(e, got, art.graph)
    assert (d.node, d.step, d.index, d.var, d.cls) == ("fc1", t, (b, 4), "out", "arithmetic")
    res = _result(art, "edge-cpu", {"emulator": e, "edge-cpu": got})
    assert not res["passed"] and res["first_divergence"] == d.contract()
    assert res["first_divergence_class"] == "arithmetic" and "fc1" in res["first_divergence_explanation"]
