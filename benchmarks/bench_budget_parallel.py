"""``compile --accuracy-budget`` with 1 vs 2 Ray workers (issue 18): wall time and identical artifacts.

The digits models of the worked example (:func:`neurocc.zoo.write_digits_files`: ``mlp``
64-64-32-10 and ``cnn``, trained here once into ``--files``) are compiled for ``--target`` with
``--accuracy-budget`` on ``cal.npz``, three ways, interleaved ``--reps`` times (best of each kept,
every run printed with the load average before it):

* ``1 worker``: the search in this process (the default, no Ray);
* ``2 workers``: ``workers=2`` as the CLI runs it, so Ray's start (a local 2-CPU instance) and its
  workers' first imports are included;
* ``2 workers, Ray up``: the same inside a Ray instance started beforehand, whose 2 workers have
  imported neurocc (what a program that already called ``ray.init()`` pays): the search alone.
  Before it, ``ray.init`` and those imports (two tasks at once) are timed on their own.

Each run's artifact is compared file by file with the 1-worker one. ``trials``: the trials the
search reports (the sequential ones); the parallel runs also start speculative trials (phase 1's
later configurations, phase 2's later bit widths) and drop them. ``CPU ceiling`` (from
``bench_parallel.py``): two pure-Python loops at once against one alone, the speedup the machine
has room for at that moment (2.0 on two free cores).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_budget_parallel.py [--arch mlp,cnn] [--budget 0.5] [--reps 2]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def compile_once(model: Path, cal: Path, target: str, budget: float, workers: int, out: Path) -> tuple[float, dict]:
    import neurocc

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    neurocc.compile(model, target, out, calibration=cal, accuracy_budget=budget, workers=workers, check_source=False)
    return time.perf_counter() - t, files(out)


def _imports(_shared: object, _item: object) -> int:
    """What a trial imports before its work (a Ray worker starts without neurocc loaded)."""
    import neurocc.backends.emulator
    import neurocc.compiler.budget
    import neurocc.compiler.pipeline  # noqa: F401

    return os.getpid()


def with_ray_up(run):  # type: ignore[no-untyped-def]
    """(ray.init s, 2 workers' first imports s, run()'s (s, value)) in a local 2-CPU Ray started here."""
    from neurocc.runtime.parallel import Layout
    from neurocc.runtime.ray_pool import ray_instance
    from neurocc.runtime.ray_tasks import RayTasks

    ctx = ray_instance(Layout(2))
    t = time.perf_counter()
    ctx.__enter__()
    t_init = time.perf_counter() - t
    try:
        with RayTasks(Layout(2)) as r:
            t = time.perf_counter()
            r.first(_imports, None, [0, 1], lambda _: False)
            t_warm = time.perf_counter() - t
        return t_init, t_warm, run()
    finally:
        ctx.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", default="build/bench-budget", help="folder for the models and data")
    ap.add_argument("--arch", default="mlp,cnn")
    ap.add_argument("--target", default="loihi2")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    from bench_parallel import cpu_ceiling

    from neurocc.zoo import write_digits_files

    print(f"load average {os.getloadavg()[0]:.2f} at start; {os.cpu_count()} cores", flush=True)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-budget-"))
    for arch in args.arch.split(","):
        folder = Path(args.files) / arch
        if not (folder / "cal.npz").is_file():
            write_digits_files(folder, arch=arch)
        model, cal = folder / f"{arch}.pt2", folder / "cal.npz"
        best = {"1": math.inf, "2": math.inf, "2 warm": math.inf}
        same, loads, ceilings, ref = True, [], [], None
        for rep in range(args.reps):
            load, ceiling = os.getloadavg()[0], cpu_ceiling()
            loads, ceilings = loads + [load], ceilings + [ceiling]
            t1, ref1 = compile_once(model, cal, args.target, args.budget, 1, tmp / "w1")
            t2, got2 = compile_once(model, cal, args.target, args.budget, 2, tmp / "w2")
            t_init, t_warm, (t3, got3) = with_ray_up(lambda: compile_once(model, cal, args.target, args.budget, 2,
                                                                          tmp / "w3"))
            ref = ref or ref1
            same = same and ref1 == ref and got2 == ref and got3 == ref
            for k, v in (("1", t1), ("2", t2), ("2 warm", t3)):
                best[k] = min(best[k], v)
            print(f"  {arch} run {rep + 1}: load {load:.2f} before, CPU ceiling {ceiling:.2f}x; 1 worker {t1:.2f} s, "
                  f"2 workers {t2:.2f} s; then ray.init {t_init:.2f} s, 2 workers' imports {t_warm:.2f} s, "
                  f"2 workers with Ray up {t3:.2f} s", file=sys.stderr, flush=True)
        doc = json.loads(ref["manifest.json"])["accuracy_budget"]
        rows.append(f"| {arch} | {args.target} | {args.budget:g} | {len(doc['trials'])} | {best['1']:.2f} | "
                    f"{best['2']:.2f} ({best['1'] / best['2']:.2f}x) | {best['2 warm']:.2f} "
                    f"({best['1'] / best['2 warm']:.2f}x) | {'yes' if same else 'NO'} | "
                    f"{min(loads):.1f}-{max(loads):.1f} | {min(ceilings):.2f}-{max(ceilings):.2f}x |")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end\n")
    print(f"best of {args.reps} interleaved runs (compile wall time, source check off):")
    print("| model | target | budget | trials | 1 worker s | 2 workers s (Ray started) | 2 workers s (Ray up) "
          "| identical | load before | CPU ceiling |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
