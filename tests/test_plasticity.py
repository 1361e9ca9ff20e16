"""Plastic synapses: the rule as data, single-pair STDP against hand-computed updates (fixed point
and float), the emulator's learning step, serialization and refusals.

Hand computations (rule ``2^-2 * y0 * x1 - 2^-2 * x0 * y1``, impulses 40, tau 4, w0 = 100,
t_epoch 1). Lava's random streams are numpy's PCG64 (not neurocc code): the x-trace decay stream
is ``default_rng(seed)``, the y stream ``default_rng(seed + 2)``, the weight rounding stream
``default_rng(2)``; one draw at start, two per step for traces, one per learning epoch for the
weight. With seed 5: x draws d[4] = 0.0539, d[6] = 0.4085; y (seed 7) d[4] = 0.3002,
d[6] = 0.00527; weight draw after 3 epochs r = 0.0919.

* potentiation, pre at step 1, post at step 3: x1 = 40 → 40·e^-¼ = 31.15 → 31 + (0.0539 < 0.15)
  = 32 → 32·e^-¼ = 24.92 → 24 + (0.4085 < 0.92) = 25; at the post spike dw = 2^-2·25 = 6.25
  (accumulator 12800 + 25·32 = 13600 = 106·128 + 32) → 106 + (0.0919 < 0.25) = 107.
* depression, post at step 1, pre at step 3: y1 = 40 → 31 + (0.3002 < 0.15) = 31 → 31·e^-¼ =
  24.14 → 24 + (0.00527 < 0.14) = 25 → accumulator 12800 − 800 = 12000 = 93·128 + 96 →
  93 + (0.0919 < 0.75) = 94.
* float reference: the traces decay exactly, 40·e^-½, so w = 100 ± 10·e^-½.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from neurocc.ir import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.numerics.learning import LearningState, apply_terms
from neurocc.ir.plasticity import PRESETS, Term, parse_rule, rule_text, stdp_pair
from neurocc.ir.qnodes import QLIF
from neurocc.ir.qnodes_plastic import QPlasticDense

RULE = "2^-2 * y0 * x1 - 2^-2 * x0 * y1"


def _pair(pre_step: int, post_step: int, integer: bool, steps: int = 3) -> float:
    st = LearningState(1, 1, (40, 0, 40, 0, 0), (4, 0, 4, 0, 0), 1, 5, integer)
    W = np.array([[100]], np.int64 if integer else np.float64)
    for t in range(1, steps + 1):
        if st.spikes([t == pre_step], [t == post_step]):
            W = st.learn(W, parse_rule(RULE), "excitatory")
    return W[0, 0]


def test_pair_stdp_fixed_point_by_hand():
    assert _pair(1, 3, True) == 107      # potentiation (see the module docstring)
    assert _pair(3, 1, True) == 94       # depression


def test_pair_stdp_float_by_hand():
    assert _pair(1, 3, False) == pytest.approx(100 + 10 * math.exp(-0.5), abs=1e-12)
    assert _pair(3, 1, False) == pytest.approx(100 - 10 * math.exp(-0.5), abs=1e-12)


def test_same_step_pair_and_bounds():
    # pre and post in the same step: both terms see the other's trace at that step (impulse 40):
    # dw = 2^-2·40 − 2^-2·40 = 0 → w stays
    assert _pair(1, 1, True, steps=1) == 100
    # the 8-bit excitatory range holds: a big potentiation from 250 saturates at 255
    st = LearningState(1, 1, (127, 0, 0, 0, 0), (0, 0, 0, 0, 0), 1, 0, True)
    st.spikes([1], [1])
    assert st.learn(np.array([[250]]), parse_rule("7 * 2^0 * y0 * x1"), "excitatory")[0, 0] == 255


def test_term_width_shift_by_hand():
    # x1·y1·w: widths 7 + 7 + 9 + 4 (mantissa) = 27 → products shift right by 12 before << (e + 7)
    terms = parse_rule("1 * 2^0 * x0 * x1 * y1 * w")
    args = {"x0": np.array([[1]]), "y0": np.array([[0]]), "w": np.array([[64]]),
            "x1_x0": np.array([[100]]), "y1_x0": np.array([[120]])}
    # p = 100·120·64 = 768000 >> 12 = 187 << 7 = 23936; acc = 64·128 + 23936 = 32128 → 251, rem 0
    assert apply_terms(np.array([[64]]), terms, args, "excitatory", 0.5)[0, 0] == 251


def test_parse_rule_folds_like_lava():
    # 16 folds as Lava folds it: halve while |m| > 7 and even → 4·2^2
    t = parse_rule("-3 * 2^-2 * x0 * y1 + 16 * y0 * x1 * (w - 4) + 2^-7 * x0 * y0")
    assert t == (Term(-3, -2, "x0", (("y1", 0),)), Term(4, 2, "y0", (("x1", 0), ("w", -4))),
                 Term(1, -7, "x0", (("y0", 0),)))
    assert parse_rule(rule_text(t)) == t
    for bad in ("x1 * y1", "9 * 2^0 * x0", "2^-2 * x0 * z1", "2^-2 * x0 *"):
        with pytest.raises(ValueError):
            parse_rule(bad)


def test_presets_are_valid_rules():
    for name, make in PRESETS.items():
        d = make()
        node = QPlasticDense(weight=np.full((2, 3), 10, np.int32), **d)
        assert node.check() == [], name
    assert stdp_pair()["dw"] == "1 * 2^-2 * y0 * x1 - 1 * 2^-2 * x0 * y1"
    with pytest.raises(ValueError, match="not m·2\\^e"):
        stdp_pair(a_plus=0.3)


def _graph(n_pre=3, n_post=2, **kw) -> Graph:
    lif = QLIF(du=np.full(n_post, 4095), dv=np.zeros(n_post, np.int32), vth=np.full(n_post, 150),
               bias_mant=np.zeros(n_post, np.int32), bias_exp=np.zeros(n_post, np.int32))
    syn = QPlasticDense(weight=np.full((n_post, n_pre), 100, np.int32), dw=RULE, impulses=(40, 0, 40, 0, 0),
                        taus=(4, 0, 4, 0, 0), rng_seed=5, **kw)
    return Graph({"x": Input(shape=(n_pre,)), "syn": syn, "lif": lif, "out": Output()},
                 (Edge("x", "syn", 0), Edge("syn", "lif", 1), Edge("lif", "out", 0)), numerics="loihi", name="p")


def test_emulator_learns_and_serializes(tmp_path):
    from neurocc.backends.emulator import simulate
    from neurocc.ir import load_graph, save_graph

    g = _graph()
    x = np.zeros((12, 2, 3))
    x[[1, 2, 5, 9], 0, :] = 1          # batch 0 drives the post neurons; batch 1 stays silent
    r = simulate(g, {"x": x})
    w = r.weights["syn/w"]
    assert w.shape == (2, 2, 3)
    assert (w[1] == 100).all()          # no spikes, no learning
    assert (w[0] != 100).any()
    save_graph(g, tmp_path)
    g2 = load_graph(tmp_path / "graph.json")
    assert g2.nodes["syn"].dw == RULE and g2.nodes["syn"].taus == (4, 0, 4, 0, 0)
    assert (simulate(g2, {"x": x}).weights["syn/w"] == w).all()


def test_plastic_problems_are_named():
    bad = QPlasticDense(weight=np.full((2, 3), 300, np.int32), dw="2^-2 * x0 * y2", t_epoch=0)
    probs = bad.check()
    assert any("300" in p and "excitatory" in p for p in probs)
    assert any("t_epoch" in p for p in probs)
    assert any("y2" in p and "impulse is 0" in p for p in probs)
