"""discretize: dt and method recorded, one set of per-step coefficients, stability errors."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.compiler.frontends import load
from neurocc.compiler.passes.discretize import discretize
from neurocc.ir.discrete import decay_factors
from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import IF, LIF, CubaLIF, Input, Linear, Output
from neurocc.ir.types import Method


def _lif_chain(tau: float, n: int = 3) -> Graph:
    return Graph.chain(("in", Input(shape=(n,))), ("fc", Linear(weight=np.eye(n))),
                       ("lif", LIF(tau=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                                   v_threshold=np.ones(n), v_reset=np.zeros(n))),
                       ("out", Output(shape=(n,)))).verify()


def test_lif_norse_records_dt_and_keeps_parameters(nir_paper):
    g = load(nir_paper / "lif_norse.nir")
    d = discretize(g, 1e-4)
    assert (d.dt, d.method) == (1e-4, Method.EULER)
    assert g.dt is None and g.method is None  # the input graph is not touched
    for name, node in g.nodes.items():
        for k, a in node.arrays().items():
            np.testing.assert_array_equal(a, d.nodes[name].arrays()[k])
    assert discretize(d, 1e-4).digest() == d.digest()  # idempotent


def test_lif_norse_coefficients_by_hand(nir_paper):
    lif = load(nir_paper / "lif_norse.nir").nodes["1"]   # tau 2.5 ms, r 1, v_leak 0
    e = decay_factors(lif, 1e-4, "euler")
    np.testing.assert_allclose(e.alpha_v, [1 - 1e-4 / 2.5e-3])      # 0.96
    np.testing.assert_allclose(e.gain_v, [1e-4 / 2.5e-3])           # 0.04
    x = decay_factors(lif, 1e-4, "exact")
    np.testing.assert_allclose(x.alpha_v, [np.exp(-0.04)])
    np.testing.assert_allclose(x.gain_v, [1 - np.exp(-0.04)])
    assert e.alpha_u is None and e.gain_u is None


def test_lif_norse_reference_spikes_match_norse(nir_paper):
    """The float reference on the discretised graph spikes where Norse did (NIR paper data)."""
    from neurocc.backends.emulator import simulate

    data = np.loadtxt(nir_paper / "lif_norse.csv", delimiter=",")   # input, v, spike
    d = discretize(load(nir_paper / "lif_norse.nir"), 1e-4)
    out = simulate(d, {"input": data[:, 0].reshape(-1, 1, 1)}).outputs["output"]
    np.testing.assert_array_equal(np.flatnonzero(out[:, 0, 0]), np.flatnonzero(data[:, 2]))


def test_snntorch_synaptic_export_gives_back_alpha_and_beta():
    """snnTorch exports Synaptic(alpha, beta) as tau_syn = dt/(1−α), w_in = tau_syn/dt,
    tau_mem = dt/(1−β), r = tau_mem/dt; Euler at that dt must give syn ← α·syn + x, mem ← β·mem + syn."""
    dt, alpha, beta = 1e-4, np.array([0.8, 0.5]), np.array([0.9, 0.7])
    ts, tm = dt / (1 - alpha), dt / (1 - beta)
    node = CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / dt, v_leak=np.zeros(2), v_threshold=np.ones(2),
                   v_reset=np.zeros(2), w_in=ts / dt)
    d = decay_factors(node, dt, "euler")
    np.testing.assert_allclose(d.alpha_u, alpha)
    np.testing.assert_allclose(d.gain_u, [1, 1])
    np.testing.assert_allclose(d.alpha_v, beta)
    np.testing.assert_allclose(d.gain_v, [1, 1])


def test_if_integrates_once_per_step_whatever_dt():
    node = IF(r=np.array([1.0, 2.0]), v_threshold=np.ones(2), v_reset=np.zeros(2))
    for dt, m in ((1e-4, "euler"), (1.0, "exact")):
        d = decay_factors(node, dt, m)
        np.testing.assert_array_equal(d.alpha_v, [1, 1])
        np.testing.assert_array_equal(d.gain_v, [1, 2])


def test_euler_with_tau_below_dt_names_node_numbers_and_fix():
    with pytest.raises(CompileError) as err:
        discretize(_lif_chain(tau=5e-4), 1e-3)
    msg = str(err.value)
    assert "'lif'" in msg and "0.0005" in msg and "0.001" in msg
    assert "smaller dt" in msg and "exact" in msg
    assert discretize(_lif_chain(tau=5e-4), 1e-3, "exact").method is Method.EXACT


def test_tau_equal_dt_is_memoryless_not_an_error():
    d = discretize(_lif_chain(tau=1e-3), 1e-3)
    np.testing.assert_allclose(decay_factors(d.nodes["lif"], 1e-3).alpha_v, 0.0)


@pytest.mark.parametrize("dt", [0, -1e-3, float("nan"), "1ms"])
def test_bad_dt_is_a_compile_error(dt):
    with pytest.raises(CompileError, match="dt"):
        discretize(_lif_chain(1e-2), dt)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(CompileError, match="euler, exact"):
        discretize(_lif_chain(1e-2), 1e-3, "rk4")


def test_rediscretising_at_another_dt_is_refused():
    with pytest.raises(CompileError, match="already discretised"):
        discretize(discretize(_lif_chain(1e-2), 1e-3), 1e-4)
