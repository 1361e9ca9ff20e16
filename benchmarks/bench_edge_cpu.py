"""Edge CPU latency: window graph vs step graph vs a torch eager step loop vs the emulator.

Network 784-512-512-10 LIF (Affine → LIF ×3, τ = 20 ms, dt = 1 ms, Euler), T = 100 steps of
Poisson input spikes (rate 0.15), batch 1 and 32, ONE thread everywhere (ORT
``intra_op_num_threads=1``, ``torch.set_num_threads(1)``, ``OPENBLAS_NUM_THREADS=1``).
Variants, timed per inference (a whole T-step run), interleaved round-robin in one process so the
ratios share the machine's load:

* ``onnx-window``  the edge-cpu window graph (layer-major MatMul over T·B rows, Scan per LIF);
* ``onnx-step``    the streaming step graph, one ``InferenceSession.run`` per step;
* ``torch-loop``   float32 torch eager: ``nn.Linear`` + element-wise LIF, a Python loop over T;
* ``emulator``     neurocc's emulator on the same graph (float64 reference or integer), numpy
                   kernels (the reference implementation);
* ``emu-numba``    the same with the compiled numba kernels (``kernels="numba"``: integer graphs);
* ``emu-torch``    the same on the batched path (``device="cpu"``; float graphs: float64);
* ``emu-f32``      float graphs only: the batched path in float32 (``device="cpu",
                   float_dtype="float32"``), against the same float32 torch loop.

``--numerics float32`` compiles for ``edge-cpu-f32``; ``int8`` for ``edge-cpu`` (the torch loop
stays float32: it is the baseline a user would otherwise deploy). Spikes of the ONNX forms are
checked against the emulator (identical in int8; identical or within float32 rounding in float).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_edge_cpu.py [--reps 15] [--numerics float32,int8] [--gemm]

``--gemm`` adds the bound at each batch: the matrix products alone (torch's per-step ``Linear``
calls vs the window graph's one product per layer, float32 and int8), with their G ops/s.
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
    prog = prepare(graph, kernels="numpy")
    fns = {"onnx-window": lambda: window.run(feed)["y"],
           "onnx-step": lambda: step.run(feed)["y"],
           "emulator": lambda: simulate(graph, {"x": x}, program=prog).outputs["y"]}
    if graph.numerics is not None:
        nb = prepare(graph, kernels="numba")
        fns["emu-numba"] = lambda: simulate(graph, {"x": x}, program=nb).outputs["y"]
    tp = prepare(graph, device="cpu")
    fns["emu-torch"] = lambda: simulate(graph, {"x": x}, program=tp).outputs["y"]
    if graph.numerics is None:
        f32 = prepare(graph, device="cpu", float_dtype="float32")
        fns["emu-f32"] = lambda: simulate(graph, {"x": x}, program=f32).outputs["y"]
    return fns


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
    times = _interleaved(fns, reps)
    base_med, base_min = statistics.median(times["torch-loop"]), min(times["torch-loop"])
    print(f"\n{numerics}, batch {batch}, T={steps}, {reps} interleaved reps, output spikes "
          f"{int(ref.sum())}; vs emulator: {agree}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<12} {'median ms':>10} {'min ms':>9} {'speed-up vs torch (median, min)':>34}")
    for k, ts in times.items():
        med, mn = statistics.median(ts), min(ts)
        print(f"{k:<12} {1e3 * med:>10.2f} {1e3 * mn:>9.2f} {base_med / med:>20.2f}x {base_min / mn:>8.2f}x")


def gemm_ceiling(batch: int, steps: int, reps: int, fg) -> None:
    """The structural bound at this batch: the matrix products alone, both ways, interleaved.

    ``torch 32-row``: the torch loop's ``nn.Linear`` calls only (one (B, in) @ (in, out) per layer
    and step); ``ort f32`` / ``ort int8``: the window graph's products only (one (T·B, in) product
    per layer: float32 MatMul, u8 × s8 MatMulInteger). No speed-up of the neuron updates can push
    ``torch-loop / window`` past ``torch-loop / (window's products)``."""
    import torch
    from onnx import TensorProto, helper

    from neurocc.backends.edge_cpu.session import make_session

    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    ws = [np.asarray(fg.nodes[f"fc{i}"].weight, np.float32) for i in range(len(SIZES) - 1)]
    xs = [(rng.random((steps * batch, n)) < 0.15) for n in SIZES[:-1]]
    lins = [torch.nn.Linear(w.shape[1], w.shape[0]) for w in ws]
    xts = [torch.from_numpy(x.astype(np.float32)).reshape(steps, batch, -1) for x in xs]

    def torch_mm() -> None:
        with torch.inference_mode():
            for lin, xt in zip(lins, xts, strict=True):
                for t in range(steps):
                    lin(xt[t])

    def ort_model(int8: bool):
        nodes, inits, ins, feed = [], [], [], {}
        for i, w in enumerate(ws):
            wt = np.ascontiguousarray((np.clip(np.rint(w * 40), -128, 127).astype(np.int8) if int8 else w).T)
            inits.append(helper.make_tensor(f"w{i}", TensorProto.INT8 if int8 else TensorProto.FLOAT, wt.shape,
                                            wt.tobytes(), raw=True))
            dt, npdt = (TensorProto.UINT8, np.uint8) if int8 else (TensorProto.FLOAT, np.float32)
            ins.append(helper.make_tensor_value_info(f"x{i}", dt, list(xs[i].shape)))
            nodes.append(helper.make_node("MatMulInteger" if int8 else "MatMul", [f"x{i}", f"w{i}"], [f"y{i}"]))
            feed[f"x{i}"] = xs[i].astype(npdt)
        outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.INT32 if int8 else TensorProto.FLOAT, None)
                for i in range(len(ws))]
        g = helper.make_graph(nodes, "mm", ins, outs, inits)
        sess = make_session(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8))
        return lambda: sess.run(None, feed)

    fns = {"torch 32-row" if batch == 32 else f"torch {batch}-row": torch_mm,
           "ort f32": ort_model(False), "ort int8": ort_model(True)}
    times = _interleaved(fns, reps)
    macs = steps * batch * sum(w.size for w in ws)
    print(f"\nmatrix products only, batch {batch}, T={steps} ({2 * macs / 1e9:.2f} G ops per inference)")
    for k, ts in times.items():
        mn = min(ts)
        print(f"{k:<14} {1e3 * statistics.median(ts):>8.2f} ms median {1e3 * mn:>8.2f} ms min  "
              f"{2 * macs / mn / 1e9:>7.1f} G ops/s")


def _interleaved(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--numerics", default="float32,int8")
    ap.add_argument("--gemm", action="store_true", help="also time the matrix products alone (the bound)")
    args = ap.parse_args()
    fg = float_graph()
    for numerics in args.numerics.split(","):
        for batch in map(int, args.batch.split(",")):
            bench(numerics, batch, args.steps, args.reps, fg)
    if args.gemm:
        for batch in map(int, args.batch.split(",")):
            gemm_ceiling(batch, args.steps, args.reps, fg)


if __name__ == "__main__":
    main()
