"""The sequence task of bench_sparsity.py: digits drifting smoothly, classified per frame.

The data set is :func:`neurocc.zoo.digits_sequences` (each test digit seen in 32 frames while it
drifts by up to a pixel inside its 8×8 frame; the label of every frame is the digit), the
classifier the zoo's MLP trained on every 4th training frame (:func:`neurocc.zoo.sequence_frames`),
calibrated on every 8th: as tests/test_sigma_delta.py's per-frame test does.

* rate coding cannot reuse anything from the previous frame: each frame is one static sample
  (``rate-steps`` steps, ``neurocc.evaluate``);
* sigma-delta runs each test sequence as a stream, ``hold`` step(s) per frame with no reset (only
  what changed is sent), then the pipeline latency ``L`` with the last frame held; frame f is
  scored by the read-out at step (f + 1)·hold − 1 + L. Per-frame figures are the stream's divided
  by its frames (steps included).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np


def stream(art_dir: Path, seqs: np.ndarray, hold: int) -> tuple[np.ndarray, Any]:
    """Predictions (n, frames) and the per-sequence metrics of the stream run (see the module docstring)."""
    from neurocc.backends.emulator import simulate
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.metrics import from_traces
    from neurocc.runtime.run import latency, prepare_inputs

    art = load_artifact(art_dir)
    lag = latency(art.graph)
    frames = seqs.shape[1]
    xs = np.repeat(np.swapaxes(seqs, 0, 1), hold, axis=0)                 # (frames·hold, n, 64)
    xs = np.concatenate([xs, np.repeat(xs[-1:], lag, axis=0)])
    name = art.inputs[0]["name"]
    res = simulate(art.graph, prepare_inputs(art, {name: xs}, "emulator"), record=True)
    out = np.asarray(res.outputs[art.graph.outputs[0]], np.float64).reshape(xs.shape[0], xs.shape[1], -1)
    pred = out[np.arange(1, frames + 1) * hold - 1 + lag].argmax(-1).T
    return pred, from_traces(art.graph, res.traces, res.steps, res.batch, latency_steps=lag)


def per_frame(m: Any, frames: int) -> Any:
    """A stream's per-sequence metrics divided by its frames (steps: steps per frame)."""
    keys = ("acs", "macs", "dense_ops", "skipped_silent", "skipped_zero_weight", "spikes", "graded_events",
            "neuron_updates")
    return dataclasses.replace(m, steps=m.steps / frames, **{k: getattr(m, k) / frames for k in keys})


def sequence_rows(root: Path, encodings: list[str], rate_steps: list[int], hold: int) -> list[dict[str, Any]]:
    """Rate coding (each frame a static sample) vs sigma-delta (the stream), per frame."""
    from bench_sparsity import _compile, _row, variants

    import neurocc
    from neurocc import zoo
    from neurocc.runtime.metrics import Metrics

    xs_tr, y_tr, xs_te, y_te = zoo.digits_sequences(0)
    model = zoo.train_digits_ann(0, data=zoo.sequence_frames(xs_tr, y_tr, every=4), epochs=20)
    frames, labels = zoo.sequence_frames(xs_te, y_te)
    ann = zoo.ann_accuracy(model, frames, labels)
    cal = dict(zip("xy", zoo.sequence_frames(xs_tr, y_tr, every=8)))
    rows = []
    for label, enc, steps in variants(encodings, rate_steps):
        art = _compile(model, root / f"seq-{enc}-{steps}", cal, (64,), enc, steps)
        if enc == "rate":
            res = neurocc.evaluate(art, {"x": frames, "y": labels}, backend="emulator", metrics=True)
            rows.append(_row("seq", label, res["accuracy"], ann, Metrics.from_dict(res["metrics"])))
            continue
        pred, m = stream(art, xs_te, hold)
        rows.append(_row("seq", enc, float(np.mean(pred == y_te[:, None])), ann, per_frame(m, xs_te.shape[1])))
    return rows
