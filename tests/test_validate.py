"""run + validate end to end: compile, run emulator and reference on event inputs, judge the
quantization agreement, and the validation.json contract."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocc.compiler.frontends import load
from neurocc.compiler.pipeline import compile_model
from neurocc.errors import InputError
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import LIF, Input, Linear, Output
from neurocc.runtime import compare
from neurocc.runtime.run import load_inputs, run_artifact, save_outputs
from neurocc.runtime.validate import _result, format_validation, random_inputs, validate_artifact

RESULT_KEYS = {"backend", "reference", "exact", "compared", "mismatches", "cosine", "cosine_per_layer",
               "first_divergence", "passed"}


def _lif_net(seed: int = 0, sizes=(20, 40, 10)) -> Graph:
    rng = np.random.default_rng(seed)
    nodes = [("in", Input(shape=(sizes[0],)))]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes += [(f"fc{i}", Linear(weight=rng.normal(0, 0.5, (b, a)))),
                  (f"lif{i}", LIF(tau=np.full(b, 2e-2), r=np.full(b, 20.0), v_leak=np.zeros(b),
                                  v_threshold=np.ones(b), v_reset=np.zeros(b)))]
    return Graph.chain(*nodes, ("out", Output(shape=(sizes[-1],))), name="lifnet").verify()


@pytest.fixture(scope="module")
def lif_art(tmp_path_factory):
    return compile_model(_lif_net(), "emulator", tmp_path_factory.mktemp("v") / "lif")


def test_small_lif_net_quantization_agreement(lif_art):
    doc = validate_artifact(lif_art, samples=4)
    (r,) = doc["results"]
    assert (r["backend"], r["reference"], r["rule"]) == ("emulator", "reference", "cosine")
    # Bound 0.98: 8-bit weights are within 0.4 % of the float weights and thresholds within 0.1 %;
    # the one step of latency per layer is removed before comparing, so only a few near-threshold
    # spikes move (measured 0.9993 on this net); a scaling or delay bug drops it far below.
    assert r["cosine"] >= 0.98 and r["passed"]
    rates = r["rate_per_layer"]
    assert set(rates) == {"lif0", "lif1"} and all(min(v) > 0.01 for v in rates.values())   # not silent
    assert r["lag"] == {"lif0": 1, "lif1": 2, "out": 2}
    assert r["class_agreement"] >= 0.75


def test_validation_json_fields_and_types(lif_art, tmp_path):
    doc = validate_artifact(lif_art, samples=2, json_path=tmp_path / "rep.json")
    on_disk = json.loads((tmp_path / "rep.json").read_text())
    assert on_disk == json.loads(json.dumps(doc))
    assert on_disk["artifact"] == str(lif_art) and on_disk["target"] == "emulator"
    for r in on_disk["results"]:
        assert RESULT_KEYS <= set(r)
        assert isinstance(r["exact"], bool) and isinstance(r["passed"], bool)
        assert isinstance(r["compared"], int) and isinstance(r["mismatches"], int) and r["compared"] > 0
        assert isinstance(r["cosine"], float) and all(isinstance(v, float) for v in r["cosine_per_layer"].values())
        fd = r["first_divergence"]
        assert fd is None or set(fd) == {"node", "step", "index", "var", "expected", "got"}
    validate_artifact(lif_art, samples=1)     # without json_path: DIR/validation.json
    assert json.loads((lif_art / "validation.json").read_text())["results"][0]["backend"] == "emulator"
    text = format_validation(doc)
    assert "emulator" in text and "PASS" in text


def test_cnn_sinabs_emulator_against_reference(nir_paper, tmp_path):
    out = compile_model(load(nir_paper / "cnn_sinabs.nir"), "loihi2", tmp_path / "cnn")
    x = random_inputs(load_artifact(out), samples=2, steps=60, seed=1, rate=0.2)
    doc = validate_artifact(out, backends=["emulator"], inputs=x)
    (r,) = doc["results"]
    # Bound 0.95: per layer only 8-bit weight and threshold rounding differ (latency is removed);
    # measured 0.976 here: 0.999 at the first layer down to 0.90 at the sparse 10-neuron output,
    # whose few spikes per run make its cosine noisy. Broken scaling or delays give far less.
    assert r["cosine"] >= 0.95 and r["passed"]
    assert set(r["cosine_per_layer"]) == {"1", "3", "6", "10", "12"}
    assert min(r["rate_per_layer"]["1"]) > 0.005


def test_exact_rule_names_the_first_divergence(lif_art):
    """A backend of an exact target must equal the emulator; one flipped spike is found."""
    art = load_artifact(lif_art)
    art = type(art)(**{**art.__dict__, "manifest": {**art.manifest, "target": {
        "name": "loihi2", "settings": {**art.manifest["target"]["settings"], "backend": "loihi"}}}})
    x = random_inputs(art, 2, steps=30, seed=3)
    emu = run_artifact(art, "emulator", x, record=True)
    same = _result(art, "loihi", {"emulator": emu, "loihi": {k: v.copy() for k, v in emu.items()}})
    assert same["exact"] and same["passed"] and same["first_divergence"] is None and same["reference"] == "emulator"
    bad = {k: v.copy() for k, v in emu.items()}
    bad["lif1/out"][7, 1, 4] = 1 - bad["lif1/out"][7, 1, 4]
    bad["lif1/v"][9, 0, 0] += 1
    r = _result(art, "loihi", {"emulator": emu, "loihi": bad})
    assert not r["passed"] and r["mismatches"] == 2
    assert r["first_divergence"] == {"node": "lif1", "step": 7, "index": [1, 4], "var": "out",
                                     "expected": int(emu["lif1/out"][7, 1, 4]), "got": int(bad["lif1/out"][7, 1, 4])}


def test_run_checks_inputs_and_names_the_key(lif_art):
    good = random_inputs(load_artifact(lif_art), 2, steps=5)
    with pytest.raises(InputError, match="input 'in' is missing"):
        run_artifact(lif_art, "emulator", {})
    with pytest.raises(InputError, match=r"'in' has shape \(5, 2, 3\); expected \(steps, batch, 20\)"):
        run_artifact(lif_art, "emulator", {"in": np.zeros((5, 2, 3))})
    with pytest.raises(InputError, match="values other than 0 and 1"):
        run_artifact(lif_art, "emulator", {"in": good["in"] * 0.5})
    with pytest.raises(InputError, match="unknown input 'x'"):
        run_artifact(lif_art, "emulator", {**good, "x": good["in"]})
    y = run_artifact(lif_art, "reference", good, steps=8)
    assert y["out"].shape == (8, 2, 10)


def test_outputs_round_trip_atomically(lif_art, tmp_path):
    y = run_artifact(lif_art, "emulator", random_inputs(load_artifact(lif_art), 1, steps=5), record=True)
    p = save_outputs(tmp_path / "Y.npz", y)
    back = load_inputs(p)
    assert set(back) == set(y) and "lif0/v" in back
    for k in y:
        np.testing.assert_array_equal(back[k], y[k])
    assert sorted(q.name for q in tmp_path.iterdir()) == ["Y.npz"]
    with pytest.raises(InputError, match="not found"):
        load_inputs(tmp_path / "missing.npz")


def test_metrics_on_hand_made_arrays():
    a = np.zeros((4, 1, 2)); a[:, 0, 0] = 1                 # neuron 0 fires every step
    b = np.zeros((4, 1, 2)); b[:, 0, 1] = 1
    assert compare.activity_cosine(a, a) == 1.0 and compare.activity_cosine(a, b) == 0.0
    assert compare.activity_cosine(a * 0, b * 0) == 1.0     # both silent
    c = a.copy(); c[:2, 0, 1] = 1                           # mean activity (1, 0.5): cos = 1/sqrt(1.25)
    assert compare.activity_cosine(a, c) == pytest.approx(1 / np.sqrt(1.25))
    assert compare.spike_count_error(a, c) == {"mean_abs": 1.0, "relative": 0.5}
    e, g = compare.align(np.arange(5), np.arange(5) + 100, 2)
    assert e.tolist() == [0, 1, 2] and g.tolist() == [102, 103, 104]
    assert compare.class_agreement(a, c) == 1.0 and compare.class_agreement(a, b) == 0.0


@pytest.mark.slow
@pytest.mark.lava
def test_lava_runs_the_compiled_cnn_exactly(nir_paper, tmp_path):
    """loihi2 artifact of the paper CNN in Lava's fixed_pt models: bit-exact against the emulator
    (spikes and u, v of every layer), pools fused into the following synapses."""
    from neurocc.backends.loihi import lava_available, unavailable_reason

    if not lava_available():
        pytest.skip(f"Lava is not usable here: {unavailable_reason()}")
    out = compile_model(load(nir_paper / "cnn_sinabs.nir"), "loihi2", tmp_path / "cnn")
    x = random_inputs(load_artifact(out), 1, steps=20, seed=0, rate=0.2)
    doc = validate_artifact(out, backends=["loihi"], inputs=x)
    (r,) = doc["results"]
    assert r["error"] is None and r["reference"] == "emulator"
    assert r["exact"] and r["passed"] and r["compared"] > 100_000 and r["first_divergence"] is None
