"""Lava per-digit cost vs lanes (k samples side by side in one Lava runtime, issue 18).

For each artifact (the digits quickstart's ``loihi2``, and a ``loihi1`` compiled from the same
model when missing) and each most-lanes value k (the worker's ``NEUROCC_LAVA_LANES``), one
``neurocc.evaluate(artifact, first N test digits, "loihi", workers=1)`` call, all N digits in one
batch (one worker); reported: the worker's time for the batch (build, compile, run, stop; from its
log), per digit, the whole call's wall time, the CPU seconds of the call's processes, and whether
the accuracy and the confusion matrix equal k = 1's. Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_lava_lanes.py [--qs DIR] [--samples 96] [--lanes 1,2,4,8,16,32]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

QS = Path("/work/main/neurocc-quickstart-parallel")


def loihi1_artifact(qs: Path, out: Path) -> Path:
    """The quickstart's model compiled for loihi1 as the quickstart compiles it (constant encoding)."""
    import neurocc
    from neurocc.ir.encoding import Encoding

    if (out / "manifest.json").is_file():
        return out
    with np.load(qs / "data" / "cal.npz") as z:
        cal = {"x": z["x"], "y": z["y"]}
    return Path(neurocc.compile(str(qs / "model" / "mlp.pt2"), "loihi1", out, calibration=cal, timesteps=64,
                                input_shape=(64,), encoding=Encoding("constant", 64, seed=0)))


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qs", type=Path, default=QS)
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--lanes", default="1,2,4,8,16,32")
    ap.add_argument("--loihi1", type=Path, default=Path("/tmp/neurocc-bench-lanes-loihi1"))
    a = ap.parse_args()
    from neurocc.backends.loihi import lanes, lower, runner
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.evaluate import evaluate

    logs: list[str] = []
    real = runner.invoke_worker

    def logged(job_dir, timeout_s, command=None):
        try:
            real(job_dir, timeout_s, command)
        finally:
            log = Path(job_dir) / "worker.log"
            logs.append(log.read_text() if log.is_file() else "")

    runner.invoke_worker = logged
    with np.load(a.qs / "data" / "test.npz") as z:
        data = {"x": z["x"][:a.samples], "y": z["y"][:a.samples]}
    arts = {"loihi2": a.qs / "artifacts" / "loihi2", "loihi1": loihi1_artifact(a.qs, a.loihi1)}
    print(f"{a.samples} digits, load average {os.getloadavg()[0]:.1f} at the start")
    print("| artifact | most lanes | lanes used | worker s (batch) | ms/digit | call s | CPU s | accuracy | same as k=1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, art in arts.items():
        first = None
        for k in (int(v) for v in a.lanes.split(",")):
            os.environ[lanes.ENV] = str(k)
            logs.clear()
            c0, t0 = cpu_children(), time.perf_counter()
            r = evaluate(art, data, "loihi", batch_size=a.samples, workers=1)
            wall, cpu = time.perf_counter() - t0, cpu_children() - c0
            m = re.search(r"back to back\): ok in ([0-9.]+) s", "".join(logs))
            worker_s = float(m.group(1)) if m else float("nan")
            net = lower(load_artifact(art).graph)
            used = lanes.lane_count(net, [p.name for p in net.procs], a.samples)
            same = first is None or (r["accuracy"] == first["accuracy"] and r["confusion"] == first["confusion"])
            first = first or r
            print(f"| {name} | {k} | {used} | {worker_s:.2f} | {1000 * worker_s / a.samples:.1f} | {wall:.1f} | "
                  f"{cpu:.1f} | {r['accuracy']:.4f} | {'yes' if same else 'NO'} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
