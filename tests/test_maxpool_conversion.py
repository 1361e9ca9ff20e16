"""MaxPool2d in a converted ANN (LeNet-style): converted as AvgPool2d, with the rewrite's measured
effect on the calibration data recorded in the artifact and printed as a warning (issue 12)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurocc.compiler.frontends import load
from neurocc.compiler.pipeline import compile_model


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32)[:, None], d.target


def _lenet() -> nn.Sequential:
    x, y = _digits()
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(96, 10))
    opt = torch.optim.Adam(ann.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x[:1000]), torch.from_numpy(y[:1000])
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(ann(xt), yt).backward()
        opt.step()
    return ann.eval()


def test_maxpool_rewrite_figures_are_the_anns_own() -> None:
    """The recorded accuracies are those of the float ANN with MaxPool2d (checked against torch)
    and with the AvgPool2d rewrite (checked against torch with nn.AvgPool2d swapped in)."""
    from types import SimpleNamespace

    from neurocc.compiler.maxpool import ann_maxpool_rewrite

    x, y = _digits()
    ann = _lenet()
    cal = SimpleNamespace(x={"input": x[1000:1100]}, y=y[1000:1100])
    with pytest.warns(UserWarning, match="converted as AvgPool2d"):
        g, fig = ann_maxpool_rewrite(load(ann, input_shape=(1, 8, 8)), cal)
    assert fig is not None and [v.kind for v in g.nodes.values()].count("AvgPool2d") == 1
    xt = torch.from_numpy(x[1000:1100])
    with torch.no_grad():
        acc_max = float((ann(xt).argmax(1).numpy() == y[1000:1100]).mean())
        ann[2] = nn.AvgPool2d(2)
        acc_avg = float((ann(xt).argmax(1).numpy() == y[1000:1100]).mean())
    assert fig["ann_accuracy_maxpool"] == acc_max and fig["ann_accuracy_avgpool"] == acc_avg
    print(f"MaxPool → AvgPool on 100 digits: ANN accuracy {acc_max:.3f} → {acc_avg:.3f}, "
          f"same prediction {fig['same_prediction']:.3f}")


@pytest.mark.long
def test_lenet_maxpool_is_converted_with_its_measured_figure(tmp_path: Path) -> None:
    x, y = _digits()
    ann = _lenet()
    with pytest.warns(UserWarning, match=r"MaxPool2d \(2\) converted as AvgPool2d .* keeps its predicted class on "
                                         r"\d+\.\d % of 100 calibration samples; ANN accuracy"):
        art = compile_model(load(ann, input_shape=(1, 8, 8)), "edge-cpu-f32", tmp_path / "a",
                            calibration={"x": x[1000:1100], "y": y[1000:1100]}, timesteps=32)
    text = json.dumps(json.loads((art / "manifest.json").read_text()))
    assert '"maxpool_approximation"' in text and '"ann_accuracy_maxpool"' in text and '"ann_accuracy_avgpool"' in text
