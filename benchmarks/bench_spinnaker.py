"""SpiNNaker backend: agreement with the float reference, and costs, measured in one run.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_spinnaker.py [--brian2] [--vboard]

For random feed-forward nets (LIF, CubaLIF, IF; 100 → 200 → 100, 300 steps, batch 2, 10 %
input rate) it prints, per layer and after SpiNNaker's one tick per projection: cosine of
time-averaged activity (the NIR paper's metric), per-neuron spike-count error, the fraction of
reference spikes matched exactly / within ±1 / ±2 steps, and output class agreement, for
pyNN.nest, the ``spinnaker`` fixed-point emulator, and (``--brian2``) pyNN.brian2 on a small net;
(``--vboard``) sPyNNaker's virtual-board mapping time and cores against neurocc's partition.
Timings are wall-clock ratios within this run, not targets.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_numerics_spinnaker import ff_graph, spikes

from neurocc.backends import spinnaker
from neurocc.backends.emulator import simulate
from neurocc.compiler.passes.quantize_spinnaker import quantize_spinnaker
from neurocc.runtime import compare


def matched(ref: np.ndarray, got: np.ndarray, tol: int) -> float:
    """Fraction of reference spikes with a spike of ``got`` within ±tol steps (same neuron; each
    spike of ``got`` used once, greedily in time order)."""
    r = ref.reshape(len(ref), -1)
    g = got.reshape(len(got), -1)
    hit = total = 0
    for n in range(r.shape[1]):
        a, b = np.flatnonzero(r[:, n]), list(np.flatnonzero(g[:, n]))
        total += len(a)
        for t in a:
            for k, u in enumerate(b):
                if abs(u - t) <= tol:
                    hit += 1
                    del b[k]
                    break
    return hit / total if total else 1.0


def report(name: str, ref, got: dict, layers=("l0", "l1")) -> None:
    for layer in layers:
        a, b = ref.traces[f"{layer}/out"], np.asarray(got[f"{layer}/out"])
        n = len(a) - 3
        a, b = a[:n], b[:n]
        sce = compare.spike_count_error(a, b)
        print(f"  {name:<9} {layer}: cosine {compare.activity_cosine(a, b):.5f}  count error {sce['mean_abs']:.3f}"
              f" ({100 * sce['relative']:.2f} %)  matched exact/±1/±2 {matched(a, b, 0):.4f}/{matched(a, b, 1):.4f}/"
              f"{matched(a, b, 2):.4f}  spikes {int(a.sum())}/{int(b.sum())}")
    a, b = ref.outputs["out"][:-3], np.asarray(got["out"])[:-3]
    print(f"  {name:<9} class agreement {compare.class_agreement(a, b):.3f}")


def fixed_point(g, x):
    q, _ = quantize_spinnaker(g, None)
    res = simulate(q, {"in": x}, record=True)
    out = {}
    for key, lag in (("l0", 1), ("l1", 2)):
        tr = res.traces[f"{key}/out"].astype(np.float64)
        out[f"{key}/out"] = np.concatenate([tr[lag:], np.zeros((lag, *tr.shape[1:]))])
    o = res.outputs["out"].astype(np.float64)
    out["out"] = np.concatenate([o[2:], np.zeros((2, *o.shape[1:]))])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--brian2", action="store_true")
    ap.add_argument("--vboard", action="store_true")
    args = ap.parse_args()
    for kind in ("LIF", "CubaLIF", "IF"):
        g = ff_graph(kind, sizes=(100, 200, 100), seed=11)
        x = spikes((300, 2, 100), seed=12)
        t = time.perf_counter()
        ref = simulate(g, {"in": x}, record=True)
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        nest = spinnaker.run(g, {"in": x}, record=True, simulator="nest", timeline="reference")
        t_nest = time.perf_counter() - t
        t = time.perf_counter()
        fx = fixed_point(g, x)
        t_fx = time.perf_counter() - t
        print(f"{kind}: 100-200-100, {spinnaker.lower(g).n_synapses} synapses, 300 steps x 2; time nest/reference "
              f"{t_nest / t_ref:.0f}x, spinnaker-emulator/reference {t_fx / t_ref:.1f}x")
        report("nest", ref, nest)
        report("spinnaker", ref, fx)
    if args.brian2:
        g = ff_graph("CubaLIF", sizes=(30, 60, 30), seed=13)
        x = spikes((200, 1, 30), seed=14)
        ref = simulate(g, {"in": x}, record=True)
        t = time.perf_counter()
        nest = spinnaker.run(g, {"in": x}, record=True, simulator="nest", timeline="reference")
        t_nest = time.perf_counter() - t
        t = time.perf_counter()
        b2 = spinnaker.run(g, {"in": x}, record=True, simulator="brian2", timeline="reference")
        t_b2 = time.perf_counter() - t
        print(f"brian2 (numpy codegen), 30-60-30 ({spinnaker.lower(g).n_synapses} synapses): time brian2/nest "
              f"{t_b2 / t_nest:.1f}x")
        report("brian2", ref, b2)
    if args.vboard:
        from neurocc.backends.spinnaker.virtual_board import map_network
        from neurocc.compiler.passes.partition import partition
        from neurocc.compiler.passes.quantize_spinnaker import layer_caps
        from neurocc.targets import get_target

        tgt = get_target("spinnaker")
        g = ff_graph("LIF", sizes=(100, 1000, 400), seed=15)
        net = spinnaker.lower(g, max_atoms=layer_caps(g, tgt))
        t = time.perf_counter()
        res = map_network(net, chips=48)
        part = partition(g, tgt)
        print(f"virtual board, 100-1000-400 ({net.n_synapses} synapses): {time.perf_counter() - t:.1f} s; "
              f"fits {res['fits']}, sPyNNaker cores {res.get('cores_per_population')} on {res.get('chips')} chip(s); "
              f"neurocc slices {({n: len(lp.slices) for n, lp in part.layers.items()})}")


if __name__ == "__main__":
    main()
