"""Imported netx models on other targets: the edge-cpu integer ONNX lowering equals the emulator
bit for bit (sigma-delta, axonal delays and the input neuron included); what cannot go elsewhere
is refused with the reason."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx

from test_frontend_netx import ROOT, needs_lava_dl

pytest.importorskip("onnxruntime")


@needs_lava_dl
@pytest.mark.parametrize("name,steps", [("gts/pilotnet_sdnn/network.net", 6), ("tiny.net", 12),
                                        ("gts/ntidigits/ntidigits.net", 150)])
def test_edge_cpu_equals_emulator(name: str, steps: int) -> None:
    from neurocc.backends import edge_cpu

    g = read_netx(ROOT / name, num_layers=5 if "ntidigits" in name else None)
    assert edge_cpu.check(g) == []
    rng = np.random.default_rng(3)
    shape = g.shapes()["input"]
    if "ntidigits" in name:
        x = (rng.random((steps, 2, *shape)) < 0.1).astype(np.int64)
    else:
        x = rng.integers(-40, 60, size=(steps, 2, *shape))
    onnx_out = edge_cpu.run(g, {"input": x})["output"].astype(np.int64)
    ref = simulate(g, {"input": x}).outputs["output"].astype(np.int64)
    assert np.abs(ref).sum() > 0
    assert int(np.count_nonzero(onnx_out != ref)) == 0


@needs_lava_dl
def test_refusals_name_the_reason() -> None:
    from neurocc.backends import edge_cpu
    from neurocc.backends.loihi import check as loihi_check
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.errors import CompileError

    reset = read_netx(ROOT / "tiny.net", reset_interval=17)
    assert edge_cpu.check(reset) == [] and loihi_check(reset) == []    # ONNX step counter; Lava's LIFReset
    chip = read_netx(ROOT / "tiny.net", reset_interval=17, reset_schedule="chip")
    assert any("reset_schedule='chip'" in p for p in loihi_check(chip))
    for target in ("loihi2", "loihi1"):
        with pytest.raises(CompileError) as e:
            compile_graph(chip, target)
        assert "--reset-schedule chip" in str(e.value) and f"'{target}'" in str(e.value)
    assert compile_graph(chip, "edge-cpu").graph is chip and compile_graph(chip, "emulator").graph is chip
    from neurocc.backends.loihi.netx_import import imported_job
    from neurocc.errors import BackendError

    with pytest.raises(BackendError, match="--reset-schedule chip"):   # netx's LIFReset: Lava's schedule only
        imported_job(ROOT / "tiny.net", chip, {"input": np.zeros((3, 1, 3, 16, 16))})
    sdnn = read_netx(ROOT / "gts" / "pilotnet_sdnn" / "network.net")
    assert loihi_check(sdnn) == []     # runs as netx builds it: Lava's Delta/SigmaDelta/Sigma processes
    bad = sdnn.with_node("layer1", sdnn.nodes["layer1"].replace(relu=False))
    assert any("relu=False" in p for p in loihi_check(bad))
    with pytest.raises(CompileError) as e:
        compile_graph(sdnn, "spinnaker")
    assert "layer9" in str(e.value) and "no SpiNNaker model" in str(e.value)
    assert compile_graph(sdnn, "edge-cpu").graph is sdnn   # edge-cpu keeps the integers (loihi profile)
    with pytest.raises(CompileError) as e:
        compile_graph(reset, "spinnaker")                     # no float form of a periodic reset
    assert "reset_interval=17" in str(e.value) and "layer2" in str(e.value)
    with pytest.raises(CompileError) as e:
        compile_graph(sdnn, "spinnaker2")          # float32: no float form of sigma-delta
    assert "layer9" in str(e.value)


@needs_lava_dl
@pytest.mark.parametrize("schedule", ["lava", "chip"])
def test_edge_cpu_runs_the_periodic_reset(schedule: str) -> None:
    """netx's reset_interval on edge-cpu: a step counter in the ONNX state resets u and v (one
    rule with the emulator: numerics.reset.periodic_due), equal to the emulator bit for bit on
    tiny.net for offsets inside and beyond the interval; the resets change the output."""
    from neurocc.backends import edge_cpu

    rng = np.random.default_rng(3)
    for offset in (0, 3, 20):
        g = read_netx(ROOT / "tiny.net", reset_interval=5, reset_offset=offset, reset_schedule=schedule)
        x = rng.integers(-40, 60, size=(40, 2, *g.shapes()["input"]))
        ref = simulate(g, {"input": x}).outputs["output"].astype(np.int64)
        free = simulate(read_netx(ROOT / "tiny.net"), {"input": x}).outputs["output"].astype(np.int64)
        assert np.count_nonzero(ref != free) > 0
        assert int(np.count_nonzero(edge_cpu.run(g, {"input": x})["output"].astype(np.int64) != ref)) == 0


@needs_lava_dl
def test_edge_cpu_reproduces_the_chip_recording() -> None:
    """PilotNet-LIF compiled for edge-cpu with the chip's reset schedule: every spike, u and v the
    Loihi 2 chip recorded (input block and blocks 1-8, 24 steps; v read as 128 where the neuron
    spiked) equals the ONNX step graph's, 0 mismatches."""
    from neurocc.backends import edge_cpu
    from test_frontend_netx import PILOT_LIF, _mismatches, _whct

    d = ROOT / "gts" / "pilotnet_lif"
    g = read_netx(d / "network.net", reset_interval=16, reset_schedule="chip")
    image = np.load(d / "image.npy").astype(np.int64).transpose(2, 1, 0)
    g = g.with_node("layer0", g.nodes["layer0"].replace(bias_mant=image))
    out = edge_cpu.run(g, {"input": np.zeros((24, 1, *image.shape), np.int64)}, record=True)
    bad, compared = {}, 0
    for name, rec in PILOT_LIF[:-1]:
        s = _whct(out[f"{name}/out"])
        ours = {"": s, "-u": _whct(out[f"{name}/u"]), "-v": np.where(s > 0, 128, _whct(out[f"{name}/v"]))}
        for suffix, a in ours.items():
            if rec == "input-s" and suffix:
                continue
            gt = np.load(d / ("input.npy" if rec == "input-s" else f"{rec}{suffix}.npy"))
            compared += gt.size
            if _mismatches(a, gt):
                bad[f"{rec}{suffix}"] = _mismatches(a, gt)
    assert compared == 9_511_776 and not bad, bad


@needs_lava_dl
def test_lava_process_net_runs_lifreset(lava_ok) -> None:
    """The Lava-process path builds Lava's LIFReset for netx's reset_interval: u and v of every
    block and the output equal the emulator (tiny.net, interval 5, offset 2, 14 steps)."""
    from neurocc.backends import loihi

    g = read_netx(ROOT / "tiny.net", reset_interval=5, reset_offset=2)
    x = np.random.default_rng(3).integers(-40, 60, size=(14, 1, *g.shapes()["input"]))
    out = loihi.run(g, {"input": x}, record=True)
    em = simulate(g, {"input": x}, record=True)
    got = {**em.traces, **em.outputs}
    keys = [k for k in out if k in got]
    assert {"layer0/u", "layer2/v", "output"} <= set(keys)
    assert {k: int(np.count_nonzero(np.asarray(out[k]).astype(np.int64) != got[k].astype(np.int64)))
            for k in keys} == dict.fromkeys(keys, 0)
    assert np.count_nonzero(em.traces["layer1/v"] != simulate(read_netx(ROOT / "tiny.net"), {"input": x},
                                                                 record=True).traces["layer1/v"]) > 0
