"""Where one pyNN.nest batch's time goes, and what a kept worker saves per task (issue 18).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_nest_batch.py --qs DIR [--digits 48 225]
        [--max-batch 16 0] [--tasks 4 --task-digits 8]

``DIR`` is a quickstart folder (``artifacts/spinnaker`` and ``data/test.npz``). Part 1 runs the
emitted script's ``run`` on the first N digits in a fresh process per (N, max-batch) and times
its phases (wall and CPU seconds, CPU from ``time.process_time``: the machine is shared, CPU
seconds move less with the load): importing pyNN.nest, building populations and projections,
simulating, reading back, the rest (file I/O). Part 2 runs ``--tasks`` batches of
``--task-digits`` digits through ``pynn_run.run_network``, once a fresh process per batch (a CLI
call) and once in a kept worker (``neurocc.backends.sessions()``, a Ray worker's life), checks
the results are identical and prints the wall seconds per batch of each.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHASES = r"""
import importlib.util, json, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("T", sys.argv[1])
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)
acc = {}
def timed(key, fn):
    def wrap(*a, **k):
        w, c = time.perf_counter(), time.process_time()
        try:
            return fn(*a, **k)
        finally:
            o = acc.setdefault(key, [0.0, 0.0])
            o[0] += time.perf_counter() - w
            o[1] += time.process_time() - c
    return wrap
T.import_simulator = timed("import pyNN.nest", T.import_simulator)
T.setup = timed("setup (kernel reset)", T.setup)
T.gated_run = timed("simulate", T.gated_run)
T.collect = timed("read back", T.collect)
build = T.build
def wrapped(sim, *a):
    P, J = sim.Population, sim.Projection
    sim.Population, sim.Projection = timed("build: populations", P), timed("build: projections", J)
    try:
        return build(sim, *a)
    finally:
        sim.Population, sim.Projection = P, J
T.build = wrapped
w, c = time.perf_counter(), time.process_time()
with np.load(sys.argv[3]) as z:
    x = {k: z[k] for k in z.files}
got = T.run(sys.argv[2], "nest", x, max_batch=int(sys.argv[4]))
np.savez(sys.argv[5], **got)
total = [time.perf_counter() - w, time.process_time() - c]
acc["rest (files, outputs)"] = [t - sum(v[i] for v in acc.values()) for i, t in enumerate(total)]
acc["total"] = total
print(json.dumps(acc))
"""


def digits(qs: Path, n: int) -> dict[str, np.ndarray]:
    from neurocc.ir.artifact import load_artifact
    from neurocc.ir.encoding import encode
    from neurocc.runtime.evaluate import artifact_encoding, load_test_data
    from neurocc.runtime.run import latency

    art = load_artifact(qs / "artifacts" / "spinnaker")
    x, _ = load_test_data(str(qs / "data" / "test.npz"), tuple(art.inputs[0]["shape"]), False)
    enc = artifact_encoding(art.manifest)
    return {art.inputs[0]["name"]: encode(x[:n], enc, enc.timesteps + latency(art.graph), first_index=0)}


def phases(qs: Path, n: int, max_batch: int, tmp: Path) -> dict[str, list[float]]:
    from neurocc.backends.spinnaker.pynn_run import TEMPLATE

    np.savez(tmp / "x.npz", **digits(qs, n))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, "-c", PHASES, str(TEMPLATE), str(qs / "artifacts" / "spinnaker" / "pynn"),
                        str(tmp / "x.npz"), str(max_batch), str(tmp / "y.npz")], capture_output=True, text=True,
                       env=env, cwd=tmp, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def tasks(qs: Path, k: int, m: int) -> tuple[float, float, bool]:
    """Wall seconds per batch: fresh processes, kept worker; identical results."""
    from neurocc.backends import sessions
    from neurocc.backends.spinnaker import load_description
    from neurocc.backends.spinnaker.pynn_run import run_network

    net = load_description(qs / "artifacts" / "spinnaker")
    x = next(iter(digits(qs, k * m).values()))
    batches = [{"input": x[:, i * m:(i + 1) * m]} for i in range(k)]
    t = time.perf_counter()
    fresh = [run_network(net, b, "nest") for b in batches]
    t_fresh = (time.perf_counter() - t) / k
    with sessions():
        t = time.perf_counter()
        kept = [run_network(net, b, "nest") for b in batches]
        t_kept = (time.perf_counter() - t) / k
    same = all(np.array_equal(a[key], b[key]) for a, b in zip(fresh, kept) for key in a)
    return t_fresh, t_kept, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qs", type=Path, required=True)
    ap.add_argument("--digits", type=int, nargs="+", default=[48, 225])
    ap.add_argument("--max-batch", type=int, nargs="+", default=[16, 0])
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--task-digits", type=int, default=8)
    a = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.digits:
            for mb in a.max_batch:
                res = phases(a.qs, n, mb, Path(tmp))
                print(f"\n{n} digits, max-batch {mb}: phase | wall s | CPU s   (load {os.getloadavg()[0]:.1f})")
                for key, (w, c) in res.items():
                    print(f"  {key:22s} | {w:7.2f} | {c:7.2f}")
                print(f"  CPU ms per digit: {1e3 * res['total'][1] / n:.0f}")
    if a.tasks:
        fresh, kept, same = tasks(a.qs, a.tasks, a.task_digits)
        print(f"\n{a.tasks} batches of {a.task_digits} digits: {fresh:.2f} s per batch in fresh processes, "
              f"{kept:.2f} s in a kept worker (identical: {'yes' if same else 'NO'}; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
