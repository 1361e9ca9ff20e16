"""``--accuracy-budget POINTS``: a greedy search that keeps the emulator within POINTS of the float model.

The loss of one trial is measured on the calibration data by the emulator-in-the-loop
diagnostics (:meth:`~neurocc.compiler.diagnostics.QuantDiagnostics.loss_points`): with labels
``y``, the float model's accuracy minus the emulator's, in percentage points (the float model is
the ANN for a converted model, else the float SNN); without labels, 100 · (1 − class agreement)
with the float model.

Phase 1 (meet the budget): the calibrated compile at the requested timesteps; if it loses more
than POINTS, an ANN is tried at 2× and 4× the timesteps (rate codes resolve finer with T), and on
targets whose numerics take per-neuron scales cheaply (``int8``) with per-channel weight
scales. If no trial meets the budget the compile fails, listing every trial with its numbers.

Phase 2 (spend less): from the passing configuration, each layer in order has its weight
mantissa lowered (8 → 6 → 4 → 3 → 2 bits) while the loss stays within POINTS; the first bit width
that breaks the budget stops that layer (fewer weight bits mean less synaptic memory per core).

Every trial is reported (``trials``): timesteps, per_channel, weight bits per layer, loss,
emulator accuracy/agreement, and whether it was within the budget or why it failed.
"""
from __future__ import annotations

import math
from typing import Any

from neurocc.compiler.trials import InProcess, Runner
from neurocc.errors import CompileError, InputError
from neurocc.ir.discrete import NEURON_TYPES
from neurocc.ir.graph import Graph
from neurocc.targets import Target

BIT_STEPS = (6, 4, 3, 2)
T_FACTORS = (2, 4)
MAX_TIMESTEPS = 1024


def _trial(prep: Any, budget: float, *, per_channel: bool, weight_bits: dict[str, int], stats: Any,
           phase: int) -> tuple[Any, float, dict[str, Any]]:
    """Quantize ``prep`` with these settings: (Compiled or None, loss in points or inf, trial report)."""
    from neurocc.compiler.pipeline import quantize_prepared

    doc: dict[str, Any] = {"phase": phase, "timesteps": prep.timesteps, "per_channel": per_channel,
                           "weight_bits": dict(weight_bits)}
    try:
        c = quantize_prepared(prep, stats=stats, per_channel=per_channel, weight_bits=weight_bits, check=False)
    except CompileError as err:
        doc.update(loss_points=None, within=False, error=err.what)
        return None, math.inf, doc
    d = c.diagnostics
    loss, metric = d.loss_points()
    doc.update(loss_points=round(loss, 4), metric=metric, accuracy_quant=d.accuracy_quant, agreement=d.agreement,
               silenced_layers=len(d.failures), within=bool(loss <= budget and not d.failures))
    return c, (loss if not d.failures else math.inf), doc


def search(graph: Graph, tgt: Target, budget: float, *, calibration: Any, dt: float | None = None,
           method: Any = "euler", timesteps: int | None = None, encoding: Any = None, per_channel: bool = False,
           stats: Any = None, runner: Runner | None = None) -> tuple[Any, dict[str, Any]]:
    """(Compiled, report) of the cheapest configuration found within ``budget`` points; the trials
    run where ``runner`` says (default: here, one after the other; the result is the same)."""
    from neurocc.compiler.calibrate import preload
    from neurocc.compiler.pipeline import DEFAULT_TIMESTEPS

    if not math.isfinite(budget) or budget < 0:
        raise InputError(f"accuracy budget {budget} is not a number of points >= 0", where="--accuracy-budget",
                         fix="pass e.g. --accuracy-budget 1 (one percentage point)")
    if calibration is None:
        raise CompileError("--accuracy-budget needs calibration data to measure the accuracy on",
                           where=f"graph '{graph.name}'",
                           fix="add --calibration cal.npz (x, and labels y to budget accuracy rather than agreement)")
    if tgt.numerics == "float32":
        raise CompileError(f"target '{tgt.name}' runs float32: there is no quantization to budget",
                           where="--accuracy-budget", fix="leave out --accuracy-budget for float targets")
    runner = runner or InProcess()
    ann = any(n.ann_only for n in graph.nodes.values())
    t0 = int(timesteps or (DEFAULT_TIMESTEPS if ann else 0)) or None
    steps = [t0] + ([t0 * f for f in T_FACTORS if t0 * f <= MAX_TIMESTEPS] if ann and t0 else [])
    shared = runner.share({"graph": graph, "tgt": tgt, "budget": budget, "stats": stats, "per_channel": per_channel,
                           "kw": {"dt": dt, "method": method, "calibration": preload(calibration),
                                  "encoding": encoding}})
    runs = runner.first(_configuration, shared, steps, lambda r: r["found"] is not None,
                        [f"at {t} timesteps" if t else "at the data's timesteps" for t in steps])
    trials = [doc for r in runs for doc in r["trials"]]
    if runs[-1]["found"] is None:
        raise _unmet(graph, budget, trials)
    prep, (best, pc) = runs[-1]["prep"], runs[-1]["found"]
    bits, lowered = _lower_bits(prep, budget, trials, pc, stats, runner)
    best = lowered or best
    doc = {"points": budget, "metric": trials[-1].get("metric") or "accuracy", "met": True,
           "chosen": {"timesteps": prep.timesteps, "per_channel": pc, "weight_bits": bits,
                      "loss_points": best.diagnostics.loss_points()[0]},
           "trials": trials}
    return best, doc


def _configuration(shared: dict[str, Any], timesteps: int | None) -> dict[str, Any]:
    """Phase 1 at ``timesteps``: prepare the float side, then quantize it per-tensor (as asked)
    and, on ``int8`` targets, per-channel, stopping at the first within the budget. ``found``:
    (Compiled, per_channel) of that one, or None; ``prep`` only with it."""
    from neurocc.compiler.pipeline import prepare

    s = shared
    prep = prepare(s["graph"], s["tgt"], timesteps=timesteps, **s["kw"])
    trials, found = [], None
    for pc in [s["per_channel"]] + ([True] if s["tgt"].numerics == "int8" and not s["per_channel"] else []):
        c, loss, doc = _trial(prep, s["budget"], per_channel=pc, weight_bits={}, stats=s["stats"], phase=1)
        trials.append(doc)
        if loss <= s["budget"]:
            found = (c, pc)
            break
    return {"trials": trials, "found": found, "prep": prep if found else None}


def _lower_bits(prep: Any, budget: float, trials: list[dict[str, Any]], pc: bool, stats: Any,
                runner: Runner) -> tuple[dict[str, int], Any]:
    """Phase 2: (weight bits per layer, the last compile within the budget or None). Per layer the
    bit widths of :data:`BIT_STEPS` are tried in order up to the first that breaks the budget."""
    g = prep.to_quantize   # its calibrated-rounding Gram matrices were measured in phase 1: shipped with it
    shared = runner.share({"prep": prep, "budget": budget, "pc": pc, "stats": stats})
    bits: dict[str, int] = {}
    last = None
    for layer in (n for n in g.order() if isinstance(g.nodes[n], NEURON_TYPES)):
        runs = runner.first(_bits_trial, shared, [{**bits, layer: b} for b in BIT_STEPS],
                            lambda r: r[1] > budget, [f"with layer '{layer}' at {b}-bit weights" for b in BIT_STEPS])
        for (c, loss, doc), b in zip(runs, BIT_STEPS):
            trials.append(doc)
            if loss <= budget:
                bits[layer], last = b, c
    return bits, last


def _bits_trial(shared: dict[str, Any], weight_bits: dict[str, int]) -> tuple[Any, float, dict[str, Any]]:
    """One phase-2 trial: the Compiled only when it is within the budget (the others are not used)."""
    s = shared
    c, loss, doc = _trial(s["prep"], s["budget"], per_channel=s["pc"], weight_bits=weight_bits, stats=s["stats"],
                          phase=2)
    return (c if loss <= s["budget"] else None), loss, doc


def _unmet(graph: Graph, budget: float, trials: list[dict[str, Any]]) -> CompileError:
    losses = [t["loss_points"] for t in trials if t.get("loss_points") is not None]
    best = f"the best trial lost {min(losses):.2f} points" if losses else "no trial could be quantized"
    lines = []
    for t in trials:
        res = (f"lost {t['loss_points']:.2f} points ({t['metric']})" if t.get("loss_points") is not None
               else f"failed: {t.get('error')}")
        if t.get("silenced_layers"):
            res += f", {t['silenced_layers']} layer(s) silenced"
        lines.append(f"timesteps {t['timesteps']}, per_channel {t['per_channel']}, 8-bit weights: {res}")
    return CompileError(f"the accuracy budget of {budget:g} points cannot be met on the calibration data: {best}",
                        where=f"graph '{graph.name}'", problems=lines,
                        fix="allow a larger --accuracy-budget, give more timesteps (--timesteps), or retrain the "
                            "model with quantization in mind")


def fraction_search(trial: Any, shared: Any, fractions: tuple[float, ...], budget: float, name: str,
                    runner: Runner | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sigma-delta threshold search: ``trial(shared, fraction)`` (a dict with ``loss`` in points)
    for each fraction in order (largest first: fewest messages); the first within ``budget`` is
    kept. The trials run where ``runner`` says (default: here; ``shared`` as
    :meth:`~neurocc.compiler.trials.Runner.share` returned it). Returns (that trial, the budget
    report with every trial up to it)."""
    if not math.isfinite(budget) or budget < 0:
        raise InputError(f"accuracy budget {budget} is not a number of points >= 0", where="--accuracy-budget",
                         fix="pass e.g. --accuracy-budget 1 (one percentage point)")
    runs = (runner or InProcess()).first(trial, shared, fractions, lambda t: t["loss"] <= budget,
                                         [f"at threshold fraction {f:g}" for f in fractions])
    trials = [{"threshold_fraction": f, "loss_points": round(t["loss"], 4), "within": t["loss"] <= budget}
              for f, t in zip(fractions, runs)]
    t, f = runs[-1], fractions[len(runs) - 1]
    if t["loss"] <= budget:
        return t, {"points": budget, "metric": "accuracy" if t["ann_accuracy"] is not None else "agreement",
                   "met": True, "chosen": {"threshold_fraction": f, "loss_points": t["loss"]}, "trials": trials}
    lines = [f"threshold fraction {t['threshold_fraction']:g}: lost {t['loss_points']:.2f} points" for t in trials]
    raise CompileError(f"the accuracy budget of {budget:g} points cannot be met on the calibration data by any "
                       "sigma-delta threshold", where=f"graph '{name}'", problems=lines,
                       fix="allow a larger --accuracy-budget, or use rate coding (--encoding constant)")
