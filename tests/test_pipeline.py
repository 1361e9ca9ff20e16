"""compile_model: passes in order, the artifact directory (manifest, files, digests), atomic
writes, deterministic bytes, and clear errors when an artifact cannot be loaded."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import neurocc.ir.artifact as artifact_mod
from neurocc.compiler.frontends import load
from neurocc.compiler.pipeline import compile_graph, compile_model
from neurocc.errors import CompileError, NeuroccError
from neurocc.ir.artifact import ArtifactError, load_artifact, sha256_file
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output, ReLU
from neurocc.ir.serialize import load_graph


def _net(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    return Graph.chain(("in", Input(shape=(4,))), ("fc", Linear(weight=rng.normal(0, 1, (3, 4)))),
                       ("lif", LIF(tau=np.full(3, 2e-2), r=np.full(3, 20.0), v_leak=np.zeros(3),
                                   v_threshold=np.ones(3), v_reset=np.zeros(3))),
                       ("out", Output(shape=(3,))), name="tiny").verify()


def test_manifest_fields_files_and_digests(nir_paper, tmp_path):
    out = compile_model(load(nir_paper / "lif_norse.nir"), "loihi2", tmp_path / "a", dt=1e-4)
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "neurocc-artifact" and m["format_version"] == 1
    assert m["target"]["name"] == "loihi2" and m["target"]["settings"]["validation"]["rule"] == "exact"
    assert (m["numerics"], m["dt"], m["method"]) == ("loihi", 1e-4, "euler")
    assert m["inputs"] == [{"name": "input", "shape": [1], "values": "spikes", "int_per_float": None}]
    assert m["outputs"] == [{"name": "output", "shape": [1], "values": "spikes"}]
    assert set(m["versions"]) == {"python", "numpy"} and isinstance(m["neurocc_version"], str)
    for name, entry in m["files"].items():
        assert sha256_file(out / name) == entry["sha256"] and (out / name).stat().st_size == entry["bytes"]
    assert {"graph.json", "graph.npz", "float_graph.json", "float_graph.npz", "quantization.json"} <= set(m["files"])
    art = load_artifact(out)
    assert art.graph.digest() == m["graphs"]["executed"]["digest"] == load_graph(out / "graph.json").digest()
    assert art.float_graph.digest() == m["graphs"]["float"]["digest"]
    assert art.graph.numerics == "loihi" and art.float_graph.numerics is None and art.float_graph.dt == 1e-4
    assert art.target == "loihi2" and art.quantization["layers"]["1"]["vth"] == [637, 637]


def test_dt_defaults_to_the_target(tmp_path):
    art = load_artifact(compile_model(_net(), "emulator", tmp_path / "a"))
    assert art.manifest["dt"] == 1e-3 and art.graph.dt == 1e-3


def test_same_inputs_give_the_same_bytes(tmp_path):
    a = compile_model(_net(), "emulator", tmp_path / "a")
    b = compile_model(_net(), "emulator", tmp_path / "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_failed_compile_leaves_previous_artifact_and_no_partial_dir(tmp_path, monkeypatch):
    out = tmp_path / "art"
    compile_model(_net(0), "emulator", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*a, **k):  # fails after graph.json/npz and the report are already written
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(artifact_mod, "build_manifest", boom)
    with pytest.raises(OSError, match="simulated"):
        compile_model(_net(1), "emulator", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]     # no .art.tmp-* left behind
    with pytest.raises(OSError):
        compile_model(_net(1), "emulator", tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_existing_non_artifact_directory_is_not_replaced(tmp_path):
    victim = tmp_path / "mine"
    victim.mkdir()
    (victim / "notes.txt").write_text("keep me")
    with pytest.raises(NeuroccError, match="not a neurocc artifact"):
        compile_model(_net(), "emulator", victim)
    assert (victim / "notes.txt").read_text() == "keep me"


def test_load_errors_say_what_and_how_to_fix(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="manifest.json is missing"):
        load_artifact(tmp_path / "empty")
    out = compile_model(_net(), "emulator", tmp_path / "a")
    m = out / "manifest.json"
    text = m.read_text()
    m.write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match="corrupt") as err:
        load_artifact(out)
    assert "recompile" in str(err.value)
    doc = json.loads(text)
    doc["format_version"] = 99
    m.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="version 99") as err:
        load_artifact(out)
    assert "recompile" in str(err.value)
    m.write_text(text)
    with open(out / "graph.npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(ArtifactError, match="graph.npz: contents changed"):
        load_artifact(out)


def test_ann_without_calibration_is_refused_naming_the_flag(tmp_path):
    g = Graph.chain(("in", Input(shape=(4,))), ("fc", Linear(weight=np.ones((3, 4)))), ("relu", ReLU()),
                    ("out", Output(shape=(3,)))).verify()
    with pytest.raises(CompileError, match="'relu' \\(ReLU\\)") as err:
        compile_model(g, "emulator", tmp_path / "a")
    assert "--calibration" in str(err.value) and "needs calibration data" in str(err.value)
    assert not (tmp_path / "a").exists()


def test_snn_calibration_is_used_and_recorded(tmp_path):
    """Time-major spike calibration of a spiking model: float statistics per layer, the
    emulator-in-the-loop diagnostics, and the mapping report all land in the artifact."""
    x = (np.random.default_rng(0).random((50, 8, 4)) < 0.3).astype(np.float32)
    out = compile_model(_net(), "emulator", tmp_path / "a", calibration={"x": x})
    art = load_artifact(out)
    m = art.manifest
    assert m["calibration"]["used"] is True and m["calibration"]["samples"] == 8 and m["timesteps"] == 50
    assert m["calibration"]["inputs"] == {"in": {"values": "spikes"}}
    assert set(art.quantization["calibration"]["layers"]) == {"lif"}
    assert art.quantization["layers"]["lif"]["calibrated"]["u_absmax"] > 0
    diag = art.quantization["diagnostics"]
    assert [d["layer"] for d in diag["layers"]] == ["lif"] and diag["samples"] == 8
    assert m["mapping"]["fits"] is True and (out / "mapping.json").is_file()
    with pytest.raises(NeuroccError, match="expected \\(steps, samples, 4\\)"):
        compile_model(_net(), "emulator", tmp_path / "b", calibration={"x": x[0]})


def test_float32_target_keeps_the_float_graph(tmp_path):
    c = compile_graph(_net(), "edge-cpu-f32")
    assert c.quantization is None and c.graph is c.float_graph and c.graph.numerics is None
    art = load_artifact(compile_model(_net(), "edge-cpu-f32", tmp_path / "f"))
    assert art.manifest["numerics"] is None and art.manifest["quantization"] is None


def test_no_temporary_files_survive_a_success(tmp_path):
    compile_model(_net(), "emulator", tmp_path / "a")
    compile_model(_net(), "emulator", tmp_path / "a")    # replacing an artifact is allowed
    assert sorted(os.listdir(tmp_path)) == ["a"]


def test_fuse_pools_is_exact_on_the_paper_cnn(nir_paper):
    """Folding the CNN's two SumPool2d into the next conv/dense weights changes no spike."""
    from neurocc.backends.emulator import simulate
    from neurocc.compiler.passes.discretize import discretize
    from neurocc.compiler.pipeline import fuse_pools

    g = discretize(load(nir_paper / "cnn_sinabs.nir"), 1e-3)
    f = fuse_pools(g)
    assert {n.kind for n in g.nodes.values()} - {n.kind for n in f.nodes.values()} == {"SumPool2d"}
    assert f.nodes["5"].weight.shape[2:] == (6, 6) and f.nodes["9"].weight.shape == (256, 512)
    x = (np.random.default_rng(0).random((30, 2, 2, 34, 34)) < 0.2).astype(np.float32)
    a, b = simulate(g, {"input": x}, record=True), simulate(f, {"input": x}, record=True)
    for n in ("1", "3", "6", "10", "12"):
        np.testing.assert_array_equal(a.traces[f"{n}/out"], b.traces[f"{n}/out"])
        np.testing.assert_allclose(a.traces[f"{n}/v"], b.traces[f"{n}/v"], atol=1e-9)
    assert a.traces["12/out"].sum() > 0
