"""Benchmark: rate coding vs sigma-delta, side by side, measured on the deployed integer network.

For the digits MLP and CNN (neurocc.zoo, static 8×8 images) and for a sequence task (frames of a
smooth stream classified one by one), each ANN is compiled for ``loihi2`` twice:

* **rate coding**: today's ANN → SNN conversion (IF neurons, a constant input current, the
  class read out after ``--rate-steps`` steps: default 64, where the digits networks are within a
  point of the ANN; a comma list compiles one artifact per value);
* **sigma-delta** (``encoding="sigma-delta"``): ReLUs become sigma-delta neurons sending graded
  changes of their activation.

Printed per (task, encoding): accuracy (and the float ANN's), steps per sample, synaptic
operations per sample (accumulates of binary spikes + multiply-accumulates of graded values,
NeuroBench definitions, :mod:`neurocc.runtime.metrics`), events (binary spikes, graded
messages), and two energy *estimates*: ``chip`` with Loihi 1's published per-operation figures
(Davies et al. 2018: 23.6 pJ per synaptic op, 52 pJ per neuron update; **assumed**: a graded
multiply-accumulate costs one synaptic op, and Loihi 2 is taken to cost as Loihi 1: Loihi 2
publishes no per-operation figure) and ``cpu`` (edge-cpu's arithmetic-only figures: every synapse
every step, 0.23 pJ per 8-bit MAC + 6.5 pJ per neuron update: a lower bound).

Static tasks: every test sample is one independent run (``neurocc.evaluate(..., metrics=True)``).
Sequence task: rate coding cannot reuse anything between frames, so each frame is one static
sample of ``rate-steps`` steps; the sigma-delta network runs the stream, each frame held for
``--sd-frame-steps`` steps with no reset between frames (only what changed is sent), and a frame
is classified by the read-out at its last step once the pipeline latency has passed.

All figures are counts from the emulator's run, the specification of the loihi2 artifact (Lava
and edge-cpu equal it bit for bit); no time is measured, so the machine's load does not matter.

Run: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sparsity.py [--tasks mlp,cnn,seq] [--rate-steps 64,16]``
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from neurocc.targets import Energy

CHIP = Energy(pj_per_synop=23.6, pj_per_mac=23.6, pj_per_neuron_update=52.0)
CPU = Energy(pj_per_synop=0.23, pj_per_mac=0.23, pj_per_neuron_update=6.5)


def _energies(m: Any) -> dict[str, float | None]:
    from neurocc.runtime.metrics import estimate_energy

    return {"chip_J": estimate_energy(m, CHIP, "events").joules, "cpu_J": estimate_energy(m, CPU, "dense").joules}


def _row(task: str, encoding: str, acc: float, ann: float, m: Any, **extra: Any) -> dict[str, Any]:
    return {"task": task, "encoding": encoding, "accuracy": acc, "ann_accuracy": ann, "steps": m.steps,
            "acs": m.acs, "macs": m.macs, "synops": m.synops, "dense": m.dense_ops, "spikes": m.spikes,
            "graded": m.graded_events, "sparsity": m.activation_sparsity, **_energies(m), **extra}


def _compile(model: Any, out: Path, cal: dict, shape: tuple, encoding: str, steps: int) -> Path:
    import neurocc

    kw: dict[str, Any] = {"timesteps": steps}
    if encoding == "sigma-delta":
        kw = {"encoding": "sigma-delta"}
    return Path(neurocc.compile(model, "loihi2", out, calibration=cal, input_shape=shape, **kw))


def variants(encodings: list[str], rate_steps: list[int]) -> list[tuple[str, str, int]]:
    """(row label, encoding, steps) per artifact to compile: one rate-coded artifact per steps value."""
    out = []
    for enc in encodings:
        out += [(f"rate T={t}", "rate", t) for t in rate_steps] if enc == "rate" else [(enc, enc, 0)]
    return out


def static_rows(arch: str, root: Path, encodings: list[str], rate_steps: list[int]) -> list[dict[str, Any]]:
    """The digits MLP/CNN: compile per encoding, evaluate every test sample with metrics."""
    import neurocc
    from neurocc.runtime.metrics import Metrics
    from neurocc.zoo import ann_accuracy, load_digits_split, train_digits_ann

    image = arch == "cnn"
    x_tr, y_tr, x_te, y_te = load_digits_split(0, image=image)
    model = train_digits_ann(0, arch=arch)
    ann = ann_accuracy(model, x_te, y_te)
    rows = []
    for label, enc, steps in variants(encodings, rate_steps):
        art = _compile(model, root / f"{arch}-{enc}-{steps}", {"x": x_tr, "y": y_tr}, tuple(x_te.shape[1:]), enc,
                       steps)
        res = neurocc.evaluate(art, {"x": x_te, "y": y_te}, backend="emulator", metrics=True)
        rows.append(_row(arch, label, res["accuracy"], ann, Metrics.from_dict(res["metrics"])))
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    from neurocc.runtime.plan import _si

    head = ["task", "encoding", "accuracy", "ANN", "steps", "synaptic ops", "= ACs", "+ MACs", "spikes",
            "graded", "act. sparsity", "chip energy*", "cpu energy*"]
    body = [[r["task"], r["encoding"], f"{r['accuracy'] * 100:.2f}%", f"{r['ann_accuracy'] * 100:.2f}%",
             f"{r['steps']:g}", _si(r["synops"], ""), _si(r["acs"], ""), _si(r["macs"], ""), _si(r["spikes"], ""),
             _si(r["graded"], ""), f"{r['sparsity']:.3f}", _si(r["chip_J"], "J"), "≥ " + _si(r["cpu_J"], "J")]
            for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    fmt = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    lines = [fmt(head), "| " + " | ".join("-" * w for w in widths) + " |", *(fmt(b) for b in body)]
    for b in (r for r in rows if r["encoding"] == "sigma-delta"):
        for a in (r for r in rows if r["task"] == b["task"] and r["encoding"].startswith("rate")):
            lines.append(f"{b['task']}: sigma-delta uses {a['synops'] / b['synops']:.1f}x fewer synaptic ops than "
                         f"{a['encoding']}; accuracy vs the ANN: sigma-delta {(b['accuracy'] - b['ann_accuracy']) * 100:+.2f}"
                         f" points, {a['encoding']} {(a['accuracy'] - a['ann_accuracy']) * 100:+.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="mlp,cnn,seq", help="comma list of mlp, cnn, seq")
    p.add_argument("--encodings", default="rate,sigma-delta", help="comma list of rate, sigma-delta")
    p.add_argument("--rate-steps", default="64", help="timesteps of the rate-coded networks, a comma list (default 64)")
    p.add_argument("--sd-frame-steps", type=int, default=1, help="steps each frame is held (sigma-delta stream)")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args(argv)
    tasks, encs = args.tasks.split(","), args.encodings.split(",")
    rate_steps = [int(t) for t in args.rate_steps.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in tasks:
            if t in ("mlp", "cnn"):
                rows += static_rows(t, Path(tmp), encs, rate_steps)
            elif t == "seq":
                from bench_sparsity_seq import sequence_rows

                rows += sequence_rows(Path(tmp), encs, rate_steps, args.sd_frame_steps)
            print(f"{t}: done", file=sys.stderr, flush=True)
    print(format_rows(rows))
    print("* energy estimates, not measurements: chip = Loihi 1's published figures (graded MAC assumed = one "
          "synaptic op); cpu = edge-cpu arithmetic only, dense (a lower bound)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
