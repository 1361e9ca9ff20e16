"""Throughput of ``evaluate`` with 1 vs 2 Ray workers (emulator, Lava, NEST paths), Ray's costs,
and a cluster scaling estimate from them, in one run.

Uses a quickstart output folder (``--qs``; made with ``neurocc quickstart --only
emulator,loihi2,spinnaker --workers 1 --out DIR`` when missing): the digits MLP 64-64-32-10
converted with 64 timesteps, compiled for ``emulator`` (emulator path), ``loihi2`` (Lava
``fixed_pt`` CPU models) and ``spinnaker`` (pyNN.nest). Measured, in this order:

* ``ray start``: ``ray.init`` of a local 2-CPU instance (neurocc's quiet settings), then the two
  worker actors' start (artifact shipped, loaded, sessions opened) with the first no-op round trip;
* ``per-task overhead``: ``--tasks`` no-op tasks (``operator.is_``) through the same scheduler as
  the real work (one task per free actor, results back in order), wall / tasks;
* per path, ``--samples`` test digits (the emulator: all 450): ``evaluate(workers=1)`` (in this
  process, one batch, no Ray) and ``evaluate(workers=2)`` (the Ray instance above, already
  running; batches of ``ceil(n / 8)``), best of ``--reps``, interleaved; results checked identical.

The scaling model printed at the end: with ``N`` workers, ``n`` samples of ``t_s`` seconds each
(the 1-worker time / n), ``k`` tasks of per-task overhead ``o``, and a start cost ``T0`` (Ray
start + actor start): ``T(N) = T0 + (n * t_s + k * o) / N`` for ``N`` up to ``k`` (one task per
worker at a time; each batch's samples run sequentially inside one worker).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_parallel.py [--qs DIR] [--samples 64] [--reps 1]
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

PATHS = (("emulator", "emulator"), ("loihi", "loihi2"), ("spinnaker", "spinnaker"))


def timed(f):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    value = f()
    return time.perf_counter() - t, value


def ray_costs(art: Path, tasks: int) -> tuple[float, float, float]:
    """(ray.init s, actor start + first round trip s, per-task overhead s); Ray stays running."""
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime import ray_pool
    from neurocc.runtime.parallel import Layout, Task, run_tasks

    layout = Layout(2)
    ctx = ray_pool.ray_instance(layout)
    t_init, _ = timed(ctx.__enter__)
    a = load_artifact(art)
    first = [Task(i, "emulator", i, i + 1) for i in range(2)]
    t_first, _ = timed(lambda: run_tasks(a, "operator:is_", first, layout))
    many = [Task(i, "emulator", i, i + 1) for i in range(tasks)]
    t_many, _ = timed(lambda: run_tasks(a, "operator:is_", many, layout))
    t_again, _ = timed(lambda: run_tasks(a, "operator:is_", first, layout))
    # run_tasks starts fresh actors per call: per-task overhead = (many - a 2-task call) / (tasks - 2)
    return t_init, t_first, max(0.0, t_many - t_again) / (tasks - 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qs", default="neurocc-quickstart-parallel")
    ap.add_argument("--samples", type=int, default=64, help="test digits on Lava and NEST (emulator: all 450)")
    ap.add_argument("--tasks", type=int, default=200, help="no-op tasks for the per-task overhead")
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    qs = Path(args.qs)
    if not all((qs / "artifacts" / a / "manifest.json").is_file() for _, a in PATHS):
        subprocess.run([sys.executable, "-m", "neurocc", "quickstart", "--only", "emulator,loihi2,spinnaker",
                        "--workers", "1", "--out", str(qs)], check=False, stdout=subprocess.DEVNULL)
    from neurocc.runtime.evaluate import evaluate

    with np.load(qs / "data" / "test.npz") as z:
        x, y = z["x"], z["y"]
    print(f"load average {os.getloadavg()[0]:.2f} at start; {os.cpu_count()} cores")
    t_init, t_first, o_task = ray_costs(qs / "artifacts" / "emulator", args.tasks)
    print(f"ray.init {t_init:.2f} s; 2 actors started + first round trip {t_first:.2f} s; "
          f"per-task overhead {o_task * 1e3:.1f} ms ({args.tasks} no-op tasks)")
    print("| path | artifact | samples | 1 worker s | 2 workers s | speedup | 1-worker s/sample | tasks | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for backend, name in PATHS:
        n = len(x) if backend == "emulator" else min(args.samples, len(x))
        data = {"x": x[:n], "y": y[:n]}
        art = qs / "artifacts" / name
        t1 = t2 = math.inf
        for _ in range(args.reps):
            d1, r1 = timed(lambda a=art, d=data, b=backend: evaluate(a, d, b, workers=1))
            d2, r2 = timed(lambda a=art, d=data, b=backend: evaluate(a, d, b, workers=2))
            t1, t2 = min(t1, d1), min(t2, d2)
        k = math.ceil(n / math.ceil(n / 8))
        rows.append((backend, n, t1 / n, k))
        print(f"| {backend} | {name} | {n} | {t1:.2f} | {t2:.2f} | {t1 / t2:.2f}x | {t1 / n:.4f} | {k} | {r1 == r2} |")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    t0 = t_init + t_first
    print(f"\nscaling model T(N) = T0 + (n*t_s + k*o)/N, T0 = {t0:.1f} s (Ray + actors), o = {o_task * 1e3:.1f} ms; "
          "predicted speedup over 1 worker (no Ray) for 10,000 samples in batches of 32 (k = 313):")
    print("| path | t_s s | N=2 | N=8 | N=32 | N=128 |")
    print("|---|---|---|---|---|---|")
    for backend, _, t_s, _ in rows:
        n, k = 10_000, 313
        ser = n * t_s
        cells = [f"{ser / (t0 + (ser + k * o_task) / min(w, k)):.1f}x" for w in (2, 8, 32, 128)]
        print(f"| {backend} | {t_s:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
