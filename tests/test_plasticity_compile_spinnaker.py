"""Plastic graphs through the normal compile → run → validate path: their float form (the
reference backend: the rule's float reference on Loihi's timeline) and the spinnaker artifact
(pair STDP lowered to PyNN's STDPMechanism, run on NEST).

Judges (stated):

* the float form: its learned weights equal the float rule (:class:`LearningState`,
  ``integer=False``) driven by the float run's own spikes, to 1e-9 weight units (float64, the
  same operations: an error in the wiring of pre/post spikes would show as whole weight units);
* spinnaker: NEST's learned weights equal a float64 replay of NEST's documented
  ``stdp_synapse``, as the lowering configures it (relayed pre spikes, fitted amplitudes, flush:
  ``plastic.replay_lowered``), on the spikes NEST produced, per batch element, to 1e-6 weight
  units (LSB 1);
  recall equals the emulator's; ``validate`` with the default backends passes both rows.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocc.backends.spinnaker.pynn_run import available


def test_float_form_of_a_plastic_graph_learns_by_the_float_rule(ca3, tmp_path):
    import neurocc
    from neurocc.ir.artifact import load_artifact

    M = ca3
    graph, inputs, info = M.experiment(M.Protocol(patterns=2, repeats=2), rule="decay")
    neurocc.compile(graph, "loihi2", tmp_path / "art")
    fg = load_artifact(tmp_path / "art").float_graph
    assert fg.numerics is None and fg.nodes["EE"].kind == "PlasticDense" and fg.nodes["E"].kind == "CubaLIF"
    assert {(e.src, e.dst, e.delay) for e in fg.edges} == {(e.src, e.dst, e.delay) for e in graph.edges}
    ref = neurocc.run(tmp_path / "art", backend="reference", inputs=inputs)
    want = M.float_reference(graph, ref["out"])
    assert np.abs(ref["EE/w"][0] - want).max() < 1e-9
    assert np.abs(want - graph.nodes["EE"].weight).max() > 100            # it learned
    assert M.evaluate(ref["out"], info)["recall"] == {"bit_accuracy": 1.0, "exact": 1.0}
    from neurocc.runtime.plan import planned_graph

    assert planned_graph(tmp_path / "art")[0].numerics == "loihi"   # plan takes the integers, not the reference


def test_pair_stdp_memory_compiled_for_spinnaker_runs_on_nest(ca3, tmp_path, capsys):
    reason = available("nest")
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    import neurocc
    from neurocc.backends.spinnaker.plastic import nest_pairing, replay_lowered
    from neurocc.cli import main

    M = ca3
    graph, inputs, info = M.experiment(M.Protocol(patterns=2, repeats=2), rule="stdp")
    art = tmp_path / "spk"
    neurocc.compile(graph, "spinnaker", art)
    manifest = json.loads((art / "manifest.json").read_text())
    assert (art / "pynn" / "plastic_network.json").is_file() and "loihi" in json.dumps(manifest)
    rng = np.random.default_rng(5)     # batch 2: the protocol, and random spikes on both inputs
    x = {k: np.concatenate([v, (rng.random(v.shape) < 0.1).astype(v.dtype)], axis=1) for k, v in inputs.items()}
    np.savez(tmp_path / "x.npz", **x)
    assert main(["run", str(art), "--backend", "spinnaker", "--input", str(tmp_path / "x.npz"), "--record",
                 "--output", str(tmp_path / "y.npz"), "--save-weights", str(tmp_path / "w.npz")]) == 0
    with np.load(tmp_path / "y.npz") as y, np.load(tmp_path / "w.npz") as wz:
        spikes, w = y["E/out"], wz["EE/w"]
    node = graph.nodes["EE"]
    p = nest_pairing("EE", node, 1.0)
    for b in range(2):
        times = [list(np.flatnonzero(spikes[:, b, i])) for i in range(32)]
        assert np.abs(replay_lowered(node.weight, times, times, p, 255.0, len(spikes)) - w[b]).max() < 1e-6
    assert np.abs(w[0] - node.weight).max() > 50 and not np.allclose(w[0], w[1])
    emu = neurocc.run(art, backend="emulator", inputs=inputs)
    assert M.evaluate(spikes[:, :1], info) == M.evaluate(emu["out"], info)
    rep = tmp_path / "v.json"
    assert main(["validate", str(art), "--input", str(tmp_path / "x.npz"), "--json", str(rep)]) == 0
    emu_row, spk_row = json.loads(rep.read_text())["results"]
    assert (emu_row["backend"], spk_row["backend"], spk_row["reference"]) == ("emulator", "spinnaker", "reference")
    assert emu_row["passed"] and emu_row["weights"]["EE"]["rule"] == "dw_cosine"
    ws = spk_row["weights"]["EE"]
    assert spk_row["passed"] and ws["rule"] == "pynn_replay" and ws["replay_max_abs_diff"] < 1e-6
    assert "learned weights 'EE' (spinnaker vs reference" in capsys.readouterr().out
