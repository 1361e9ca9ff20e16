"""netx files on the command line: the netx.hdf5.Network arguments as flags, compile for edge-cpu,
plan agreeing with compile, the dt line. Judged against lava-dl's recordings where there is one
(read from the installed wheel); runs the CLI in-process (``neurocc.cli.main``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from neurocc.cli import main

from test_frontend_netx import ROOT, _mismatches, _whct, needs_lava_dl


@pytest.fixture
def cwd(tmp_path: Path):
    old = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


@needs_lava_dl
def test_skip_layers_flag_reproduces_lava_sigmas(cwd: Path, capsys) -> None:
    """`compile square_network.net --skip-layers 1` then `run --record` on lava-dl's act0 input:
    the sigma of the four conv layers equals Lava's recording (20 steps, 0 mismatches)."""
    d = ROOT / "gts" / "pilotnet_sdnn"
    x = np.load(d / "act0.npy")[:33, :33].astype(np.float32).transpose(3, 2, 1, 0)[:, None]
    np.savez("x.npz", input=x)
    assert main(["compile", str(d / "square_network.net"), "--skip-layers", "1", "--target", "emulator",
                 "-o", "art"]) == 0
    assert main(["run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", "--record"]) == 0
    y = np.load("y.npz")
    for k in range(1, 5):
        gt = np.load(d / f"sigma{k}_square.npy")
        assert np.any(gt != 0) and _mismatches(_whct(y[f"layer{k}/sigma"]), gt) == 0, k


@needs_lava_dl
def test_reading_flags_reach_the_graph(cwd: Path, capsys) -> None:
    nt = str(ROOT / "gts" / "ntidigits" / "ntidigits.net")
    assert main(["inspect", nt, "--num-layers", "5"]) == 0
    out = capsys.readouterr().out
    assert "layer4" in out and "layer5" not in out          # layer 5 is SLAYER's average read-out
    assert main(["compile", str(ROOT / "tiny.net"), "--target", "emulator", "-o", "art",
                 "--reset-interval", "16", "--reset-offset", "3"]) == 0
    from neurocc.ir.artifact import load_artifact

    g = load_artifact("art").graph
    got = {n: (v.reset_interval, v.reset_offset) for n, v in g.nodes.items() if v.kind == "QLIF"}
    # netx: block j resets at Lava steps t with t mod 16 = (offset + 1 + j) mod 16
    assert got == {"layer0": (16, 4), "layer1": (16, 5), "layer2": (16, 6)}
    sd = str(ROOT / "gts" / "pilotnet_sdnn" / "network.net")
    assert main(["inspect", sd, "--num-layers", "3", "--sigma-delta", "lava-pr875"]) == 0
    from neurocc.compiler.frontends import load

    g = load(sd, netx={"num_layers": 3, "variant": "lava-pr875"})
    assert {v.variant for v in g.nodes.values() if v.kind == "QSigmaDelta"} == {"lava-pr875"}


def test_netx_flags_refused_elsewhere_and_without_their_partner(cwd: Path, capsys) -> None:
    nir = Path(__file__).parent / "fixtures" / "nir-paper" / "cnn_sinabs.nir"
    assert main(["inspect", str(nir), "--num-layers", "2"]) == 1
    err = capsys.readouterr().err
    assert "netx files only" in err and "cnn_sinabs.nir" in err and "Traceback" not in err
    if ROOT is not None:
        assert main(["inspect", str(ROOT / "tiny.net"), "--reset-offset", "2"]) == 1
        assert "without reset_interval" in capsys.readouterr().err
