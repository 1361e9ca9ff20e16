"""Acceptance of issue 12: the zoo (neurocc/source_zoo.py) of snnTorch and Sinabs models trained on
rate-coded digits. For each model: the trained model run in its own framework and neurocc's float
reference give identical output spike counts on >= 99 % of the test samples, and each integer
target (loihi2 on the emulator, edge-cpu on ONNX Runtime) is within 1 point of the source
model's accuracy, and (full zoo) spinnaker passes its own validation rule. A model the integer
targets refuse (``ZooModel.refused``; none at present: Sinabs MultiSpike runs as graded spike
counts since tests/test_multi_spike.py) must be refused with its message; a model whose targets miss
the 1-point rule only through the 8-bit weight grid (measured: the source model with rounded
weights scores what the targets score) is an xfail naming the figures. A fast subset runs by
default; the full zoo is ``-m long`` (``make test-long``).
The measured table is in docs/source-check.md (``python -m neurocc.source_zoo``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("sklearn", reason="scikit-learn holds the digits data set")

from neurocc import source_zoo  # noqa: E402

FAST = ("snn-leaky-zero", "snn-conv-zero")   # dense and conv; both run on loihi2 (reset zero)
FAST_ITERS = 150
ALL = [zm.name for zm in source_zoo.models()]


# Models whose integer targets miss the 1-point rule by the luck of the 8-bit weight grid alone:
# the trained model itself, run in its framework with its weights rounded to 8 bits (all else
# float), scores what the targets score. None at present: snn-synaptic-zero was +1.1 with each
# weight rounded to its nearest integer and is +0.7 with the calibrated rounding, the default
# since benchmarks/zoo_fidelity.py measured it closer to the source on the whole zoo
# (docs/source-check.md, section 6).
WEIGHT_GRID: set[str] = set()


def _judge(name: str, iters: int, tmp_path: Path, spinnaker: bool = True) -> None:
    zm = next(z for z in source_zoo.models() if z.name == name)
    if zm.framework == "Sinabs":
        pytest.importorskip("sinabs")
    model = source_zoo.train(zm, iters)
    row = source_zoo.evaluate(zm, model, tmp_path)
    print("\n" + source_zoo.format_table([row]))
    assert "error" not in row, row["error"]
    assert row["source_acc"] > 0.5, "training failed: the source model does not classify"
    assert row["count_agreement"] >= 0.99, (row["first_divergence"], row["cause"])
    off = {}
    for target in ("loihi2", "edge-cpu"):
        if zm.refused:   # refused with the message naming the layer and the fix, never mistranslated
            assert zm.refused in row.get(f"{target}_error", ""), (target, row)
            assert "node '" in row[f"{target}_error"], row[f"{target}_error"]
            continue
        assert f"{target}_error" not in row, row[f"{target}_error"]
        if abs(row[f"{target}_acc"] - row["source_acc"]) > 0.01:
            off[target] = row[f"{target}_acc"] - row["source_acc"]
    if spinnaker:   # the full zoo; the fast subset prints it (snn-conv-zero measured 0.987 < 0.99 there)
        if "spinnaker_error" in row:   # where sPyNNaker's neurons cannot do it: a refusal naming the layer
            assert "node '" in row["spinnaker_error"], row["spinnaker_error"]
        else:
            assert row["spinnaker_passed"], row
    if off and name in WEIGHT_GRID:
        grid = source_zoo.rounded_source_accuracy(zm, model)
        assert all(abs(row[f"{t}_acc"] - grid) <= 0.01 for t in off), (grid, row)
        pytest.xfail(f"{name}: integer targets off the source ({row['source_acc']:.4f}) by "
                     f"{', '.join(f'{t} {d:+.4f}' for t, d in off.items())}; the source model with 8-bit "
                     f"weights (all else float) scores {grid:.4f}: the weight grid, not the arithmetic")
    assert not off, (off, row)


@pytest.mark.parametrize("name", FAST)
def test_zoo_fast_subset(name: str, tmp_path: Path) -> None:
    _judge(name, FAST_ITERS, tmp_path, spinnaker=False)


@pytest.mark.long
@pytest.mark.parametrize("name", ALL)
def test_zoo_full(name: str, tmp_path: Path) -> None:
    _judge(name, source_zoo.ITERS, tmp_path)


def test_zoo_has_the_issue_layouts_and_resets() -> None:
    models = source_zoo.models()
    assert len(models) >= 12
    assert {z.layout for z in models} == {"dense", "conv", "recurrent"}
    resets = " ".join(z.reset for z in models)
    for r in ("subtract", "zero", "none"):
        assert r in resets


def test_one_to_one_recurrent_runs_on_the_integer_targets(tmp_path: Path) -> None:
    """RLeaky(all_to_all=False): the recurrent ``V ⊙ spk`` (a Scale) is quantized as a diagonal
    weight layer; loihi2 and edge-cpu stay within 1 point of the snnTorch model, and the int8
    network on ONNX Runtime equals the emulator bit for bit (every node, every state)."""
    from neurocc.backends import edge_cpu
    from neurocc.backends.emulator import simulate
    from neurocc.ir.artifact import load_artifact
    from neurocc.ir.qnodes import QDense

    zm = next(z for z in source_zoo.models() if z.name == "snn-rleaky-1to1")
    _judge(zm.name, FAST_ITERS, tmp_path, spinnaker=False)
    for target in ("loihi2", "edge-cpu"):
        art = load_artifact(tmp_path / f"{zm.name}-{target}")
        rec = art.graph.nodes["1.recurrent"]
        assert isinstance(rec, QDense)
        w = np.asarray(rec.weight)
        assert np.count_nonzero(w - np.diag(np.diag(w))) == 0 and np.count_nonzero(np.diag(w)) > 0
    graph = load_artifact(tmp_path / f"{zm.name}-edge-cpu").graph
    x = source_zoo.rate_spikes(np.random.default_rng(3).random((16, 64)), source_zoo.STEPS, 7)
    ref = simulate(graph, {"input": x}, record=True)
    expected = {**ref.outputs, **ref.traces}
    got = edge_cpu.run(graph, {"input": x}, record=True)
    keys = sorted(set(expected) & set(got))
    assert {f"1/{v}" for v in ("u", "v")} | {"1.recurrent/out"} <= set(keys), keys
    bad = {k: int(np.count_nonzero(expected[k] != got[k])) for k in keys if not np.array_equal(expected[k], got[k])}
    assert not bad, f"mismatching elements per array: {bad}"


@pytest.mark.parametrize("name", ["snn-synaptic-subtract", "snn-synaptic-zero"])
def test_synaptic_bias_on_the_current(name: str, tmp_path: Path) -> None:
    """snnTorch Synaptic layers fed by a biased Linear: on edge-cpu (int8) and loihi2 (neurocc's
    Lava process model) the bias builds up in the current as trained (QLIF.bias_u), on loihi2
    from the step the layer's delayed input arrives (bias_start), so both integer models stay
    within 1 point of snnTorch (docs/source-check.md, section 6)."""
    zm = next(z for z in source_zoo.models() if z.name == name)
    row = source_zoo.evaluate(zm, source_zoo.train(zm, FAST_ITERS), tmp_path, targets=("edge-cpu", "loihi2"))
    print("\n" + source_zoo.format_table([row]))
    assert row["source_acc"] > 0.5, "training failed: the source model does not classify"
    for target in ("edge-cpu", "loihi2"):
        assert f"{target}_error" not in row, row[f"{target}_error"]
        assert abs(row[f"{target}_acc"] - row["source_acc"]) <= 0.01, (target, row)
