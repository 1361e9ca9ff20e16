"""snnTorch 1.0 neurons, run in snnTorch itself, against neurocc's float reference of the loaded graph.

Each model is written the way snnTorch's tutorials write it (``init_hidden=True`` in an
``nn.Sequential`` with ``utils.reset``, or a step ``forward`` whose neurons keep their own state),
run on random spike inputs (6 samples × 50 steps) and compared **spike for spike** on the output
and every neuron layer, and membranes within a float32 bound: snnTorch computes in float32 and the
reference in float64, so each step's membrane carries at most a few float32 roundings of values of
magnitude ≤ M (|β| ≤ 1 keeps earlier errors from growing): after 50 steps |Δv| ≤ 50 · 4 · 2⁻²⁴ · M
(``_mem_tol``). A spike that flips because a membrane sits within that bound of θ would be a tie,
not a semantic difference; none occurs with these seeds (the assertions would say so).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
import torch
import torch.nn as nn

from neurocc.backends.reference import simulate
from neurocc.compiler.frontends import load
from neurocc.errors import ModelLoadError
from neurocc.ir.types import ResetTiming

snn = pytest.importorskip("snntorch", reason="snntorch is not installed")
from snntorch import utils  # noqa: E402

STEPS, BATCH = 50, 6
RESETS = ("subtract", "zero", "none")


def _neurons(net: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in net.named_modules() if isinstance(m, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic))}


def run_snntorch(net: nn.Module, xs: torch.Tensor) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """snnTorch's own run: output spikes (T, B, ...), and per neuron layer its spikes and membranes."""
    neurons = _neurons(net)
    for m in neurons.values():
        m.reset_mem()
    utils.reset(net)
    spikes: dict[str, list[np.ndarray]] = {n: [] for n in neurons}
    mems: dict[str, list[np.ndarray]] = {n: [] for n in neurons}
    hooks = []
    for name, m in neurons.items():
        def hook(mod: Any, _in: Any, out: Any, name: str = name) -> None:
            spikes[name].append((out[0] if isinstance(out, tuple) else out).numpy().copy())
            mems[name].append(mod.mem.numpy().copy())
        hooks.append(m.register_forward_hook(hook))
    outs = []
    with torch.no_grad():
        for x in xs:
            y = net(x)
            outs.append((y[0] if isinstance(y, tuple) else y).numpy().copy())
    for h in hooks:
        h.remove()
    return np.stack(outs), {n: np.stack(v) for n, v in spikes.items()}, {n: np.stack(v) for n, v in mems.items()}


def _mem_tol(mem: np.ndarray) -> float:
    return STEPS * 4 * 2.0 ** -24 * max(1.0, float(np.abs(mem).max()))


def compare(net: nn.Module, xs: torch.Tensor, min_spikes: int = 10) -> dict[str, Any]:
    """Load ``net``, run both, assert spikes equal and membranes within the float32 bound."""
    out, spk, mem = run_snntorch(net, xs)
    g = load(net, input_shape=tuple(xs.shape[2:]))
    res = simulate(g, {"input": xs.numpy()}, record=True)
    assert out.sum() >= min_spikes, f"the test net is too quiet ({out.sum()} output spikes)"
    for name in spk:
        got_z = res.traces.get(f"{name}/z", None)
        got_v = res.traces[f"{name}/v"]
        assert got_v.shape == mem[name].shape, name
        diff = np.abs(got_v - mem[name]).max()
        assert diff <= _mem_tol(mem[name]), f"{name}: membranes differ by {diff}"
        if got_z is not None:
            np.testing.assert_array_equal(got_z, spk[name], err_msg=name)
    got = res.outputs["output"]
    n_diff = int((got != out).sum())
    assert n_diff == 0, f"{n_diff} output spikes differ (snnTorch {out.sum()}, neurocc {got.sum()})"
    return {"graph": g, "spikes": int(out.sum())}


def _spikes(shape: tuple[int, ...], seed: int, p: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((STEPS, BATCH, *shape), generator=g) < p).float()


def _scaled(net: nn.Module, gain: float) -> nn.Module:
    with torch.no_grad():
        for n, p in net.named_parameters():
            if n.endswith("weight"):
                p.mul_(gain)
    return net.eval()


# ----- Leaky / Synaptic ------------------------------------------------------------------------
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("delay", [True, False])
def test_leaky_synaptic_sequential(reset: str, delay: bool) -> None:
    torch.manual_seed(1)
    net = _scaled(nn.Sequential(
        nn.Linear(10, 16), snn.Leaky(beta=0.85, reset_mechanism=reset, reset_delay=delay, init_hidden=True),
        nn.Linear(16, 12), snn.Synaptic(alpha=0.7, beta=0.8, threshold=0.7, reset_mechanism=reset,
                                        reset_delay=delay, init_hidden=True),
        nn.Linear(12, 4), snn.Leaky(beta=0.9, reset_mechanism=reset, reset_delay=delay, init_hidden=True,
                                    output=True)), 3.0)
    r = compare(net, _spikes((10,), 2))
    g = r["graph"]
    assert g.nodes["1"].reset_timing is ResetTiming.NEXT_STEP
    want = ResetTiming.NEXT_STEP_END if reset == "zero" else ResetTiming.NEXT_STEP
    assert g.nodes["3"].reset_timing is want and g.nodes["3"].reset_now is (not delay)


class _StepNet(nn.Module):
    """Tutorial 5's layer pattern as one step: neurons keep their state (init_hidden=False),
    learnable per-neuron β and θ."""

    def __init__(self, reset: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(10, 14)
        self.lif1 = snn.Leaky(beta=torch.linspace(0.5, 0.95, 14), threshold=torch.linspace(0.6, 1.2, 14),
                              learn_beta=True, learn_threshold=True, reset_mechanism=reset)
        self.fc2 = nn.Linear(14, 5)
        self.syn2 = snn.Synaptic(alpha=torch.full((5,), 0.6), beta=0.9, learn_alpha=True, reset_mechanism=reset)

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        spk1, _ = self.lif1(self.fc1(x))
        spk2, _, _ = self.syn2(self.fc2(spk1))
        return spk2


@pytest.mark.parametrize("reset", RESETS)
def test_step_function_with_learnable_parameters(reset: str) -> None:
    torch.manual_seed(3)
    net = _scaled(_StepNet(reset), 2.5)
    with torch.no_grad():
        net.lif1.beta.add_(0.01)  # as after training: per-neuron parameters
    compare(net, _spikes((10,), 4))


# ----- RLeaky / RSynaptic ----------------------------------------------------------------------
def issue_repro(reset: str = "zero") -> nn.Sequential:
    """Issue 12's example: RLeaky loaded as a feed-forward layer gave 166 output spikes for 75."""
    return nn.Sequential(nn.Linear(12, 20), snn.RLeaky(beta=0.9, linear_features=20, init_hidden=True,
                                                       reset_mechanism=reset),
                         nn.Linear(20, 5), snn.Leaky(beta=0.9, init_hidden=True))


@pytest.mark.parametrize("reset", RESETS)
def test_issue_repro_rleaky(reset: str) -> None:
    torch.manual_seed(0)
    net = _scaled(issue_repro(reset), 2.0)
    r = compare(net, _spikes((12,), 5), min_spikes=5)
    g = r["graph"]
    rec = [e for e in g.edges if e.dst == "1.recurrent"]
    assert rec and rec[0].src == "1" and rec[0].delay == 1 and g.nodes["1.recurrent"].kind == "Affine"


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("all_to_all", [True, False])
def test_recurrent_linear(kind: str, reset: str, all_to_all: bool) -> None:
    torch.manual_seed(6)
    cls = getattr(snn, kind)
    extra = dict(alpha=0.6) if kind == "RSynaptic" else {}
    rec = dict(linear_features=16) if all_to_all else dict(all_to_all=False, V=torch.linspace(-0.8, 0.8, 16))
    delay = kind == "RLeaky" and reset == "subtract"  # also covers reset_delay=False once
    net = _scaled(nn.Sequential(nn.Linear(8, 16), cls(beta=0.8, init_hidden=True, reset_mechanism=reset,
                                                      reset_delay=not delay, **extra, **rec),
                                nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True)), 2.5)
    g = compare(net, _spikes((8,), 7), min_spikes=5)["graph"]
    assert g.nodes["1.recurrent"].kind == ("Affine" if all_to_all else "Scale")


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
def test_recurrent_conv(kind: str) -> None:
    torch.manual_seed(8)
    cls = getattr(snn, kind)
    extra = dict(alpha=0.5) if kind == "RSynaptic" else {}
    net = _scaled(nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), cls(beta=0.7, conv2d_channels=3, kernel_size=3, init_hidden=True,
                                           reset_mechanism="zero", **extra),
        nn.Flatten(), nn.Linear(3 * 6 * 6, 4), snn.Leaky(beta=0.8, init_hidden=True)), 3.0)
    g = compare(net, _spikes((1, 6, 6), 9, p=0.5), min_spikes=5)["graph"]
    assert g.nodes["1.recurrent"].kind == "Conv2d"


def test_mutations_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison fails when the recurrent edge is dropped or the reset order is the IR's default."""
    from neurocc.compiler.frontends.torch import snntorch as snt

    torch.manual_seed(0)
    net = _scaled(issue_repro("zero"), 2.0)
    xs = _spikes((12,), 5)
    compare(net, xs, min_spikes=5)
    monkeypatch.setattr(snt, "recurrent", lambda m: None)
    with pytest.raises(AssertionError):
        compare(net, xs, min_spikes=5)
    monkeypatch.undo()
    orig: Callable[..., Any] = snt.neuron
    monkeypatch.setattr(snt, "neuron", lambda *a: orig(*a).replace(reset_timing=ResetTiming.AFTER_SPIKE))
    with pytest.raises(AssertionError):
        compare(net, xs, min_spikes=5)


def test_unsupported_settings_are_refused_with_the_module_name() -> None:
    net = nn.Sequential(nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True, graded_spikes_factor=2.0),
                        nn.Linear(4, 4), snn.RSynaptic(alpha=0.5, beta=0.5, all_to_all=False, init_hidden=True,
                                                       reset_delay=False))
    with pytest.raises(ModelLoadError) as err:
        load(net)
    text = str(err.value)
    assert "1 (Leaky): graded_spikes_factor" in text
    assert "3 (RSynaptic): reset_delay=False" in text


def test_nir_export_keeps_the_semantics(tmp_path: Any) -> None:
    """write_nir records the snnTorch timing/reset_now/none in metadata; reading it back runs the same.
    (RLeaky graphs are refused by write_nir: their delay sits before the recurrent weight, so that its
    bias acts in step 0 as in snnTorch, and NIR's reader would put it after.)"""
    from neurocc.compiler.frontends.nir import read_nir, write_nir

    torch.manual_seed(0)
    net = _scaled(nn.Sequential(
        nn.Linear(12, 20), snn.Leaky(beta=0.9, init_hidden=True, reset_delay=False),
        nn.Linear(20, 10), snn.Synaptic(alpha=0.6, beta=0.8, init_hidden=True, reset_mechanism="zero"),
        nn.Linear(10, 5), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism="none")), 2.0)
    g = compare(net, _spikes((12,), 3))["graph"]
    write_nir(g, tmp_path / "m.nir")
    back = read_nir(tmp_path / "m.nir")
    assert back.nodes["1"].reset_now and back.nodes["3"].reset_timing is ResetTiming.NEXT_STEP_END
    xs = _spikes((12,), 3).numpy()
    np.testing.assert_array_equal(simulate(back, {"input": xs}).outputs["output"],
                                  simulate(g, {"input": xs}).outputs["output"])
