"""lava-dl netx files: emulator vs Lava netx per step (PilotNet-LIF, PilotNet-SDNN) in one run,
and import + compile time of the largest file.

Each network is run by lava-dl netx in Lava 0.10 (fixed_pt, the worker subprocess) for T1 and T2
steps (best of --reps); the per-step cost is (t(T2) − t(T1)) / (T2 − T1), which removes the
worker start-up, Lava import and compile. The emulator runs the same graph and input for T2
steps (per step = t / T2); every Lava output is checked equal to the emulator's. The input
is the recorded frame (SDNN) / image (LIF) held constant, as lava-dl's tests feed them.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_netx.py [--t1 4] [--t2 12] [--reps 1]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib.util
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx"


def _inputs(name: str, steps: int) -> np.ndarray:
    if "sdnn" in name.lower():
        frame = np.load(ROOT / "gts" / "pilotnet_sdnn" / "input.npy")[..., 0]
    else:
        frame = np.load(ROOT / "gts" / "pilotnet_lif" / "image.npy")
    frame = frame.astype(np.int64).transpose(2, 1, 0)
    return np.broadcast_to(frame, (steps, 1, *frame.shape)).copy()


def best(fn, reps: int) -> tuple[float, dict]:
    t_best, out = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, out


def measure(name: str, rel: str, t1: int, t2: int, reps: int) -> None:
    from neurocc.backends.emulator import simulate
    from neurocc.backends.loihi.netx_import import run_netx_file
    from neurocc.compiler.frontends.netx import read_netx

    path = ROOT / rel
    g = read_netx(path)
    x2 = _inputs(name, t2)
    t_emu, em = best(lambda: simulate(g, {"input": x2}), reps)
    ta, _ = best(lambda: run_netx_file(path, g, {"input": x2[:t1]}, timeout_s=3600), reps)
    tb, lava = best(lambda: run_netx_file(path, g, {"input": x2}, timeout_s=3600), reps)
    same = bool(np.array_equal(lava["output"].astype(np.int64), em.outputs["output"].astype(np.int64)))
    lava_step = (tb - ta) / (t2 - t1)
    emu_step = t_emu / t2
    print(f"| {name} | {lava_step * 1e3:.1f} | {emu_step * 1e3:.2f} | {lava_step / emu_step:.0f}x | "
          f"{ta - t1 * lava_step:.1f} | {same} |")


def import_compile(reps: int) -> None:
    from neurocc.compiler.frontends.netx import read_netx
    from neurocc.compiler.pipeline import compile_model

    files = sorted((p for p in ROOT.rglob("*.net")), key=lambda p: p.stat().st_size)
    big = files[-1]
    t_imp, g = best(lambda: read_netx(big), reps)

    def comp():
        with tempfile.TemporaryDirectory() as d:
            return compile_model(g, "loihi2", Path(d) / "art")

    t_comp, _ = best(comp, reps)
    print(f"\nlargest file {big.relative_to(ROOT)} ({big.stat().st_size / 1e6:.2f} MB, {len(g.nodes)} nodes): "
          f"import {t_imp * 1e3:.0f} ms, compile for loihi2 (incl. network.net planning, mapping, artifact) "
          f"{t_comp * 1e3:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--t1", type=int, default=4)
    ap.add_argument("--t2", type=int, default=12)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--skip-lif", action="store_true",
                    help="leave out PilotNet-LIF")
    a = ap.parse_args()
    if importlib.util.find_spec("h5py") is None or not (ROOT / "tiny.net").exists():
        raise SystemExit("needs lava-dl's wheel (tests/lava/lib/dl/netx)")
    print("| network | Lava netx ms/step | emulator ms/step | ratio | Lava start-up+compile s | equal |")
    print("|---|---|---|---|---|---|")
    measure("PilotNet-SDNN", "gts/pilotnet_sdnn/network.net", a.t1, a.t2, a.reps)
    if not a.skip_lif:
        measure("PilotNet-LIF", "gts/pilotnet_lif/network.net", a.t1, a.t2, a.reps)
    import_compile(max(a.reps, 3))


if __name__ == "__main__":
    main()
