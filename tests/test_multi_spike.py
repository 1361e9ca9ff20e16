"""Sinabs ``MultiSpike`` (several spikes per step) on the integer targets (issue 12): a QLIF with
``multi_spike`` sends its spike count ``n = ⌊v / vth⌋`` as a graded payload and resets by
``n·vth`` (MembraneSubtract) or to 0 (MembraneReset); one rule, :mod:`neurocc.ir.numerics.reset`.

* the emulator equals Sinabs' own run, spike count for spike count on every layer, where the
  quantization is exact (weights, biases and thresholds on a grid of 1/4: the integer network
  then computes the float network's numbers);
* neurocc's Lava process model (loihi2) and the ONNX Runtime graphs (edge-cpu int8, and the
  loihi2 artifact on edge-cpu) equal the emulator bit for bit, every node and state; the numba
  kernel equals the numpy one;
* targets without graded spikes (loihi1, spinnaker) refuse by layer name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

sl = pytest.importorskip("sinabs.layers", reason="sinabs is not installed")
sa = pytest.importorskip("sinabs.activation", reason="sinabs is not installed")

import neurocc
from neurocc.backends import edge_cpu
from neurocc.backends.emulator import simulate
from neurocc.errors import NeuroccError
from neurocc.ir.artifact import load_artifact

RESETS = {"subtract": sa.MembraneSubtract, "zero": sa.MembraneReset}


def _net(reset: str, grid: bool, seed: int = 0) -> nn.Sequential:
    """Sinabs' dense layout with its default spike function (MultiSpike); ``grid``: every weight
    and bias a multiple of 1/4 (threshold 1), so a scale of 4 quantizes it exactly."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(16, 24), sl.IAF(reset_fn=RESETS[reset]()), nn.Linear(24, 6),
                        sl.IAF(reset_fn=RESETS[reset]()))
    with torch.no_grad():
        for lin in (net[0], net[2]):
            if grid:
                lin.weight.copy_(torch.randint(-5, 12, lin.weight.shape).float() / 4)
                lin.bias.copy_(torch.randint(-2, 3, lin.bias.shape).float() / 4)
            else:
                lin.weight.mul_(6.0)
    return net.eval()


def _spikes(steps: int = 30, batch: int = 4, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, batch, 16)) < 0.5).astype(np.float32)


def _lagged(graph, float_graph, x: np.ndarray, record: bool = True) -> tuple[dict, dict[str, int]]:
    """The emulator's run of ``graph`` with ``x`` padded by the Dense delays, and each node's lag."""
    from neurocc.runtime.validate import latency

    lat, flat = latency(graph), latency(float_graph)
    lag = {n: int(lat[n] - flat[n]) for n in flat if n in lat}
    pad = max(lag.values())
    res = simulate(graph, {"input": np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])}, record=record)
    return {**res.outputs, **res.traces}, lag


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("profile,target", [("loihi", "loihi2"), ("int8", "edge-cpu")])
def test_emulator_equals_sinabs_spike_counts(reset: str, profile: str, target: str) -> None:
    from neurocc.compiler.floatside import float_side
    from neurocc.compiler.passes.quantize import LayerStats, quantize
    from neurocc.runtime.source.torchrun import run_module
    from neurocc.targets import get_target

    net, x = _net(reset, grid=True), _spikes()
    fg = float_side(neurocc.load(net), get_target(target), None, "euler", None, None).float_graph
    assert fg.nodes["1"].multi_spike and fg.nodes["3"].multi_spike
    graph = quantize(fg, profile, get_target(target), stats={"1": LayerStats(scale=4.0), "3": LayerStats(scale=4.0)})
    assert graph.nodes["1"].multi_spike and graph.nodes["2"].graded
    want = run_module(net, {"input": x}, ["1", "3"])   # keys "<node>/out", "<node>/v"
    got, lag = _lagged(graph, fg, x)
    for node in ("1", "3"):
        mine = got[f"{node}/out" if f"{node}/out" in got else "output"][lag[node]:lag[node] + len(x)]
        assert np.array_equal(mine, want[f"{node}/out"]), (node, int(np.count_nonzero(mine != want[f"{node}/out"])))
    assert want["1/out"].max() >= 2 and want["3/out"].max() >= 2   # several spikes per step did happen


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A MultiSpike net with random (not grid) weights, calibrated, compiled for loihi2 and edge-cpu
    (MembraneSubtract; MembraneReset for loihi2 as a second artifact)."""
    tmp, x = tmp_path_factory.mktemp("multi"), _spikes(batch=16, seed=3)
    out = {}
    for reset in ("subtract", "zero"):
        net = _net(reset, grid=False, seed=2)
        for target in ("loihi2", "edge-cpu") if reset == "subtract" else ("loihi2",):
            out[f"{target}-{reset}"] = Path(neurocc.compile(net, target, tmp / f"{target}-{reset}",
                                                            calibration={"x": x}, allow_source_mismatch=True))
    return out


def _exact(want: dict, got: dict) -> None:
    keys = sorted(set(want) & set(got))
    bad = {k: int(np.count_nonzero(np.asarray(want[k]) != np.asarray(got[k]))) for k in keys
           if not np.array_equal(want[k], got[k])}
    assert {"1/v", "3/v"} <= set(keys) and not bad, f"mismatching elements per array: {bad}"


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lava_equals_emulator(compiled: dict[str, Path], reset: str) -> None:
    d, x = compiled[f"loihi2-{reset}"], _spikes(steps=25, batch=2, seed=5)
    emu = neurocc.run(d, "emulator", {"input": x}, record=True)
    lava = neurocc.run(d, "loihi", {"input": x}, record=True)
    _exact(emu, lava)
    assert np.asarray(emu["output"]).max() >= 2, "no step with several output spikes: a weak test"
    graph = load_artifact(d).graph
    assert graph.nodes["1"].multi_spike and graph.nodes["2"].graded


@pytest.mark.parametrize("key", ["edge-cpu-subtract", "loihi2-subtract", "loihi2-zero"])
def test_onnx_equals_emulator(compiled: dict[str, Path], key: str) -> None:
    """The int8 graph, and the loihi2 artifact's loihi numerics, on ONNX Runtime."""
    graph, x = load_artifact(compiled[key]).graph, _spikes(steps=30, batch=8, seed=7)
    ref = simulate(graph, {"input": x}, record=True, kernels="numpy")
    want = {**ref.outputs, **ref.traces}
    _exact(want, edge_cpu.run(graph, {"input": x}, record=True))
    counts = want["1/out"]
    assert counts.dtype == np.int32 and counts.max() >= 2, "no step with several spikes: a weak test"
    fast = simulate(graph, {"input": x}, record=True, kernels="numba")   # the compiled kernel: the same numbers
    _exact(want, {**fast.outputs, **fast.traces})


@pytest.mark.parametrize("target", ["loihi1", "spinnaker"])
def test_binary_spike_targets_refuse_by_layer(target: str, tmp_path: Path) -> None:
    with pytest.raises(NeuroccError) as err:
        neurocc.compile(_net("zero", grid=True), target, tmp_path / target, calibration={"x": _spikes()},
                        allow_source_mismatch=True)
    text = " ".join([err.value.what, *err.value.problems])
    assert "node '1'" in text and "MultiSpike" in text, text


def test_compiled_kernel_takes_sinabs_single_spike_too(tmp_path: Path) -> None:
    """The numba kernel now also runs ``v >= vth`` (Sinabs SingleSpike): the same numbers as numpy."""
    from neurocc.backends.emulator import prepare

    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(16, 24), sl.IAF(spike_fn=sa.SingleSpike), nn.Linear(24, 6),
                        sl.IAF(spike_fn=sa.SingleSpike))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
    x = _spikes(batch=8, seed=9)
    graph = load_artifact(neurocc.compile(net, "loihi2", tmp_path / "single", calibration={"x": x},
                                          allow_source_mismatch=True)).graph
    assert graph.nodes["1"].fire_at_threshold and not graph.nodes["1"].multi_spike
    assert type(prepare(graph, "numba").kernels["1"]).__name__ == "NbIntNeuron"
    ref = simulate(graph, {"input": x}, record=True, kernels="numpy")
    fast = simulate(graph, {"input": x}, record=True, kernels="numba")
    want = {**ref.outputs, **ref.traces}
    _exact(want, {**fast.outputs, **fast.traces})
    assert want["1/out"].any()


def test_float32_edge_cpu_runs_spike_counts(tmp_path: Path) -> None:
    """edge-cpu-f32: the float ONNX graph sends the counts too and passes its validation rule
    (mean-activity cosine against the float64 reference, targets.yaml)."""
    d = neurocc.compile(_net("subtract", grid=False, seed=2), "edge-cpu-f32", tmp_path / "f32",
                        calibration={"x": _spikes(batch=8, seed=3)}, allow_source_mismatch=True)
    res = neurocc.validate(d, backends=["edge-cpu"], samples=8)["results"][0]
    assert res["passed"] and res["cosine"] > 0.99, res
    out = neurocc.run(d, "edge-cpu", {"input": _spikes(batch=4, seed=11)})
    assert np.asarray(out["output"]).max() >= 2   # counts, not 0/1 spikes


def test_counts_with_a_membrane_floor_on_edge_cpu(tmp_path: Path) -> None:
    """MultiSpike with ``min_v_mem`` (``sinabs.from_model``'s defaults: MultiSpike, subtract, floor
    −1): int8 applies the floor after the count's reset; ONNX Runtime equals the emulator."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(16, 24), sl.IAF(min_v_mem=-1.0), nn.Linear(24, 6), sl.IAF(min_v_mem=-1.0))
    with torch.no_grad():
        net[0].weight.mul_(6.0)
    x = _spikes(batch=8, seed=13)
    graph = load_artifact(neurocc.compile(net, "edge-cpu", tmp_path / "floor", calibration={"x": x},
                                          allow_source_mismatch=True)).graph
    assert graph.nodes["1"].multi_spike and graph.nodes["1"].v_min is not None
    ref = simulate(graph, {"input": x}, record=True)
    want = {**ref.outputs, **ref.traces}
    _exact(want, edge_cpu.run(graph, {"input": x}, record=True))
    assert want["1/out"].max() >= 2 and (want["1/v"] == np.asarray(graph.nodes["1"].v_min)).any()  # floor reached
