"""snnTorch tutorial layouts (tutorials 5–7) load as written and match snnTorch spike for spike:
a ``forward`` that loops over time and stacks spike/membrane records, ``output=True`` on the last
neuron, and Conv → AvgPool → Leaky (average pooling of currents, folded into the conv by
``normalize`` so that integer targets have a weight layer in front of the neuron)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurocc.backends.reference import simulate
from neurocc.compiler.frontends import load
from neurocc.compiler.passes.normalize import normalize
from neurocc.errors import ModelLoadError

snn = pytest.importorskip("snntorch", reason="snntorch is not installed")
from snntorch import utils  # noqa: E402

NUM_STEPS = 25


class Tutorial5Net(nn.Module):
    """snnTorch tutorial 5's network: the time loop inside forward, records stacked."""

    def __init__(self, time_major: bool = True) -> None:
        super().__init__()
        self.time_major = time_major
        self.fc1 = nn.Linear(10, 16)
        self.lif1 = snn.Leaky(beta=0.95)
        self.fc2 = nn.Linear(16, 4)
        self.lif2 = snn.Leaky(beta=0.95)

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        mem2_rec = []
        for step in range(NUM_STEPS):
            cur1 = self.fc1(x[step] if self.time_major else x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def _scale(net: nn.Module, k: float) -> nn.Module:
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("weight"):
                p.mul_(k)
    return net.eval()


def test_time_loop_forward_with_spike_inputs() -> None:
    torch.manual_seed(0)
    net = _scale(Tutorial5Net(), 3.0)
    xs = (torch.rand(NUM_STEPS, 6, 10) < 0.3).float()
    with torch.no_grad():
        spk, mem = net(xs)
    g = load(net)
    assert [g.nodes[n].kind for n in g.order()] == ["Input", "Affine", "LIF", "Affine", "LIF", "Output"]
    res = simulate(g, {"input": xs.numpy()}, record=True)
    assert spk.sum() > 10
    np.testing.assert_array_equal(res.outputs["output"], spk.numpy())
    np.testing.assert_allclose(res.traces["lif2/v"], mem.numpy(), rtol=0, atol=NUM_STEPS * 4 * 2.0 ** -24 * 10)


def test_time_loop_forward_with_a_static_input() -> None:
    """Tutorial 5 feeds the same sample every step (``fc1(x)``): the step input is x at every step."""
    torch.manual_seed(1)
    net = _scale(Tutorial5Net(time_major=False), 1.5)
    x = torch.rand(6, 10)
    with torch.no_grad():
        spk, _ = net(x)
    g = load(net)
    got = simulate(g, {"input": np.broadcast_to(x.numpy(), (NUM_STEPS, 6, 10)).copy()}).outputs["output"]
    assert spk.sum() > 10
    np.testing.assert_array_equal(got, spk.numpy())


def test_a_loop_that_is_not_one_step_is_refused() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.lif = snn.Leaky(beta=0.9)

        def forward(self, x):  # type: ignore[no-untyped-def]
            mem = self.lif.init_leaky()
            out = []
            for step in range(3):
                spk, mem = self.lif(self.fc(x[step]), mem)
                if step == 1:
                    spk = self.fc(spk)  # a layer called twice in one step only
                out.append(spk)
            return torch.stack(out)

    with pytest.raises(ModelLoadError, match="loops over time"):
        load(Odd())


def csnn(pool: type[nn.Module]) -> nn.Sequential:
    """Tutorial 6's CSNN layout (``init_hidden=True``, ``output=True`` last), small."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), pool(2), snn.Leaky(beta=0.8, init_hidden=True),
                         nn.Conv2d(4, 6, 3), pool(2), snn.Leaky(beta=0.8, init_hidden=True),
                         nn.Flatten(), nn.Linear(6, 5), snn.Leaky(beta=0.8, init_hidden=True, output=True))


def _run_csnn(net: nn.Module, xs: torch.Tensor) -> np.ndarray:
    utils.reset(net)
    with torch.no_grad():
        return np.stack([net(x)[0].numpy() for x in xs])


def test_conv_avgpool_leaky_is_folded_and_exact(tmp_path: Path) -> None:
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact

    torch.manual_seed(0)
    net = _scale(csnn(nn.AvgPool2d), 2.0)
    xs = (torch.rand(30, 4, 1, 8, 8) < 0.4).float()
    want = _run_csnn(net, xs)
    g = load(net, input_shape=(1, 8, 8))
    folded = normalize(g)
    assert "1" not in folded.nodes and folded.nodes["0"].weight.shape[-2:] == (4, 4)  # 3 + 1·(2 − 1)
    assert want.sum() > 5
    for graph in (g, folded):
        np.testing.assert_array_equal(simulate(graph, {"input": xs.numpy()}).outputs["output"], want)
    art = compile_model(g, "edge-cpu", tmp_path / "a", calibration=xs.numpy())
    assert all(n.kind != "AvgPool2d" for n in load_artifact(art).graph.nodes.values())


def test_conv_maxpool_leaky_exact_in_float_refused_for_integers(tmp_path: Path) -> None:
    """Tutorial 6/7's CSNN (Conv → MaxPool → Leaky): the float reference and edge-cpu-f32 compute the
    max of currents exactly; integer targets refuse, naming the AvgPool2d rewrite's measured figure."""
    from neurocc.backends import edge_cpu
    from neurocc.compiler.pipeline import compile_model
    from neurocc.errors import CompileError

    torch.manual_seed(0)
    net = _scale(csnn(nn.MaxPool2d), 2.0)
    xs = (torch.rand(30, 4, 1, 8, 8) < 0.4).float()
    want = _run_csnn(net, xs)
    g = load(net, input_shape=(1, 8, 8))
    assert want.sum() > 5
    np.testing.assert_array_equal(simulate(g, {"input": xs.numpy()}).outputs["output"], want)
    art = compile_model(g, "edge-cpu-f32", tmp_path / "f32", calibration=xs.numpy())
    np.testing.assert_array_equal(edge_cpu.run(art, {"input": xs.numpy()})["output"], want)
    with pytest.raises(CompileError, match=r"MaxPool2d by AvgPool2d keeps the predicted class on \d+\.\d %"):
        compile_model(g, "edge-cpu", tmp_path / "i8", calibration=xs.numpy())
