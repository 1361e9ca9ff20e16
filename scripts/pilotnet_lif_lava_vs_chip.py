"""lava-dl's PilotNet-LIF: Lava 0.10's CPU model vs neurocc's emulator vs the Loihi 2 chip recording.

Runs lava-dl netx (``reset_interval=16``, the image as the input neuron's bias, as lava-dl's
``test_hdf5_nx.py`` does on the chip) in Lava ``fixed_pt`` one step at a time in a subprocess
(Lava is imported there only, with neurocc's worker shim: the Python 3.11 dataclasses patch and
the numpy-2 conv widening), reads every block's u and v after each step and its spikes from a
sink, then prints per block: Lava vs emulator mismatches, the first column where the chip's
recording differs from Lava, and whether the chip's column t equals Lava's column t - 1 after
it (docs/frontends.md, "PilotNet-LIF: Lava's CPU model and the chip's recording"). Why the chip
differs (its second reset of each block comes one step later) is shown, without Lava, by
scripts/pilotnet_lif_reset_schedules.py.

    OPENBLAS_NUM_THREADS=1 python scripts/pilotnet_lif_lava_vs_chip.py [--steps 24]

About 10 s per step on a loaded 2-core machine (one Lava run and 20 variable reads per step).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

D = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx" / "gts" / "pilotnet_lif"
BLOCKS = [("layer0", "input-s"), ("layer1", "conv-0"), ("layer2", "conv-1"), ("layer3", "conv-2"),
          ("layer4", "conv-3"), ("layer5", "conv-4"), ("layer7", "fc-0"), ("layer8", "fc-1"),
          ("layer9", "fc-2"), ("layer10", "fc-3")]


def lava_part(steps: int, out: Path) -> None:
    """In this subprocess only: netx in Lava fixed_pt, u/v read after every step, spikes by sinks."""
    from neurocc.backends.loihi.shim import import_lava, import_netx

    lava, hdf5 = import_lava(), import_netx()
    net = hdf5.Network(net_config=str(D / "network.net"), reset_interval=16)
    net.in_layer.neuron.bias_mant.init = np.load(D / "image.npy").astype(int)
    sinks = []
    for layer in net.layers:
        sinks.append(lava.Sink(shape=tuple(layer.neuron.s_out.shape), buffer=steps))
        layer.neuron.s_out.connect(sinks[-1].a_in)
    cfg = lava.Loihi2SimCfg(select_tag="fixed_pt")
    trace: dict[str, list[np.ndarray]] = {}
    for _ in range(steps):
        net.run(condition=lava.RunSteps(num_steps=1), run_cfg=cfg)
        for i, layer in enumerate(net.layers):
            for var in ("u", "v"):
                trace.setdefault(f"{i}/{var}", []).append(getattr(layer.neuron, var).get().astype(np.int64))
    arrays = {k: np.stack(v, -1) for k, v in trace.items()}
    arrays.update({f"{i}/s": s.data.get().astype(np.int64) for i, s in enumerate(sinks)})
    net.stop()
    np.savez(out, **arrays)


def _whct(trace: np.ndarray) -> np.ndarray:
    a = trace[:, 0]
    return a.transpose(*range(a.ndim - 1, 0, -1), 0).astype(np.int64)


def compare(steps: int, lava: dict[str, np.ndarray]) -> None:
    from neurocc.backends.emulator import simulate
    from neurocc.compiler.frontends.netx import read_netx

    g = read_netx(D / "network.net", reset_interval=16)
    image = np.load(D / "image.npy").astype(np.int64).transpose(2, 1, 0)
    g = g.with_node("layer0", g.nodes["layer0"].replace(bias_mant=image))
    r = simulate(g, {"input": np.zeros((steps, 1, *image.shape), np.int64)}, record=True)
    total = 0
    print("block (recording): values/step; Lava vs emulator s/u/v mismatches; chip vs Lava: first differing "
          "column, s/u/v values differing; columns where chip[t] == Lava[t-1] for s, u, v")
    for i, (name, rec) in enumerate(BLOCKS):
        s = _whct(r.traces[f"{name}/out"])
        ours = {"s": s, "u": _whct(r.traces[f"{name}/u"]), "v": _whct(r.traces[f"{name}/v"])}
        lv = {k: lava[f"{i}/{k}"].reshape(ours[k].shape) for k in ours}
        bad = [int(np.count_nonzero(ours[k] != lv[k])) for k in ("s", "u", "v")]
        total += int(sum(v.size for v in ours.values()))
        chip_txt = ""
        files = {"s": D / ("fc-3-s.npy" if rec == "fc-3" else f"{rec}.npy"), "u": D / f"{rec}-u.npy",
                 "v": D / f"{rec}-v.npy"}
        if rec not in ("input-s", "fc-3"):
            lv128 = dict(lv, v=np.where(lv["s"] > 0, 128, lv["v"]))   # the chip reads v = 128 at a spike
            gt = {k: np.load(f).astype(np.int64)[..., :steps] for k, f in files.items()}
            cols = [np.flatnonzero(np.count_nonzero(gt[k] != lv128[k], axis=tuple(range(gt[k].ndim - 1))))
                    for k in gt]
            first = min((int(c[0]) for c in cols if c.size), default=None)
            if first is None:
                chip_txt = "chip == Lava throughout"
            else:
                diff = "/".join(str(int(np.count_nonzero(gt[k] != lv128[k]))) for k in gt)
                lag = all(np.array_equal(gt[k][..., first + 1:], lv128[k][..., first:steps - 1]) for k in gt)
                chip_txt = (f"first {first}, {diff}; chip[t] == Lava[t-1] for columns {first + 1}..{steps - 1}: "
                            f"{lag}" if first + 1 < steps else f"first {first}, {diff}")
        elif rec == "input-s":
            chip_txt = f"spikes: {int(np.count_nonzero(np.load(files['s'])[..., :steps] != lv['s']))} differ"
        print(f"{i} ({rec}): {s[..., 0].size}; {bad[0]}/{bad[1]}/{bad[2]}; {chip_txt}")
    print(f"Lava vs emulator: {total:,} values compared")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--lava", metavar="OUT.npz", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.lava:
        lava_part(a.steps, Path(a.lava))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lava.npz"
        subprocess.run([sys.executable, __file__, "--steps", str(a.steps), "--lava", str(out)], check=True)
        with np.load(out) as z:
            lava = {k: z[k] for k in z.files}
    compare(a.steps, lava)


if __name__ == "__main__":
    main()
