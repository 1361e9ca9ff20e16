"""`plan`: every target in targets.yaml, synaptic ops / energy / latency from stated figures."""
from __future__ import annotations

import dataclasses

import pytest

from neurocc.runtime.plan import format_plan, plan
from neurocc.targets import Energy
from test_partition import dense_chain, target


def test_plan_counts_and_energy_by_hand():
    g = dense_chain(20, 30, 10)          # synapses: 20*30 + 30*10 = 900; neurons 40
    t = dataclasses.replace(target("chip", neurons_per_core=16, cores_per_chip=8, chips=1),
                            energy=Energy(pj_per_synop=2.0, pj_per_neuron_update=5.0, step_time_s=1e-3))
    (row,) = plan(g, {"chip": t}, rate=0.5, steps=10)
    assert row.fits and row.cores == 2 + 1 and row.chips == 1
    assert row.synops == 0.5 * 10 * 900
    assert row.neuron_updates == 10 * 40
    assert row.energy_j == pytest.approx((4500 * 2.0 + 400 * 5.0) * 1e-12)
    assert row.latency_s == pytest.approx(10 * 1e-3)


def test_plan_over_targets_yaml():
    from neurocc.targets import load_targets

    targets = load_targets()
    g = dense_chain(5000, 300, 10)        # fan-in 5000: over loihi1's 4096 input axons
    rows = plan(g, targets)
    by = {r.target: r for r in rows}
    assert set(by) == set(targets)
    assert not by["loihi1"].fits and "fan_in_axons" in by["loihi1"].limit
    assert by["loihi2"].fits
    text = format_plan(rows)
    assert "assumed activity 0.1 spikes" in text and "loihi1" in text and "NO" in text
    assert by["loihi2"].energy_j is None and "n/a" in text      # loihi2 publishes no pJ figures
    assert by["loihi1"].energy_j is not None


def _snntorch(reset: str, neuron_out: bool):
    snn = pytest.importorskip("snntorch")
    from torch import nn

    layers = [nn.Linear(8, 6), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset), nn.Linear(6, 3)]
    if neuron_out:
        layers.append(snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism=reset))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("reset,neuron_out,refused", [("subtract", True, "reset 'subtract' has no IF_curr_exp"),
                                                      ("zero", False, "not a neuron layer"), ("zero", True, None)])
def test_plan_spinnaker_row_is_compiles_verdict_for_float_models(reset: str, neuron_out: bool, refused) -> None:
    """A float snnTorch model that SpiNNaker's PyNN lowering refuses (snnTorch's default subtract
    reset; a Linear read-out) is `NO` in plan with compile's first reason (one rule:
    neurocc.compiler.prequantized.float_form); one it takes fits and compiles."""
    import neurocc
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.errors import CompileError

    g = neurocc.load(_snntorch(reset, neuron_out), input_shape=(8,))
    row = {r.target: r for r in neurocc.plan(g)}["spinnaker"]
    if refused is None:
        assert row.fits and not row.refused
        assert compile_graph(g, "spinnaker").graph.numerics == "spinnaker"
        return
    with pytest.raises(CompileError) as e:
        compile_graph(g, "spinnaker")
    assert row.refused and not row.fits and refused in row.limit
    assert row.limit.startswith("compile refuses: " + e.value.problems[0])
    assert "NO" in format_plan([row])


def test_plan_of_a_converted_ann_keeps_the_mapping_verdict(tmp_path) -> None:
    """An ANN planned with calibration data is converted for the emulator (subtract reset), but
    compile converts it per target (zero reset for SpiNNaker) and takes it: plan does not apply
    the float-model rule to that conversion, and says it fits."""
    import numpy as np
    from torch import nn

    import neurocc
    from neurocc.compiler.pipeline import compile_graph

    m = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    np.savez(tmp_path / "cal.npz", x=np.random.default_rng(0).random((32, 8)).astype(np.float32))
    row = {r.target: r for r in neurocc.plan(m, calibration=tmp_path / "cal.npz", input_shape=(8,))}["spinnaker"]
    assert row.fits and not row.refused
    compiled = compile_graph(neurocc.load(m, input_shape=(8,)), "spinnaker", calibration=tmp_path / "cal.npz")
    assert compiled.graph.numerics == "spinnaker"
