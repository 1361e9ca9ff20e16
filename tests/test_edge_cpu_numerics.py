"""Integer ONNX graphs on hand-derived Loihi/int8 corner cases (lava-loihi.md §2, numerics docs).

Each expected value below is worked out by hand from the published arithmetic, not taken from
the code: one layer ``x → QDense → QLIF`` run through ONNX Runtime (window and step graphs),
reading the recorded ``fc/out`` (dendritic sum), ``lif/u``, ``lif/v`` and ``lif/out`` (spikes).
Under ``loihi`` the Dense → neuron edge carries Lava's one-step delay, so the neuron sees the
input of step t at step t + 1.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends import edge_cpu
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QDense, QLIF
from neurocc.ir.types import ResetMode

PROFILES = ("loihi", "int8")
NEVER = 1 << 17   # vth mantissa whose threshold 2**23 lies above the saturated v (2**23 − 1)


def layer(profile: str, weight, *, weight_exp: int = 0, graded: bool = False, **lif) -> Graph:
    w = np.asarray(weight, np.int64)
    n = w.shape[0]
    par = {"du": 4095, "dv": 4096, "vth": NEVER, "bias_mant": 0, "bias_exp": 0}
    par.update(lif)
    neuron = QLIF(**{k: np.broadcast_to(np.asarray(v), (n,)).astype(np.int32) for k, v in par.items()
                     if k not in ("reset", "refractory")},
                  reset=lif.get("reset", ResetMode.ZERO), refractory=lif.get("refractory", 0))
    delay = 1 if profile == "loihi" else 0
    return Graph({"x": Input(shape=(w.shape[1],)), "fc": QDense(weight=w, weight_exp=weight_exp, graded=graded),
                  "lif": neuron, "y": Output(shape=(n,))},
                 [Edge("x", "fc"), Edge("fc", "lif", delay), Edge("lif", "y")], dt=1e-3, numerics=profile,
                 name=f"hand_{profile}").verify()


def run(graph: Graph, x) -> dict[str, np.ndarray]:
    """Record run (step graph) whose window-graph output must agree with the step graph."""
    x = np.asarray(x)[:, None, :]   # (steps, batch=1, n_in)
    res = edge_cpu.run(graph, {"x": x}, record=True)
    np.testing.assert_array_equal(res["y"], res["lif/out"])
    d = 1 if graph.numerics == "loihi" else 0
    return {k: (v[:, 0] if k.startswith("fc") else v[d:, 0]) for k, v in res.items()}


@pytest.mark.parametrize("profile", PROFILES)
def test_du_zero_still_decays_the_current(profile: str) -> None:
    # u = 64 · 1 = 64, then trunc(u · 4095 / 4096): 63.98 → 63, 62.98 → 62, 61.98 → 61
    g = layer(profile, [[1]], du=0)
    r = run(g, [[1], [0], [0], [0], [0]])
    assert r["lif/u"][:4, 0].tolist() == [64, 63, 62, 61]


@pytest.mark.parametrize("profile,expected", [
    # inputs 2**17, −2**17, 2**17 + 1 put u = a · 64 = 2**23, −2**23, 2**23 + 64 (du = 4095: no memory)
    ("loihi", [1 << 23, 1 << 23, -(1 << 23) + 64]),   # Lava: +2**23 kept, −2**23 → +2**23
    ("int8", [-(1 << 23), -(1 << 23), -(1 << 23) + 64]),  # true two's-complement 24-bit wrap
])
def test_current_wraps_at_24_bits(profile: str, expected: list[int]) -> None:
    g = layer(profile, np.eye(3, dtype=np.int64), graded=True)
    r = run(g, [[1 << 17, -(1 << 17), (1 << 17) + 1], [0, 0, 0]])
    assert r["lif/u"][0].tolist() == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_voltage_saturates_at_plus_minus_2_23_minus_1(profile: str) -> None:
    # u = ±2**16 · 64 = ±2**22 every step, no leak (dv = 0): v = ±2**22, then ±2**23 → ±(2**23 − 1)
    g = layer(profile, np.eye(2, dtype=np.int64), graded=True, dv=0)
    r = run(g, [[1 << 16, -(1 << 16)]] * 4)
    assert r["lif/v"][:3, 0].tolist() == [1 << 22, (1 << 23) - 1, (1 << 23) - 1]
    assert r["lif/v"][:3, 1].tolist() == [-(1 << 22), -(1 << 23) + 1, -(1 << 23) + 1]
    assert not r["lif/out"].any()


@pytest.mark.parametrize("profile,neg", [("loihi", -2), ("int8", -1)])
def test_weight_exponent_shifts_the_sum(profile: str, neg: int) -> None:
    # weights [3, 2], both inputs spike, weight_exp −2: (3 + 2) >> 2 = 1 (not 0 + 0).
    # [−3, −2]: −5 / 4 is −2 by loihi's floor shift and −1 by int8's truncating division.
    g = layer(profile, [[3, 2], [-3, -2]], weight_exp=-2)
    r = run(g, [[1, 1], [0, 0]])
    assert r["fc/out"][0].tolist() == [1, neg]


@pytest.mark.parametrize("profile,a", [("loihi", [2, 0]), ("int8", [3, 2])])
def test_mixed_sign_weights_lose_their_lsb_only_under_loihi(profile: str, a: list[int]) -> None:
    # Lava drops the LSB of mixed-sign 8-bit weights: [3, −1] acts as [2, −2]
    g = layer(profile, [[3, -1]])
    r = run(g, [[1, 0], [1, 1]])
    assert r["fc/out"][:, 0].tolist() == a


@pytest.mark.parametrize("profile", PROFILES)
def test_spike_test_is_strict(profile: str) -> None:
    # vth = 1 → threshold 64; u = 64. Neuron 0: v = 64 (no spike); neuron 1: bias 1 → v = 65 → spike, v ← 0
    g = layer(profile, [[1], [1]], vth=1, bias_mant=np.array([0, 1]))
    r = run(g, [[1], [0]])
    assert r["lif/out"][0].tolist() == [0, 1]
    assert r["lif/v"][0].tolist() == [64, 0]


def test_int8_subtract_reset_and_refractory_period() -> None:
    # a = 2 each step: u = 128, v = u (dv = 4096) > 64 → spike, v ← 128 − 64 = 64;
    # refractory 2: v held at 64 and no spike for 2 steps, then the next spike
    g = layer("int8", [[2]], vth=1, reset=ResetMode.SUBTRACT, refractory=2)
    r = run(g, [[1]] * 7)
    assert r["lif/out"][:, 0].tolist() == [1, 0, 0, 1, 0, 0, 1]
    assert r["lif/v"][:, 0].tolist() == [64, 64, 64, 64, 64, 64, 64]
    assert r["lif/ref"][:, 0].tolist() == [2, 1, 0, 2, 1, 0, 2]


def test_loihi_dense_delay_is_explicit_state_in_the_step_graph() -> None:
    g = layer("loihi", [[1]])
    model = edge_cpu.emit(g, "step")
    names = {i.name for i in model.graph.input}
    assert {"x", "lif/u", "lif/v", "fc@t-1"} <= names
    assert {"y", "lif/u.next", "lif/v.next", "fc@t-1.next"} <= {o.name for o in model.graph.output}
    assert model.opset_import[0].version == 17
