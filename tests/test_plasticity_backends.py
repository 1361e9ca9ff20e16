"""Plastic networks across backends: Lava's LearningDense equals the emulator bit for bit (spikes
and learned weights) over learning runs; the CA3 memory example end to end on the emulator;
the rule parser reads strings as Lava's ProductSeries does; edge-cpu refuses plastic graphs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocc.ir import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QLIF
from neurocc.ir.qnodes_plastic import QPlasticDense

ROOT = Path(__file__).resolve().parents[1]


def _ff_graph(sign_mode: str, dw: str, t_epoch: int, w0: np.ndarray, sparse: bool = False) -> Graph:
    n_post, n_pre = w0.shape
    z = np.zeros(n_post, np.int32)
    lif = QLIF(du=np.full(n_post, 3000), dv=np.full(n_post, 400), vth=np.full(n_post, 120), bias_mant=z, bias_exp=z)
    syn = QPlasticDense(weight=w0, sign_mode=sign_mode, dw=dw, impulses=(30, 12, 25, 9, 0), taus=(5, 3, 4, 0, 0),
                        t_epoch=t_epoch, rng_seed=11, weight_exp=1, sparse=sparse)
    return Graph({"x": Input(shape=(n_pre,)), "syn": syn, "lif": lif, "out": Output()},
                 (Edge("x", "syn", 0), Edge("syn", "lif", 1), Edge("lif", "out", 0)), numerics="loihi",
                 name=f"ff_{sign_mode}")


def test_lava_equals_emulator_over_learning_runs(lava_ok, ca3):
    """Feed-forward (mixed sign, t_epoch 3, x2/y2 traces and w factors, batch 2), a sparse plastic
    synapse (LearningSparse: absent synapses stay 0) and the CA3 memory (recurrent plastic
    synapses, inhibition) in one worker: spikes and weights exact."""
    from neurocc.backends.emulator import run as emulate
    from neurocc.backends.loihi import run_lava_many

    rng = np.random.default_rng(3)
    w0 = rng.integers(-120, 120, (5, 7)).astype(np.int32)
    ff = _ff_graph("mixed", "3 * 2^-3 * y0 * x1 - 2^-2 * x0 * y1 + 2^-4 * y0 * x2 * y2 - 2^-6 * x0 * (w + 8)", 3, w0)
    x_ff = (rng.random((40, 2, 7)) < 0.3).astype(np.float64)
    M = ca3
    ca3, x_ca3, info = M.experiment(M.Protocol(repeats=3), overwrite=0)
    w_sp = np.where(rng.random((5, 7)) < 0.5, rng.integers(20, 120, (5, 7)), 0).astype(np.int32)
    sp = _ff_graph("mixed", "2^-2 * y0 * x1 - 2^-3 * x0 * y1", 1, w_sp, sparse=True)
    jobs = [{"graph": ff, "inputs": {"x": x_ff}}, {"graph": ca3, "inputs": x_ca3}, {"graph": sp, "inputs": {"x": x_ff}}]
    lava = run_lava_many(jobs)
    for job, got in zip(jobs, lava):
        want = emulate(job["graph"], job["inputs"])
        assert set(want) == set(got)
        for k in want:
            assert np.array_equal(np.asarray(got[k], np.int64), np.asarray(want[k], np.int64)), (job["graph"].name, k)
    assert (lava[0]["syn/w"] != (w0 >> 1) << 1).any()          # it learned
    assert lava[0]["syn/w"].shape == (2, 5, 7) and not np.array_equal(lava[0]["syn/w"][0], lava[0]["syn/w"][1])
    assert M.evaluate(lava[1]["out"], info)["recall"]["bit_accuracy"] >= 0.9
    learned = lava[2]["syn/w"]
    assert (learned[:, w_sp == 0] == 0).all() and (learned[:, w_sp != 0] != w_sp[w_sp != 0]).any()


_LAVA_PARSE = """
import json, sys
sys.path.insert(0, {root!r})
import neurocc.backends.loihi.shim as s
L = s.import_lava()
out = []
for text in {rules!r}:
    r = L.Loihi2FLearningRule(dw=text, x1_impulse=1, y1_impulse=1, x2_impulse=1, y2_impulse=1, t_epoch=1, rng_seed=1)
    out.append([[p.s_mantissa, p.s_exp - 7, p.dependency, [[f.state_var, f.const or 0] for f in p.factors]]
                for p in r.dw.products])
print(json.dumps(out))
"""


def test_parse_rule_matches_lava_product_series(lava_ok):
    from neurocc.ir.plasticity import parse_rule, rule_text

    rules = ["2^-2 * y0 * x1 - 2^-2 * x0 * y1", "-3 * 2^-2 * x0 * y1 + 16 * y0 * x1 * (w - 4)",
             "12 * 2^-5 * x0 * x2 * y2 + 2^3 * y0 * (y1 + 3) * w - 5 * y0 * x1"]
    code = _LAVA_PARSE.format(root=str(ROOT), rules=[rule_text(parse_rule(r)) for r in rules] + rules)
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lava = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = [[[t.mantissa, t.exponent, t.dependency, [[v, c] for v, c in t.factors]] for t in parse_rule(r)]
            for r in rules]
    assert lava == ours + ours       # our canonical text and the original text read the same in Lava


def test_ca3_memory_learns_recalls_and_forgets(ca3):
    """End to end on the emulator: 3 patterns of 6/32 bits, recall from 50 % fragments, then
    3 overwriting patterns (each reusing half of an old one) and recall of the old ones again."""
    from neurocc.backends.emulator import run as emulate

    M = ca3
    graph, inputs, info = M.experiment(overwrite=3)

    out = emulate(graph, inputs)
    score = M.evaluate(out["out"], info)
    assert score["recall"] == {"bit_accuracy": 1.0, "exact": 1.0}
    assert score["after_overwrite"]["exact"] < 0.5 and score["after_overwrite"]["bit_accuracy"] < 0.97
    w = out["EE/w"][0]
    for pat in info["patterns"][3:]:      # the newest patterns are stored: strong mutual weights (0 before)
        on = np.flatnonzero(pat)
        assert w[np.ix_(on, on)][~np.eye(len(on), dtype=bool)].mean() > 100


def test_loihi_refuses_sparse_excitatory_plastic():
    from neurocc.backends.loihi import check

    g = _ff_graph("excitatory", "2^-2 * y0 * x1", 1, np.full((2, 3), 10, np.int32), sparse=True)
    assert any("'syn'" in p and "LearningSparse" in p and "mixed" in p for p in check(g, None))


def test_edge_cpu_refuses_plastic_graph():
    from neurocc.backends.edge_cpu import check

    g = _ff_graph("excitatory", "2^-2 * y0 * x1", 1, np.full((2, 3), 10, np.int32))
    probs = check(g, None)
    assert any("'syn'" in p and "QPlasticDense" in p and "freeze" in p for p in probs), probs


def test_cli_save_weights_and_validate_compares_weights(lava_ok, ca3, tmp_path, capsys):
    """`run --save-weights` writes <node>/w; `validate` with the default backends judges loihi's
    spikes and weights exactly against the emulator (weights counted in `compared`, reported per
    node) and the emulator against the float reference of the rule (Δw cosine)."""
    import neurocc
    from neurocc.cli import main

    M = ca3
    graph, inputs, _ = M.experiment(M.Protocol(patterns=2, repeats=2), overwrite=0)
    neurocc.compile(graph, "loihi2", tmp_path / "art")
    np.savez(tmp_path / "x.npz", **inputs)
    args = ["run", str(tmp_path / "art"), "--backend", "emulator", "--input", str(tmp_path / "x.npz"),
            "--output", str(tmp_path / "y.npz"), "--save-weights", str(tmp_path / "w.npz")]
    assert main(args) == 0
    with np.load(tmp_path / "w.npz") as z:
        assert list(z.files) == ["EE/w"] and z["EE/w"].shape == (1, 32, 32) and z["EE/w"].max() > 0
    rep = tmp_path / "v.json"
    assert main(["validate", str(tmp_path / "art"), "--input", str(tmp_path / "x.npz"), "--json", str(rep)]) == 0
    emu, res = json.loads(rep.read_text())["results"]          # the default backends: emulator and loihi
    assert (emu["backend"], emu["reference"], res["backend"]) == ("emulator", "reference", "loihi")
    assert res["passed"] and res["weights"]["EE"] == {"compared": 1024, "mismatches": 0, "max_abs_diff": 0}
    assert res["compared"] > 1024
    # the integer rule against its float reference (PlasticDense): the learned changes agree
    w = emu["weights"]["EE"]
    assert emu["passed"] and w["rule"] == "dw_cosine" and w["limit"] == 0.9 and w["dw_cosine"] >= 0.9


def test_frozen_memory_runs_on_edge_cpu_exactly(ca3):
    """The learned weights frozen into QDense (freeze): edge-cpu (ONNX Runtime) equals the emulator
    on a recall from a 3-of-6 fragment, and the frozen memory completes the pattern."""
    from neurocc.backends import edge_cpu
    from neurocc.backends.emulator import run as emulate
    from neurocc.ir.qnodes_plastic import freeze

    M = ca3
    graph, inputs, info = M.experiment(overwrite=0)
    frozen = freeze(graph, {"EE/w": emulate(graph, inputs)["EE/w"]})
    assert "QPlasticDense" not in {n.kind for n in frozen.nodes.values()}
    pat = info["patterns"][0]
    cue = np.zeros((10, 1, 32))
    cue[1:5, 0, np.flatnonzero(pat)[:3]] = 1
    x = {"cue": cue, "stop": np.zeros((10, 1, 8))}
    want, got = emulate(frozen, x), edge_cpu.run(frozen, x)
    for k in want:
        assert np.array_equal(np.asarray(want[k]), np.asarray(got[k])), k
    assert np.array_equal((want["out"][4:, 0] != 0).any(axis=0).astype(int), pat)


def test_compile_for_non_loihi_numerics_names_the_plastic_node(tmp_path):
    import neurocc
    from neurocc.errors import CompileError

    g = _ff_graph("excitatory", "2^-2 * y0 * x1", 1, np.full((2, 3), 10, np.int32))
    with pytest.raises(CompileError, match="'syn' learn on chip") as err:
        neurocc.compile(g, "edge-cpu", tmp_path / "edge-cpu")
    assert "loihi2" in err.value.fix and "freeze" in err.value.fix
    # spinnaker takes pair-STDP-like rules, but not this graph's leaky neurons and weight exponent
    with pytest.raises(CompileError) as err:
        neurocc.compile(g, "spinnaker", tmp_path / "spinnaker")
    text = "\n".join(err.value.problems)
    assert "node 'lif' (QLIF): only memoryless neurons" in text and "node 'syn' (QPlasticDense)" in text
    assert "weight_exp 1" in text and "loihi2" in err.value.fix
