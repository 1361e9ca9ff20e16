"""How far the float32 batched path (``float_dtype="float32"``) is from the float64
specification: spike mismatches per layer and digits accuracy, plus the float64 batched path.

* **digits**: the float graphs of the quickstart's artifacts (``--qs DIR``, made with ``neurocc
  quickstart --only emulator,edge-cpu --out DIR`` when missing) on the 450 test digits with the
  ``reference`` backend: ``neurocc.evaluate`` accuracy and time for the numpy reference (float64),
  ``device="cpu"`` (float64 batched) and ``device="cpu", float_dtype="float32"``; the encoded
  digits run once more with every spiking layer recorded, mismatching spikes counted against the
  numpy reference;
* **networks**: bench_edge_cpu.py's 784-512-512-10 LIF (batch 32, T = 100, ``--seeds`` inputs)
  and the networks of ``tests/test_emulator_float_path.py``: spikes per layer that differ.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_float_dtype.py [--qs DIR] [--seeds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

VARIANTS = {"float64 batched": {"device": "cpu"}, "float32 batched": {"device": "cpu", "float_dtype": "float32"}}


def mismatches(graph, inputs) -> dict[str, str]:
    """Per variant: differing spikes over all spiking layers (and over the outputs) vs the numpy reference."""
    from neurocc.backends.emulator import prepare, simulate

    ref = simulate(graph, inputs, record=True, kernels="numpy")
    spiking = [n for n, node in graph.nodes.items() if getattr(node, "spiking", False)]
    out = {}
    for name, kw in VARIANTS.items():
        got = simulate(graph, inputs, record=True, program=prepare(graph, **kw))
        n = sum(int(np.count_nonzero(ref.traces[f"{s}/out"] != got.traces[f"{s}/out"])) for s in spiking)
        total = sum(ref.traces[f"{s}/out"].size for s in spiking)
        o = sum(int(np.count_nonzero(ref.outputs[k] != got.outputs[k])) for k in ref.outputs)
        rel = max(float(np.abs(got.outputs[k] - ref.outputs[k]).max() / max(np.abs(ref.outputs[k]).max(), 1e-300))
                  for k in ref.outputs)
        out[name] = (f"{n} of {total} layer spikes, {o} of {sum(a.size for a in ref.outputs.values())} output "
                     f"values differ (max |Δ| / max |ref| {rel:.1e})")
    return out


def digits(qs: Path) -> None:
    import neurocc
    from neurocc.ir.encoding import encode
    from neurocc.runtime.evaluate import artifact_encoding, latency
    from neurocc.runtime.run import as_artifact, prepare_inputs

    data = qs / "data" / "test.npz"
    with np.load(data) as z:
        x = z["x"]
    print(f"\n## digits ({len(x)} test digits), reference backend (the float graph); load {os.getloadavg()[0]:.2f}")
    print("| artifact | variant | accuracy | evaluate s | confusion matrix = float64 numpy's |")
    print("|---|---|---:|---:|---:|")
    for name in ("emulator", "edge-cpu"):
        path = qs / "artifacts" / name
        runs = {"float64 numpy (the specification)": {}, **VARIANTS}
        res = {}
        for label, kw in runs.items():
            neurocc.evaluate(path, data, backend="reference", **kw)          # warm-up (numba compile, caches)
            t = time.perf_counter()
            res[label] = neurocc.evaluate(path, data, backend="reference", **kw)
            res[label]["s"] = time.perf_counter() - t
        base = np.array(res["float64 numpy (the specification)"]["confusion"])
        for label, r in res.items():
            same = "yes" if np.array_equal(np.array(r["confusion"]), base) else "no"
            print(f"| {name} | {label} | {r['accuracy'] * 100:.2f}% | {r['s']:.3f} | {same} |")
        art = as_artifact(path)
        g = art.float_graph
        enc = artifact_encoding(art.manifest)
        steps = enc.timesteps + latency(g)
        xs = prepare_inputs(art, {art.inputs[0]["name"]: encode(x, enc, steps)}, "reference")
        print(f"  {name}: spikes vs the numpy float64 reference: {mismatches(g, xs)}")


def networks(seeds: int) -> None:
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent / "tests")]
    from bench_edge_cpu import SIZES, float_graph
    from test_emulator_float_path import networks as test_networks

    from neurocc.compiler.pipeline import compile_graph

    print(f"\n## networks; load {os.getloadavg()[0]:.2f}")
    g = compile_graph(float_graph(), "edge-cpu-f32", dt=1e-3).graph
    for seed in range(seeds):
        x = (np.random.default_rng(seed + 1).random((100, 32, SIZES[0])) < 0.15).astype(np.float32)
        print(f"784-512-512-10, batch 32, T=100, input seed {seed + 1}: {mismatches(g, {'x': x})}")
    for tg, x in test_networks():
        print(f"test network {tg.name}: {mismatches(tg, x)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qs", default="neurocc-quickstart-bench")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_quickstart_eval import quickstart_folder

    qs = quickstart_folder(Path(args.qs))
    digits(qs)
    networks(args.seeds)


if __name__ == "__main__":
    main()
