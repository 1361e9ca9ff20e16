"""Edge CPU latency: window graph vs step graph vs a torch eager step loop vs the emulator.

Network 784-512-512-10 LIF (Affine → LIF ×3, τ = 20 ms, dt = 1 ms, Euler), T = 100 steps of
Poisson input spikes (rate 0.15), batch 1 and 32, ONE thread everywhere (ORT
``intra_op_num_threads=1``, ``torch.set_num_threads(1)``, ``OPENBLAS_NUM_THREADS=1``).
Variants, timed per inference (a whole T-step run), interleaved round-robin in one process so the
ratios share the machine's load:

* ``onnx-window``  the edge-cpu window graph (layer-major MatMul over T·B rows, Scan per LIF);
* ``onnx-step``    the streaming step graph, one ``InferenceSession.run`` per step;
* ``torch-loop``   float32 torch eager: ``nn.Linear`` + element-wise LIF, a Python loop over T;
* ``emulator``     neurocc's emulator on the same graph (float64 reference or integer).

``--numerics float32`` compiles for ``edge-cpu-f32``; ``int8`` for ``edge-cpu`` (the torch loop
stays float32: it is the baseline a user would otherwise deploy). Spikes of the ONNX forms are
checked against the emulator (identical in int8; identical or within float32 rounding in float).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_edge_cpu.py [--reps 15] [--numerics float32,int8]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

SIZES = (784, 512, 512, 10)


def float_graph(seed: int = 0):
    from neurocc.ir.graph import Edge, Graph
    from neurocc.ir.nodes import LIF, Affine, Input, Output

    rng = np.random.default_rng(seed)
    nodes: dict = {"x": Input(shape=(SIZES[0],))}
    edges, prev = [], "x"
    for i, (n_in, n_out) in enumerate(zip(SIZES, SIZES[1:])):
        w = rng.normal(0.0, 2.5 / np.sqrt(n_in * 0.15), (n_out, n_in))
        nodes[f"fc{i}"] = Affine(weight=w, bias=np.zeros(n_out))
        nodes[f"lif{i}"] = LIF(tau=np.full(n_out, 0.02), r=np.full(n_out, 20.0), v_leak=np.zeros(n_out),
                               v_threshold=np.ones(n_out), v_reset=np.zeros(n_out))
        edges += [Edge(prev, f"fc{i}"), Edge(f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["y"] = Output(shape=(SIZES[-1],))
    edges.append(Edge(prev, "y"))
    return Graph(nodes, edges, name="lif_784_512_512_10").verify()


def torch_loop(graph) -> Callable[[np.ndarray], np.ndarray]:
    """A float32 torch eager step loop of the float graph (the edge baseline)."""
    import torch

    from neurocc.ir.discrete import decay_factors

    torch.set_num_threads(1)
    layers = []
    for i in range(len(SIZES) - 1):
        fc, lif = graph.nodes[f"fc{i}"], graph.nodes[f"lif{i}"]
        lin = torch.nn.Linear(fc.weight.shape[1], fc.weight.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(np.asarray(fc.weight), dtype=torch.float32))
            lin.bias.copy_(torch.tensor(np.asarray(fc.bias), dtype=torch.float32))
        d = decay_factors(lif, graph.dt, graph.method)
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        layers.append((lin, t(d.alpha_v), t(d.gain_v), t(lif.v_threshold)))

    def run(x: np.ndarray) -> np.ndarray:
        xs = torch.from_numpy(x)
        vs = [torch.zeros(x.shape[1], lin.out_features) for lin, *_ in layers]
        out = []
        with torch.inference_mode():
            for t in range(x.shape[0]):
                s = xs[t]
                for k, (lin, a, g, th) in enumerate(layers):
                    v = a * vs[k] + g * lin(s)
                    s = (v > th).float()
                    vs[k] = torch.where(s > 0, 0.0, v)
                out.append(s)
        return torch.stack(out).numpy()

    return run


def variants(graph, x: np.ndarray) -> dict[str, Callable[[], object]]:
    from neurocc.backends import edge_cpu
    from neurocc.backends.edge_cpu.session import StepRunner, WindowRunner
    from neurocc.backends.emulator import prepare, simulate

    feed = edge_cpu.prepare_inputs(graph, {"x": x}, None)
    window = WindowRunner(edge_cpu.emit(graph, "window"))
    step = StepRunner(edge_cpu.emit(graph, "step"))
    prog = prepare(graph)
    return {"onnx-window": lambda: window.run(feed)["y"],
            "onnx-step": lambda: step.run(feed)["y"],
            "emulator": lambda: simulate(graph, {"x": x}, program=prog).outputs["y"]}


def bench(numerics: str, batch: int, steps: int, reps: int, fg) -> None:
    from neurocc.compiler.pipeline import compile_graph

    target = "edge-cpu-f32" if numerics == "float32" else "edge-cpu"
    graph = compile_graph(fg, target, dt=1e-3).graph
    x = (np.random.default_rng(1).random((steps, batch, SIZES[0])) < 0.15).astype(np.float32)
    fns = variants(graph, x)
    tl = torch_loop(compile_graph(fg, "edge-cpu-f32", dt=1e-3).graph)
    fns["torch-loop"] = lambda: tl(x)
    outs = {k: np.asarray(f()) for k, f in fns.items()}      # warm-up + agreement check
    ref = outs["emulator"]
    agree = {k: "identical" if np.array_equal(v, ref) else f"{int(np.count_nonzero(v != ref))} differ"
             for k, v in outs.items() if k != "emulator"}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    base_med, base_min = statistics.median(times["torch-loop"]), min(times["torch-loop"])
    print(f"\n{numerics}, batch {batch}, T={steps}, {reps} interleaved reps, output spikes "
          f"{int(ref.sum())}; vs emulator: {agree}")
    print(f"{'variant':<12} {'median ms':>10} {'min ms':>9} {'speed-up vs torch (median, min)':>34}")
    for k, ts in times.items():
        med, mn = statistics.median(ts), min(ts)
        print(f"{k:<12} {1e3 * med:>10.2f} {1e3 * mn:>9.2f} {base_med / med:>20.2f}x {base_min / mn:>8.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--numerics", default="float32,int8")
    args = ap.parse_args()
    fg = float_graph()
    for numerics in args.numerics.split(","):
        for batch in map(int, args.batch.split(",")):
            bench(numerics, batch, args.steps, args.reps, fg)


if __name__ == "__main__":
    main()
