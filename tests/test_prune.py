"""Pruning: the SPEC grammar, exact fractions per layer / global / structured, the CSR artifact
format, zeros surviving compile, the ranked prune fix and ``compile --prune`` on the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurocc.compiler.mapping import mapping_report
from neurocc.compiler.prune import density, parse_spec, prune_graph
from neurocc.errors import CompileError
from neurocc.ir.serialize import load_graph, save_graph
from test_partition import target
from test_sparse_mapping import sparse_chain


def test_spec_grammar():
    assert parse_spec("0.75").fraction == 0.75 and parse_spec("0.75").scope == "layer"
    assert parse_spec("global:90%").fraction == pytest.approx(0.9) and parse_spec("global:90%").scope == "global"
    assert parse_spec("neurons:0.25").scope == "neurons"
    for bad in ("1.5", "x", "chan:0.5", "-0.1"):
        with pytest.raises(CompileError) as e:
            parse_spec(bad)
        assert "--prune" in str(e.value)


def test_per_layer_global_and_structured_fractions():
    rng = np.random.default_rng(0)
    w0, w1 = rng.normal(size=(20, 30)), 10 * rng.normal(size=(8, 20))
    g = sparse_chain([w0, w1])
    d = density(prune_graph(g, "0.6"))
    assert d == {"w0": pytest.approx(0.4), "w1": pytest.approx(0.4)}
    kept = prune_graph(g, "0.6").nodes["w0"].weight
    assert np.abs(kept[kept != 0]).min() >= np.abs(w0[kept == 0]).max()   # the smallest went
    gl = prune_graph(g, "global:0.6")
    assert sum(np.count_nonzero(gl.nodes[n].weight) for n in ("w0", "w1")) == round(0.4 * (600 + 160))
    assert density(gl)["w1"] > density(gl)["w0"]                          # w1's weights are 10x larger
    st = prune_graph(g, "neurons:0.25")
    assert st.nodes["w0"].weight.shape == (15, 30) and st.nodes["w1"].weight.shape == (8, 15)  # 5 neurons gone
    assert (np.abs(st.nodes["w1"].weight).sum(axis=1) == 0).sum() == 2   # read by the Output: zeroed instead


def test_sparse_weights_round_trip_as_csr(tmp_path: Path):
    rng = np.random.default_rng(1)
    g = prune_graph(sparse_chain([rng.normal(size=(12, 9)), rng.normal(size=(4, 12))]), "0.7")
    jpath, npath = save_graph(g, tmp_path)
    doc = json.loads(jpath.read_text())
    w0 = next(n for n in doc["nodes"] if n["name"] == "w0")["params"]["weight"]
    assert w0["sparse"] == "csr" and w0["shape"] == [12, 9]
    with np.load(npath) as z:
        assert z["w0/weight/data"].size == np.count_nonzero(g.nodes["w0"].weight)
        assert "w0/weight" not in z.files
    back = load_graph(jpath)
    for n in ("w0", "w1"):
        np.testing.assert_array_equal(back.nodes[n].weight, g.nodes[n].weight)
        assert back.nodes[n].weight.dtype == g.nodes[n].weight.dtype


def test_prune_fix_is_the_smallest_fraction_that_fits():
    rng = np.random.default_rng(2)
    g = sparse_chain([rng.normal(size=(64, 256))])
    t = target(neurons_per_core=64, synapse_memory_bits_per_core=64 * 256 * 8 // 3, cores_per_chip=1, chips=1,
               synapse_encoding="loihi")
    report = mapping_report(g, t)
    fixes = [f for f in report.fixes if f.kind == "prune"]
    assert fixes and all(f.fits and f.changes_model for f in fixes)
    frac = parse_spec(fixes[0].action.split("--prune ")[1].split("`")[0]).fraction
    assert mapping_report(prune_graph(g, str(frac)), t, with_fixes=False).fits
    assert not mapping_report(prune_graph(g, str(round(frac - 0.05, 2))), t, with_fixes=False).fits


@pytest.fixture(scope="module")
def snn_files(tmp_path_factory):
    """A 64-64-32-10 LIF network saved as a neurocc graph, time-major spike calibration data with labels."""
    from neurocc.ir.nodes import LIF, Input, Linear, Output
    from neurocc.ir.graph import Graph

    rng = np.random.default_rng(7)
    nodes, sizes = [("in", Input(shape=(64,)))], (64, 64, 32, 10)
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes += [(f"fc{i}", Linear(weight=rng.normal(0.2, 1.0, (b, a)) / np.sqrt(a) * 4)),
                  (f"lif{i}", LIF(tau=np.full(b, 2e-2), r=np.full(b, 20.0), v_leak=np.zeros(b),
                                  v_threshold=np.ones(b), v_reset=np.zeros(b)))]
    g = Graph.chain(*nodes, ("out", Output(shape=(10,))), name="snn").verify()
    d = tmp_path_factory.mktemp("snn")
    save_graph(g, d, "model")
    x = (rng.random((16, 96, 64)) < 0.3).astype(np.float32)
    np.savez(d / "cal.npz", x=x, y=rng.integers(0, 10, 96))
    return {"model": d / "model.json", "calibration": d / "cal.npz"}


TINY = """\
extends: builtin
targets:
  tinyloihi:
    description: a Loihi-like chip with little synaptic memory
    backend: emulator
    numerics: loihi
    dt: 0.001
    limits: {chips: 1, cores_per_chip: 3, neurons_per_core: 1024, synapse_memory_bits_per_core: 12000,
             weight_bits: 8, synapse_encoding: loihi}
"""


def test_cli_prune_compiles_sparse_and_fix_is_offered(tmp_path: Path, snn_files, monkeypatch, capsys):
    """`neurocc compile` (in-process: the subprocess form is covered by test_cli) refuses the dense
    model with a prune fix and its accuracy, and compiles it with --prune into a sparse artifact."""
    from neurocc import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.yaml").write_text(TINY)
    common = ["compile", str(snn_files["model"]), "--target", "tinyloihi", "--targets", "t.yaml",
              "--calibration", str(snn_files["calibration"])]
    assert cli.main([*common, "-o", "dense"]) == 1
    err = capsys.readouterr().err
    assert "--prune" in err and "accuracy on the calibration data after pruning" in err and "Traceback" not in err
    assert cli.main([*common, "--prune", "0.9", "-o", "pruned"]) == 0
    manifest = json.loads((tmp_path / "pruned" / "manifest.json").read_text())
    assert manifest["prune"]["spec"] == "0.9"
    assert all(d <= 0.101 for d in manifest["prune"]["density"].values())
    assert '"sparse": "csr"' in (tmp_path / "pruned" / "graph.json").read_text()
    assert manifest["mapping"]["fits"]


def test_cli_bad_prune_spec_exits_1(capsys):
    from neurocc import cli

    assert cli.main(["compile", "no-such-model.nir", "--target", "emulator", "-o", "x", "--prune", "2"]) == 1
    err = capsys.readouterr().err
    assert "bad prune spec '2'" in err and "--prune 0.75" in err and "Traceback" not in err


def test_structured_pruning_removes_neurons_and_frees_cores():
    rng = np.random.default_rng(3)
    w0, w1, w2 = rng.normal(size=(40, 12)), rng.normal(size=(30, 40)), rng.normal(size=(5, 30))
    g = sparse_chain([w0, w1, w2])
    p = prune_graph(g, "neurons:0.5")
    assert p.shapes()["l0"] == (20,) and p.shapes()["l1"] == (15,) and p.shapes()["l2"] == (5,)
    assert p.nodes["w1"].weight.shape == (15, 20) and p.nodes["w2"].weight.shape == (5, 15)
    # the kept neurons are the ones of largest L2 norm, with their own weights and parameters
    keep0 = np.sort(np.argsort(np.sqrt((w0 ** 2).sum(1)), kind="stable")[20:])
    np.testing.assert_array_equal(p.nodes["w0"].weight, w0[keep0])
    assert p.nodes["l0"].tau.shape == (20,)
    # the last layer (read by the Output) keeps its neurons: its weakest rows are zeroed instead
    assert (np.abs(p.nodes["w2"].weight).sum(axis=1) == 0).sum() == 2
    t = target(neurons_per_core=16)
    assert mapping_report(p, t, with_fixes=False).cores < mapping_report(g, t, with_fixes=False).cores
