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
    assert {v.reset_schedule for v in g.nodes.values() if v.kind == "QLIF"} == {"lava"}
    assert main(["compile", str(ROOT / "tiny.net"), "--target", "emulator", "-o", "art_chip",
                 "--reset-interval", "16", "--reset-schedule", "chip"]) == 0
    g = load_artifact("art_chip").graph
    assert {v.reset_schedule for v in g.nodes.values() if v.kind == "QLIF"} == {"chip"}
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
        assert main(["inspect", str(ROOT / "tiny.net"), "--reset-schedule", "chip"]) == 1
        assert "reset_schedule='chip' without reset_interval" in capsys.readouterr().err


@needs_lava_dl
def test_compile_for_edge_cpu_runs_lavas_output(cwd: Path, capsys) -> None:
    """`compile network.net --target edge-cpu` keeps the Loihi integers (numerics loihi in the
    manifest, said on the console) and `run --backend edge-cpu` gives Lava's recorded PilotNet-SDNN
    output (output.npy, 9 steps) index for index; a --reset-interval graph compiles for edge-cpu
    (its step counter resets the states) and, on the chip's schedule, is refused for loihi2
    naming the option and the target, with no artifact."""
    d = ROOT / "gts" / "pilotnet_sdnn"
    frame = np.load(d / "input.npy")[..., 0].astype(np.float32).transpose(2, 1, 0)
    np.savez("x.npz", input=np.broadcast_to(frame, (9, 1, *frame.shape)))
    assert main(["compile", str(d / "network.net"), "--target", "edge-cpu", "-o", "art", "--dt", "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "numerics: loihi, not edge-cpu's int8" in out
    assert "netx file" in out and "--dt is not used" in out and "snnTorch" not in out
    from neurocc.ir.artifact import load_artifact

    art = load_artifact("art")
    assert art.target == "edge-cpu" and art.target_settings["numerics"] == "loihi" and art.graph.numerics == "loihi"
    assert main(["run", "art", "--backend", "edge-cpu", "--input", "x.npz", "--output", "y.npz"]) == 0
    y = np.load("y.npz")["output"][:, 0, 0]
    assert np.any(y != 0) and _mismatches(y, np.load(d / "output.npy")[0]) == 0
    capsys.readouterr()
    assert main(["validate", "art", "--samples", "1"]) == 0     # graded input: random integer payloads
    out = capsys.readouterr().out
    assert "random integer payloads 0..255" in out and "edge-cpu   emulator   exact" in out
    reset = ["--reset-interval", "16", "--reset-schedule", "chip"]
    assert main(["compile", str(ROOT / "tiny.net"), "--target", "edge-cpu", "-o", "art2", *reset]) == 0
    capsys.readouterr()
    assert main(["compile", str(ROOT / "tiny.net"), "--target", "loihi2", "-o", "art3", *reset]) == 1
    err = capsys.readouterr().err
    assert "--reset-schedule chip" in err and "'loihi2'" in err and "Traceback" not in err
    assert not Path("art3").exists()


@needs_lava_dl
@pytest.mark.parametrize("name", ["tiny.net", "gts/ntidigits/ntidigits.net", "gts/pilotnet_sdnn/network.net"])
def test_plan_agrees_with_compile(name: str) -> None:
    """Every target of the shipped targets.yaml: a row that plan refuses is one compile refuses
    with the same first reason, and a row plan maps is one compile (the passes and the mapping)
    takes; 'fits' is the mapping's verdict on the graph compile produces."""
    import neurocc
    from neurocc.compiler.mapping import mapping_report
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.errors import CompileError
    from neurocc.targets import load_targets

    graph = neurocc.load(ROOT / name)
    targets = load_targets()
    rows = neurocc.plan(graph)
    assert [r.target for r in rows] == list(targets)
    for row in rows:
        tgt = targets[row.target]
        if row.refused:
            with pytest.raises(CompileError) as e:
                compile_graph(graph, tgt)
            assert not row.fits and (e.value.problems or [e.value.what])[0] in row.limit, row
            continue
        compiled = compile_graph(graph, tgt)
        assert mapping_report(compiled.graph, tgt, with_fixes=False).fits == row.fits, row
    refused = {r.target for r in rows if r.refused}
    if "ntidigits" in name:   # spikes into a binary synapse through Flatten: not a graded input
        assert compile_graph(graph, targets["edge-cpu"]).graded_inputs == ()
    assert {"loihi2", "emulator", "edge-cpu"}.isdisjoint(refused)
    if "sdnn" in name:
        assert refused == {"spinnaker", "spinnaker2", "edge-cpu-f32"}
