"""``neurocc report DIR``: one static HTML page (images embedded) and its PNGs, in ``DIR/report/``.

``write_report(artifact_dir, *, sample=0, backends=None, inputs=None) -> Path`` writes::

    DIR/report/report.html     one file: header, validation table, rasters, rates, mapping, utilisation
    DIR/report/rasters.png     spike rasters per spiking layer (rows) and backend (columns), one sample
    DIR/report/rates.png       per-layer firing rates, float reference vs quantized runs
    DIR/report/utilisation.png cores per chip and neurons per core against the target's budgets
    DIR/report/summary.txt     the one-line summary ``format_report`` prints

The directory is written atomically: built in a temporary sibling, then swapped in, so a failed
report leaves the previous one (or none). The data (validation.json or a fresh validation, the
mapping report of the artifact's target, recorded runs) are gathered by :mod:`.data`; the
pictures are drawn by :mod:`.figures`; the page by :mod:`.page`.

``format_report(artifact_dir) -> str`` is what the CLI prints: the HTML path and the summary.
It (re)writes the report when it is missing or older than the artifact's manifest or
``validation.json``.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.ir.artifact import Artifact
from neurocc.runtime.report.data import ReportData, collect, target_of

REPORT_DIR = "report"
HTML = "report.html"
SUMMARY = "summary.txt"


def write_report(artifact_dir: Artifact | str | Path, *, sample: int = 0, backends: Sequence[str] | None = None,
                 inputs: Mapping[str, np.ndarray] | None = None, data: Any = None, progress: bool = False) -> Path:
    """Write ``DIR/report/`` (see the module docstring); returns the path of ``report.html``.

    ``backends``: the runs to show (default: ``reference``, ``emulator`` and the target's own
    backend when it can run here); also the backends validated when ``validation.json`` is
    missing. ``inputs``: time-major arrays per graph input (default: the first calibration
    samples the artifact keeps, else seeded random spikes). ``data``: labelled test data
    (``TEST.npz`` or ``{"x", "y"}``): its first samples are shown and the accuracy is measured
    on all of it. ``progress``: a bar on stderr.
    """
    from neurocc.progress import Step, quiet
    from neurocc.runtime.report.figures import all_figures
    from neurocc.runtime.report.page import render
    from neurocc.runtime.run import as_artifact

    art = as_artifact(artifact_dir)
    with Step("report", total=5, **quiet(progress)) as step:
        rdata = collect(art, sample=sample, backends=backends, inputs=inputs, data=data, step=step)
        step.advance("figures")
        figures = all_figures(rdata, target_of(art))
        line = summary(rdata)
        files = {**figures, HTML: render(rdata, figures, line).encode(), SUMMARY: (line + "\n").encode()}
        out = _write_dir(Path(art.path) / REPORT_DIR, files)
        step.advance()
        step.done(f"wrote {out / HTML}")
    return out / HTML


def format_report(artifact_dir: str | Path, *, inputs: Mapping[str, np.ndarray] | None = None, data: Any = None,
                  progress: bool = False) -> str:
    """The HTML path and a one-line summary; writes the report first when missing or stale, or
    always when ``inputs`` or ``data`` are given."""
    root = Path(artifact_dir)
    page, line_file = root / REPORT_DIR / HTML, root / REPORT_DIR / SUMMARY
    if inputs is not None or data is not None or _stale(root, page) or not line_file.is_file():
        page = write_report(root, inputs=inputs, data=data, progress=progress)
    return f"report: {page}\n{line_file.read_text().strip()}"


def _stale(root: Path, page: Path) -> bool:
    if not page.is_file():
        return True
    made = page.stat().st_mtime
    sources = [root / "manifest.json", root / "validation.json"]
    return any(p.is_file() and p.stat().st_mtime > made for p in sources)


def summary(data: ReportData) -> str:
    """One line: target, validation verdicts (with the first divergence of a failed exact
    backend), and the mapping."""
    parts = [f"target {data.art.target}"]
    doc = data.validation
    if doc is None:
        parts.append("validation unavailable")
    else:
        verdicts = []
        for r in doc.get("results", []):
            v = f"{r['backend']} {'PASS' if r.get('passed') else 'FAIL'}"
            fd = r.get("first_divergence")
            if fd and not r.get("passed") and r.get("rule") == "exact":
                v += f" (first divergence {fd['node']}/{fd['var']} step {fd['step']}"
                v += f", {r['first_divergence_class']})" if r.get("first_divergence_class") else ")"
            elif not r.get("passed") and r.get("reason"):
                v += f" ({r['reason']})"
            elif r.get("cosine") is not None and r.get("rule") != "exact":
                v += f" (cosine {r['cosine']:.4f})"   # as the validation table prints it
            verdicts.append(v)
        parts.append("validation: " + (", ".join(verdicts) or "no results"))
    if data.accuracy:
        parts.append("accuracy " + ", ".join(f"{b} {a * 100:.2f}%" for b, a in data.accuracy.items())
                     + f" on {data.accuracy_source}")
    counts = data.overflow or (doc or {}).get("overflow")
    if counts:
        parts.append("overflow: " + ", ".join(f"{n} " + " ".join(f"{k} {v}" for k, v in ev.items())
                                             for n, ev in counts.items()))
    m = data.metrics
    if m is not None:
        from neurocc.runtime.plan import _si

        parts.append(f"cost per sample ({m.samples} shown): {_si(m.synops, '')} synaptic ops ({_si(m.acs, '')} AC + "
                     f"{_si(m.macs, '')} MAC of {_si(m.dense_ops, '')} dense), activation sparsity "
                     f"{m.activation_sparsity:.3f}, " + (data.energy.text() if data.energy is not None else ""))
    rep = data.mapping
    parts.append("mapping unavailable" if rep is None else
                 f"{rep.cores} cores on {rep.chips} chip(s), {'fits' if rep.fits else 'DOES NOT FIT'}")
    return "; ".join(parts)


def _write_dir(final: Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` into a temporary sibling of ``final``, then swap it in (old copy removed)."""
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        for name, blob in files.items():
            (tmp / name).write_bytes(blob)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not final.exists():
            os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


__all__ = ["HTML", "REPORT_DIR", "format_report", "summary", "write_report"]
