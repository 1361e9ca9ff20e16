"""Sinabs 3 layers, run in Sinabs itself, against neurocc's float reference of the loaded graph.

Models are written as Sinabs' tutorials write them (``nn.Sequential`` of torch layers and
``sinabs.layers`` neurons on (B, T, ...) input, the ``*Squeeze`` forms on (B·T, ...) input for
convolutions, ``sinabs.from_model`` on an ANN), run on random spike inputs (6 samples × 50 steps),
and compared spike for spike on every neuron layer (spike counts for MultiSpike) and membranes
within the float32 bound of tests/test_snntorch_semantics.py (Sinabs computes in float32).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurocc.backends.reference import simulate
from neurocc.compiler.frontends import load
from neurocc.errors import ModelLoadError

sinabs = pytest.importorskip("sinabs", reason="sinabs is not installed")
import sinabs.layers as sl  # noqa: E402
from sinabs.activation import MembraneReset, MembraneSubtract, MultiSpike, SingleSpike  # noqa: E402

STEPS, BATCH = 50, 6


def _tol(mem: np.ndarray) -> float:
    return STEPS * 4 * 2.0 ** -24 * max(1.0, float(np.abs(mem).max()))


def _time_major(a: torch.Tensor, squeeze: bool) -> np.ndarray:
    a = a.detach()
    if squeeze:
        a = a.reshape(BATCH, STEPS, *a.shape[1:])
    return a.transpose(0, 1).numpy()


def compare(net: nn.Module, xs: torch.Tensor, squeeze: bool, min_spikes: int = 10) -> Any:
    """xs is (T, B, ...); Sinabs gets (B, T, ...) or (B·T, ...) when ``squeeze``."""
    spiking = net.spiking_model if hasattr(net, "spiking_model") else net
    neurons = {n: m for n, m in spiking.named_modules() if isinstance(m, sl.LIF)}
    for m in neurons.values():
        m.record_states = True
    sinabs.reset_states(spiking) if hasattr(sinabs, "reset_states") else None
    for m in neurons.values():
        m.reset_states()
    outs: dict[str, np.ndarray] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: outs.__setitem__(n, _time_major(o, squeeze)))
             for n, m in neurons.items()]
    x = xs.transpose(0, 1)
    x = x.reshape(BATCH * STEPS, *x.shape[2:]) if squeeze else x
    with torch.no_grad():
        y = _time_major(net(x), squeeze)
    for h in hooks:
        h.remove()
    g = load(net, input_shape=tuple(xs.shape[2:]))
    res = simulate(g, {"input": xs.numpy()}, record=True)
    assert y.sum() >= min_spikes, f"the test net is too quiet ({y.sum()} output spikes)"
    for name, m in neurons.items():
        np.testing.assert_array_equal(res.traces[f"{name}/out"], outs[name], err_msg=name)
        mem = m.recordings["v_mem"].detach().transpose(0, 1).numpy()
        diff = np.abs(res.traces[f"{name}/v"] - mem).max()
        assert diff <= _tol(mem), f"{name}: membranes differ by {diff}"
    np.testing.assert_array_equal(res.outputs["output"], y)
    return g


def _spikes(shape: tuple[int, ...], seed: int, p: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand((STEPS, BATCH, *shape), generator=gen) < p).float()


def _gain(net: nn.Module, k: float) -> nn.Module:
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("weight"):
                p.mul_(k)
    return net.eval()


@pytest.mark.parametrize("spike_fn", [MultiSpike, SingleSpike])
@pytest.mark.parametrize("reset_fn", [MembraneSubtract(), MembraneReset()])
def test_iaf_lif_dense(spike_fn: Any, reset_fn: Any) -> None:
    torch.manual_seed(0)
    net = _gain(nn.Sequential(
        nn.Linear(10, 16), sl.IAF(spike_fn=spike_fn, reset_fn=reset_fn),
        nn.Linear(16, 12), sl.LIF(tau_mem=8.0, spike_fn=spike_fn, reset_fn=reset_fn, min_v_mem=-0.5),
        nn.Linear(12, 6), sl.LIF(tau_mem=torch.linspace(3, 12, 6), tau_syn=4.0, spike_fn=spike_fn, reset_fn=reset_fn,
                                 norm_input=False, spike_threshold=torch.tensor(0.7))), 2.5)
    g = compare(net, _spikes((10,), 1), squeeze=False)
    assert [g.nodes[n].kind for n in ("1", "3", "5")] == ["IF", "LIF", "CubaLIF"]
    assert g.nodes["1"].fire_at_threshold and g.nodes["3"].v_min == -0.5


def test_squeezed_conv_with_sumpool_and_trainable_alphas() -> None:
    torch.manual_seed(1)
    net = _gain(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=BATCH), sl.SumPool2d(2),
        nn.Conv2d(4, 4, 3, bias=False), sl.LIFSqueeze(tau_mem=6.0, train_alphas=True, batch_size=BATCH),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 5), sl.IAFSqueeze(batch_size=BATCH, spike_fn=SingleSpike)), 2.0)
    g = compare(net, _spikes((1, 8, 8), 2, p=0.4), squeeze=True, min_spikes=5)
    assert g.nodes["2"].kind == "SumPool2d"


def test_from_model_conversion() -> None:
    """``sinabs.from_model`` on a LeNet-style ANN (AvgPool): its IAFSqueeze defaults (MultiSpike,
    MembraneSubtract, min_v_mem = −1)."""
    torch.manual_seed(2)
    ann = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(6 * 2 * 2, 5), nn.ReLU())
    snn_net = sinabs.from_model(_gain(ann, 2.0), input_shape=(1, 8, 8), batch_size=BATCH)
    g = compare(snn_net, _spikes((1, 8, 8), 3, p=0.5), squeeze=True, min_spikes=5)
    assert g.nodes["1"].multi_spike and g.nodes["1"].v_min == -1.0


def test_unsupported_sinabs_layers_are_refused_by_name() -> None:
    net = nn.Sequential(nn.Linear(4, 4), sl.IAF(tau_syn=3.0), nn.Linear(4, 4),
                        sl.LIF(tau_mem=5.0, reset_fn=MembraneReset(reset_value=0.2)))
    with pytest.raises(ModelLoadError) as err:
        load(net, input_shape=(4,))
    text = str(err.value)
    assert "1 (IAF): IAF with tau_syn" in text and "3 (LIF): MembraneReset(reset_value=0.2)" in text


def test_single_spike_min_v_mem_compiles_for_edge_cpu(tmp_path: Any) -> None:
    """SingleSpike + min_v_mem: int8 (edge-cpu) keeps v >= θ and the floor, emulator == ONNX graph bit for
    bit; loihi2 refuses the floor by node."""
    from neurocc.backends import edge_cpu
    from neurocc.backends.emulator import simulate as emulate
    from neurocc.compiler.pipeline import compile_model
    from neurocc.errors import CompileError
    from neurocc.ir.artifact import load_artifact

    torch.manual_seed(4)
    net = _gain(nn.Sequential(nn.Linear(10, 16), sl.IAF(spike_fn=SingleSpike, min_v_mem=-0.5), nn.Linear(16, 5),
                              sl.IAF(spike_fn=SingleSpike, reset_fn=MembraneReset())), 2.0)
    xs = _spikes((10,), 6).numpy()
    g = load(net, input_shape=(10,))
    art = compile_model(g, "edge-cpu", tmp_path / "e", calibration=xs)
    q = load_artifact(art).graph
    assert q.nodes["1"].fire_at_threshold and q.nodes["1"].v_min is not None
    em = emulate(q, {"input": xs}, record=True)
    got = edge_cpu.run(art, {"input": xs}, record=True)
    assert em.outputs["output"].sum() > 10
    np.testing.assert_array_equal(got["output"], em.outputs["output"])
    np.testing.assert_array_equal(got["1/v"], em.traces["1/v"])
    assert (em.traces["1/v"] == q.nodes["1"].v_min).any()  # the floor binds
    with pytest.raises(CompileError, match=r"node '1' \(IF\): min_v_mem = -0.5"):
        compile_model(g, "loihi2", tmp_path / "l", calibration=xs)
