"""Pair STDP through PyNN's STDPMechanism on NEST against neurocc's float reference of the rule.

Judge (stated): given the spikes NEST produced (pre parrots at T, post neurons at T'; the rule's
post spike is at step T' + 1, NEST's dendritic delay of 1 ms), the final weights equal the float
reference (:class:`neurocc.ir.numerics.learning.LearningState`, ``integer=False``) to 1e-6 weight
units (an integer weight LSB is 1; the rest is float64 round-off in a different order of
operations and PyNN's nA→pA conversion: measured 1.0e-7). The post spikes are judged exactly: each
drive spike at s gives one post spike at s + 1 ms. Spike times are chosen so that no pre and post
spike share a step (NEST pairs only Δ ≠ 0; the rule pairs Δ = 0 both ways).
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends.spinnaker.plastic import run_stdp, stdp_parameters
from neurocc.backends.spinnaker.pynn_run import available
from neurocc.errors import BackendError
from neurocc.ir.numerics.learning import LearningState
from neurocc.ir.plasticity import hebbian, stdp_decay, stdp_pair
from neurocc.ir.qnodes_plastic import QPlasticDense


def _reference(node: QPlasticDense, pre: list, post_steps: list, steps: int) -> np.ndarray:
    st = LearningState(len(post_steps), len(pre), node.impulses, node.taus, 1, 0, False)
    W = node.weight.astype(np.float64)
    for t in range(1, steps + 1):
        s_pre = [t in ts for ts in pre]
        s_post = [t in ts for ts in post_steps]
        if st.spikes(s_pre, s_post):
            W = st.learn(W, node.terms(), node.sign_mode)
    return W


def test_pair_stdp_on_nest_matches_float_reference():
    reason = available("nest")
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    node = QPlasticDense(weight=np.array([[100, 120, 80], [90, 60, 200]], np.int32), **stdp_pair(2 ** -2, 2 ** -3, 6, 4, 40))
    rng = np.random.default_rng(1)
    pre = [sorted(int(2 * k) for k in rng.choice(np.arange(3, 50), 8, replace=False)) for _ in range(3)]   # even ms
    drive = [sorted(int(6 * k + 1) for k in rng.choice(np.arange(1, 17), 5, replace=False)) for _ in range(2)]  # odd, ≥ 6 ms apart
    res = run_stdp("syn", node, pre, drive, 110)
    assert res["pre"] == [[float(t) + 1 for t in ts] for ts in pre]     # parrots repeat after the 1 ms delay
    assert res["post"] == [[float(t) + 2 for t in ts] for ts in drive]  # one post spike per drive spike
    pre_steps = [[int(t) for t in ts] for ts in res["pre"]]
    post_steps = [[int(t) + 1 for t in ts] for ts in res["post"]]
    assert not any(set(a) & set(b) for a in pre_steps for b in post_steps)
    ref = _reference(node, pre_steps, post_steps, 200)
    assert np.abs(ref - node.weight).max() > 5          # the protocol changes the weights
    assert np.abs(res["weight"] - ref).max() < 1e-6


def test_rules_without_a_pynn_form_are_refused_by_name():
    p = stdp_parameters("ok", QPlasticDense(weight=np.zeros((1, 1), np.int32), **stdp_pair(2 ** -2, 2 ** -2, 8, 8, 32)))
    assert p["A_plus"] == pytest.approx(8 / 255) and p["w_max"] == pytest.approx(0.255)
    heb = stdp_parameters("heb", QPlasticDense(weight=np.zeros((1, 1), np.int32), **hebbian()))
    assert heb["A_plus"] == pytest.approx(8 / 255) and heb["A_minus"] == 0.0     # Hebbian with a trace window
    for name, fields, needle in (("anti", hebbian(anti=True), "wrong sign"),
                                 ("dec", stdp_decay(), "'-1 * 2^-7 * y0 * w' is not a pair-STDP term")):
        with pytest.raises(BackendError, match=f"node '{name}'.*no PyNN STDPMechanism form") as err:
            stdp_parameters(name, QPlasticDense(weight=np.zeros((1, 1), np.int32), **fields))
        assert any(needle in p and f"node '{name}'" in p for p in err.value.problems), err.value.problems
