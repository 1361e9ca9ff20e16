"""The report's pictures, each returned as PNG bytes (matplotlib's Agg canvas, imported lazily;
no pyplot, so no global figure state).

* :func:`rasters_png`: one row per spiking layer, one column per backend: spike raster of one
  sample (x = step, y = neuron, flat C-order index).
* :func:`rates_png`: per-layer mean firing rate (spikes per neuron per step), float reference
  next to the quantized runs.
* :func:`utilisation_png`: cores used per chip against ``cores_per_chip``, and every core's
  neurons against ``neurons_per_core`` (coloured by layer).
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.runtime.report.data import ReportData, rates

MAX_LAYERS = 12            # raster rows shown (the first layers in step order)
MAX_ROWS = 256             # raster image rows (neurons pooled above this)
MAX_COLS = 500             # raster image columns (steps pooled above this)
DPI = 100
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def rasters_png(data: ReportData) -> bytes:
    """Spike rasters of sample ``data.sample``: rows = layers, columns = backends."""
    layers = data.layers[:MAX_LAYERS]
    backends = list(data.spikes) or ["(no run)"]
    fig = _figure(4.4 * len(backends) + 1.2, 1.7 * max(len(layers), 1) + 0.9)
    axes = fig.subplots(max(len(layers), 1), len(backends), squeeze=False, sharex=True)
    for j, b in enumerate(backends):
        axes[0, j].set_title(b, fontsize=11, fontweight="bold", pad=16)
        for i, layer in enumerate(layers):
            ax = axes[i, j]
            z = data.spikes.get(b, {}).get(layer.name)
            _raster(ax, z, data.sample, data.steps, layer.neurons, COLOURS[j % len(COLOURS)])
            if j == 0:
                ax.set_ylabel(f"{layer.name}\n{layer.kind}, {layer.neurons} n", fontsize=9)
            notes = [f"+{layer.lag} step lag"] if b != "reference" and layer.lag else []
            notes += ["spikes from u, v"] if (b, layer.name) in data.derived else []
            ax.text(1.0, 1.02, ", ".join(notes), transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                    color="#555")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.suptitle(f"spike rasters, sample {data.sample} (y: neuron index)", fontsize=12)
    fig.tight_layout()
    return _png(fig)


def _raster(ax: Any, z: np.ndarray | None, sample: int, steps: int, neurons: int, colour: str) -> None:
    """Spikes of one sample as an image (white = silent). Layers with more than
    :data:`MAX_ROWS` neurons (runs longer than :data:`MAX_COLS` steps) are pooled: a pixel is
    dark when any neuron (step) of its group spiked, so no spike disappears from the picture."""
    ax.tick_params(labelsize=7)
    if z is None:
        ax.set_xlim(-0.5, steps - 0.5)
        ax.text(0.5, 0.5, "not recorded by this backend", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="#888")
        return
    from matplotlib.colors import ListedColormap

    img = z[:, sample, :].T != 0                                  # (neurons, steps)
    total = int(img.sum())
    img, gn = _pool(img, MAX_ROWS, axis=0)
    img, gt = _pool(img, MAX_COLS, axis=1)
    ax.imshow(img, aspect="auto", interpolation="nearest", origin="lower", vmin=0, vmax=1,
              cmap=ListedColormap(["white", colour]), extent=(-0.5, steps - 0.5, -0.5, neurons - 0.5))
    pooled = f", {gn} neurons/row" if gn > 1 else ""
    pooled += f", {gt} steps/col" if gt > 1 else ""
    ax.text(0.0, 1.02, f"{total} spikes{pooled}", transform=ax.transAxes, ha="left", va="bottom", fontsize=7)


def _pool(img: np.ndarray, limit: int, axis: int) -> tuple[np.ndarray, int]:
    """Any-pool ``img`` along ``axis`` in groups so that at most ``limit`` remain; (image, group)."""
    n = img.shape[axis]
    g = -(-n // limit)
    if g <= 1:
        return img, 1
    pad = [(0, 0), (0, 0)]
    pad[axis] = (0, g * -(-n // g) - n)
    img = np.pad(img, pad)
    shape = (img.shape[0] // g, g, img.shape[1]) if axis == 0 else (img.shape[0], img.shape[1] // g, g)
    return img.reshape(shape).any(axis=axis + 1), g


def rates_png(data: ReportData) -> bytes:
    """Grouped bars: per layer, each backend's mean firing rate over the batch."""
    r = rates(data)
    layers = [layer.name for layer in data.layers]
    backends = list(r)
    fig = _figure(max(6.0, 1.1 * len(layers) * max(len(backends), 1) * 0.5 + 3), 4.0)
    ax = fig.subplots()
    width = 0.8 / max(len(backends), 1)
    x = np.arange(len(layers))
    for j, b in enumerate(backends):
        vals = [r[b].get(n, np.nan) for n in layers]
        bars = ax.bar(x + (j - (len(backends) - 1) / 2) * width, vals, width, label=_label(b),
                      color=COLOURS[j % len(COLOURS)])
        ax.bar_label(bars, labels=[("" if np.isnan(v) else f"{v:.3f}") for v in vals], fontsize=7, padding=1)
    ax.set_xticks(x, layers)
    ax.set_xlabel("spiking layer (step order)")
    ax.set_ylabel("spikes per neuron per step")
    ax.set_title(f"per-layer firing rate, float reference vs quantized ({data.batch} samples x {data.steps} steps)",
                 fontsize=11)
    ax.margins(y=0.15)
    if backends:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(backends), frameon=False)
    fig.tight_layout()
    return _png(fig)


def _label(backend: str) -> str:
    return {"reference": "reference (float)", "emulator": "emulator (quantized)"}.get(backend, f"{backend} (quantized)")


def utilisation_png(report: Any, target: Any) -> bytes:
    """Cores per chip against the chip's budget, and each core's neurons against its budget."""
    fig = _figure(10.0, 6.0)
    ax_chip, ax_core = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 1.6]})
    _chips(ax_chip, report, target)
    _cores(ax_core, report, target)
    fig.suptitle(f"core utilisation on target {report.target}: {report.cores} cores on {report.chips} chip(s)"
                 f"{'' if report.fits else ' (DOES NOT FIT)'}", fontsize=12)
    fig.tight_layout()
    return _png(fig)


def _chips(ax: Any, report: Any, target: Any) -> None:
    chips = report.placement.chips
    budget = target.limits.cores_per_chip
    used = [c.cores for c in chips]
    x = np.arange(len(chips))
    ax.bar(x, used, 0.6, color=COLOURS[0], label="cores used")
    if budget:
        ax.axhline(budget, color="#c44e52", linestyle="--", linewidth=1, label=f"cores per chip ({budget})")
        ax.bar_label(ax.containers[0], labels=[f"{u}/{budget} ({100 * u / budget:.0f}%)" for u in used], fontsize=8)
    else:
        ax.bar_label(ax.containers[0], labels=[str(u) for u in used], fontsize=8)
    ax.set_xticks(x, [f"chip {c.chip}" for c in chips])
    ax.set_xlim(-0.75, max(len(chips), 4) - 0.25)
    ax.set_ylabel("cores")
    ax.set_title("cores used per chip" + ("" if budget else " (the target sets no per-chip limit)"), fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.margins(y=0.25)


def _cores(ax: Any, report: Any, target: Any) -> None:
    pl, part = report.placement, report.partition
    budget = target.limits.neurons_per_core
    rows = sorted((chip, core, layer, part.layers[layer].slices[i].usage.neurons)
                  for (layer, i), (chip, core) in pl.location.items())
    layer_names = list(dict.fromkeys(r[2] for r in sorted(rows, key=lambda r: list(part.layers).index(r[2]))))
    colour = {n: COLOURS[k % len(COLOURS)] for k, n in enumerate(layer_names)}
    heights = [100.0 * n / budget if budget else n for *_, n in rows]
    bars = ax.bar(np.arange(len(rows)), heights, 0.85, color=[colour[r[2]] for r in rows], linewidth=0)
    if len(rows) <= 40:
        ax.bar_label(bars, labels=[f"{n:,}" for *_, n in rows], fontsize=7, padding=1)
    for k in range(1, len(rows)):
        if rows[k][0] != rows[k - 1][0]:
            ax.axvline(k - 0.5, color="#333", linewidth=0.8)
    handles = [_patch(colour[n], n) for n in layer_names]
    ax.legend(handles=handles, title="layer", fontsize=7, title_fontsize=8, loc="upper right", ncol=min(len(handles), 6))
    ax.set_xlabel("core (chip by chip, in placement order)")
    ax.set_ylabel("% of neurons per core" if budget else "neurons")
    ax.set_ylim(0, max(max(heights, default=0) * 1.3, 1.0))
    ax.xaxis.set_major_locator(_integer_locator())
    if budget:
        ax.axhline(100, color="#c44e52", linestyle="--", linewidth=1)     # visible once a core is near full
    ax.set_title("neurons on each core" + (f" (budget {budget} per core)" if budget else
                                             " (the target sets no per-core limit)"), fontsize=10)


def _integer_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)


def all_figures(data: ReportData, target: Any) -> Mapping[str, bytes]:
    """File name → PNG bytes of every figure the data allows."""
    out = {"rasters.png": rasters_png(data), "rates.png": rates_png(data)}
    if data.mapping is not None:
        out["utilisation.png"] = utilisation_png(data.mapping, target)
    return out
