"""Emulator speed vs Lava fixed_pt and vs this machine's memory/compute roofline.

Network (lava-loihi.md §4): Input(N) → [QDense(N×N, int8 mixed weights as 2·q with
weight_exp −1) → QLIF(du=2048, dv=1024)] × 3 under the loihi profile, ~10 % input rate, each
layer's vth bisected on the emulator so that it fires at ~10 %. Everything is measured in one
run and printed with its ratios:

* emulator ms per step (best of repeats), batch 1 and batch 32 (per sample-step), for each
  kernel set of ``--kernels`` (``numpy``: the reference; ``numba``: the compiled kernels of
  ``neurocc.backends.emulator.accel``, compiled before timing; outputs checked identical);
* event synaptic ops/s = Σ_t Σ_layers (presynaptic spikes × fan-out) / time;
* Lava ms per step = (wall(T_long) − wall(T_short)) / (T_long − T_short), which cancels the
  worker start, the Lava import and compile (Lava has no batch: the batch-32 ratio is per
  sample-step); the spikes of the Lava run are checked equal to the emulator's;
* ``--rounds`` rounds (default 2) of: the two Lava runs, then every emulator timing and the
  stream bandwidth, so that the load of a shared machine weighs on both sides of each ratio;
  each quantity keeps its best round;
* roofline, batch 1: bytes of weight rows the active inputs select per step (at the
  emulator's storage width) / stream bandwidth (a large numpy copy, read + write bytes);
* roofline, batch 32: 3·N² multiply-adds per sample-step / float32 GEMM rate of this machine.

BLAS is pinned to one thread. Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_emulator.py [--sizes 100 1000 4000]
        [--steps 100] [--lava-steps 400] [--no-lava] [--kernels numpy numba] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def build(n: int, vth: list[int], seed: int = 0):
    from neurocc.ir import nodes as N
    from neurocc.ir import qnodes as Q
    from neurocc.ir.graph import Edge, Graph

    rng = np.random.default_rng(seed)
    nodes, edges, prev = {"input": N.Input(shape=(n,))}, [], "input"
    for k in range(3):
        nodes[f"d{k}"] = Q.QDense(weight=2 * rng.integers(-128, 128, (n, n)), weight_exp=-1)
        nodes[f"l{k}"] = Q.QLIF(du=np.full(n, 2048), dv=np.full(n, 1024), vth=np.full(n, vth[k]),
                                bias_mant=np.zeros(n, np.int64), bias_exp=np.zeros(n, np.int64))
        edges += [Edge(prev, f"d{k}"), Edge(f"d{k}", f"l{k}", 1)]
        prev = f"l{k}"
    nodes["output"] = N.Output(shape=(n,))
    edges.append(Edge(prev, "output"))
    return Graph(nodes, edges, numerics="loihi", name=f"bench{n}")


def tune(n: int, x: np.ndarray, rate: float = 0.1) -> list[int]:
    """Bisect each layer's vth (layer by layer) so it fires at about ``rate``."""
    from neurocc.backends.emulator import simulate

    vth = [1 << 16] * 3
    for k in range(3):
        lo, hi = 0, 1 << 16
        while hi - lo > 1:
            vth[k] = (lo + hi) // 2
            r = simulate(build(n, vth), {"input": x}, record=True).traces[f"l{k}/out"].mean()
            lo, hi = (vth[k], hi) if r > rate else (lo, vth[k])
        vth[k] = hi
    return vth


def best(f, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def bandwidth() -> float:
    a = np.ones(1 << 25)                       # 256 MiB
    b = np.empty_like(a)
    t = best(lambda: np.copyto(b, a), 3)
    return 2 * a.nbytes / t                    # bytes read + written per second


def gemm_rate(n: int) -> float:
    rng = np.random.default_rng(0)
    a = (rng.random((3200, n)) < 0.1).astype(np.float32)
    w = rng.integers(-128, 128, (n, n)).astype(np.float32)
    return a.shape[0] * n * n / best(lambda: a @ w, 2)   # multiply-adds per second


def lava_walls(g, x, t_short: int, t_long: int) -> tuple[dict[int, float], np.ndarray]:
    """Wall seconds of a ``t_short`` and a ``t_long`` step Lava run, and the long run's spikes."""
    from neurocc.backends.loihi import run_lava

    walls, out = {}, None
    for T in (t_short, t_long):
        t = time.perf_counter()
        out = run_lava(g, {"input": x[:T]}, record=False)
        walls[T] = time.perf_counter() - t
    return walls, out["output"]


def lava_status() -> str | None:
    """None when Lava can run here, else why not."""
    try:
        from neurocc.backends.loihi import lava_available, unavailable_reason
    except ImportError as err:
        return f"neurocc.backends.loihi is not available ({err})"
    return None if lava_available() else unavailable_reason()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 4000])
    ap.add_argument("--steps", type=int, default=100, help="emulator steps (up to 1000)")
    ap.add_argument("--lava-steps", type=int, default=400, help="long Lava run (the short one is 1/8 of it)")
    ap.add_argument("--no-lava", action="store_true")
    ap.add_argument("--kernels", nargs="+", default=["numpy", "numba"], choices=["numpy", "numba"])
    ap.add_argument("--rounds", type=int, default=2, help="rounds of (Lava runs, emulator timings, bandwidth)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from neurocc.backends.emulator import prepare, simulate

    print(f"stream bandwidth at the start (numpy copy, read+write): {bandwidth() / 1e9:.1f} GB/s; BLAS threads: 1; "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for n in args.sizes:
        T = args.steps
        rng = np.random.default_rng(1)
        xl = (rng.random((max(T, args.lava_steps), 1, n)) < 0.1).astype(np.uint8)
        x1 = xl[:T]
        x32 = (rng.random((T, 32, n)) < 0.1).astype(np.uint8)
        vth = tune(n, x1)
        g = build(n, vth)
        prog = prepare(g, kernels="numpy")
        rec = simulate(g, {"input": x1}, record=True, program=prog).traces
        pre = [x1] + [rec[f"l{k}/out"] for k in range(2)]
        synops = sum(float(p.sum()) * n for p in pre)              # per T steps, batch 1
        rates = [float(rec[f"l{k}/out"].mean()) for k in range(3)]
        ref = {b: simulate(g, {"input": xb}, program=prog).outputs["output"] for b, xb in ((1, x1), (32, x32))}
        progs = {kern: prepare(g, kernels=kern) for kern in args.kernels}
        for kern, pk in progs.items():
            for b, xb in ((1, x1), (32, x32)):       # warm-up (compiles), and the outputs must agree
                assert np.array_equal(simulate(g, {"input": xb}, program=pk).outputs["output"], ref[b]), kern
        lt = args.lava_steps
        why = "skipped (--no-lava)" if args.no_lava else lava_status()
        emu_sp = simulate(g, {"input": xl[:lt]}, program=prog).outputs["output"] if why is None else None
        # rounds: Lava's two runs, then every emulator timing and the bandwidth, so the load of
        # the moment weighs on both sides of each ratio; the best of the rounds is kept
        times = {kern: [np.inf, np.inf] for kern in args.kernels}
        walls, bw_n, note = {}, 0.0, why
        for _ in range(args.rounds):
            if why is None:
                w, spikes = lava_walls(g, xl, max(lt // 8, 10), lt)
                walls = {k: min(walls.get(k, np.inf), v) for k, v in w.items()}
                note = "spikes identical" if np.array_equal(spikes, emu_sp) else "SPIKES DIFFER"
            for kern, pk in progs.items():
                def run(xb, pk=pk, g=g):
                    return lambda: simulate(g, {"input": xb}, program=pk)
                times[kern][0] = min(times[kern][0], best(run(x1), 3) / T)
                times[kern][1] = min(times[kern][1], best(run(x32), 2) / (T * 32))
            bw_n = max(bw_n, bandwidth())
        lava = None
        if walls:
            (ts, ws), (tl, wl) = sorted(walls.items())
            lava = (wl - ws) / (tl - ts) if wl > ws else None
            note += "" if lava else "; the long Lava run was not slower than the short one (load): no ratio"
        e1, e32 = times[args.kernels[-1]]
        itemsize = prog.kernels["d0"].W.w_t.itemsize
        bytes_step = synops / T * itemsize
        roof1 = bytes_step / bw_n
        roof32 = 3 * n * n / gemm_rate(n)
        rows.append((n, rates, e1, e32, synops / T, lava, note, roof1, roof32, itemsize, times))
    print()
    print("| N | rates l1/l2/l3 | emu b1 ms/step | emu b32 ms/sample-step | emu b1 SynOps/s | Lava ms/step "
          "| Lava SynOps/s | b1 × Lava | b32 × Lava (per sample-step) | b1 / bandwidth bound | b32 / GEMM bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"(emu = the {args.kernels[-1]} kernels)")
    for n, rates, e1, e32, so, lava, note, roof1, roof32, *_ in rows:
        lv = f"{lava * 1e3:.2f}" if lava else "n/a"
        print(f"| {n} | {'/'.join(f'{r:.3f}' for r in rates)} | {e1 * 1e3:.3f} | {e32 * 1e3:.4f} | {so / e1:.2e} | {lv} "
              f"| {so / lava:.2e} | {lava / e1:.1f}× | {lava / e32:.1f}× | {e1 / roof1:.2f}× | {e32 / roof32:.2f}× |"
              if lava else
              f"| {n} | {'/'.join(f'{r:.3f}' for r in rates)} | {e1 * 1e3:.3f} | {e32 * 1e3:.4f} | {so / e1:.2e} | n/a "
              f"| n/a | n/a | n/a | {e1 / roof1:.2f}× | {e32 / roof32:.2f}× |")
    for n, *_, note, roof1, roof32, itemsize, _ in rows:
        print(f"N={n}: Lava: {note}; bandwidth bound {roof1 * 1e3:.4f} ms/step ({itemsize}-byte weights), "
              f"GEMM bound {roof32 * 1e3:.4f} ms/sample-step")
    if len(args.kernels) > 1:
        print()
        print("| N | kernels | b1 ms/step | b32 ms/sample-step | b1 × Lava | b32 × Lava | b1 / bandwidth bound |")
        print("|---|---|---|---|---|---|---|")
        for n, *_, lava, note, roof1, roof32, itemsize, times in rows:
            for kern, (t1, t32) in times.items():
                lv = (f"{lava / t1:.1f}×", f"{lava / t32:.1f}×") if lava else ("n/a", "n/a")
                print(f"| {n} | {kern} | {t1 * 1e3:.4f} | {t32 * 1e3:.5f} | {lv[0]} | {lv[1]} | {t1 / roof1:.2f}× |")


if __name__ == "__main__":
    main()
