"""The float64 form of the int8 neuron recurrence (``edge_cpu.fastint``, window graph only).

Its exactness rests on three ONNX Runtime facts and one static bound, each tested here against
the numerics definition (``neurocc.ir.numerics``) or hand-derived values, then end to end: the
window graph equals the emulator on networks where wraps and saturations really happen (the
emulator's event counters prove they do), and the fast form is really the one that runs.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends import edge_cpu
from neurocc.backends.edge_cpu import fastint
from neurocc.backends.edge_cpu.builder import Builder, value_info
from neurocc.backends.edge_cpu.lower import Ctx
from neurocc.backends.emulator import simulate
from neurocc.ir import numerics
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QDense
from neurocc.ir.types import ResetMode


def run_unary(fn, x: np.ndarray, out_dtype=np.float64) -> np.ndarray:
    """Build ``y = fn(builder, "x")`` as a one-input ONNX model and run it in ONNX Runtime."""
    from onnx import helper

    from neurocc.backends.edge_cpu.session import make_session

    b = Builder()
    b.reserve("x")
    y = b.op("Identity", [fn(b, "x")], outputs=["y"])[0]
    g = helper.make_graph(b.nodes, "t", [value_info("x", x.dtype, list(x.shape))],
                          [value_info(y, out_dtype, list(x.shape))], b.root.initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return make_session(model).run(["y"], {"x": x})[0]


def test_cast_float64_to_int64_truncates_toward_zero() -> None:
    # hand-written: C truncation, never floor or round-half-even
    x = np.array([-2.5, -2.0, -1.5, -1.0, -0.999, -0.5, -0.0, 0.0, 0.5, 0.999, 1.0, 1.5, 2.5,
                  -4095 / 4096, 2.0 ** 36 + 0.5, -(2.0 ** 36) - 0.5, -(2.0 ** 35) + 0.75])
    want = [-2, -2, -1, -1, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 2 ** 36, -(2 ** 36), -(2 ** 35) + 1]
    assert run_unary(lambda b, v: b.cast(v, np.int64), x, np.int64).tolist() == want
    assert run_unary(lambda b, v: fastint.trunc(b, v, wide=True), x).tolist() == [float(w) for w in want]
    small = np.abs(x) < 2.0 ** 31                              # the int32 form: |y| < 2**31
    want32 = [w for w, s in zip(want, small, strict=True) if s] + [2 ** 31 - 1, -(2 ** 31) + 1]
    x32 = np.concatenate([x[small], [2.0 ** 31 - 0.5, -(2.0 ** 31) + 0.5]])
    assert run_unary(lambda b, v: b.cast(v, np.int32), x32, np.int32).tolist() == want32
    assert run_unary(fastint.trunc, x32).tolist() == [float(w) for w in want32]


def test_float64_decay_equals_numerics_decay() -> None:
    rng = np.random.default_rng(0)
    lim = 1 << 23
    x = np.concatenate([rng.integers(-lim, lim + 1, 4000), [lim, -lim, -lim + 1, lim - 1, 4096, -4096,
                                                              8192 * 3, -8192 * 3, 1, -1, 0]])
    for f in (np.int64(1), np.int64(2048), np.int64(3891), np.int64(4095), rng.integers(0, 4097, x.size)):
        got = run_unary(lambda b, v, f=f: fastint.decay(b, v, np.broadcast_to(f, x.shape)), x.astype(np.float64))
        np.testing.assert_array_equal(got, numerics.decay(x, f))   # the definition, in int64


def test_float64_wrap24_equals_numerics_wrap() -> None:
    rng = np.random.default_rng(1)
    edges = [(1 << 23) + d for d in (-2, -1, 0, 1)] + [-(1 << 23) + d for d in (-2, -1, 0, 1)]
    edges += [(1 << 24) + d for d in (-1, 0, 1)] + [-(1 << 24) + d for d in (-1, 0, 1)] + [(1 << 51) + 5, -(1 << 51)]
    y = np.concatenate([rng.integers(-(1 << 40), 1 << 40, 4000), rng.integers(-(1 << 25), 1 << 25, 4000), edges])
    got = run_unary(fastint.wrap24, y.astype(np.float64))
    np.testing.assert_array_equal(got, numerics.wrap(y, 24)[0])


# ----- end to end ---------------------------------------------------------------------------
def net(neuron, n_in: int, weight: np.ndarray, graded: bool) -> Graph:
    n = weight.shape[0]
    return Graph({"x": Input(shape=(n_in,)), "fc": QDense(weight=weight, graded=graded), "lif": neuron,
                  "y": Output(shape=(n,))},
                 [Edge("x", "fc"), Edge("fc", "lif"), Edge("lif", "y")], dt=1e-3, numerics="int8",
                 name="fastint").verify()


def scan_ops(graph: Graph) -> set[str]:
    """op types inside the window graph's Scan bodies."""
    model = edge_cpu.emit(graph, "window")
    return {n.op_type for node in model.graph.node if node.op_type == "Scan"
            for n in node.attribute[0].g.node}


def params(rng, n: int, **fixed):
    r = lambda lo, hi: rng.integers(lo, hi, n).astype(np.int32)  # noqa: E731
    p = {"du": r(-1, 4096), "dv": r(0, 4097), "bias_mant": r(-4000, 4000), "bias_exp": r(0, 8)}
    p.update({k: np.broadcast_to(np.asarray(v, np.int32), (n,)).copy() for k, v in fixed.items()})
    return p


CASES = ["lif_random", "lif_no_u_memory", "lif_no_decay", "li_random", "lif_subtract_refractory"]


@pytest.mark.parametrize("case", CASES)
def test_window_equals_emulator_where_u_wraps_and_v_saturates(case: str) -> None:
    rng = np.random.default_rng(CASES.index(case))
    n, n_in = 24, 6
    fixed = {"lif_no_u_memory": {"du": 4095}, "lif_no_decay": {"du": -1, "dv": 0}}.get(case, {})
    p = params(rng, n, **fixed)
    if case.startswith("li"):
        neuron = QLI(**p)
    else:
        extra = {"reset": ResetMode.SUBTRACT, "refractory": 2} if "refractory" in case else {}
        neuron = QLIF(vth=rng.integers(1, 1 << 17, n).astype(np.int32), **p, **extra)
    g = net(neuron, n_in, rng.integers(-128, 128, (n, n_in)), graded=True)
    assert fastint.applies(Ctx(g), neuron) and not {"Div", "Mod"} & scan_ops(g)
    x = rng.integers(-(1 << 20), 1 << 20, (80, 3, n_in)).astype(np.float32)   # |a·64| far past 2**23
    ref = simulate(g, {"x": x})
    got = edge_cpu.run(g, {"x": x})
    np.testing.assert_array_equal(got["y"], ref.outputs["y"])
    ev = ref.events["lif"]
    assert ev.get("u_wrap", 0) > 0 and ev.get("v_saturate", 0) > 0, ev   # the corner cases happened
    if not case.startswith("li"):
        assert 0 < ref.outputs["y"].sum() < ref.outputs["y"].size


def test_static_bound_drops_wraps_only_when_they_cannot_fire() -> None:
    # 1032 inputs × weight 127 = 131064 < 2**17: a·64 < 2**23 even with every input spiking
    n_in = 1032
    w = np.full((3, n_in), 127)
    li = QLI(**params(np.random.default_rng(2), 3, du=4095, dv=0, bias_mant=0, bias_exp=0))
    g = net(li, n_in, w, graded=False)
    assert fastint.input_bound(Ctx(g), "lif") == 127 * n_in
    assert "Floor" not in scan_ops(g)                        # no u wrap emitted
    x = np.ones((6, 1, n_in), np.float32)                     # the bound is reached every step
    ref = simulate(g, {"x": x})
    np.testing.assert_array_equal(edge_cpu.run(g, {"x": x})["y"], ref.outputs["y"])
    assert ref.outputs["y"][0, 0, 0] == 64 * 127 * n_in and ref.events["lif"].get("v_saturate", 0) > 0
    # one more input of weight 8: bound 2**17 exactly, a·64 = 2**23 wraps to −2**23
    w2 = np.concatenate([w, np.full((3, 1), 8)], axis=1)
    g2 = net(li, n_in + 1, w2, graded=False)
    assert "Floor" in scan_ops(g2)
    x2 = np.ones((6, 1, n_in + 1), np.float32)
    ref2 = simulate(g2, {"x": x2})
    assert ref2.events["lif"].get("u_wrap", 0) > 0 and ref2.outputs["y"][0, 0, 0] == -(1 << 23) + 1  # saturated
    np.testing.assert_array_equal(edge_cpu.run(g2, {"x": x2})["y"], ref2.outputs["y"])


def test_static_bound_with_current_memory() -> None:
    # fu = 2048 (du = 2047): |u| <= 64·A·4096/2048 = 128·A; A = 4·127 → 65024 < 2**23: no wrap
    li = QLI(**params(np.random.default_rng(3), 2, du=2047, dv=4096, bias_mant=0, bias_exp=0))
    g = net(li, 4, np.full((2, 4), 127), graded=False)
    assert "Floor" not in scan_ops(g)
    x = np.ones((40, 2, 4), np.float32)
    ref = simulate(g, {"x": x})
    np.testing.assert_array_equal(edge_cpu.run(g, {"x": x})["y"], ref.outputs["y"])
    assert ref.outputs["y"].max() == 64 * 4 * 127 * 2 - 1    # u → 2·a6 − 1 (truncation), hand-derived
    # A = 65537: u climbs toward 2·(2**22 + 64) − 1 > 2**23, so it must wrap (the bound says so)
    w = np.concatenate([np.full((2, 516), 127), np.full((2, 1), 5)], axis=1)   # Σ = 65537
    g2 = net(li, 517, w, graded=False)
    assert "Floor" in scan_ops(g2)
    x2 = np.ones((40, 1, 517), np.float32)
    ref2 = simulate(g2, {"x": x2})
    assert ref2.events["lif"].get("u_wrap", 0) > 0 and ref2.outputs["y"].min() < 0
    np.testing.assert_array_equal(edge_cpu.run(g2, {"x": x2})["y"], ref2.outputs["y"])

