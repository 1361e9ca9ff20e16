"""The sequence task of bench_sparsity.py: scikit-learn digits drifting smoothly, classified per frame.

A sequence is one digit (8×8, [0, 1]) seen in ``FRAMES`` frames while it drifts: frame f is the
image shifted by (dy, dx) = ``DRIFT`` · (sin(2π f / FRAMES + φ), cos(2π f / FRAMES + φ)) pixels
(bilinear, scipy.ndimage.shift, zeros outside), φ drawn per sequence from a seeded generator —
consecutive frames differ a little, as consecutive frames of a video or samples of a sensor stream
do. The label of every frame is the digit. The MLP (64-64-32-10, neurocc.zoo's) is trained on
frames of the training digits (seeded, CPU); test sequences come from the test digits.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FRAMES = 16
DRIFT = 1.0            # pixels
SEQUENCES = 150        # test sequences (each FRAMES frames)
EPOCHS = 30


def drift(images: np.ndarray, seed: int) -> np.ndarray:
    """(n, 64) images → (n, FRAMES, 64) drifting frames."""
    from scipy.ndimage import shift

    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, len(images))
    out = np.empty((len(images), FRAMES, 64), np.float32)
    for i, img in enumerate(images.reshape(-1, 8, 8)):
        for f in range(FRAMES):
            a = 2 * np.pi * f / FRAMES + phase[i]
            out[i, f] = shift(img, (DRIFT * np.sin(a), DRIFT * np.cos(a)), order=1, mode="constant").ravel()
    return np.clip(out, 0.0, 1.0)


def train(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Any:
    """The zoo's MLP trained on frames (Adam, cross-entropy, one torch thread: deterministic)."""
    import torch

    from neurocc.zoo import _build

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _build("mlp", (64, 32))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(EPOCHS):
            for idx in torch.randperm(len(xt), generator=gen).split(128):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train frames (n·F, 64), their labels, test sequences (SEQUENCES, F, 64), their labels)."""
    from neurocc.zoo import load_digits_split

    x_tr, y_tr, x_te, y_te = load_digits_split(0)
    tr = drift(x_tr, seed=1).reshape(-1, 64)
    return tr, np.repeat(y_tr, FRAMES), drift(x_te[:SEQUENCES], seed=2), y_te[:SEQUENCES]


def stream_metrics(art_dir: Path, seqs: np.ndarray, hold: int) -> tuple[float, Any, np.ndarray]:
    """Run the test sequences as streams on the emulator: frame f held ``hold`` steps (no reset),
    then the pipeline latency L of zero-change steps (the last frame held). Frame f is scored by the
    read-out at step (f + 1)·hold − 1 + L. Returns (predictions (n, F), metrics, steps)."""
    from neurocc.backends.emulator import simulate
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.metrics import from_traces
    from neurocc.runtime.run import latency, prepare_inputs

    art = load_artifact(art_dir)
    lag = latency(art.graph)
    xs = np.repeat(np.swapaxes(seqs, 0, 1), hold, axis=0)                 # (F·hold, n, 64)
    xs = np.concatenate([xs, np.repeat(xs[-1:], lag, axis=0)])
    name = art.inputs[0]["name"]
    res = simulate(art.graph, prepare_inputs(art, {name: xs}, "emulator"), record=True)
    out = np.asarray(res.outputs[art.graph.outputs[0]], np.float64).reshape(xs.shape[0], xs.shape[1], -1)
    at = np.arange(1, FRAMES + 1) * hold - 1 + lag
    pred = out[at].argmax(-1).T                                            # (n, F)
    return pred, from_traces(art.graph, res.traces, res.steps, res.batch, latency_steps=lag), xs.shape[0]


def sequence_rows(root: Path, encodings: list[str], rate_steps: int, hold: int) -> list[dict[str, Any]]:
    """Rate coding (each frame a static sample) vs sigma-delta (the stream), per frame."""
    from bench_sparsity import _compile, _row

    import neurocc
    from neurocc.runtime.metrics import Metrics
    from neurocc.zoo import ann_accuracy

    x_tr, y_tr, seqs, y = data()
    model = train(x_tr, y_tr)
    frames, labels = seqs.reshape(-1, 64), np.repeat(y, FRAMES)
    ann = ann_accuracy(model, frames, labels)
    rows = []
    for enc in encodings:
        art = _compile(model, root / f"seq-{enc}", {"x": x_tr[::4], "y": y_tr[::4]}, (64,), enc, rate_steps)
        if enc == "rate":
            res = neurocc.evaluate(art, {"x": frames, "y": labels}, backend="emulator", metrics=True)
            rows.append(_row("seq", enc, res["accuracy"], ann, Metrics.from_dict(res["metrics"]),
                             note="each frame a static sample"))
            continue
        pred, m, steps = stream_metrics(art, seqs, hold)
        per_frame = _per_frame(m, FRAMES)
        rows.append(_row("seq", enc, float(np.mean(pred == y[:, None])), ann, per_frame,
                         note=f"stream: {hold} step(s) per frame, {steps} steps per sequence"))
    return rows


def _per_frame(m: Any, frames: int) -> Any:
    """A stream's per-sequence metrics divided by its frames (steps included: steps per frame)."""
    import dataclasses

    scale = {k: getattr(m, k) / frames for k in ("acs", "macs", "dense_ops", "skipped_silent",
                                                  "skipped_zero_weight", "spikes", "graded_events", "neuron_updates")}
    return dataclasses.replace(m, steps=m.steps / frames, **scale)
