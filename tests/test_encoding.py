"""Input encoding/decoding of converted networks, and evaluate's checks of labelled test data."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.errors import InputError
from neurocc.ir.encoding import Encoding, decode, encode
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import IF, Affine, Input, Output
from neurocc.runtime.evaluate import (
    artifact_encoding,
    format_evaluation,
    latency,
    load_test_data,
)


def test_constant_encoding_repeats_the_scaled_input_every_step():
    x = np.array([[0.0, 0.5, 1.0], [2.0, -1.0, 0.25]])
    out = encode(x, Encoding("constant", timesteps=4, scale=2.0))
    assert out.shape == (4, 2, 3) and out.dtype == np.float32
    for t in range(4):
        np.testing.assert_array_equal(out[t], 2.0 * x)


def test_poisson_encoding_is_deterministic_per_seed_and_sample():
    x = np.full((3, 5), 0.3)
    enc = Encoding("poisson", timesteps=50, scale=1.0, seed=7)
    a, b = encode(x, enc), encode(x, enc)
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert not np.array_equal(a, encode(x, Encoding("poisson", 50, 1.0, seed=8)))
    # a sample's spikes do not depend on the batch it sits in, and a shorter run is a prefix
    np.testing.assert_array_equal(encode(x[1:2], enc, first_index=1)[:, 0], a[:, 1])
    np.testing.assert_array_equal(encode(x, enc, timesteps=20), a[:20])


def test_poisson_rate_matches_the_probability():
    p = np.array([[0.0, 0.1, 0.5, 0.9, 1.0, -0.4, 3.0]])
    spikes = encode(p, Encoding("poisson", timesteps=20000, seed=0))
    rate = spikes.mean(axis=0)[0]
    expected = np.clip(p[0], 0, 1)
    sigma = np.sqrt(expected * (1 - expected) / 20000)
    assert np.all(np.abs(rate - expected) <= 5 * sigma + 1e-12), (rate, expected)


def test_bad_encodings_list_every_problem():
    with pytest.raises(InputError) as err:
        Encoding("rate", timesteps=0, scale=-1.0)
    msg = str(err.value)
    assert "kind" in msg and "timesteps" in msg and "scale" in msg
    with pytest.raises(InputError, match="unknown encoding keys"):
        Encoding.from_dict({"kind": "constant", "timesteps": 3, "scale": 1.0, "seed": 0, "extra": 1})
    enc = Encoding("poisson", 16, 0.5, 3)
    assert Encoding.from_dict(enc.to_dict()) == enc


def test_decode_counts_spikes_or_reads_the_integrator_growth_over_the_window():
    y = np.zeros((5, 1, 3))
    y[[1, 3, 4], 0, 2] = 1
    y[[0, 4], 0, 1] = 1
    np.testing.assert_array_equal(decode(y, spiking=True, timesteps=5), [[0, 2, 3]])
    np.testing.assert_array_equal(decode(y, spiking=True, timesteps=2), [[0, 1, 2]])
    v = np.cumsum(np.ones((6, 1, 2)) * [1.0, 2.0], axis=0)  # v after steps 1..6
    np.testing.assert_array_equal(decode(v, spiking=False, timesteps=6), [[6.0, 12.0]])
    np.testing.assert_array_equal(decode(v, spiking=False, timesteps=4), [[4.0, 8.0]])


# ----- evaluate: data checks, encoding lookup, latency -----------------------------------------
def test_test_data_errors_name_the_key_and_the_expected_shape(tmp_path):
    with pytest.raises(InputError) as err:
        load_test_data({"x": np.zeros((4, 63))}, (64,))
    msg = str(err.value)
    assert "key 'y' is missing" in msg and "key 'x' has shape (4, 63); expected (samples, 64)" in msg
    with pytest.raises(InputError, match="key 'y' has 3 labels but 'x' has 4 samples"):
        load_test_data((np.zeros((4, 64)), np.zeros(3, int)), (64,))
    with pytest.raises(InputError, match="integer labels"):
        load_test_data({"x": np.zeros((4, 64)), "y": np.zeros(4)}, (64,))
    with pytest.raises(InputError, match="not found"):
        load_test_data(tmp_path / "missing.npz", (64,))
    path = tmp_path / "test.npz"
    np.savez(path, x=np.ones((2, 1, 8, 8)), y=np.array([3, 4]))
    x, y = load_test_data(path, (1, 8, 8))
    assert x.shape == (2, 1, 8, 8) and y.tolist() == [3, 4]


def test_artifact_encoding_falls_back_to_a_constant_current():
    assert artifact_encoding({"encoding": None, "timesteps": 32}) == Encoding("constant", 32)
    doc = Encoding("poisson", 16, 0.5, 2).to_dict()
    assert artifact_encoding({"encoding": doc, "timesteps": 16}) == Encoding("poisson", 16, 0.5, 2)
    with pytest.raises(InputError, match="--timesteps"):
        artifact_encoding({"encoding": None, "timesteps": None})


def test_latency_is_the_longest_delay_path():
    one = np.ones(2)
    g = Graph({"x": Input(shape=(2,)), "a": Affine(weight=np.eye(2), bias=np.zeros(2)),
               "n": IF(r=one, v_threshold=one, v_reset=0 * one), "b": Affine(weight=np.eye(2), bias=np.zeros(2)),
               "m": IF(r=one, v_threshold=one, v_reset=0 * one), "y": Output(shape=(2,))},
              (Edge("x", "a"), Edge("a", "n", 1), Edge("n", "b"), Edge("b", "m", 1), Edge("x", "m", 1),
               Edge("m", "y")))
    assert latency(g) == 2


def test_format_evaluation():
    text = format_evaluation({"accuracy": 0.975, "n": 40, "backend": "emulator", "timesteps": 64,
                              "latency_steps": 3, "per_class": {0: {"n": 20, "accuracy": 1.0},
                                                                1: {"n": 20, "accuracy": 0.95}}})
    assert "97.50% on 40 samples" in text and "+ 3 latency" in text and "1: 95.0% (20)" in text


# ----- evaluate end to end on a float artifact ---------------------------------------------------
@pytest.fixture(scope="module")
def float_artifact(tmp_path_factory):
    """A converted 3-4-3 ReLU network written as an artifact for the float32 target."""
    from neurocc.compiler.passes.convert import convert
    from neurocc.ir.artifact import write_artifact
    from neurocc.ir.nodes import ReLU
    from neurocc.targets import get_target

    rng = np.random.default_rng(5)
    ann = Graph.chain(("input", Input(shape=(3,))), ("fc1", Affine(weight=rng.normal(size=(4, 3)), bias=rng.normal(size=4))),
                      ("relu", ReLU()), ("fc2", Affine(weight=rng.normal(size=(3, 4)), bias=np.zeros(3))),
                      ("output", Output(shape=(3,))))
    x = rng.uniform(0, 1, size=(60, 3))
    enc = Encoding("poisson", timesteps=32, scale=1.0, seed=4)
    snn, _ = convert(ann, x, timesteps=32, encoding=enc, sweep=(32,))
    out = tmp_path_factory.mktemp("eval") / "art"
    write_artifact(out, graph=snn, float_graph=snn, target=get_target("edge-cpu-f32"),
                   extra={"encoding": enc.to_dict(), "timesteps": 32})
    return out, snn, x, enc


def test_evaluate_applies_the_saved_encoding_and_readout(float_artifact):
    from neurocc.backends.emulator import simulate
    from neurocc.runtime.evaluate import evaluate

    out, snn, x, enc = float_artifact
    y = np.arange(len(x)) % 3
    # expected: the same Poisson trains fed straight to the simulator; class = argmax of the
    # integrator readout's membrane after the last step
    v = simulate(snn, {"input": encode(x, enc)}, steps=32).outputs["output"]
    expected = np.mean(np.asarray(v[-1]).argmax(1) == y)
    for backend in ("reference", "emulator"):
        res = evaluate(out, {"x": x, "y": y}, backend=backend, batch_size=7)
        assert res["accuracy"] == pytest.approx(expected) and res["n"] == 60 and res["backend"] == backend
        assert sum(c["n"] for c in res["per_class"].values()) == 60 and res["latency_steps"] == 0


def test_evaluate_names_the_bad_key(float_artifact, tmp_path):
    from neurocc.runtime.evaluate import evaluate

    out, _, x, _ = float_artifact
    path = tmp_path / "bad.npz"
    np.savez(path, inputs=x, y=np.zeros(len(x), int))
    with pytest.raises(InputError) as err:
        evaluate(out, path)
    assert str(path) in str(err.value) and "key 'x' is missing: expected an array (samples, 3)" in str(err.value)
