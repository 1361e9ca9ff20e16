"""``neurocc compile MODEL --target loihi2 --calibration cal.npz --encoding sigma-delta``.

Converts the ANN with :func:`neurocc.compiler.sdnn.convert_sdnn`, then measures on the
calibration data with the emulator (the integer network as deployed):

* **accuracy vs steps**: one run of ``latency + 2`` steps, the read-out scored at every step
  (a static input reaches the read-out ``latency`` steps after it is applied, one step per
  synapse layer, and the network is then silent: nothing changes, nothing is sent);
* **per layer**: threshold, mean |Δ| sent, messages per sample, fraction of neurons silent per
  step (:mod:`neurocc.backends.emulator.activity`);
* with ``--accuracy-budget POINTS``: the threshold fraction is searched, largest first
  (:data:`FRACTIONS`; a larger fraction sends fewer, coarser messages), and the first within
  POINTS of the ANN's calibration accuracy (without labels: of class agreement) is kept
  (:func:`neurocc.compiler.budget.fraction_search`).

Targets: loihi-numerics targets whose ``limits.message_bits`` allows graded spikes (loihi2,
emulator). Loihi 1 and SpiNNaker send binary spikes only and are refused with that reason; the
artifact runs on the emulator, Lava (via lava-dl netx: Lava's Delta/SigmaDelta/Sigma processes)
and edge-cpu (integer ONNX).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.targets import Target

DEFAULT_THRESHOLD = 0.05        # measured on digits: MLP −0.44, CNN −0.44 points (docs/conversion.md)
FRACTIONS = (0.2, 0.1, 0.05, 0.02, 0.01, 0.0)
# scored steps after the latency: default latency + 1, so that a run of that many steps (what
# `neurocc validate` feeds) already reaches the read-out; static inputs settle in one
TABLE_SAMPLES = 256
DIAG_SAMPLES = 512


def check_target(tgt: Target) -> None:
    """Refuse (with the reason) a target that cannot run graded sigma-delta messages."""
    if tgt.numerics == "loihi" and tgt.limits.message_bits:
        return
    why = {"spinnaker": "SpiNNaker's PyNN neurons (IF_curr_exp, ...) send binary spikes; a sigma-delta neuron "
                        "sends graded messages (its activation change), which no PyNN cell type carries",
           "int8": "the int8 profile has no sigma-delta numerics; the edge-cpu backend runs the loihi2 artifact "
                   "exactly instead (`neurocc run DIR --backend edge-cpu`)",
           "float32": "float targets run the ANN itself; compile it without --encoding sigma-delta"}
    reason = why.get(tgt.numerics) or (f"target '{tgt.name}' sends binary spikes only (limits.message_bits is "
                                       "null): Loihi 1 has no graded spikes")
    raise CompileError(f"sigma-delta neurons cannot be compiled for target '{tgt.name}': {reason}",
                       where=f"target '{tgt.name}'", fix="compile for loihi2 (or the emulator target), or use "
                                                         "--encoding constant|poisson (rate coding)")


def compile_ann(graph: Graph, tgt: Target, calibration: Any, timesteps: int | None, threshold: float | None,
                budget: float | None, variant: str, runner: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """The pipeline's sigma-delta route: check the target and the model, read the (static)
    calibration data, :func:`compile_sdnn`."""
    from neurocc.compiler import calibrate
    from neurocc.compiler.passes.normalize import normalize

    check_target(tgt)
    if not any(n.ann_only for n in graph.nodes.values()) or calibration is None:
        raise CompileError("--encoding sigma-delta converts an ANN (ReLU layers) with calibration data",
                           where=f"graph '{graph.name}'",
                           fix="pass a ReLU network and --calibration cal.npz (x: static samples, y: labels)")
    cal = calibrate.read_calibration(calibration, normalize(graph), static=True)
    return compile_sdnn(graph, tgt, cal, timesteps=timesteps, threshold=threshold, accuracy_budget=budget,
                        variant=variant, runner=runner)


def readout_scores(out: np.ndarray) -> np.ndarray:
    """Class scores per step (steps, batch, classes) from the Sigma read-out's values."""
    return np.asarray(out, np.float64).reshape(out.shape[0], out.shape[1], -1)


def measure(g: Graph, x: np.ndarray, y: np.ndarray | None, ann_pred: np.ndarray, scale: float, steps: int
            ) -> dict[str, Any]:
    """Emulator run of ``g`` on static ``x`` (fed as rint(x·scale) for ``steps`` steps): per-step
    accuracy/agreement, and the per-layer activity record."""
    from neurocc.backends.emulator.activity import sigma_delta_activity
    from neurocc.ir.numerics.core import round_to_int

    xi = round_to_int(np.asarray(x, np.float64) * scale).astype(np.int64)
    (inp,) = g.inputs
    outs, act = sigma_delta_activity(g, {inp: np.broadcast_to(xi, (steps, *xi.shape))}, steps)
    pred = readout_scores(outs[g.outputs[0]]).argmax(2)
    rows = [{"steps": t + 1, "agreement": float(np.mean(pred[t] == ann_pred)),
             "accuracy": None if y is None else float(np.mean(pred[t] == y))} for t in range(steps)]
    return {"table": rows, "activity": act}


def chain_latency(g: Graph) -> int:
    """Steps from the input to the read-out of a chain graph (one per synapse → neuron edge)."""
    return int(sum(e.delay for e in g.edges))


def _trial(shared: dict[str, Any], fraction: float) -> dict[str, Any]:
    """Convert ``shared["graph"]`` at ``fraction`` and measure it on (x, y): graph, quantization
    report, measurement, loss in points against the ANN (accuracy with labels, else agreement).
    ``shared``: graph, x, y, ann_pred, variant, mbits, window (one dict: sent to workers once)."""
    from neurocc.compiler.sdnn import convert_sdnn

    graph, x, y, ann_pred = shared["graph"], shared["x"], shared["y"], shared["ann_pred"]
    variant, mbits, window = shared["variant"], shared["mbits"], shared["window"]

    g, quant = convert_sdnn(graph, x, threshold=fraction, variant=variant, message_bits=mbits)
    (inp,) = g.inputs
    lat = chain_latency(g)
    window = int(window or lat + 1)
    m = measure(g, x, y, ann_pred, quant["input_scales"][inp], lat + window)
    last = m["table"][-1]
    ann_acc = None if y is None else float(np.mean(ann_pred == y))
    loss = 100 * (ann_acc - last["accuracy"]) if y is not None else 100 * (1 - last["agreement"])
    return {"graph": g, "quant": quant, "measure": m, "latency": lat, "window": window, "loss": float(loss),
            "ann_accuracy": ann_acc}


def compile_sdnn(graph: Graph, tgt: Target, cal: Any, *, timesteps: int | None = None,
                 threshold: float | None = None, accuracy_budget: float | None = None,
                 variant: str = "lava-0.10", runner: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """(Compiled, accuracy-budget report or None) of the ANN ``graph`` as a sigma-delta network.
    ``cal`` is the checked static calibration data (:class:`neurocc.compiler.calibrate.Calibration`);
    ``runner``: where the budget's trials run (:mod:`neurocc.compiler.trials`; default here)."""
    from neurocc.compiler.budget import fraction_search
    from neurocc.compiler.passes.convert import ann_forward
    from neurocc.compiler.passes.normalize import normalize
    from neurocc.compiler.pipeline import Compiled
    from neurocc.ir.encoding import Encoding

    check_target(tgt)
    window = int(timesteps) if timesteps else None
    (x,) = cal.x.values()
    norm = normalize(graph)
    sub = slice(0, min(len(x), DIAG_SAMPLES))
    out = norm.outputs[0]
    ann_pred = ann_forward(norm, x[sub], [out])[out].reshape(len(x[sub]), -1).argmax(1)
    y = None if cal.y is None else np.asarray(cal.y)[sub]
    mbits = int(tgt.limits.message_bits)

    shared = {"graph": graph, "x": x[sub], "y": y, "ann_pred": ann_pred, "variant": variant, "mbits": mbits,
              "window": window}
    budget_doc = None
    if accuracy_budget is not None:
        shared = runner.share(shared) if runner is not None else shared
        best, budget_doc = fraction_search(_trial, shared, FRACTIONS, float(accuracy_budget), graph.name, runner)
    else:
        best = _trial(shared, DEFAULT_THRESHOLD if threshold is None else float(threshold))
    g, quant = best["graph"], best["quant"]
    _check_payloads(best["measure"]["activity"], mbits, tgt.name)
    conv = conversion_report(best, cal, len(ann_pred))
    quant["sigma_delta"]["activity"] = best["measure"]["activity"]
    enc = Encoding("sigma-delta", best["window"]).to_dict()
    return Compiled(g, g, quant, conv, None, enc, best["window"], cal.summary(), (), cal), budget_doc


def _check_payloads(activity: dict[str, Any], mbits: int, target: str) -> None:
    """Refuse messages beyond the target's signed ``mbits``-bit payloads (measured on calibration)."""
    over = [f"layer '{n}' sends |payload| up to {r['max_abs_payload']:,} (limit {(1 << (mbits - 1)) - 1:,})"
            for n, r in activity["layers"].items() if r["mode"] != "sigma" and r["max_abs_payload"] >= 1 << (mbits - 1)]
    if over:
        raise CompileError(f"graded messages exceed target '{target}''s {mbits}-bit payloads on the calibration data",
                           where=f"target '{target}'", problems=over,
                           fix="this is a neurocc bug in the scale rule (neurocc/compiler/sdnn.py); please report it")


def conversion_report(best: dict[str, Any], cal: Any, n: int) -> dict[str, Any]:
    """The manifest's ``conversion`` of a sigma-delta compile: the rule, per layer threshold, mean
    |Δ| sent (float units of the layer's activation), silent fraction per step, and the table."""
    sd = best["quant"]["sigma_delta"]
    act = best["measure"]["activity"]["layers"]
    layers = []
    for row in sd["layers"]:
        a = act.get(row["layer"], {})
        unit = (1 << 6) / row["scale"]                 # float value of one payload unit
        layers.append({**{k: row[k] for k in ("layer", "kind", "vth", "threshold", "lambda", "scale")},
                       "weight_max": row.get("weight_max"),
                       "mean_abs_delta": a.get("mean_abs_payload", 0.0) * unit,
                       "messages_per_sample": a.get("messages_per_sample", 0.0),
                       "silent_fraction": a.get("silent_fraction"), "silent_per_step": a.get("silent_per_step")})
    return {"encoding": "sigma-delta", "threshold_fraction": sd["threshold_fraction"], "variant": sd["variant"],
            "rule": sd["rule"], "input_scale": sd["input_scale"], "logit_offset": sd["logit_offset"],
            "latency": best["latency"], "ann_accuracy": best["ann_accuracy"], "n_calibration": n,
            "loss_points": best["loss"], "layers": layers, "tradeoff": best["measure"]["table"],
            "samples": cal.samples}


def format_sigma_delta(conv: dict[str, Any]) -> str:
    """The compile table of a sigma-delta conversion."""
    from neurocc.compiler.summary import _g, _grid, _pct

    lines = [(f"ANN→SDNN conversion (sigma-delta, {conv['variant']} numerics): threshold = "
              f"{conv['threshold_fraction']:g} × each layer's λ; latency {conv['latency']} steps")]
    lines += _grid(["layer", "kind", "threshold", "vth (state)", "mean |Δ| sent", "msgs/sample", "silent/step"],
                   [[r["layer"], r["kind"], _g(r["threshold"]), r["vth"], _g(r["mean_abs_delta"]),
                     _g(r["messages_per_sample"]), " ".join(f"{100 * s:.0f}%" for s in (r["silent_per_step"] or []))]
                    for r in conv["layers"]])
    acc = f", ANN accuracy {100 * conv['ann_accuracy']:.2f}%" if conv.get("ann_accuracy") is not None else ""
    lines.append(f"integer SDNN (emulator) on {conv['n_calibration']} calibration samples{acc}; "
                 "a static input is applied from step 1:")
    lines += _grid(["steps", "agreement with ANN", "accuracy"],
                   [[r["steps"], _pct(r["agreement"]), _pct(r["accuracy"])] for r in conv["tradeoff"]])
    return "\n".join(lines)
