"""Benchmark: pruned networks — cores, synapse memory, accuracy and compile time vs density, and
the mapping time of a 1M-neuron network at 10 % density.

Part 1 (``--models mlp,cnn``): the digits MLP (64-64-32-10) and CNN (neurocc.zoo) are trained,
magnitude-pruned per layer to 50 / 75 / 90 % with a torch fine-tune after pruning (Adam, the
pruning mask re-applied after every step, ``--finetune`` epochs), then compiled with neurocc for
each target (the pruned zeros are kept as structure). Printed per (model, density, target):
cores, synapse memory (Σ over the cores of the target's synapse-memory model, KiB), the
emulator's test accuracy on that target's artifact (the emulator is the specification of the
integer backends, which equal it bit for bit: tests/test_sparse_backends.py), and the compile
time (convert + quantize + diagnostics + mapping). ``small cores``: the cores the same executed
graph needs on the target with 1/16 of its synapse memory per core (loihi: 8 KiB on loihi1, 12 KiB
on loihi2; a hypothetical small chip, so that density shows in the core count of these small
models, whose layers otherwise fit one core each).

Part 2 (``--big``): bench_partition's dense family at 1M neurons (10,000 layers of 100 LIF
neurons, 100M potential synapses) with every weight matrix at 10 % density (distinct random
masks, int8 weights), against the same network fully dense, partition + place timed in one run.

Part 3 (``--emulator``): the emulator's synapse product ``rows_matmul`` on pruned integer
weights: the three exact paths (sparse scatter, gather, GEMM) timed on the same inputs, and the
path the cost model picks.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sparse.py [--models mlp,cnn] [--big] [--emulator]``
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGETS = ("loihi2", "loihi1", "spinnaker", "edge-cpu")
DENSITIES = (1.0, 0.5, 0.25, 0.1)


def magnitude_prune(model, keep: float) -> dict:
    """Per layer: zero the (1 − keep) fraction of smallest |w| of every Linear/Conv weight; the masks."""
    import torch

    masks = {}
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                w = mod.weight
                k = int(round((1 - keep) * w.numel()))
                mask = torch.ones_like(w, dtype=torch.bool)
                if k:
                    mask.view(-1)[torch.argsort(w.abs().view(-1), stable=True)[:k]] = False
                w.mul_(mask)
                masks[name] = mask
    return masks


def finetune(model, masks: dict, x, y, epochs: int, seed: int = 0):
    """Adam fine-tune keeping the pruned weights at zero (mask re-applied after each step)."""
    import torch

    if epochs <= 0:
        return model.eval()
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    mods = dict(model.named_modules())
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            with torch.no_grad():
                for name, m in masks.items():
                    mods[name].weight.mul_(m)
    return model.eval()


def part1(models: list[str], epochs: int, finetune_epochs: int, timesteps: int) -> None:
    import copy

    import torch

    import neurocc
    from neurocc.compiler.prune import density
    from neurocc.ir.artifact import load_artifact
    from neurocc.zoo import ann_accuracy, load_digits_split, train_digits_ann

    torch.set_num_threads(1)
    print(f"{'model':<5} {'density':>7} {'ANN acc':>7} {'target':<10} {'cores':>5} {'small cores':>11} "
          f"{'syn KiB':>9} {'emu acc':>7} {'compile s':>9}")
    for arch in models:
        image = arch == "cnn"
        x_tr, y_tr, x_te, y_te = load_digits_split(0, image=image)
        base = train_digits_ann(0, arch=arch, epochs=epochs)
        for keep in DENSITIES:
            model = copy.deepcopy(base)
            masks = magnitude_prune(model, keep)
            if keep < 1.0:
                finetune(model, masks, x_tr, y_tr, finetune_epochs)
            ann = ann_accuracy(model, x_te, y_te)
            for tgt in TARGETS:
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    art = neurocc.compile(model, tgt, Path(tmp) / "a", calibration={"x": x_tr, "y": y_tr},
                                          timesteps=timesteps, input_shape=(1, 8, 8) if image else (64,))
                    sec = time.perf_counter() - t0
                    mapping = json.loads((Path(art) / "mapping.json").read_text())
                    a = load_artifact(art)
                    dens = density(a.graph)
                    acc = neurocc.evaluate(art, {"x": x_te, "y": y_te}, backend="emulator")["accuracy"]
                cores, kib, small = mapping["cores"], _syn_kib(a.graph, tgt), _small_cores(a.graph, tgt)
                real = sum(dens.values()) / max(len(dens), 1)
                print(f"{arch:<5} {real:>7.3f} {ann:>7.3f} {tgt:<10} {cores:>5} {small:>11} {kib:>9.1f} {acc:>7.3f} "
                      f"{sec:>9.2f}", flush=True)


def _small_cores(graph, tgt: str) -> str:
    import dataclasses

    from neurocc.compiler.mapping import mapping_report
    from neurocc.targets import get_target

    t = get_target(tgt)
    if not t.limits.synapse_memory_bits_per_core:
        return "-"
    lim = dataclasses.replace(t.limits, synapse_memory_bits_per_core=t.limits.synapse_memory_bits_per_core // 16,
                              chips=None)
    return str(mapping_report(graph, dataclasses.replace(t, limits=lim), with_fixes=False).cores)


def _syn_kib(graph, tgt: str) -> float:
    from neurocc.compiler.passes.partition import partition
    from neurocc.targets import get_target

    part = partition(graph, get_target(tgt))
    return sum(s.usage.synapse_memory_bits for s in part.slices) / 8192


def part2(repeat: int) -> None:
    from bench_partition import LOIHI_LIKE, SPINNAKER_LIKE, _lif, dense_net

    from neurocc.compiler.passes.partition import partition
    from neurocc.compiler.passes.place import place
    from neurocc.ir.graph import Edge, Graph
    from neurocc.ir.nodes import Affine, Input, Output
    import dataclasses

    def sparse_net(n_neurons: int, width: int = 100, density: float = 0.1) -> Graph:
        rng = np.random.default_rng(0)
        nodes: dict = {"in": Input(shape=(width,))}
        edges, prev = [], "in"
        bias = np.broadcast_to(np.float32(0), (width,))
        for k in range(n_neurons // width):
            w = rng.integers(1, 127, size=(width, width), dtype=np.int8)
            w[rng.random((width, width)) >= density] = 0
            nodes[f"w{k}"], nodes[f"l{k}"] = Affine(weight=w, bias=bias), _lif(width)
            edges += [Edge(prev, f"w{k}"), Edge(f"w{k}", f"l{k}")]
            prev = f"l{k}"
        nodes["out"] = Output()
        edges.append(Edge(prev, "out"))
        return Graph(nodes, tuple(edges), dt=1e-3, name=f"sparse-{n_neurons}")

    def enc(t, e):  # the target's synapse encoding; expanded (not shared) dense weights on SpiNNaker
        return dataclasses.replace(t, limits=dataclasses.replace(t.limits, synapse_encoding=e, shared_conv_kernels=False))

    targets = [(enc(LOIHI_LIKE, "loihi"), "loihi"), (enc(SPINNAKER_LIKE, "spinnaker_rows"), "spinnaker_rows")]
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    print(f"{'network':<8} {'target':<15} {'encoding':<15} {'neurons':>9} {'synapses':>12} {'cores':>6} "
          f"{'chips':>5} {'syn MiB':>8} {'wall s':>8} {'cpu s':>8}")
    for name, build in (("dense", dense_net), ("sparse", sparse_net)):
        t0 = time.perf_counter()
        g = build(1_000_000)
        built = time.perf_counter() - t0
        for tgt, e in targets:
            best, best_cpu = math.inf, math.inf
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                part = partition(g, tgt)
                pl = place(part, tgt, g)
                best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
            syn = sum(s.usage.synapses for s in part.slices)
            mib = sum(s.usage.synapse_memory_bits for s in part.slices) / 8 / 2**20
            neurons = sum(lp.n_neurons for n, lp in part.layers.items() if not part.network.layers[n].is_input)
            print(f"{name:<8} {tgt.name:<15} {e:<15} {neurons:>9} {syn:>12} {pl.n_cores:>6} {pl.n_chips:>5} "
                  f"{mib:>8.1f} {best:>8.2f} {best_cpu:>8.2f}   (graph built in {built:.1f} s, not timed)", flush=True)


def part3(repeat: int) -> None:
    from neurocc.backends.emulator import linalg

    rng = np.random.default_rng(0)
    print(f"\nload average {os.getloadavg()[0]:.1f}")
    print(f"{'n_in x n_out':>12} {'density':>7} {'rows':>5} {'rate':>5} {'scatter ms':>10} {'gather ms':>9} "
          f"{'GEMM ms':>8} {'picked':>8}")
    for n, density, rate in ((1000, 0.1, 0.1), (2000, 0.02, 0.05), (4000, 0.01, 0.02), (4000, 0.002, 0.05)):
        w = rng.integers(-100, 100, (n, n))
        w[rng.random(w.shape) >= density] = 0
        W = linalg.Weights.prepare(w, integer=True)
        x = rng.random((160, n)) < rate
        times = {}
        for name, fn in (("scatter", linalg._sparse_scatter), ("gather", linalg._gather_rows), ("gemm", linalg._gemm)):
            fn(x, W, True)
            t0 = time.perf_counter()
            for _ in range(repeat):
                fn(x, W, True)
            times[name] = 1e3 * (time.perf_counter() - t0) / repeat
        calls = []
        real = linalg._sparse_scatter
        linalg._sparse_scatter = lambda *a: calls.append(1) or real(*a)  # noqa: E731
        try:
            linalg.rows_matmul(x, W, True)
        finally:
            linalg._sparse_scatter = real
        picked = "scatter" if calls else "other"
        print(f"{n:>5} x {n:<5} {density:>7} {160:>5} {rate:>5} {times['scatter']:>10.2f} {times['gather']:>9.2f} "
              f"{times['gemm']:>8.2f} {picked:>8}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn", help="digits models for part 1 ('' to skip)")
    ap.add_argument("--epochs", type=int, default=40, help="training epochs of the dense model")
    ap.add_argument("--finetune", type=int, default=10, help="fine-tune epochs after pruning")
    ap.add_argument("--timesteps", type=int, default=64)
    ap.add_argument("--big", action="store_true", help="part 2: 1M neurons at 10 %% density")
    ap.add_argument("--emulator", action="store_true", help="part 3: the emulator's sparse synapse path")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    models = [m for m in args.models.split(",") if m]
    if models:
        part1(models, args.epochs, args.finetune, args.timesteps)
    if args.big:
        part2(args.repeat)
    if args.emulator:
        part3(max(args.repeat, 3))


if __name__ == "__main__":
    main()
