"""The emulator's batched torch path vs its numpy (and numba) kernels, per sample-step.

Network: bench_edge_cpu.py's 784-512-512-10 LIF (float ``edge-cpu-f32`` graph, float64
semantics; integer ``edge-cpu`` graph, int8 numerics), T steps of Poisson spikes (rate 0.15).
For each numerics and batch: the numpy kernels, the numba kernels (integer graphs) and the
torch path on ``--device`` (float graphs: also with ``float_dtype="float32"``), timed interleaved (best of ``--reps``) in one process so the ratios
share the machine's load; outputs are checked identical to numpy (integer) or counted where a
float64 summation-order difference flips a spike (float).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_torch_device.py [--device cpu|cuda]
        [--batches 32 128] [--steps 100] [--reps 3]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import torch

    from bench_edge_cpu import float_graph
    from neurocc.backends.emulator import prepare, simulate
    from neurocc.compiler.pipeline import compile_graph

    torch.set_num_threads(1)
    fg = float_graph()
    print(f"device {args.device}; load {os.getloadavg()[0]:.2f}")
    print("| numerics | batch | variant | ms per run | µs per sample-step | × numpy | outputs vs numpy |")
    print("|---|---|---|---|---|---|---|")
    for numerics, target in (("int8", "edge-cpu"), ("float64", "edge-cpu-f32")):
        g = compile_graph(fg, target, dt=1e-3).graph
        progs = {"numpy": prepare(g, kernels="numpy"), f"torch-{args.device}": prepare(g, device=args.device)}
        if g.numerics is not None:
            progs["numba"] = prepare(g, kernels="numba")
        else:       # the opt-in float32 of the batched path (float graphs; compared with float64 numpy)
            progs[f"torch-{args.device}-float32"] = prepare(g, device=args.device, float_dtype="float32")
        for batch in args.batches:
            x = (np.random.default_rng(1).random((args.steps, batch, 784)) < 0.15).astype(np.float32)
            outs = {k: simulate(g, {"x": x}, program=p).outputs["y"] for k, p in progs.items()}   # warm-up
            times = {k: [] for k in progs}
            for _ in range(args.reps):
                for k, p in progs.items():
                    t = time.perf_counter()
                    simulate(g, {"x": x}, program=p)
                    times[k].append(time.perf_counter() - t)
            base = min(times["numpy"])
            for k, ts in times.items():
                diff = int(np.count_nonzero(outs[k] != outs["numpy"]))
                print(f"| {numerics} | {batch} | {k} | {min(ts) * 1e3:.1f} | {min(ts) / (args.steps * batch) * 1e6:.2f} "
                      f"| {base / min(ts):.2f}× | {'identical' if diff == 0 else f'{diff} differ'} |")


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
