"""Sigma-delta conversion on digits: accuracy and messages vs the threshold fraction.

For the digits MLP and CNN (seed 0, ``neurocc.zoo``) compiled with ``--encoding sigma-delta`` at
each threshold fraction, on the 450 test digits (emulator, the deployed integer network):

* test accuracy vs the float ANN's;
* messages per sample (graded spikes sent by the Delta and SigmaDelta layers; the Sigma read-out's
  value is the output, not counted), from the emulator's activity record;
* for dense layers, event-driven synaptic updates (each message × its non-zero synapses) vs the
  dense multiply-accumulates of the edge-cpu graph, which multiplies every step's full vector
  (zeros included) by every weight matrix.

and the sequence task (``zoo.digits_sequences``: 32 frames of drifting digits, per-frame ANN
trained on frames) with the same counts per frame. Counts here are this script's own (messages
× fan-out); the metrics module defines the full synaptic-operation accounting.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_sigma_delta_conversion.py [--fractions 0,0.02,0.05,0.1,0.2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def _fanout(graph, node: str) -> tuple[np.ndarray, int] | None:
    """(non-zero synapses per neuron of ``node`` into the next dense synapse, the matrix size);
    None when the next synapse is a conv."""
    nxt = graph.successors(node)
    while nxt and graph.nodes[nxt[0]].kind == "Flatten":
        nxt = graph.successors(nxt[0])
    if not nxt or graph.nodes[nxt[0]].kind != "QDense":
        return None
    w = graph.nodes[nxt[0]].weight
    return np.count_nonzero(w, axis=0), int(w.size)


def _counts(graph, x_time_major: np.ndarray) -> dict:
    """Messages and synaptic updates per sample on the emulator, and edge-cpu's dense MACs."""
    from neurocc.backends.emulator import simulate
    from neurocc.backends.emulator.activity import probed, sd_layers, summarise

    layers = sd_layers(graph)
    res = simulate(probed(graph, layers), {graph.inputs[0]: x_time_major})
    steps, batch = x_time_major.shape[:2]
    msgs, events, dense = 0.0, 0.0, 0
    for n in layers:
        p = res.outputs["__activity__" + n].reshape(steps, batch, -1)
        fan = _fanout(graph, n)
        if graph.nodes[n].mode != "sigma":          # the Sigma read-out's value is the output, not a message
            msgs += np.count_nonzero(p) / batch
        if fan is not None:
            events += float((p != 0).sum((0, 1)) @ fan[0]) / batch
            dense += steps * fan[1]
    act = summarise(graph, {n: res.outputs["__activity__" + n] for n in layers})
    return {"outputs": res.outputs, "messages": msgs, "events": events, "dense": dense, "activity": act}


def static(arch: str, fractions: list[float], out: Path) -> list[str]:
    import neurocc
    from neurocc import zoo
    from neurocc.ir.artifact import load_artifact

    image = arch == "cnn"
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split(0, image=image)
    model = zoo.train_digits_ann(0, arch=arch)
    ann = zoo.ann_accuracy(model, x_te, y_te)
    rows = [f"digits {arch.upper()}: ANN {100 * ann:.2f}% on {len(y_te)} test digits", "",
            "| threshold fraction | test accuracy | Δ vs ANN (points) | messages / sample | synaptic updates / sample (dense layers) | edge-cpu MACs / sample (dense layers) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for f in fractions:
        art = load_artifact(neurocc.compile(model, "loihi2", out / f"{arch}-{f}", encoding="sigma-delta",
                                            calibration={"x": x_tr, "y": y_tr}, delta_threshold=f,
                                            input_shape=x_te.shape[1:], check_source=False))
        acc = neurocc.evaluate(art.path, {"x": x_te, "y": y_te}, backend="emulator")["accuracy"]
        lag = art.manifest["conversion"]["latency"]
        xi = np.rint(x_te * art.inputs[0]["int_per_float"]).astype(np.int64)
        c = _counts(art.graph, np.broadcast_to(xi, (lag + art.manifest["timesteps"], *xi.shape)))
        rows.append(f"| {f:g} | {100 * acc:.2f}% | {100 * (acc - ann):+.2f} | {c['messages']:.0f} | "
                    f"{c['events']:.0f} | {c['dense']:,} |")
    return rows


def sequence(fraction: float, out: Path) -> list[str]:
    import neurocc
    from neurocc import zoo
    from neurocc.ir.artifact import load_artifact

    xs_tr, y_tr, xs_te, y_te = zoo.digits_sequences(0)
    model = zoo.train_digits_ann(0, data=zoo.sequence_frames(xs_tr, y_tr, every=4), epochs=20)
    ann = zoo.ann_accuracy(model, *zoo.sequence_frames(xs_te, y_te))
    cx, cy = zoo.sequence_frames(xs_tr, y_tr, every=8)
    art = load_artifact(neurocc.compile(model, "loihi2", out / "seq", encoding="sigma-delta", delta_threshold=fraction,
                                        calibration={"x": cx, "y": cy}, input_shape=(64,), check_source=False))
    lag = art.manifest["conversion"]["latency"]
    x = np.rint(np.swapaxes(xs_te, 0, 1) * art.inputs[0]["int_per_float"]).astype(np.int64)
    x = np.concatenate([x, np.zeros((lag, *x.shape[1:]), np.int64)])
    c = _counts(art.graph, x)
    frames = xs_te.shape[1]
    pred = np.asarray(c["outputs"]["output"])[lag:].reshape(frames, len(y_te), -1).argmax(2)
    acc = float((pred == y_te[None]).mean())
    silent = {n: f"{100 * r['silent_fraction']:.1f}%" for n, r in c["activity"].items() if r["mode"] != "sigma"}
    return [(f"sequence task (digits_sequences(0): {frames} frames, per-frame labels), threshold {fraction:g}: "
            f"ANN {100 * ann:.2f}%, SDNN {100 * acc:.2f}% per frame; per frame: {c['messages'] / frames:.0f} messages, "
            f"{c['events'] / frames:.0f} synaptic updates (dense layers), edge-cpu {c['dense'] / frames:,.0f} MACs; "
            f"silent neurons per step: {silent}")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fractions", default="0,0.02,0.05,0.1,0.2")
    args = ap.parse_args()
    fr = [float(v) for v in args.fractions.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("mlp", "cnn"):
            print("\n".join(static(arch, fr, Path(tmp))) + "\n")
        print("\n".join(sequence(0.05, Path(tmp))))


if __name__ == "__main__":
    main()
