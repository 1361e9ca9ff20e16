"""Overflow and saturation reach the user (issue 21), and validate judges graded readouts.

Five networks built to overflow on loihi2: weights far larger than the threshold (or, for the
readouts, scaled to the weights alone), 1,024 inputs (dense, recurrent, readouts) or 256 × 3 × 3
(conv) spiking at rate 0.8, so the per-step synaptic input ``a << 6`` passes Loihi's 24-bit
current ``u`` (±2^23) and the voltage ``v`` runs into its clip at ±(2^23 − 1). Each command that
runs them must say so (one warning per node and event, with the count) and store the counts in
its JSON; validate must fail the saturated readouts and name the overflow as the likely cause.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurocc
from neurocc.compiler.pipeline import compile_model
from neurocc.errors import TargetsError
from neurocc.ir.artifact import load_artifact
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import LI, LIF, Conv2d, CubaLI, Input, Linear, Output
from neurocc.ir.numerics.core import STATE_SHIFT, V24_LIM
from neurocc.overflow import OverflowWarning
from neurocc.runtime.validate import validate_artifact
from neurocc.targets import load_targets

N_IN = 1024
STEPS, BATCH, RATE = 40, 2, 0.8


def _w(shape: tuple[int, ...], scale: float, seed: int = 0) -> np.ndarray:
    """Positive weights within 10 % of ``scale``: every input spike pushes u the same way."""
    return scale * (0.9 + 0.1 * np.random.default_rng(seed).random(shape))


def _lif(shape: tuple[int, ...]) -> LIF:
    return LIF(tau=np.full(shape, 2e-2), r=np.full(shape, 20.0), v_leak=np.zeros(shape),
               v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def _li(n: int) -> LI:
    return LI(tau=np.full(n, 2e-2), r=np.full(n, 20.0), v_leak=np.zeros(n))


def _cubali(n: int) -> CubaLI:
    return CubaLI(tau_syn=np.full(n, 5e-3), tau_mem=np.full(n, 2e-2), r=np.full(n, 20.0), v_leak=np.zeros(n),
                  w_in=np.ones(n))


def overflow_net(kind: str) -> Graph:
    """One of the five overflow networks (weights 50× the threshold; readouts: all inputs excite)."""
    if kind == "dense":
        return Graph.chain(("in", Input(shape=(N_IN,))), ("fc", Linear(weight=_w((16, N_IN), 50.0))),
                           ("lif", _lif((16,))), ("out", Output(shape=(16,))), name=kind).verify()
    if kind == "conv":
        conv = Conv2d(weight=_w((4, 256, 3, 3), 50.0), bias=np.zeros(4), input_shape=(6, 6))
        return Graph.chain(("in", Input(shape=(256, 6, 6))), ("conv", conv), ("lif", _lif((4, 4, 4))),
                           ("out", Output(shape=(4, 4, 4))), name=kind).verify()
    if kind == "recurrent":
        nodes = {"in": Input(shape=(N_IN,)), "fc": Linear(weight=_w((16, N_IN), 50.0)), "lif": _lif((16,)),
                 "rec": Linear(weight=_w((16, 16), 50.0, seed=1)), "out": Output(shape=(16,))}
        edges = (Edge("in", "fc"), Edge("fc", "lif"), Edge("lif", "rec"), Edge("rec", "lif", 1), Edge("lif", "out"))
        return Graph(nodes, edges, name=kind).verify()
    readout = _li(10) if kind == "li" else _cubali(10)
    return Graph.chain(("in", Input(shape=(N_IN,))), ("fc", Linear(weight=_w((10, N_IN), 1.0))),
                       ("ro", readout), ("out", Output(shape=(10,))), name=kind).verify()


def healthy_readout_net(seed: int = 0) -> Graph:
    """A LIF hidden layer and an LI readout with weights N(0, 0.5): no register comes near its bound."""
    rng = np.random.default_rng(seed)
    return Graph.chain(("in", Input(shape=(100,))), ("fc0", Linear(weight=rng.normal(0, 0.5, (40, 100)))),
                       ("lif", _lif((40,))), ("fc1", Linear(weight=rng.normal(0, 0.5, (10, 40)))),
                       ("ro", _li(10)), ("out", Output(shape=(10,))), name="healthy").verify()


def spikes(shape: tuple[int, ...], steps: int = STEPS, rate: float = RATE, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, BATCH, *shape)) < rate).astype(np.float32)


KINDS = ("dense", "conv", "recurrent", "li", "cubali")
NEURON = {"dense": "lif", "conv": "lif", "recurrent": "lif", "li": "ro", "cubali": "ro"}


@pytest.fixture(scope="module")
def arts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("overflow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # the compile warnings are tested on their own below
        return {k: compile_model(overflow_net(k), "loihi2", root / k, timesteps=STEPS) for k in KINDS}


def _inputs(art: Path) -> dict[str, np.ndarray]:
    spec = load_artifact(art).inputs[0]
    return {spec["name"]: spikes(tuple(spec["shape"]))}


def _overflow_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, OverflowWarning)]


@pytest.mark.parametrize("kind", KINDS)
def test_run_api_reports_wrap_and_saturation_per_node(arts, kind) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = neurocc.run(arts[kind], "emulator", _inputs(arts[kind]), record=True)
    node = NEURON[kind]
    counts = out.overflow[node]
    assert counts["u_wrap"] > 0 and counts["v_saturate"] > 0, out.overflow
    lines = _overflow_warnings(caught)
    # one line per node and event, each naming the node, the register and the count
    assert len(lines) == sum(len(ev) for ev in out.overflow.values())
    assert any(f"node '{node}'" in t and "current u wrapped" in t and f" {counts['u_wrap']} time(s)" in t
               for t in lines)
    assert any(f"node '{node}'" in t and "voltage v saturated" in t and f" {counts['v_saturate']} time(s)" in t
               for t in lines)
    # the saturations are real: that many recorded voltages sit on the 24-bit clip
    v = out[f"{node}/v"]
    if kind in ("li", "cubali"):   # a readout is never reset, so every clipped value stays visible
        assert np.count_nonzero(np.abs(v) == V24_LIM) == counts["v_saturate"]


def test_li_wrap_count_matches_the_synaptic_input(arts) -> None:
    """LI has du = 4095 (u restarts each step): u = a << 6, so the wraps are the steps where the
    synapse output times 2^6 leaves (-2^23, 2^23] (Lava keeps +2^23), counted here from the trace.
    Loihi's Dense delivers one step later, so the last step's synapse output reaches no neuron."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = neurocc.run(arts["li"], "emulator", _inputs(arts["li"]), record=True)
    a6 = out["fc/out"][:-1].astype(np.int64) << STATE_SHIFT
    assert np.count_nonzero((a6 > 1 << 23) | (a6 <= -(1 << 23))) == out.overflow["ro"]["u_wrap"] > 0


def test_run_on_a_healthy_net_is_silent(tmp_path) -> None:
    art = compile_model(healthy_readout_net(), "loihi2", tmp_path / "ok")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = neurocc.run(art, "emulator", {"in": spikes((100,), steps=60, rate=0.1)})
    assert out.overflow == {} and not _overflow_warnings(caught)
    assert neurocc.run(art, "reference", {"in": spikes((100,), steps=5, rate=0.1)}).overflow is None  # not counted


def test_compile_warns_of_a_predicted_wrap_and_calibration_sizes_it(tmp_path) -> None:
    with pytest.warns(OverflowWarning) as rec:
        compile_model(overflow_net("li"), "loihi2", tmp_path / "plain")
    text = " ".join(str(w.message) for w in rec if issubclass(w.category, OverflowWarning))
    assert "node 'ro' may wrap its 24-bit current u" in text and "synapse 'fc'" in text
    assert "--calibration" in text and "fewer weight bits" in text
    q = json.loads((tmp_path / "plain" / "quantization.json").read_text())
    assert q["layers"]["ro"]["synapses"]["fc"]["u_may_wrap"] is True
    # what the warning says to pass: calibration data sizes the scale, and the readout then agrees
    cal = {"x": spikes((N_IN,), seed=2)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        art = compile_model(overflow_net("li"), "loihi2", tmp_path / "cal", calibration=cal)
        doc = validate_artifact(art, backends=["emulator"], inputs={"in": spikes((N_IN,))})
    assert not _overflow_warnings(caught) and doc["overflow"] == {}
    # measured 0.0006 once calibrated (1.05 without)
    assert doc["results"][0]["passed"] and doc["results"][0]["readouts"]["out"]["relative_error"] < 0.05


@pytest.mark.parametrize("kind", ["li", "cubali"])
def test_validate_fails_a_saturated_readout_and_names_the_cause(arts, kind, tmp_path) -> None:
    with pytest.warns(OverflowWarning):
        doc = validate_artifact(arts[kind], backends=["emulator"], inputs=_inputs(arts[kind]),
                                json_path=tmp_path / "v.json")
    (r,) = doc["results"]
    ro = r["readouts"]["out"]
    # every value of every step compared, less the one step of Loihi latency removed (Dense delivers a step later)
    assert ro["rule"] == "relative_error" and ro["limit"] == 0.25 and ro["compared"] == (STEPS - 1) * BATCH * 10
    assert ro["relative_error"] > 0.5 and not ro["passed"] and not r["passed"]
    assert r["compared"] >= ro["compared"] > 0
    assert "readout 'out'" in r["reason"]
    assert "saturation: 'ro' v_saturate" in r["overflow_cause"]
    assert doc["overflow"]["ro"]["v_saturate"] > 0
    on_disk = json.loads((tmp_path / "v.json").read_text())
    assert on_disk["overflow"] == doc["overflow"]
    assert on_disk["results"][0]["readouts"] == json.loads(json.dumps(r["readouts"]))


@pytest.mark.parametrize("kind", ["li", "dense"])
def test_lava_overflows_exactly_like_the_emulator(lava_ok, arts, kind) -> None:
    """The counts come from the emulator; Lava's fixed_pt models wrap and saturate the same values
    (0 mismatches over outputs and every recorded u and v), so they are the loihi run's counts too."""
    with pytest.warns(OverflowWarning):
        doc = validate_artifact(arts[kind], backends=["loihi"], inputs=_inputs(arts[kind]))
    (r,) = doc["results"]
    assert (r["reference"], r["rule"], r["mismatches"], r["passed"]) == ("emulator", "exact", 0, True)
    assert r["compared"] > 0 and doc["overflow"][NEURON[kind]]["v_saturate"] > 0


def test_validate_passes_a_healthy_readout(tmp_path) -> None:
    art = compile_model(healthy_readout_net(), "loihi2", tmp_path / "ok")
    doc = validate_artifact(art, backends=["emulator"], inputs={"in": spikes((100,), steps=100, rate=0.1)})
    (r,) = doc["results"]
    ro = r["readouts"]["out"]
    # measured 0.034 (8-bit weights, threshold rounding moving a few hidden spikes); the rule's bound is 0.25
    assert ro["relative_error"] < 0.1 and ro["cosine"] > 0.99 and ro["passed"]
    assert r["passed"] and r["reason"] is None and r["overflow_cause"] is None and doc["overflow"] == {}


def test_zero_compared_elements_never_pass(tmp_path) -> None:
    """Two steps of input through two Loihi layers (lag 2 at the output): after the latency is
    removed nothing is left to compare, which must be a failure, not cosine 1.0."""
    art = compile_model(healthy_readout_net(), "loihi2", tmp_path / "short")
    doc = validate_artifact(art, backends=["emulator"], inputs={"in": spikes((100,), steps=1, rate=0.5)})
    (r,) = doc["results"]
    assert r["compared"] == 0 and r["passed"] is False and r["reason"].startswith("0 elements compared")


def test_evaluate_report_and_the_api_results_carry_the_counts(arts) -> None:
    art = arts["li"]
    data = {"x": (np.random.default_rng(3).random((4, N_IN)) < RATE).astype(np.float32), "y": np.arange(4) % 10}
    with pytest.warns(OverflowWarning, match="overflow in node 'ro'"):
        res = neurocc.evaluate(art, data)
    assert res["overflow"]["ro"]["u_wrap"] > 0 and res["overflow"]["ro"]["v_saturate"] > 0
    from neurocc.runtime.report import summary
    from neurocc.runtime.report.data import collect

    (art / "validation.json").unlink(missing_ok=True)    # so that the report validates itself
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = collect(load_artifact(art), backends=["reference", "emulator"], inputs=_inputs(art))
    texts = _overflow_warnings(caught)
    assert any("report" in t for t in texts) and any("validate" in t for t in texts)   # its runs and its validation
    assert rep.overflow["ro"]["v_saturate"] > 0 and rep.validation["overflow"]["ro"]["v_saturate"] > 0
    assert "overflow: ro " in summary(rep)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_compile_warns_of_the_predicted_wrap(tmp_path) -> None:
    from neurocc.compiler.frontends.nir import write_nir

    write_nir(overflow_net("cubali"), tmp_path / "cubali.nir")
    r = _cli("compile", "cubali.nir", "--target", "loihi2", "-o", "art", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("neurocc: warning: node 'ro' may wrap")]
    assert len(warned) == 1 and "synapse 'fc'" in warned[0] and "--calibration FILE.npz" in warned[0], r.stderr


def test_cli_run_and_validate_print_the_warning_and_store_the_counts(arts, tmp_path) -> None:
    art = arts["cubali"]
    np.savez(tmp_path / "x.npz", **_inputs(art))
    r = _cli("run", str(art), "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "y.json").read_text())
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("neurocc: warning: overflow in node 'ro'")]
    assert len(warned) == len(meta["overflow"]["ro"]) == 2
    assert f"{meta['overflow']['ro']['u_wrap']} time(s)" in warned[0] + warned[1]
    v = _cli("validate", str(art), "--backends", "emulator", "--input", "x.npz", "--json", "v.json", cwd=tmp_path)
    assert v.returncode == 1
    assert "neurocc: warning: overflow in node 'ro': voltage v saturated" in v.stderr
    assert "likely cause [overflow]" in v.stdout and "readout 'out'" in v.stdout and "FAIL" in v.stdout
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["overflow"] == meta["overflow"]
    assert {"backend", "reference", "exact", "compared", "mismatches", "cosine", "cosine_per_layer",
            "first_divergence", "passed", "readouts", "reason", "overflow_cause"} <= set(doc["results"][0])


READOUT_ENTRY = """\
version: 1
targets:
  mychip:
    description: a test chip
    backend: emulator
    numerics: loihi
    dt: 0.001
    validation:
      rule: exact
      readout_rule: {rule}
{extra}"""


def test_targets_file_readout_rule_is_parsed_and_checked(tmp_path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(READOUT_ENTRY.format(rule="cosine", extra="      readout_min_cosine: 0.995\n"))
    v = load_targets(ok)["mychip"].validation
    assert (v.readout_rule, v.readout_limit()) == ("cosine", 0.995)
    bad = {"cosine": "", "relative_error": "      max_relative_error: -0.5\n      readout_min_cosine: 0.9\n",
           "median": ""}
    for rule, extra in bad.items():
        path = tmp_path / f"{rule}.yaml"
        path.write_text(READOUT_ENTRY.format(rule=rule, extra=extra))
        with pytest.raises(TargetsError) as info:
            load_targets(path)
        msg = str(info.value)
        assert "validation" in msg and "line" in msg
        if rule == "relative_error":
            assert "must be > 0" in msg and "readout_min_cosine only applies" in msg
        elif rule == "cosine":
            assert "needs a minimum" in msg
    assert load_targets()["loihi2"].validation.max_relative_error == 0.25
