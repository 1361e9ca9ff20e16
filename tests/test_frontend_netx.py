"""netx frontend: lava-dl's own trained networks and Lava's recordings, reproduced by the emulator.

The files and recordings are read from the installed lava-dl wheel (``tests/lava/lib/dl/netx``);
nothing here was written by neurocc. Layout of the recordings: (W, H, C, T) or (N, T), as Lava's
probes and sinks store them; neurocc traces are (T, batch, C, H, W) and are transposed.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx
from neurocc.errors import ModelLoadError


def _netx_tests() -> Path | None:
    spec = importlib.util.find_spec("tests")
    for base in (spec.submodule_search_locations or []) if spec else []:
        p = Path(base) / "lava" / "lib" / "dl" / "netx"
        if (p / "tiny.net").exists():
            return p
    import sysconfig

    p = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"
    return p if (p / "tiny.net").exists() else None


ROOT = _netx_tests()
needs_lava_dl = pytest.mark.skipif(ROOT is None, reason="lava-dl's wheel (tests/lava/lib/dl/netx: the trained "
                                                         "netx files and Lava's recordings) is not installed")


def _whct(trace: np.ndarray) -> np.ndarray:
    """neurocc (T, B, C, H, W) / (T, B, N) → the recordings' (W, H, C, T) / (N, T), batch 0."""
    a = trace[:, 0]
    return a.transpose(*range(a.ndim - 1, 0, -1), 0)


def _mismatches(ours: np.ndarray, gt: np.ndarray) -> int:
    return int(np.count_nonzero(ours.astype(np.int64) != np.asarray(gt).astype(np.int64)))


# ----- PilotNet LIF (CUBA conv/dense, input neuron, 24 steps of spikes, u and v per layer) -------------
PILOT_LIF = [("layer0", "input-s"), ("layer1", "conv-0"), ("layer2", "conv-1"), ("layer3", "conv-2"),
             ("layer4", "conv-3"), ("layer5", "conv-4"), ("layer7", "fc-0"), ("layer8", "fc-1"),
             ("layer9", "fc-2"), ("layer10", "fc-3")]


def _pilotnet_lif(d: Path, schedule: str) -> dict[str, np.ndarray]:
    """Emulator traces of PilotNet-LIF as lava-dl's chip test runs it (reset_interval=16, the
    image as the input neuron's bias), 24 steps, in the recordings' layout; v read as Loihi
    reports it: 128 at a step where the neuron spiked (Lava's CPU model reads the post-reset 0;
    the dynamics are the same: lava-nc/lava issue #282)."""
    g = read_netx(d / "network.net", reset_interval=16, reset_schedule=schedule)
    image = np.load(d / "image.npy").astype(np.int64).transpose(2, 1, 0)          # (W, H, C) → (C, H, W)
    g = g.with_node("layer0", g.nodes["layer0"].replace(bias_mant=image))
    r = simulate(g, {"input": np.zeros((24, 1, 3, 66, 200), np.int64)}, record=True)
    out = {}
    for name, rec in PILOT_LIF:
        out[f"{rec}/s"] = spikes = _whct(r.traces[f"{name}/out"])
        out[f"{rec}/u"] = _whct(r.traces[f"{name}/u"])
        out[f"{rec}/v"] = np.where(spikes > 0, 128, _whct(r.traces[f"{name}/v"]))
    return out


@needs_lava_dl
def test_pilotnet_lif_chip_recording_with_the_chip_schedule() -> None:
    """The PilotNet-LIF recording was made on the Loihi 2 chip (lava-dl's test_hdf5_nx.py runs
    this file with Loihi2HwCfg only). Every spike, u and v the chip recorded for the input block
    (``input.npy``, the chip's own bool recording; ``input-s.npy`` is Lava's) and blocks 1-8 over
    all 24 steps equals the emulator with ``reset_schedule="chip"`` (each block's second reset
    one step after Lava's, 17 steps after its first): 0 mismatches over 9,511,776 values. With
    Lava's schedule the chip's block j differs from column 16 + j on (docs/frontends.md).
    fc-3's files (25 steps, float) come from another chip run and are checked below."""
    d = ROOT / "gts" / "pilotnet_lif"
    ours, lava = _pilotnet_lif(d, "chip"), _pilotnet_lif(d, "lava")
    bad, compared = {}, 0
    for _, rec in PILOT_LIF[:-1]:
        for var, suffix in (("s", ""), ("u", "-u"), ("v", "-v")):
            if rec == "input-s" and var != "s":
                continue   # no u/v recorded for the input layer
            gt = np.load(d / ("input.npy" if rec == "input-s" else f"{rec}{suffix}.npy"))
            compared += gt.size
            if _mismatches(ours[f"{rec}/{var}"], gt):
                bad[f"{rec}{suffix}"] = _mismatches(ours[f"{rec}/{var}"], gt)
            j = [r for _, r in PILOT_LIF].index(rec)
            same = 17 + j if j < 8 else 24          # Lava and the chip part at column 16 + j (j = 0: 17)
            assert _mismatches(lava[f"{rec}/{var}"][..., :same - 1], gt[..., :same - 1]) == 0, (rec, var)
            if var == "s" and j <= 5:
                assert _mismatches(lava[f"{rec}/s"][..., same - 1:], gt[..., same - 1:]) > 0, rec
    assert compared == 9_511_776
    assert not bad, f"mismatches per recording: {bad}"


@needs_lava_dl
def test_pilotnet_lif_lava_schedule_and_the_other_recordings() -> None:
    """Lava's own schedule (the default, netx's LIFReset: block j resets before Lava step
    j + 1 + 16k) reproduces ``input-s.npy`` (the input block's spikes as Lava computes them) over
    all 24 steps. The fc-3 recordings (25 steps, float, unlike the others) come from another chip
    run: its last block is reset at step 9 (netx: 10) and its input differs from fc-2.npy of the
    same folder after step 8; they are compared over the first 8 steps."""
    d = ROOT / "gts" / "pilotnet_lif"
    ours = _pilotnet_lif(d, "lava")
    assert _mismatches(ours["input-s/s"], np.load(d / "input-s.npy")) == 0
    for var, f in (("s", "fc-3-s.npy"), ("u", "fc-3-u.npy"), ("v", "fc-3-v.npy")):
        assert _mismatches(ours[f"fc-3/{var}"][..., :8], np.load(d / f)[..., :8]) == 0, f


# ----- PilotNet SDNN (sigma-delta, graded spikes, Sigma read-out) --------------------------------------
@needs_lava_dl
@pytest.mark.parametrize("kernels", ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba is not installed: no compiled kernels to check"))])
def test_pilotnet_sdnn_output_act0_and_sigmas(kernels: str) -> None:
    """output.npy (Lava fixed_pt, 9 steps), the input layer's graded output act0 and the sigma of
    the first two layers over 20 steps: 0 mismatches, on the numpy kernels and on the compiled
    ones (the fused sigma-delta update, the compiled graded conv scatter)."""
    d = ROOT / "gts" / "pilotnet_sdnn"
    g = read_netx(d / "network.net")
    frame = np.load(d / "input.npy")[..., 0].astype(np.int64).transpose(2, 1, 0)
    x = np.broadcast_to(frame, (20, 1, *frame.shape)).copy()     # a RingBuffer of one column repeats it
    r = simulate(g, {"input": x}, record=True, kernels=kernels)
    out = r.outputs["output"][:9, 0, 0]
    assert _mismatches(out, np.load(d / "output.npy")[0]) == 0
    assert np.any(out != 0)
    assert _mismatches(_whct(r.traces["layer0/out"]), np.load(d / "act0.npy")) == 0
    for k in (1, 2):
        assert _mismatches(_whct(r.traces[f"layer{k}/sigma"]), np.load(d / f"sigma{k}.npy")) == 0


@needs_lava_dl
def test_square_sdnn_skip_input_layer() -> None:
    """square_network.net with skip_layers=1, fed act0[:33, :33] at the first synapse (as
    lava-dl's test): sigma of all four conv layers for 20 steps, 0 mismatches."""
    d = ROOT / "gts" / "pilotnet_sdnn"
    g = read_netx(d / "square_network.net", skip_layers=1)
    x = np.load(d / "act0.npy")[:33, :33].astype(np.int64).transpose(3, 2, 1, 0)[:, None]
    r = simulate(g, {"input": x}, record=True)
    for k in range(1, 5):
        gt = np.load(d / f"sigma{k}_square.npy")
        assert _mismatches(_whct(r.traces[f"layer{k}/sigma"]), gt) == 0, k
        assert np.any(gt != 0)


def test_sigma_delta_variants_differ_where_bits_are_dropped() -> None:
    """Hand-computed: input 100, 0, 0, 37, 0 into sigma (so act = 100, 100, 100, 137, 137),
    vth 0, state_exp 6. Lava 0.10 sends 100 >> 6 = 1 and loses the 36 dropped units (its residue
    is 0 after a send; 37 >> 6 = 0 later): [1, 0, 0, 0, 0]. The PR #875 rule keeps act_prev = 64
    (what was sent), so 137 − 64 = 73 goes out at step 3: [1, 0, 0, 1, 0], and the receiver's
    sum 2 = 137 >> 6 tracks act."""
    from neurocc.ir.numerics.sigma_delta import init_state, sigma_delta_step

    kw = dict(vth=np.array([0]), bias=np.array([0]), state_exp=6)
    sent = {}
    for variant in ("lava-0.10", "lava-pr875"):
        st = init_state((1,), "sigma_delta")
        sent[variant] = [int(sigma_delta_step(st, np.array([a]), variant=variant, **kw)[0]) for a in (100, 0, 0, 37, 0)]
    assert sent == {"lava-0.10": [1, 0, 0, 0, 0], "lava-pr875": [1, 0, 0, 1, 0]}


# ----- NTIDIGITS (axonal delays, 3000 steps) -------------------------------------------------------------
@needs_lava_dl
def test_ntidigits_all_output_spikes() -> None:
    """All 22,572 output spikes of gts/ntidigits (per-neuron axonal delays up to 62), exactly.
    The recording's column t + 1 is neurocc step t (lava-dl's own test compares one column)."""
    d = ROOT / "gts" / "ntidigits"
    g = read_netx(d / "ntidigits.net", num_layers=5)       # layer 5 'average' is not a netx block
    full = read_netx(d / "ntidigits.net")                   # with SLAYER's average read-out: 11 group sums
    assert full.shapes()["output"] == (11,)
    assert any(n.kind == "Delay" for n in g.nodes.values())
    inp = np.load(d / "input.npy")
    r = simulate(g, {"input": inp.T.reshape(inp.shape[1], 1, 1, 1, 64).astype(np.int64)})
    ours = r.outputs["output"][:, 0].T
    gt = np.load(d / "output.npy")
    assert int(gt.sum()) == 22572
    assert _mismatches(ours[:, :-1], gt[:, 1:]) == 0 and int(gt[:, 0].sum()) == 0


@needs_lava_dl
def test_tinynet_output_as_lava_dl_checks_it() -> None:
    """tiny.net with the reset scheme of lava-dl's test (reset every 17 steps, block j at phase
    j + 1): Lava's sink columns 2..16 equal the recording's columns 1..15 (the recording is
    SLAYER's, one step earlier than Lava), and neurocc's output is Lava's sink."""
    g = read_netx(ROOT / "tiny.net", reset_interval=17)
    bias = np.load(ROOT / "gts" / "tinynet" / "input_bias.npy").astype(np.int64).transpose(2, 1, 0)
    g = g.with_node("layer0", g.nodes["layer0"].replace(bias_mant=bias))
    r = simulate(g, {"input": np.zeros((19, 1, 3, 16, 16), np.int64)})
    ours = _whct(r.outputs["output"])
    gt = np.load(ROOT / "gts" / "tinynet" / "output.npy")[0].transpose(2, 1, 0, 3)
    assert gt[..., 1:].sum() > 50
    assert _mismatches(ours[..., 2:17], gt[..., 1:]) == 0


@needs_lava_dl
def test_mnist_net_reads_as_lava_dl_builds_it() -> None:
    """mnist.net: input neuron, two CUBA dense layers, a neuron-less dense read-out (QLI: v)."""
    g = read_netx(ROOT / "mnist.net")
    kinds = [n.kind for n in g.nodes.values()]
    assert kinds.count("QDense") == 3 and kinds[-2] == "QLI" and g.shapes()["output"] == (10,)


# ----- bad input -----------------------------------------------------------------------------------------
def _write(path: Path, layers: list[dict]) -> Path:
    with h5py.File(path, "w") as f:
        for i, lay in enumerate(layers):
            g = f.create_group(f"layer/{i}")
            for k, v in lay.items():
                if isinstance(v, dict):
                    n = g.create_group(k)
                    for kk, vv in v.items():
                        n.create_dataset(kk, data=vv)
                elif k == "type":
                    g.create_dataset(k, data=np.array([v.encode()], dtype="S10"))
                else:
                    g.create_dataset(k, data=v)
    return path


def test_bad_files_one_paragraph(tmp_path: Path) -> None:
    """Truncated, non-HDF5, non-netx, missing dataset, unknown neuron, unsupported blocks: one
    ModelLoadError each, naming the file and listing every layer problem at once."""
    cuba = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}
    good = _write(tmp_path / "good.net", [{"type": "input", "shape": np.array([4])},
                                          {"type": "dense", "weight": np.ones((3, 4), np.float32), "neuron": cuba}])
    assert read_netx(good).shapes()["output"] == (3,)
    pool = _write(tmp_path / "pool.net", [{"type": "input", "shape": np.array([2, 4, 4])},
                                          {"type": "pool", "weight": np.full((1, 1, 2, 2, 1), 3.0, np.float32),
                                           "stride": np.array([2, 2]), "neuron": cuba}])
    pg = read_netx(pool)          # SLAYER's sum pool: a depthwise conv of weight·ones, per channel
    assert pg.shapes()["layer1"] == (2, 2, 2) and pg.nodes["layer1_synapse"].groups == 2
    trunc = tmp_path / "trunc.net"
    trunc.write_bytes(good.read_bytes()[:700])
    (tmp_path / "text.net").write_text("not hdf5")
    with h5py.File(tmp_path / "nolayer.net", "w") as f:
        f.create_dataset("x", data=1)
    many = _write(tmp_path / "many.net", [
        {"type": "input", "shape": np.array([4])},
        {"type": "dense", "neuron": cuba},                                         # no weight
        {"type": "dense", "weight": np.ones((3, 4), np.float32), "neuron": {**cuba, "type": "RF_PHASE"}},
        {"type": "concat", "shape": np.array([1])},
        {"type": "unpool"}])
    for name, words in [("trunc.net", "HDF5"), ("text.net", "HDF5"), ("nolayer.net", "'/layer'"),
                        ("missing.net", "not found")]:
        with pytest.raises(ModelLoadError) as e:
            read_netx(tmp_path / name)
        assert words in str(e.value) and name in str(e.value) and "Traceback" not in str(e.value)
    with pytest.raises(ModelLoadError) as e:
        read_netx(many)
    msg = str(e.value)
    for part in ("layer 1 (dense): missing dataset(s) 'weight'", "layer 2 (dense): unknown neuron type 'RF_PHASE'",
                 "layer 3 (concat)", "layer 4 (unpool)", "many.net"):
        assert part in msg, (part, msg)


# ----- the command line ------------------------------------------------------------------------------------
def neurocc_cmd(*args: str, cwd: Path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@needs_lava_dl
def test_cli_compile_run_pilotnet_sdnn_as_lava_sees_it(tmp_path: Path) -> None:
    """`neurocc compile network.net --target emulator` then `neurocc run`: Y.npz's output is
    Lava's recorded sink (output.npy), index for index (offset 0)."""
    d = ROOT / "gts" / "pilotnet_sdnn"
    frame = np.load(d / "input.npy")[..., 0].astype(np.int64).transpose(2, 1, 0)
    np.savez(tmp_path / "x.npz", input=np.broadcast_to(frame, (9, 1, *frame.shape)))
    r = neurocc_cmd("compile", str(d / "network.net"), "--target", "emulator", "-o", "art", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = neurocc_cmd("run", "art", "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npz")["output"][:, 0, 0]
    assert _mismatches(y, np.load(d / "output.npy")[0]) == 0
    # no float form (sigma-delta): validate checks the exact ONNX lowering against the emulator
    r = neurocc_cmd("validate", "art", "--input", "x.npz", cwd=tmp_path)
    assert r.returncode == 0 and "edge-cpu" in r.stdout and "PASS" in r.stdout, r.stdout + r.stderr


def test_cli_bad_netx_file_no_traceback_no_artifact(tmp_path: Path) -> None:
    (tmp_path / "bad.net").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    r = neurocc_cmd("compile", "bad.net", "--target", "emulator", "-o", "art", cwd=tmp_path)
    assert r.returncode == 1 and "bad.net" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "art").exists()
