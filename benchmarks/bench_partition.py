"""Benchmark: partition + place of synthetic networks at 10k, 100k and 1M neurons.

Two families:

* ``dense``: Input(100) → a chain of dense layers 100 wide (Affine 100×100 → LIF); at 1M neurons
  that is 10,000 layers and 100M synapses (fan-in 100 everywhere).
* ``conv``: Input(2, S, S) → Conv 3×3 (16 ch) → IF → Conv 3×3 stride 2 (32 ch) → IF →
  SumPool 2 → Conv 3×3 (64 ch) → IF → Flatten → Affine(10) → IF, with S chosen so the network
  has about N neurons (shared-kernel storage on the ``spinnaker``-numerics target).

Weights are zero-stride broadcast views (the mapper never reads weight values of float ops), so
a 100M-synapse network costs no memory. Timed: ``partition`` + ``place`` only (graph building is
not timed). Prints a table and the growth ratios measured in this run (time for 10× neurons);
the goal is 1M neurons + 100M synapses under 10 s on 2 cores and each 10× step within 12×.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_partition.py [--repeat 3]``
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from neurocc.compiler.passes.partition import partition
from neurocc.compiler.passes.place import place
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import IF, LIF, Affine, Conv2d, Flatten, Input, Output, SumPool2d
from neurocc.targets import Limits, Target

LOIHI_LIKE = Target("loihi-like", "Loihi 1 per-core limits, unlimited chips", "loihi", "loihi", 1e-3,
                    Limits(chips=None, cores_per_chip=128, neurons_per_core=1024,
                           synapse_memory_bits_per_core=1 << 20, fan_in_axons_per_core=4096,
                           fan_out_axons_per_core=4096, weight_bits=8))
SPINNAKER_LIKE = Target("spinnaker-like", "SpiNNaker 1 limits, unlimited chips", "spinnaker", "spinnaker", 1e-3,
                        Limits(chips=None, cores_per_chip=16, neurons_per_core=256,
                               sdram_bytes_per_chip=123_469_792, routing_entries_per_chip=1023,
                               weight_bits=16, bits_per_synapse=32))


def _const(value: float, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.float32(value), shape)


def _lif(n: int) -> LIF:
    s = (n,)
    return LIF(tau=_const(0.01, s), r=_const(1, s), v_leak=_const(0, s), v_threshold=_const(1, s),
               v_reset=_const(0, s))


def _if(shape: tuple[int, ...]) -> IF:
    return IF(r=_const(1, shape), v_threshold=_const(1, shape), v_reset=_const(0, shape))


def dense_net(n_neurons: int, width: int = 100) -> Graph:
    """Input(width) then n_neurons / width dense layers of ``width`` LIF neurons."""
    nodes: dict[str, object] = {"in": Input(shape=(width,))}
    edges, prev = [], "in"
    for k in range(n_neurons // width):
        nodes[f"w{k}"] = Affine(weight=_const(0.01, (width, width)), bias=_const(0, (width,)))
        nodes[f"l{k}"] = _lif(width)
        edges += [Edge(prev, f"w{k}"), Edge(f"w{k}", f"l{k}")]
        prev = f"l{k}"
    nodes["out"] = Output()
    edges.append(Edge(prev, "out"))
    return Graph(nodes, tuple(edges), dt=1e-3, name=f"dense-{n_neurons}")


def conv_net(n_neurons: int) -> Graph:
    """A 4-layer conv net with about ``n_neurons`` neurons (16·S² + 8·S² + 4·S² + 10)."""
    s = max(8, 4 * round(math.sqrt(n_neurons / 28) / 4))
    h2, h3 = s // 2, s // 4
    rng = np.random.default_rng(0)
    nodes = {
        "in": Input(shape=(2, s, s)),
        "c1": Conv2d(weight=rng.normal(size=(16, 2, 3, 3)), bias=np.zeros(16), padding=(1, 1)),
        "n1": _if((16, s, s)),
        "c2": Conv2d(weight=rng.normal(size=(32, 16, 3, 3)), bias=np.zeros(32), stride=(2, 2), padding=(1, 1)),
        "n2": _if((32, h2, h2)),
        "p2": SumPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "c3": Conv2d(weight=rng.normal(size=(64, 32, 3, 3)), bias=np.zeros(64), padding=(1, 1)),
        "n3": _if((64, h3, h3)),
        "fl": Flatten(),
        "fc": Affine(weight=_const(0.01, (10, 64 * h3 * h3)), bias=_const(0, (10,))),
        "n4": _if((10,)),
        "out": Output(),
    }
    return Graph.chain(*nodes.items(), dt=1e-3, name=f"conv-{n_neurons}")


def measure(graph: Graph, target: Target, repeat: int) -> tuple[float, float, int, int, int, int]:
    """Best-of-``repeat`` wall and CPU seconds for partition + place; cores, chips, neurons,
    synapses. CPU time (this process only) is printed too because the 2 cores are shared: wall
    time then includes waiting for the CPU."""
    best, best_cpu = math.inf, math.inf
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        part = partition(graph, target)
        pl = place(part, target, graph)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    neurons = sum(lp.n_neurons for lp in part.layers.values() if not part.network.layers[lp.name].is_input)
    synapses = sum(s.usage.synapses for lp in part.layers.values() for s in lp.slices)
    return best, best_cpu, pl.n_cores, pl.n_chips, neurons, synapses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    cases = [("dense", dense_net, LOIHI_LIKE), ("conv", conv_net, LOIHI_LIKE), ("conv", conv_net, SPINNAKER_LIKE)]
    print(f"{'network':<8} {'target':<15} {'neurons':>9} {'synapses':>12} {'cores':>6} {'chips':>5} "
          f"{'wall s':>8} {'x prev':>7} {'cpu s':>8} {'x prev':>7}")
    for family, build, target in cases:
        prev = None
        for n in sizes:
            g = build(n)
            sec, cpu, cores, chips, neurons, syn = measure(g, target, args.repeat)
            ratio = f"{sec / prev[0]:.2f}" if prev else "-"
            cratio = f"{cpu / prev[1]:.2f}" if prev else "-"
            print(f"{family:<8} {target.name:<15} {neurons:>9} {syn:>12} {cores:>6} {chips:>5} {sec:>8.3f} {ratio:>7}"
                  f" {cpu:>8.3f} {cratio:>7}", flush=True)
            prev = (sec, cpu)


if __name__ == "__main__":
    main()
