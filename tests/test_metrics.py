"""Measured cost (neurocc.runtime.metrics) against counts made by hand on tiny networks.

The network (2 layers): 3 inputs → QDense W1 → QLIF (2) → QDense W2 → QLI readout (2), run 3 or 4
steps on one sample. The neurons have no memory (du = 4095, dv = 4096: u = a·64, v = u) and
threshold vth = 1, so neuron i spikes at a step exactly when its synaptic input a_i > 1. Every
expected figure below is derived in the comments from W1, W2 and the input spikes.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.graph import Edge, Graph
from neurocc.runtime.metrics import estimate_energy, measure
from neurocc.targets import Energy

W1 = np.array([[1, 0, 2],
               [0, 3, 1]])        # nonzero synapses per input (column): 1, 1, 2; 2 zero weights
X = np.array([[1, 0, 1],          # t0: a = W1 x = [3, 1] → spikes [1, 0]
              [0, 0, 0],          # t1: a = [0, 0]       → [0, 0]
              [1, 1, 1]])         # t2: a = [3, 4]       → [1, 1]


def _qlif(n: int) -> Q.QLIF:
    return Q.QLIF(du=np.full(n, 4095), dv=np.full(n, 4096), vth=np.full(n, 1), bias_mant=np.zeros(n, int),
                  bias_exp=np.zeros(n, int))


def _qli(n: int) -> Q.QLI:
    return Q.QLI(du=np.full(n, 4095), dv=np.full(n, 4096), bias_mant=np.zeros(n, int), bias_exp=np.zeros(n, int))


def _net(w2: np.ndarray, numerics: str, graded: bool = False) -> Graph:
    d = 1 if numerics == "loihi" else 0     # Loihi: one step of delay on every synapse → neuron edge
    nodes = {"input": N.Input(shape=(3,)), "d1": Q.QDense(weight=W1, graded=graded), "l1": _qlif(2),
             "d2": Q.QDense(weight=w2), "out": _qli(2), "output": N.Output(shape=(2,))}
    edges = [Edge("input", "d1"), Edge("d1", "l1", d), Edge("l1", "d2"), Edge("d2", "out", d), Edge("out", "output")]
    return Graph(nodes, edges, dt=1e-3, method="euler", numerics=numerics, name="tiny")


def _inputs(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"input": x[:, None, :].astype(np.int64)}     # (steps, batch 1, 3)


def test_hand_counts_int8() -> None:
    w2 = np.array([[2, 0], [-1, 0]])     # column 0: 2 nonzero synapses, column 1: none
    m = measure(_net(w2, "int8"), _inputs(X))
    # d1 reads X: effective = Σ_t Σ_active fan = (1 + 2) + 0 + (1 + 1 + 2) = 7 accumulates;
    #   dense = 3 steps · 6 synapses = 18; silent = 2 (t0: input 1) + 6 (t1) + 0 = 8;
    #   zero weights met by active inputs = (2+2 − 3) at t0 + (6 − 4) at t2 = 3
    # d2 reads l1's spikes [1,0], [0,0], [1,1]: effective = 2 + 0 + (2 + 0) = 4; dense = 3 · 4 = 12;
    #   silent = 2 + 4 + 0 = 6; zero weights = 2 (t2: input 1 active, both its weights zero)
    assert (m.acs, m.macs, m.dense_ops) == (7 + 4, 0, 18 + 12)
    assert (m.skipped_silent, m.skipped_zero_weight) == (8 + 6, 3 + 2)
    by = {s.node: s for s in m.synapses}
    assert (by["d1"].acs, by["d1"].dense, by["d2"].acs, by["d2"].dense) == (7, 18, 4, 12)
    # l1 spikes 3 of 2 neurons × 3 steps: sparsity 1 − 3/6; the readout sends no events
    assert m.spikes == 3 and m.graded_events == 0
    assert m.sparsity_by_layer == {"l1": pytest.approx(0.5)} and m.activation_sparsity == pytest.approx(0.5)
    assert m.sparsity_over_time == pytest.approx([0.5, 1.0, 0.0])
    assert m.connection_sparsity == pytest.approx((2 + 2) / (6 + 4))
    # footprint: 10 weights × 8 bits; u, v registers 24 + 24 bits for 2 + 2 neurons
    assert m.footprint_bytes["weights"] == 10 and m.footprint_bytes["neuron_state"] == 4 * 48 / 8
    assert (m.steps, m.latency_steps, m.neuron_updates) == (3, 0, 3 * 4)


def test_graded_synapse_counts_macs() -> None:
    """A graded synapse (a graded input current, or sigma-delta messages) multiplies: the same
    non-zero pattern as X costs 7 MACs at d1 instead of 7 ACs."""
    w2 = np.array([[2, 0], [-1, 0]])
    xg = X * np.array([[5, 0, -2], [0, 0, 0], [1, 7, 3]])       # graded payloads, same zeros as X
    m = measure(_net(w2, "int8", graded=True), _inputs(xg))
    d1 = {s.node: s for s in m.synapses}["d1"]
    assert (d1.macs, d1.acs, d1.dense, d1.skipped_silent) == (7, 0, 18, 8)


def test_loihi_counts_deployed_weights_and_delays() -> None:
    """Loihi drops the LSB of mixed-sign 8-bit weights (1 → 0, −1 → −2): connection sparsity and
    effective operations count the deployed weights; every synapse → neuron edge adds a step."""
    w2 = np.array([[2, 1], [-1, 0]])     # 1 zero weight as stored; deployed [[2, 0], [-2, 0]]: 2
    x4 = np.vstack([X, np.zeros((1, 3), int)])
    m = measure(_net(w2, "loihi"), _inputs(x4))
    by = {s.node: s for s in m.synapses}
    # d1 as in the int8 case plus one silent step: 7 ACs, dense 4 · 6, silent 8 + 6
    assert (by["d1"].acs, by["d1"].dense, by["d1"].skipped_silent) == (7, 24, 14)
    # l1 sees d1's sums one step later: spikes at t1 [1, 0] and t3 [1, 1];
    # d2: effective 2 + 2 = 4 (column 1 has no deployed synapse), dense 16, silent 4 + 2 + 4 + 0
    assert (by["d2"].acs, by["d2"].dense, by["d2"].skipped_silent, by["d2"].skipped_zero_weight) == (4, 16, 10, 2)
    assert (int(np.sum(w2 == 0)), by["d2"].zero_weights) == (1, 2)
    assert m.connection_sparsity == pytest.approx((2 + 2) / (6 + 4))
    assert (m.spikes, m.latency_steps) == (3, 2)


def test_energy_estimate_terms() -> None:
    """ACs × pJ/synop + MACs × pJ/MAC + updates × pJ/update; dense: every synapse a MAC; a term
    without a figure is left out and named."""
    m = measure(_net(np.array([[2, 0], [-1, 0]]), "int8"), _inputs(X))      # 11 ACs, 30 dense, 12 updates
    e = estimate_energy(m, Energy(pj_per_synop=2.0, pj_per_neuron_update=5.0, pj_per_mac=3.0))
    assert e.joules == pytest.approx((11 * 2.0 + 12 * 5.0) * 1e-12) and not e.missing
    d = estimate_energy(m, Energy(pj_per_synop=2.0, pj_per_mac=3.0), execution="dense")
    assert d.joules == pytest.approx(30 * 3.0e-12) and d.missing == ["neuron updates"]
    assert estimate_energy(m, Energy()).joules is None


def test_sigma_delta_graded_messages_count_as_macs() -> None:
    """Delta input neurons (Lava 0.10 rule, vth 2, no shifts) send only changes of at least vth:
    input 0 = [5, 5, 6, 9, 9] sends 5 at t0 and, at t3, 9 − 6 plus the residue 1 kept at t2 = 4;
    input 1 = [0, 0, 0, 3, 3] sends 3 at t3. The graded dense layer after them multiplies each
    message: nonzero synapses per input are 1 and 2, so MACs = 1 (t0) + (1 + 2) (t3) = 4."""
    from neurocc.ir.qnodes_sdn import QSigmaDelta

    sd = {"vth": np.full(2, 2), "bias": np.zeros(2, int), "state_exp": 0}
    nodes = {"input": N.Input(shape=(2,)), "delta": QSigmaDelta(mode="delta", **sd),
             "d": Q.QDense(weight=np.array([[1, 2], [0, 3]]), graded=True), "sigma": QSigmaDelta(mode="sigma", **sd),
             "output": N.Output(shape=(2,))}
    edges = [Edge("input", "delta"), Edge("delta", "d"), Edge("d", "sigma", 1), Edge("sigma", "output")]
    g = Graph(nodes, edges, dt=1e-3, method="euler", numerics="loihi", name="sdn")
    x = np.array([[5, 0], [5, 0], [6, 0], [9, 3], [9, 3]])
    m = measure(g, _inputs(x))
    assert (m.macs, m.acs, m.dense_ops) == (4, 0, 5 * 4)
    assert (m.graded_events, m.spikes) == (3, 0)
    assert m.sparsity_by_layer == {"delta": pytest.approx(1 - 3 / 10)}      # the sigma read-out sends nothing
    assert m.footprint_bytes["neuron_state"] == (2 * 2 + 2 * 1) * 4         # delta: act, residue; sigma: sigma
