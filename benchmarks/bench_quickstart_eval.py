"""The digits quickstart's emulator evaluation (450 test digits), per kernel set, in one run.

Uses a quickstart output folder (``--qs``; made with ``neurocc quickstart --only emulator,edge-cpu
--out DIR`` when missing). For each artifact (loihi numerics ``emulator``, int8 ``edge-cpu``):

* ``evaluate``: wall time of ``neurocc.evaluate(artifact, test.npz)`` (the whole call: load,
  encode, run, decode; default kernels) and with ``device="cpu"``;
* the emulator run alone (the 450 encoded digits as one batch) with ``kernels="numpy"`` and
  ``kernels="numba"`` (compiled before timing), outputs checked identical.

Best of ``--reps``, interleaved. Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_quickstart_eval.py [--qs DIR] [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def best(f, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts)


def quickstart_folder(qs: Path) -> Path:
    """``qs``, made by ``neurocc quickstart --only emulator,edge-cpu`` unless it holds the digits."""
    if not (qs / "data" / "test.npz").is_file():
        subprocess.run([sys.executable, "-m", "neurocc", "quickstart", "--only", "emulator,edge-cpu", "--out", str(qs)],
                       check=True, stdout=subprocess.DEVNULL)
    return qs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qs", default="neurocc-quickstart-bench")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    qs = quickstart_folder(Path(args.qs))
    import neurocc
    from neurocc.backends.emulator import prepare, simulate
    from neurocc.ir.encoding import encode
    from neurocc.runtime.evaluate import artifact_encoding, latency
    from neurocc.runtime.run import as_artifact, prepare_inputs

    data = qs / "data" / "test.npz"
    with np.load(data) as z:
        x = z["x"]
    print(f"load {os.getloadavg()[0]:.2f}; {len(x)} test digits")
    print("| artifact | numerics | steps | evaluate() s | evaluate(device=cpu) s | run numpy s | run numba s | numba × numpy |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("emulator", "edge-cpu"):
        path = qs / "artifacts" / name
        art = as_artifact(path)
        enc = artifact_encoding(art.manifest)
        steps = enc.timesteps + latency(art.graph)
        xs = prepare_inputs(art, {art.inputs[0]["name"]: encode(x, enc, steps)}, "emulator")
        g = art.graph
        progs = {k: prepare(g, kernels=k) for k in ("numpy", "numba")}
        outs = {k: simulate(g, xs, steps, program=p).outputs for k, p in progs.items()}    # warm-up
        assert all(np.array_equal(outs["numpy"][o], outs["numba"][o]) for o in outs["numpy"])
        neurocc.evaluate(path, data)
        neurocc.evaluate(path, data, device="cpu")
        t_eval = best(lambda: neurocc.evaluate(path, data), args.reps)
        t_dev = best(lambda: neurocc.evaluate(path, data, device="cpu"), args.reps)
        t = {k: best(lambda p=p: simulate(g, xs, steps, program=p), args.reps) for k, p in progs.items()}
        print(f"| {name} | {g.numerics} | {steps} | {t_eval:.3f} | {t_dev:.3f} | {t['numpy']:.3f} | {t['numba']:.3f} "
              f"| {t['numpy'] / t['numba']:.2f}× |")


if __name__ == "__main__":
    main()
