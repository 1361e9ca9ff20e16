"""Terminal table of a :class:`~neurocc.compiler.mapping.MappingReport`."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neurocc.compiler.mapping import MappingReport

_SHORT = {"neurons": "neurons/core", "synapse_memory_bits": "syn bits/core", "fan_in_axons": "fan-in/core",
          "fan_out_axons": "fan-out/core"}


def _cell(used: float, budget: float | None) -> str:
    if budget is None:
        return f"{_n(used)}"
    pct = 100.0 * used / budget if budget else float("inf")
    mark = " !" if used > budget else ""
    return f"{_n(used)}/{_n(budget)} {pct:.0f}%{mark}"


def _n(x: float) -> str:
    x = float(x)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e4)):
        if abs(x) >= size:
            return f"{x / (size if unit != 'k' else 1e3):.1f}{unit}"
    return f"{int(x)}" if x.is_integer() else f"{x:.3g}"


def format_report(report: "MappingReport") -> str:
    """Per layer: neurons, cores, and each per-core resource as used/budget utilisation%
    (largest slice; '!' marks a limit exceeded); then chips, binding constraint and fixes."""
    by_layer: dict[str, dict[str, tuple[float, float | None]]] = {}
    for r in report.rows:
        by_layer.setdefault(r.layer, {})[r.resource] = (r.used, r.budget)
    head = ["layer", "kind", "neurons", "cores", *(_SHORT[r] for r in _SHORT)]
    body = []
    for name, lp in report.partition.layers.items():
        if not lp.on_cores:
            body.append([name, lp.kind, _n(lp.n_neurons), "off-chip", "", "", "", ""])
            continue
        res = by_layer.get(name, {})
        body.append([name, lp.kind, _n(lp.n_neurons), str(len(lp.slices)),
                     *(_cell(*res[r]) if r in res else "" for r in _SHORT)])
    lines = _grid(head, body)
    lines.append(_chip_line(report, by_layer))
    status = "fits" if report.fits else "DOES NOT FIT"
    util = f", neuron utilisation {100 * report.utilisation:.0f}%" if report.utilisation is not None else ""
    lines.append(f"target {report.target}: {status}: {report.cores} cores on {report.chips} chip(s){util}, "
                 f"inter-chip traffic {_n(report.inter_chip_traffic)} axons")
    if report.binding is not None:
        label = "binding constraint" if not report.fits else "tightest resource"
        lines.append(f"{label}: {report.binding.text('needs' if not report.fits else 'uses')}")
    for v in report.violations[1:] if not report.fits else ():
        lines.append(f"  also: {v.layer or 'network'}: {v.resource} {_n(v.needed)} > {_n(v.available)}")
    for i, f in enumerate(report.fixes, 1):
        note = " (changes the model)" if f.changes_model else ""
        lines.append(f"  fix {i}: {f.action}{note} -> {f.effect}")
    return "\n".join(lines)


def _chip_line(report: "MappingReport", by_layer: dict) -> str:
    parts = []
    for resource in ("cores_per_chip", "sdram_bytes", "routing_entries"):
        vals = [v[resource] for k, v in by_layer.items() if k.startswith("chip ") and resource in v]
        if vals:
            used, budget = max(vals, key=lambda ub: ub[0])
            parts.append(f"{resource} {_cell(used, budget)}")
    chips = by_layer.get("network", {}).get("chips")
    if chips:
        parts.append(f"chips {_cell(*chips)}")
    return "per chip (max): " + ", ".join(parts) if parts else ""


def _grid(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)  # noqa: E731
                                 for i, (c, w) in enumerate(zip(row, widths)))
    return [fmt(head), "  ".join("-" * w for w in widths), *(fmt(r) for r in body)]
