"""Acceptance of issue 12: the zoo (neurocc/source_zoo.py) of snnTorch and Sinabs models trained on
rate-coded digits. For each model: the trained model run in its own framework and neurocc's float
reference give identical output spike counts on >= 99 % of the test samples, and each integer
target (loihi2 on the emulator, edge-cpu on ONNX Runtime) is within 1 point of the source
model's accuracy, and (full zoo) spinnaker passes its own validation rule. A fast subset runs by default; the full zoo is ``-m long`` (``make test-long``).
The measured table is in docs/source-check.md (``python -m neurocc.source_zoo``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("sklearn", reason="scikit-learn holds the digits data set")

from neurocc import source_zoo  # noqa: E402

FAST = ("snn-leaky-zero", "snn-conv-zero")   # dense and conv; both run on loihi2 (reset zero)
FAST_ITERS = 150
ALL = [zm.name for zm in source_zoo.models()]


def _judge(name: str, iters: int, tmp_path: Path, spinnaker: bool = True) -> None:
    zm = next(z for z in source_zoo.models() if z.name == name)
    if zm.framework == "Sinabs":
        pytest.importorskip("sinabs")
    row = source_zoo.evaluate(zm, source_zoo.train(zm, iters), tmp_path)
    print("\n" + source_zoo.format_table([row]))
    assert "error" not in row, row["error"]
    assert row["source_acc"] > 0.5, "training failed: the source model does not classify"
    assert row["count_agreement"] >= 0.99, (row["first_divergence"], row["cause"])
    for target in ("loihi2", "edge-cpu"):
        assert f"{target}_error" not in row, row[f"{target}_error"]
        assert abs(row[f"{target}_acc"] - row["source_acc"]) <= 0.01, (target, row)
    if spinnaker:   # the full zoo; the fast subset prints it (snn-conv-zero measured 0.987 < 0.99 there)
        if "spinnaker_error" in row:   # where sPyNNaker's neurons cannot do it: a refusal naming the layer
            assert "node '" in row["spinnaker_error"], row["spinnaker_error"]
        else:
            assert row["spinnaker_passed"], row


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
