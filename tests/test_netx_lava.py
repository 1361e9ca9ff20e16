"""Imported netx files run by lava-dl netx itself in Lava 0.10 (fixed_pt) equal the emulator.

Lava runs in a worker subprocess (neurocc.backends.loihi); skipped with the reason where Lava or
lava-dl's test files are absent. The default run is one small worker call (tiny.net, the first
60 steps of NTIDIGITS with its axonal delays, neurocc's own re-export of it, and the network.net
of a float model with biases compiled for loihi2, a dense_rec file, PilotNet-LIF's input and
first conv block with LIFReset) and neurocc's own PilotNet-SDNN file on 3 steps (a second call,
~15 s); lava-dl's PilotNet-SDNN on 9 steps and all of PilotNet-LIF on 20 are @pytest.mark.long.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx

from test_frontend_netx import ROOT, needs_lava_dl


def _jobs(specs):
    from neurocc.backends.loihi.netx_import import imported_job

    return [imported_job(f, g, {"input": x}, None, True) for f, g, x in specs]


def _compare(graph, x, lava: dict) -> dict[str, int]:
    em = simulate(graph, {"input": x}, record=True)
    got = {**em.traces, **em.outputs}
    assert set(lava) <= set(got)
    return {k: int(np.count_nonzero(v.astype(np.int64) != got[k].astype(np.int64))) for k, v in lava.items()}


@needs_lava_dl
def test_tiny_and_ntidigits_in_lava_netx(lava_ok, tmp_path) -> None:
    from neurocc.backends.loihi.netx_run import run_netx_many

    rng = np.random.default_rng(0)
    tiny = ROOT / "tiny.net"
    g1 = read_netx(tiny)
    x1 = rng.integers(0, 60, size=(12, 1, 3, 16, 16))               # graded a_in of the input neuron
    nt = ROOT / "gts" / "ntidigits" / "ntidigits.net"
    g2 = read_netx(nt, num_layers=5)
    inp = np.load(ROOT / "gts" / "ntidigits" / "input.npy")[:, :60]   # output spikes from step 20 on
    x2 = inp.T.reshape(60, 1, 1, 1, 64).astype(np.int64)
    # and a float model with biases compiled for loihi2, biases from step 0: its netx file (netx's grid)
    from neurocc.backends.loihi import NetxJob
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact
    from test_netx_roundtrip import _biased_model

    from neurocc.backends.loihi.netx import plan_netx
    from neurocc.backends.loihi.netx_file import write_net

    art = compile_model(_biased_model(), "loihi2", tmp_path / "art", bias_from_step_zero=True)
    g3 = load_artifact(art).graph   # the compile option: biases from step 0, so network.net is written
    assert (art / "network.net").exists()
    x3 = (rng.random((60, 1, 12)) < 0.3).astype(np.int64)
    # and neurocc's own re-export of NTIDIGITS (axonal delays written back as `delay`)

    g4 = read_netx(write_net(plan_netx(g2), tmp_path / "re.net"))
    jobs = _jobs([(tiny, g1, x1), (nt, g2, x2)]) + [NetxJob(g3, {"input": x3}, None, False, art / "network.net"),
                                                    NetxJob(g4, {"input": x2}, None, False, tmp_path / "re.net")]
    # and a dense_rec (recurrent) file written the way SLAYER exports it
    from test_frontend_netx import _write

    cuba = {"type": "CUBA", "iDecay": 1024, "vDecay": 512, "vThMant": 60}
    rec = _write(tmp_path / "rec.net", [
        {"type": "input", "shape": np.array([6])},
        {"type": "dense_rec", "shape": np.array([5]), "weight": rng.integers(-40, 80, (5, 6)).astype(np.float32),
         "weight_rec": rng.integers(-60, 40, (5, 5)).astype(np.float32), "neuron": cuba}])
    g5 = read_netx(rec)
    x5 = (rng.random((40, 1, 6)) < 0.4).astype(np.int64)
    # and PilotNet-LIF's input and first conv block: a 200 x 66 input, which Lava's Conv model
    # runs under numpy 2 only with the worker's widened int8 parameters; netx's LIFReset every 2
    # steps (block 0 at Lava steps 1, 3, ...; block 1 at 2, 4, ...) passed through to netx
    lif = ROOT / "gts" / "pilotnet_lif" / "network.net"
    g6 = read_netx(lif, num_layers=2, reset_interval=2)
    x6 = rng.integers(0, 256, size=(5, 1, 3, 66, 200))
    jobs += _jobs([(rec, g5, x5), (lif, g6, x6)])
    for g, x, lava in zip((g1, g2, g3, g4, g5, g6), (x1, x2, x3, x2, x5, x6), run_netx_many(jobs)):
        diff = _compare(g, x, lava)
        assert not any(diff.values()), diff
        assert lava["output"].any()
    assert not np.array_equal(simulate(g6, {"input": x6}).outputs["output"],   # the resets matter here
                              simulate(read_netx(lif, num_layers=2), {"input": x6}).outputs["output"])


@pytest.mark.long
@needs_lava_dl
def test_pilotnet_sdnn_in_lava_netx(lava_ok) -> None:
    """PilotNet-SDNN (9 steps): every probed sigma/act, graded output and the read-out equal."""
    from neurocc.backends.loihi.netx_run import run_netx_many

    sd = ROOT / "gts" / "pilotnet_sdnn" / "network.net"
    g = read_netx(sd)
    frame = np.load(ROOT / "gts" / "pilotnet_sdnn" / "input.npy")[..., 0].astype(np.int64).transpose(2, 1, 0)
    x = np.broadcast_to(frame, (9, 1, *frame.shape)).copy()
    (lava,) = run_netx_many(_jobs([(sd, g, x)]))
    diff = _compare(g, x, lava)
    assert not any(diff.values()), diff
    assert lava["output"].any()


@pytest.mark.long
@needs_lava_dl
def test_pilotnet_lif_in_lava_netx(lava_ok) -> None:
    """PilotNet-LIF, all 10 blocks, with netx's reset_interval=16, 20 steps (through Lava's second
    reset of blocks 0..3): every block's spikes, u and v equal the emulator's. Lava 0.10's Conv
    model runs it under numpy 2 only with the worker's widened int8 parameters
    (neurocc.backends.loihi.shim). Input: lava-dl's image, fed to the input neuron's a_in."""
    lif = ROOT / "gts" / "pilotnet_lif" / "network.net"
    g = read_netx(lif, reset_interval=16)
    image = np.load(ROOT / "gts" / "pilotnet_lif" / "image.npy").astype(np.int64).transpose(2, 1, 0)
    x = np.broadcast_to(image, (20, 1, *image.shape)).copy()
    from neurocc.backends.loihi.netx_run import run_netx_many

    (lava,) = run_netx_many(_jobs([(lif, g, x)]), timeout_s=1800)   # a probe per variable: ~4.5 min here
    assert len(lava) == 1 + 10 * 3, sorted(lava)        # the read-out; s, u, v of every block
    diff = _compare(g, x, lava)
    assert not any(diff.values()), diff
    assert lava["layer1/out"].any() and lava["layer9/out"].any()


@needs_lava_dl
def test_neurocc_written_pilotnet_sdnn_in_lava_netx(lava_ok, tmp_path) -> None:
    """neurocc's own netx file of PilotNet-SDNN (import → export), loaded by lava-dl netx and run
    in Lava fixed_pt with the exporter's plan (feed at the Delta's a_in, every block's s_out and
    sigma/act probed): equal to the emulator on 3 steps (about 20 s here)."""
    from neurocc.backends.loihi import NetxJob
    from neurocc.backends.loihi.netx import plan_netx
    from neurocc.backends.loihi.netx_file import write_net
    from neurocc.backends.loihi.netx_run import run_netx_many

    g = read_netx(write_net(plan_netx(read_netx(ROOT / "gts" / "pilotnet_sdnn" / "network.net")), tmp_path / "re.net"))
    frame = np.load(ROOT / "gts" / "pilotnet_sdnn" / "input.npy")[..., 0].astype(np.int64).transpose(2, 1, 0)
    x = np.broadcast_to(frame, (3, 1, *frame.shape)).copy()
    (lava,) = run_netx_many([NetxJob(g, {"input": x}, None, True, tmp_path / "re.net")])
    assert len(lava) == 10, sorted(lava)        # the read-out and one state per SDNN block
    diff = _compare(g, x, lava)
    assert not any(diff.values()), diff
    assert lava["output"].any() and lava["layer6/sigma"].any()
