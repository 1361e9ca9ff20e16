"""The report page: one static HTML file, its PNGs embedded as base64 ``data:`` URLs, no
scripts and no external resources (it opens offline, mails as one attachment)."""
from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

from neurocc.runtime.report.data import ReportData

_RESOURCES = (("neurons", "neurons/core"), ("synapse_memory_bits", "syn bits/core"),
              ("fan_in_axons", "fan-in/core"), ("fan_out_axons", "fan-out/core"))

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px 32px; color: #222;
       max-width: 1320px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.meta { color: #555; font-size: 13px; } .summary { font-size: 14px; margin: 10px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c0392b; font-weight: bold; }
.over { background: #fde2e1; } .note { color: #666; font-size: 12px; } .err { color: #c0392b; }
img { max-width: 100%; border: 1px solid #eee; margin: 6px 0; } code { font-size: 12px; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, left_head: Sequence[str] = ()) -> str:
    """``rows`` cells are HTML already; the first ``left`` columns are left-aligned (and the
    headers named in ``left_head``)."""
    th = "".join(f'<th class="{"l" if i < left or h in left_head else ""}">{_e(h)}</th>' for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f'<td class="{"l" if i < left else ""}">{c}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def validation_section(data: ReportData) -> str:
    doc = data.validation
    if doc is None:
        return f'<p class="err">No validation: {_e(data.validation_error)}</p>'
    inp = doc.get("inputs", {})
    rows = [_validation_row(r) for r in doc.get("results", [])]
    head = ["backend", "reference", "rule", "exact", "mismatches / compared", "cosine", "result",
            "first divergence", "likely cause"]
    notes = [(f'<p class="note">{inp.get("batch", "?")} sample(s) x {inp.get("steps", "?")} steps, '
              f'{_e(inp.get("source", ""))}; from <code>validation.json</code>.</p>')]
    for r in doc.get("results", []):
        if r.get("error"):
            notes.append(f'<p class="err">{_e(r["backend"])}: {_e(r["error"])}</p>')
        if not r.get("passed") and r.get("reason") and not r.get("error"):
            notes.append(f'<p class="err">{_e(r["backend"])} failed: {_e(r["reason"])}</p>')
        if r.get("overflow_cause"):
            notes.append(f'<p class="note"><b>likely cause [overflow]</b>: {_e(r["overflow_cause"])}</p>')
        if r.get("first_divergence_explanation"):
            notes.append(f'<p class="note"><b>{_e(r["backend"])}</b> vs {_e(r["reference"])}: '
                         f'{_e(r["first_divergence_explanation"])}</p>')
    return _table(head, rows, left=3, left_head=head[-2:]) + "".join(notes) + overflow_note(data)


def overflow_note(data: ReportData) -> str:
    """The wrap/saturation counts of the validation run and of this page's emulator run."""
    out = []
    for what, counts in (("validation run", (data.validation or {}).get("overflow")), ("runs shown", data.overflow)):
        for n, ev in (counts or {}).items():
            out.append(f'<p class="err">overflow ({what}): node <b>{_e(n)}</b>: '
                       + _e(", ".join(f"{k} {v}" for k, v in ev.items())) + ' (see <code>docs/troubleshooting.md'
                       '#overflow-and-saturation</code>)</p>')
    return "".join(out)


def _validation_row(r: Mapping[str, Any]) -> list[str]:
    rule = "exact" if r.get("rule") == "exact" else f"cosine &ge; {r.get('min_cosine') or 0:.2f}"
    cos = "-" if r.get("cosine") is None else f"{r['cosine']:.4f}"
    ok = '<td class="pass">PASS</td>' if r.get("passed") else '<td class="fail">FAIL</td>'
    fd = r.get("first_divergence") if (r.get("rule") == "exact" or not r.get("passed")) else None
    first = "-" if not fd else _e(f"{fd['node']}/{fd['var']} step {fd['step']} index {fd['index']}: "
                                  f"{fd['expected']} vs {fd['got']}")
    return [_e(r.get("backend")), _e(r.get("reference")), rule, "yes" if r.get("exact") else "no",
            f"{r.get('mismatches', 0):,} / {r.get('compared', 0):,}", cos, ok, f'<td class="l">{first}</td>',
            f'<td class="l">{_e(r.get("first_divergence_class") or "-")}</td>']


def mapping_section(data: ReportData) -> str:
    rep = data.mapping
    if rep is None:
        return f'<p class="err">{_e(data.mapping_error)}</p>'
    use: dict[str, dict[str, tuple[float, float | None]]] = {}
    for row in rep.rows:
        use.setdefault(row.layer, {})[row.resource] = (row.used, row.budget)
    rows = []
    for name, lp in rep.partition.layers.items():
        cells = [_e(name), _e(lp.kind), f"{lp.n_neurons:,}", str(len(lp.slices)) if lp.on_cores else "off-chip"]
        cells += [_use_cell(*use[name][r]) if r in use.get(name, {}) else "" for r, _ in _RESOURCES]
        rows.append(cells)
    chip_rows = [[_e(row.layer), _e(row.resource), _use_cell(row.used, row.budget)] for row in rep.rows
                 if row.layer.startswith("chip ") or row.layer == "network"]
    head = ["layer", "kind", "neurons", "cores", *(h for _, h in _RESOURCES)]
    status = '<span class="pass">fits</span>' if rep.fits else '<span class="fail">DOES NOT FIT</span>'
    util = f", neuron utilisation {100 * rep.utilisation:.0f}%" if rep.utilisation is not None else ""
    lines = [(f"<p>target {_e(rep.target)}: {status}: {rep.cores} cores on {rep.chips} chip(s){util}, "
              f"inter-chip traffic {rep.inter_chip_traffic:,.0f} axons. Per layer: the largest slice's use of "
              "its core (used / budget).</p>")]
    if rep.binding is not None:
        label = "binding constraint" if not rep.fits else "tightest resource"
        lines.append(f'<p class="note">{label}: {_e(rep.binding.text("needs" if not rep.fits else "uses"))}</p>')
    lines += [f'<p class="note">fix {i}: {_e(f.action)} &rarr; {_e(f.effect)}</p>' for i, f in enumerate(rep.fixes, 1)]
    chips = _table(["chip", "resource", "used / budget"], chip_rows, left=2) if chip_rows else ""
    return lines[0] + _table(head, rows, left=2) + chips + "".join(lines[1:])


def _use_cell(used: float, budget: float | None) -> str:
    if budget is None:
        return f"{used:,.0f}"
    pct = 100.0 * used / budget if budget else float("inf")
    cls = ' class="over"' if used > budget else ""
    return f"<td{cls}>{used:,.0f} / {budget:,.0f} ({pct:.0f}%)</td>"


def header(data: ReportData) -> str:
    art = data.art
    s = art.target_settings
    m = art.manifest
    facts = [("artifact", art.path), ("target", f"{art.target}: {s.get('description', '')}"),
             ("numerics", art.graph.numerics or "float32"), ("dt", f"{m.get('dt')} s"),
             ("graph", f"{art.graph.name} ({len(art.graph.nodes)} nodes, digest {art.graph.digest()[:12]})"),
             ("runs shown", (f"{data.batch} sample(s) x {data.steps} steps of {data.input_source}; "
                             f"rasters: sample {data.sample}"))]
    if data.accuracy:
        facts.append(("accuracy", ", ".join(f"{b} {a * 100:.2f}%" for b, a in data.accuracy.items())
                      + f" on {data.accuracy_source}"))
    return "".join(f'<div class="meta"><b>{_e(k)}</b>: {_e(v)}</div>' for k, v in facts)


def render(data: ReportData, figures: Mapping[str, bytes], summary: str) -> str:
    """The whole page."""
    errs = "".join(f'<p class="err">backend {_e(b)} did not run: {_e(e)}</p>' for b, e in data.run_errors.items())
    parts = [f"<h1>neurocc report: {_e(data.art.graph.name)} on {_e(data.art.target)}</h1>", header(data),
             f'<p class="summary">{_e(summary)}</p>',
             "<h2>Validation</h2>", validation_section(data),
             "<h2>Spike rasters per layer, one sample, across backends</h2>", errs]
    if "rasters.png" in figures:
        parts.append(_img(figures["rasters.png"], "spike rasters"))
    parts.append("<h2>Per-layer firing rates: float vs quantized</h2>")
    if "rates.png" in figures:
        parts.append(_img(figures["rates.png"], "firing rates"))
    parts += ["<h2>Mapping</h2>", mapping_section(data)]
    if data.metrics is not None:
        from neurocc.runtime.metrics import format_metrics

        parts += ["<h2>Measured cost (NeuroBench definitions; energy is an estimate)</h2>",
                  f"<pre>{_e(format_metrics(data.metrics, data.energy))}</pre>"]
    if data.compile_text:
        parts += ["<h2>Compile: quantization and diagnostics</h2>", f"<pre>{_e(data.compile_text)}</pre>"]
    if "utilisation.png" in figures:
        parts += ["<h2>Core utilisation per chip</h2>", _img(figures["utilisation.png"], "core utilisation")]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>neurocc report: '
            f"{_e(data.art.graph.name)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
