"""neurocc's metrics on the float graph equal NeuroBench 2.3's own metrics on the torch model.

NeuroBench runs the torch model (its hooks count synaptic operations, activation sparsity,
connection sparsity and footprint); neurocc loads the same model and counts the same quantities
on its float reference run (:mod:`neurocc.runtime.metrics`). The integer artifact's counts differ
on purpose (docs/metrics.md): deployed weight widths, zero weights from quantization, and the
graded/binary mode each synapse executes in.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurocc.compiler.frontends import load
from neurocc.runtime.metrics import measure

nb = pytest.importorskip("neurobench", reason="neurobench is not installed (requirements/no-deps.txt)")
from neurobench.metrics.static import ConnectionSparsity, Footprint
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
from neurobench.models import SNNTorchModel, TorchModel

snn = pytest.importorskip("snntorch", reason="snntorch is not installed")


def _neurobench(model, x: torch.Tensor) -> dict:
    """NeuroBench's metrics of one batch, called as its Benchmark calls them."""
    model.register_hooks()
    data = (x, torch.zeros(len(x)))
    with torch.no_grad():
        preds = model(x)
    out = {"synops": SynapticOperations()(model, preds, data), "act": ActivationSparsity()(model, preds, data),
           "conn": ConnectionSparsity()(model), "footprint": Footprint()(model)}
    model.cleanup_hooks()
    return out


def test_ann_matches_neurobench() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4))
    with torch.no_grad():
        net[0].weight[net[0].weight.abs() < 0.1] = 0.0          # some zero synapses
        net[2].weight[:, :2] = 0.0
    x = torch.rand(16, 12)
    x[x < 0.4] = 0.0                                             # silent inputs
    ref = _neurobench(TorchModel(net), x)
    graph = load(net, input_shape=(12,))
    m = measure(graph, {"input": x.numpy().astype(np.float64)[None]})      # one step = one forward pass
    assert m.macs == pytest.approx(ref["synops"]["Effective_MACs"]) and m.acs == ref["synops"]["Effective_ACs"] == 0
    assert m.dense_ops == pytest.approx(ref["synops"]["Dense"])
    assert m.activation_sparsity == pytest.approx(ref["act"])
    assert m.connection_sparsity == pytest.approx(ref["conn"], abs=5e-5)   # NeuroBench rounds to 4 decimals
    assert m.footprint_bytes["weights"] == ref["footprint"]                 # float32 weights and biases


def test_snntorch_snn_matches_neurobench() -> None:
    """A snnTorch network written as its tutorials write it: binary spikes in, so every effective
    operation is an accumulate, for NeuroBench and for neurocc alike."""
    torch.manual_seed(1)
    beta = 0.9
    net = nn.Sequential(nn.Linear(10, 8), snn.Leaky(beta=beta, init_hidden=True),
                        nn.Linear(8, 3), snn.Leaky(beta=beta, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    steps, batch = 25, 6
    x = (torch.rand(batch, steps, 10) < 0.3).float()             # NeuroBench: (batch, steps, features)
    ref = _neurobench(SNNTorchModel(net), x)
    graph = load(net, input_shape=(10,))
    m = measure(graph, {"input": x.transpose(0, 1).numpy().astype(np.float64)})
    assert m.spikes > 0 and m.macs == ref["synops"]["Effective_MACs"] == 0
    assert m.acs == pytest.approx(ref["synops"]["Effective_ACs"])
    assert m.dense_ops == pytest.approx(ref["synops"]["Dense"])
    assert m.activation_sparsity == pytest.approx(ref["act"])
