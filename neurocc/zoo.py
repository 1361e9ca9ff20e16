"""Small trained models for examples and tests: scikit-learn's bundled digits (8×8 images, no
download), an ANN trained in seconds on CPU.

    x_tr, y_tr, x_te, y_te = load_digits_split(seed=0)
    model = train_digits_ann(seed=0)                 # MLP 64 → 64 → 32 → 10
    cnn = train_digits_ann(seed=0, arch="cnn")       # conv → BN → ReLU → AvgPool ×2 → Linear
    files = write_digits_files("build/digits")      # mlp.pt2, cal.npz, test.npz for the CLI
    xs_tr, y_tr, xs_te, y_te = digits_sequences(seed=0)   # digits drifting smoothly: (n, steps, 64)

Inputs are pixel intensities scaled to [0, 1] (the model's own input scale): shape (64,) for the
MLP and (1, 8, 8) for the CNN. Training is deterministic for a seed on CPU (one torch thread
while training). Needs torch and scikit-learn (imported only by the functions that use them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

Arch = Literal["mlp", "cnn"]


def load_digits_split(seed: int = 0, test_size: float = 0.25, image: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): float32 pixels in [0, 1], int64 labels.

    ``image=False`` gives x of shape (n, 64); ``image=True`` gives (n, 1, 8, 8). The split is
    stratified and fixed by ``seed`` (1347 train / 450 test at the default ``test_size``).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    if image:
        x_tr, x_te = x_tr.reshape(-1, 1, 8, 8), x_te.reshape(-1, 1, 8, 8)
    return x_tr, y_tr, x_te, y_te


def _build(arch: str, hidden: tuple[int, ...]) -> Any:
    from torch import nn

    if arch == "mlp":
        layers: list[Any] = []
        width = 64
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        return nn.Sequential(*layers, nn.Linear(width, 10))
    if arch == "cnn":
        c1, c2 = hidden[:2]
        return nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(c2 * 4, 10))
    raise ValueError(f"arch must be 'mlp' or 'cnn', got {arch!r}")


def train_digits_ann(seed: int = 0, hidden: tuple[int, ...] = (64, 32), *, arch: Arch = "mlp", epochs: int = 40,
                     lr: float = 1e-2, batch_size: int = 64, data: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """Train and return a ``torch.nn.Module`` in eval mode (deterministic for ``seed``).

    ``hidden`` are the MLP's hidden widths, or the CNN's two channel counts (default 8, 16 when
    ``hidden`` is the MLP default). Adam, cross-entropy, mini-batches shuffled by a seeded
    generator; one torch thread while training (restored afterwards) so results repeat exactly.
    ``data``: (x, y) to train on instead of the digits training split (e.g. :func:`sequence_frames`).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        if arch == "cnn" and hidden == (64, 32):
            hidden = (8, 16)
        x_tr, y_tr = load_digits_split(seed, image=(arch == "cnn"))[:2] if data is None else data
        model = _build(arch, hidden)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        xt, yt = torch.from_numpy(np.asarray(x_tr, np.float32)), torch.from_numpy(np.asarray(y_tr, np.int64))
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), batch_size):
                idx = perm[i:i + batch_size]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def ann_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a torch model on (x, y)."""
    import torch

    with torch.no_grad():
        pred = model(torch.from_numpy(np.asarray(x, np.float32))).argmax(1).numpy()
    return float((pred == y).mean())


def write_digits_files(out_dir: str | Path, arch: Arch = "mlp", seed: int = 0, epochs: int = 40) -> dict[str, Path]:
    """Train the digits ANN and write what the CLI needs: ``<arch>.pt2`` (``torch.export``),
    ``cal.npz`` (the training split: ``x``, ``y``) and ``test.npz`` (the test split), plus
    ``ann.json`` with the ANN's test accuracy. Returns the paths by name."""
    import json

    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image = arch == "cnn"
    x_tr, y_tr, x_te, y_te = load_digits_split(seed, image=image)
    model = train_digits_ann(seed, arch=arch, epochs=epochs)
    example = torch.zeros((1, 1, 8, 8) if image else (1, 64))
    paths = {"model": out / f"{arch}.pt2", "calibration": out / "cal.npz", "test": out / "test.npz",
             "ann": out / "ann.json"}
    torch.export.save(torch.export.export(model, (example,)), paths["model"])
    np.savez(paths["calibration"], x=x_tr, y=y_tr)
    np.savez(paths["test"], x=x_te, y=y_te)
    acc = ann_accuracy(model, x_te, y_te)
    paths["ann"].write_text(json.dumps({"arch": arch, "seed": seed, "test_accuracy": acc, "n_test": len(y_te)}) + "\n")
    return paths


def snn_accuracy_table(arch: Arch = "mlp", seed: int = 0,
                       steps: tuple[int, ...] = (8, 16, 32, 64, 128, 256)) -> dict[str, Any]:
    """Test accuracy of the ANN and of its converted float SNN (reference simulator) per reset
    mode, readout and number of timesteps: ``{"ann": acc, "snn": {(reset, readout): [(T, acc, agreement)]}}``."""
    from neurocc.compiler.frontends import load
    from neurocc.compiler.passes.convert import convert, measure_tradeoff
    from neurocc.ir.encoding import Encoding

    image = arch == "cnn"
    x_tr, _, x_te, y_te = load_digits_split(seed, image=image)
    model = train_digits_ann(seed, arch=arch)
    graph = load(model, input_shape=(1, 8, 8) if image else (64,))
    table: dict[str, Any] = {"ann": ann_accuracy(model, x_te, y_te), "snn": {}}
    for reset in ("subtract", "zero"):
        for readout in ("integrator", "spikes"):
            snn, _ = convert(graph, x_tr, timesteps=64, reset=reset, readout=readout,  # type: ignore[arg-type]
                             sweep=(64,), sweep_samples=10)
            rows, _ = measure_tradeoff(snn, x_te, encoding=Encoding(timesteps=64), steps=steps, y=y_te, ann=graph)
            table["snn"][(reset, readout)] = [(r.timesteps, r.accuracy, r.agreement) for r in rows]
    return table


def compile_digits(out_dir: str | Path, target: str = "loihi2", arch: Arch = "mlp", seed: int = 0,
                   timesteps: int = 64, epochs: int = 40) -> dict[str, Any]:
    """Train, convert and compile the digits ANN for ``target``; evaluate the artifact with the
    emulator on the test split: ``{"artifact", "ann_accuracy", "emulator_accuracy", "timesteps"}``."""
    import neurocc

    image = arch == "cnn"
    x_tr, y_tr, x_te, y_te = load_digits_split(seed, image=image)
    model = train_digits_ann(seed, arch=arch, epochs=epochs)
    art = neurocc.compile(model, target, out_dir, calibration={"x": x_tr, "y": y_tr}, timesteps=timesteps,
                          input_shape=(1, 8, 8) if image else (64,))
    result = neurocc.evaluate(art, {"x": x_te, "y": y_te}, backend="emulator")
    return {"artifact": Path(art), "ann_accuracy": ann_accuracy(model, x_te, y_te),
            "emulator_accuracy": result["accuracy"], "timesteps": timesteps}


def digits_sequences(seed: int = 0, steps: int = 32, shift: float = 1.0, period: float = 24.0, *,
                     image: bool = False, test_size: float = 0.25
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A sequence task made offline: each digit drifts smoothly inside its 8×8 frame over ``steps``
    frames, classified per frame (the label is the digit's): (x_train, y_train, x_test, y_test)
    with x of shape (n, steps, 64) (``image``: (n, steps, 1, 8, 8)), float32 in [0, 1].

    Frame t of sample i is the digit shifted by ``(dy, dx) = shift · (sin(2πt/period + φ_i),
    cos(2πt/period + ψ_i))`` pixels (bilinear, zeros outside), with phases φ_i, ψ_i drawn from
    ``default_rng(seed)``: consecutive frames differ little, as in video or a slowly moving sensor.
    The split is :func:`load_digits_split`'s (same samples, same seed).
    """
    x_tr, y_tr, x_te, y_te = load_digits_split(seed, test_size=test_size)
    rng = np.random.default_rng(seed)
    t = np.arange(steps)

    def frames(x: np.ndarray) -> np.ndarray:
        ph = rng.uniform(0, 2 * np.pi, (len(x), 2, 1))
        dy = shift * np.sin(2 * np.pi * t / period + ph[:, 0])       # (n, steps)
        dx = shift * np.cos(2 * np.pi * t / period + ph[:, 1])
        out = shifted(x.reshape(-1, 8, 8), dy, dx)
        return out.reshape(len(x), steps, 1, 8, 8) if image else out.reshape(len(x), steps, 64)

    return frames(x_tr), y_tr, frames(x_te), y_te


def sequence_frames(x: np.ndarray, y: np.ndarray | None = None, every: int = 1
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Static frames (n · steps / every, *shape) of sequences (n, steps, *shape), and their labels
    repeated: training and calibration data for a per-frame classifier."""
    f = x[:, ::every]
    frames = f.reshape(-1, *x.shape[2:])
    return frames, None if y is None else np.repeat(np.asarray(y), f.shape[1])


def shifted(img: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Images (n, H, W) shifted by (dy, dx) pixels per frame (n, steps): bilinear interpolation,
    zeros outside; out[i, k, y, x] = img_i(y − dy[i, k], x − dx[i, k]). Float32 (n, steps, H, W)."""
    n, h, w = img.shape
    pad = int(np.ceil(max(np.abs(dy).max(), np.abs(dx).max()))) + 1
    p = np.pad(np.asarray(img, np.float64), ((0, 0), (pad, pad), (pad, pad)))
    oy, ox = np.floor(-dy).astype(int), np.floor(-dx).astype(int)
    fy, fx = (-dy - oy)[..., None, None], (-dx - ox)[..., None, None]
    rows = np.arange(h)[None, None, :] + oy[..., None] + pad          # (n, steps, H)
    cols = np.arange(w)[None, None, :] + ox[..., None] + pad
    i = np.arange(n)[:, None, None, None]

    def at(r: int, c: int) -> np.ndarray:
        return p[i, rows[..., :, None] + r, cols[..., None, :] + c]

    out = (1 - fy) * (1 - fx) * at(0, 0) + (1 - fy) * fx * at(0, 1) + fy * (1 - fx) * at(1, 0) + fy * fx * at(1, 1)
    return out.astype(np.float32)
