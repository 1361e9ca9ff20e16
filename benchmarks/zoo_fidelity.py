"""How faithful each weight rounding keeps the integer targets to the trained model, on the whole
source zoo (neurocc/source_zoo.py): every model trained once (as ``python -m neurocc.source_zoo``
does: same seeds, data and iterations), then compiled for loihi2 (run on the emulator) and
edge-cpu (run on ONNX Runtime) with each ``weight_rounding`` (and, with ``--per-channel``, the
per-channel scale as a further variant), and compared with the source model on the test set:

* ``Δ``: target accuracy − source accuracy (points; the acceptance rule is |Δ| <= 1);
* ``equal``: % of test samples whose output spike counts equal the source model's;
* ``class``: % of test samples whose predicted class equals the source model's.

Usage: ``python benchmarks/zoo_fidelity.py [MODEL ...] [--per-channel]``; prints a Markdown
table per model and variant, then the means over the zoo. Needs torch, snnTorch, Sinabs,
scikit-learn. docs/source-check.md (section 6) holds the measured table.
"""
from __future__ import annotations

import sys
import tempfile
from typing import Any

import numpy as np

TARGETS = ("loihi2", "edge-cpu")


def variants(per_channel: bool) -> dict[str, dict[str, Any]]:
    out = {"nearest": {"weight_rounding": "nearest"}, "calibrated": {"weight_rounding": "calibrated"}}
    if per_channel:
        out["nearest+per-channel"] = {"weight_rounding": "nearest", "per_channel": True}
        out["calibrated+per-channel"] = {"weight_rounding": "calibrated", "per_channel": True}
    return out


def measure(names: list[str] | None, per_channel: bool) -> list[dict[str, Any]]:
    from neurocc import source_zoo

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for zm in source_zoo.models():
            if names and zm.name not in names:
                continue
            model = source_zoo.train(zm)
            for label, kw in variants(per_channel).items():
                r = source_zoo.evaluate(zm, model, f"{tmp}/{label}", compile_kw=kw, spinnaker=False)
                rows.append({"model": zm.name, "variant": label, **r})
                print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    cells = [r["model"], r["variant"], f"{100 * r.get('source_acc', float('nan')):.1f}"]
    for t in TARGETS:
        if f"{t}_acc" not in r:
            cells += ["error", "-", "-"]
            continue
        cells += [f"{100 * (r[f'{t}_acc'] - r['source_acc']):+.1f}", f"{100 * r[f'{t}_agreement']:.1f}",
                  f"{100 * r[f'{t}_same_class']:.1f}"]
    return "| " + " | ".join(cells) + " |"


def summary(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| variant | target | models within ±1 | mean abs Δ | max abs Δ | mean equal % | mean class % |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for label in dict.fromkeys(r["variant"] for r in rows):
        for t in TARGETS:
            rs = [r for r in rows if r["variant"] == label and f"{t}_acc" in r]
            d = np.array([abs(r[f"{t}_acc"] - r["source_acc"]) for r in rs]) * 100
            inside = int(np.sum(d <= 1.0 + 1e-9))
            out.append(f"| {label} | {t} | {inside}/{len(rs)} | {d.mean():.2f} | {d.max():.1f} | "
                       f"{100 * np.mean([r[f'{t}_agreement'] for r in rs]):.1f} | "
                       f"{100 * np.mean([r[f'{t}_same_class'] for r in rs]):.1f} |")
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    head = ("| model | variant | source % | loihi2 Δ | loihi2 equal % | loihi2 class % | edge-cpu Δ | "
            "edge-cpu equal % | edge-cpu class % |")
    print(head + "\n|" + " --- |" * (head.count("|") - 1))
    result = measure(args or None, "--per-channel" in sys.argv)
    print("\n" + "\n".join(summary(result)))
