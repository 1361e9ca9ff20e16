"""Loihi backend speed: the Lava-process path and the netx path against the emulator, one run.

Network: Input(N) → [QDense(N×N, int8 in [-125, 127]) →(1) QLIF] × 3, one du/dv/vth per layer (so netx
can express it), input spikes at rate 0.1. For each N the Lava paths are timed with T1 and T2
steps (one worker call each, batch 1, best of --reps); the per-step cost is (t(T2) − t(T1)) / (T2 − T1), which
removes the worker start-up, Lava import and compile (reported separately as t(T1) − T1·step).
The emulator runs the same graph and inputs; every Lava result is checked identical to it.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_loihi.py [--sizes 100,400] [--t1 20] [--t2 420] [--reps 3]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import numpy as np


def chain(n: int, seed: int = 0):
    from neurocc.ir.graph import Edge, Graph
    from neurocc.ir.nodes import Input, Output
    from neurocc.ir.qnodes import QLIF, QDense

    rng = np.random.default_rng(seed)

    def one(v: int) -> np.ndarray:
        return np.full(n, v, np.int32)

    nodes = {"x": Input(shape=(n,)), "o": Output()}
    edges, prev = [], "x"
    for i in range(3):
        nodes[f"d{i}"] = QDense(weight=rng.integers(-125, 128, (n, n)).astype(np.int32))
        nodes[f"l{i}"] = QLIF(du=one(2048), dv=one(1024), vth=one(int(40 * np.sqrt(n))), bias_mant=one(0), bias_exp=one(0))
        edges += [Edge(prev, f"d{i}"), Edge(f"d{i}", f"l{i}", 1)]
        prev = f"l{i}"
    edges.append(Edge(prev, "o"))
    return Graph(nodes, tuple(edges), numerics="loihi", name=f"chain{n}").verify()


REPS = 3


def timed(fn, xs: np.ndarray) -> tuple[float, dict]:
    """Best of REPS wall times of ``fn(xs)`` (the 2-core machine is shared) and the last result."""
    best = float("inf")
    for _ in range(REPS):
        t = time.perf_counter()
        out = fn(xs)
        best = min(best, time.perf_counter() - t)
    return best, out


def measure(n: int, t1: int, t2: int) -> None:
    """Print one row per path for the N-neuron chain."""
    from neurocc.backends.emulator import simulate
    from neurocc.backends.loihi import NetxJob, plan_netx, run_lava, run_netx_many

    g = chain(n)
    assert plan_netx(g).expressible

    def emulator(xs: np.ndarray) -> dict:
        return simulate(g, {"x": xs}).outputs

    def lava(xs: np.ndarray) -> dict:
        return run_lava(g, {"x": xs})

    def netx(xs: np.ndarray) -> dict:
        return run_netx_many([NetxJob(g, {"x": xs})])[0]

    x = (np.random.default_rng(1).random((t2, 1, n)) < 0.1).astype(np.int32)
    te1, _ = timed(emulator, x[:t1])
    te2, ref = timed(emulator, x)
    emu_step = (te2 - te1) / (t2 - t1)
    rate = float(np.mean(ref["o"]))
    for name, fn in (("lava", lava), ("netx", netx)):
        a, _ = timed(fn, x[:t1])
        b, out = timed(fn, x)
        step = (b - a) / (t2 - t1)
        print(f"{n:>5} {name:<8} {1e3 * step:>9.2f} {a - t1 * step:>11.2f} {step / emu_step:>10.1f}x "
              f"{rate:>11.3f}  {np.array_equal(out['o'], ref['o'])}")
    print(f"{n:>5} {'emulator':<8} {1e3 * emu_step:>9.3f} {te1 - t1 * emu_step:>11.3f} {1.0:>10.1f}x {rate:>11.3f}")


def main() -> None:
    global REPS
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,400")
    ap.add_argument("--t1", type=int, default=20)
    ap.add_argument("--t2", type=int, default=420)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    REPS = args.reps
    print(f"{'N':>5} {'path':<8} {'ms/step':>9} {'start-up s':>11} {'x emulator':>11} {'spike rate':>11}  identical")
    for n in (int(s) for s in args.sizes.split(",")):
        measure(n, args.t1, args.t2)


if __name__ == "__main__":
    main()
