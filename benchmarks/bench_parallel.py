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
* per path, at ``n/2`` and ``n`` samples (``--samples``, default all 450, more repeat the test
  set; the emulator: always the 450): ``evaluate(workers=1)`` (in this process, no Ray, batches of
  at most 256 with the toolchain's session kept across them) and ``evaluate(workers=2)`` (the Ray
  instance above, already running, as in the quickstart; fresh actors per call, as a command
  starts them; batches of at most 256, and at most ``ceil(n / 2)`` on Lava, ``ceil(n / 8)``
  elsewhere), 1 and 2 workers interleaved ``--reps`` times (best of each kept; every pair printed
  with the load average before it); results checked identical.

Two speedups are printed: **at n** (end to end: the 2-worker run includes its actors' start, its
backends' set-up per batch and the actors' end; ``ray.init`` is printed apart, paid once per
command or quickstart) and **marginal** (the slope between ``n/2`` and ``n``: seconds per extra
sample, 1 worker over 2 workers: the throughput a large test set sees once every worker runs).
A third run per pair, **1 worker on 1 core** (this process and the backend processes it starts
restricted to CPU 0 with ``sched_setaffinity``), is the scaling baseline per core: Ray schedules a
worker as one CPU (``num_cpus=1``), so 2 workers on 2 cores against it is the gain per added
core, while 2 workers against the unrestricted 1 worker is what a user of this machine gains.
``cores busy``: the machine's busy CPU seconds (``/proc/stat``, every process) per wall second of
the 1-worker run: on 2 cores the 2-worker speedup cannot exceed ``2 / cores busy`` at equal CPU
per sample (one Lava worker is itself ~10 processes working in parallel). ``CPU ceiling``:
measured before each rep, a pure-Python CPU loop run once alone and twice at once, ``2 * T_alone /
T_both``: the speedup the machine has room for at that moment (2.0 on two free cores, ~1.0 while
other jobs fill one); read every speedup against it.

The scaling model printed at the end: with ``N`` workers, ``n`` samples, ``t_w`` seconds per
sample per worker while every core is busy (twice the 2-worker marginal cost), ``k`` batches each
costing Ray's per-task overhead ``o`` plus the backend's own per-batch set-up ``c_task`` (from the
2-worker fixed cost, less the actors' start), and a start cost ``T0`` (``ray.init`` + actor
start): ``T(N) = T0 + (n * t_w + k * (o + c_task)) / N`` for ``N`` up to ``k`` (one task per
worker at a time, one worker per core), against one worker's ``n * t_1`` (its marginal cost per
sample).

The load average counts runnable processes, and one Lava run is ~10 of them (a process per Lava
process), so during the Lava rows it also shows this benchmark's own processes; the value printed
before each pair is the machine's load left by the previous run and by others.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_parallel.py [--qs DIR] [--samples 450] [--reps 2]
"""
from __future__ import annotations

import argparse
import inspect
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


def on_one_core(f):  # type: ignore[no-untyped-def]
    """``f()`` with this process (and every process it starts: the Lava and NEST workers) allowed
    on CPU 0 only: one worker given one core, the unit Ray schedules (``num_cpus=1``)."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        return f()
    finally:
        os.sched_setaffinity(0, allowed)


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine so far (``/proc/stat``: user + nice + system +
    irq + softirq, and idle + iowait): counts every process, the Lava and NEST workers' own
    subprocesses included (``getrusage`` misses a child still running or not yet waited for)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / ticks, (v[3] + v[4]) / ticks


_SPIN = "sum(range(15 * 10**7))"  # ~3.5 s of pure-Python CPU work, no I/O, no memory traffic (a 1-s loop
#                                  read 1.8-1.95x where 7-s loops read 1.1-1.25x: bursts are not sustained)


def cpu_ceiling() -> float:
    """The most any 2-worker run can gain at this moment: (1 process of pure CPU work) vs (2 at once)
    as a throughput ratio, ``2 * T_1 / T_2`` (2.0 on 2 free cores; ~1.0 when others' jobs fill a core)."""
    cmd = [sys.executable, "-c", _SPIN]
    t1, _ = timed(lambda: subprocess.run(cmd, check=True))
    t2, _ = timed(lambda: [p.wait() for p in [subprocess.Popen(cmd), subprocess.Popen(cmd)]])
    return 2 * t1 / t2


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
    many = [Task(i, "emulator", i, i + 1) for i in range(tasks)]
    t_first = t_many = math.inf
    for _ in range(3):   # run_tasks starts fresh actors per call: overhead = (many - 2 tasks) / (tasks - 2)
        t_first = min(t_first, timed(lambda: run_tasks(a, "operator:is_", first, layout))[0])
        t_many = min(t_many, timed(lambda: run_tasks(a, "operator:is_", many, layout))[0])
    return t_init, t_first, max(0.0, t_many - t_first) / (tasks - 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qs", default="neurocc-quickstart-parallel")
    ap.add_argument("--samples", type=int, default=450,
                    help="test digits on Lava and NEST (emulator: all 450); more than 450 repeats the test set")
    ap.add_argument("--tasks", type=int, default=300, help="no-op tasks for the per-task overhead")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--paths", default="emulator,loihi,spinnaker")
    args = ap.parse_args()
    qs = Path(args.qs)
    if not all((qs / "artifacts" / a / "manifest.json").is_file() for _, a in PATHS):
        subprocess.run([sys.executable, "-m", "neurocc", "quickstart", "--only", "emulator,loihi2,spinnaker",
                        "--workers", "1", "--out", str(qs)], check=False, stdout=subprocess.DEVNULL)
    from neurocc.runtime.evaluate import evaluate
    from neurocc.runtime.parallel import Layout, chunks

    batch = inspect.signature(evaluate).parameters["batch_size"].default   # evaluate's batches

    with np.load(qs / "data" / "test.npz") as z:
        x, y = z["x"], z["y"]
    reps = -(-args.samples // len(x))   # --samples beyond the test set: the digits again (a larger test set's cost)
    x, y = np.concatenate([x] * reps), np.concatenate([y] * reps)
    print(f"load average {os.getloadavg()[0]:.2f} at start; {os.cpu_count()} cores")
    t_init, t_first, o_task = ray_costs(qs / "artifacts" / "emulator", args.tasks)
    print(f"ray.init {t_init:.2f} s; 2 actors started + first round trip {t_first:.2f} s; "
          f"per-task overhead {o_task * 1e3:.1f} ms ({args.tasks} no-op tasks)")
    rows, lines = [], []
    for backend, name in [p for p in PATHS if p[0] in args.paths.split(",")]:
        n = len(x) // reps if backend == "emulator" else args.samples
        sizes = (n // 2, n)
        art = qs / "artifacts" / name
        best: dict[tuple[int, int], float] = {}
        same, loads, ceilings, cores = True, [], [], []
        for rep in range(args.reps):
            load, ceiling = os.getloadavg()[0], cpu_ceiling()
            for m in sizes:
                data = {"x": x[:m], "y": y[:m]}
                b0 = machine_cpu()[0]
                d1, r1 = timed(lambda a=art, d=data, b=backend: evaluate(a, d, b, workers=1))
                cores.append((machine_cpu()[0] - b0) / d1)
                d2, r2 = timed(lambda a=art, d=data, b=backend: evaluate(a, d, b, workers=2))
                d0, r0 = timed(lambda a=art, d=data, b=backend: on_one_core(lambda: evaluate(a, d, b, workers=1)))
                for key, d in (((1, m), d1), ((2, m), d2), ((0, m), d0)):
                    best[key] = min(best.get(key, math.inf), d)
                same = same and r1 == r2 == r0
                print(f"  {backend} rep {rep + 1}, {m} samples: load {load:.2f} before, CPU ceiling {ceiling:.2f}x; "
                      f"1 worker {d1:.2f} s, 2 workers {d2:.2f} s ({d1 / d2:.2f}x), 1 worker on 1 core {d0:.2f} s", file=sys.stderr, flush=True)
            loads, ceilings = loads + [load], ceilings + [ceiling]
        t1, t2 = best[(1, n)], best[(2, n)]
        s1, s2 = [(best[(w, n)] - best[(w, sizes[0])]) / (n - sizes[0]) for w in (1, 2)]   # marginal s/sample
        a2 = best[(2, n)] - n * s2                                                        # 2 workers' fixed cost
        k = len(chunks(n, Layout(2), batch, [backend]))   # the batches evaluate(workers=2) ran
        c_task = max(0.0, 2 * (a2 - t_first) / k)   # per batch: a backend's set-up (imports, compile, start)
        rows.append((backend, s1, 2 * s2, c_task))
        t0c = best[(0, n)]
        s0 = (best[(0, n)] - best[(0, sizes[0])]) / (n - sizes[0])
        lines.append(f"| {backend} | {name} | {n} | {t1:.2f} | {max(cores):.2f} | {t2:.2f} | {t2 + t_init:.2f} | "
                     f"**{t1 / t2:.2f}x** | {t0c:.2f} | **{t0c / t2:.2f}x** | **{s0 / s2:.2f}x** | {s1 * 1e3:.1f} | {s2 * 1e3:.1f} | **{s1 / s2:.2f}x** | {a2:.1f} | "
                     f"{'yes' if same else 'NO'} | {min(loads):.1f}-{max(loads):.1f} | "
                     f"{min(ceilings):.2f}-{max(ceilings):.2f}x |")
    print(f"load average {os.getloadavg()[0]:.2f} at end\n")
    print(f"best of {args.reps} interleaved pairs (1 worker in-process, then 2 Ray workers) at n/2 and n samples:")
    print("| path | artifact | n | 1 worker s | cores busy, 1 worker | 2 workers s | 2 workers + ray.init s | "
          "speedup at n | 1 worker on 1 core s | 2 workers vs 1 on 1 core | marginal, vs 1 on 1 core | marginal ms/sample, 1 worker | marginal ms/sample, 2 workers | marginal speedup | "
          "2-worker fixed cost s | identical | load before | CPU ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    t0 = t_init + t_first
    print(f"\nscaling model T(N) = T0 + (n*t_w + k*(o + c_task))/N, T0 = {t0:.1f} s (Ray + actors), o = "
          f"{o_task * 1e3:.1f} ms; predicted speedup over 1 worker (no Ray) for 10,000 samples, batches of b:")
    print("| path | t_w s | c_task s | b | N=2 | N=8 | N=32 | N=128 |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, s1, t_w, c_task in rows:
        n = 10_000
        for b in (32, 256):
            k = math.ceil(n / b)
            cells = [f"{n * s1 / (t0 + (n * t_w + k * (o_task + c_task)) / min(w, k)):.1f}x" for w in (2, 8, 32, 128)]
            print(f"| {backend} | {t_w:.4f} | {c_task:.2f} | {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
