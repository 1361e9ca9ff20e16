"""Ranked fixes for a network that does not fit: each candidate is applied and the mapping is run
again, so every predicted effect is computed, not canned.

Candidates, generated from the violations found:

* ``chips``: deploy on k chips (k = the chips the placement needed), when only the chip count
  binds and the target declares one;
* ``weight_bits``: lower the synaptic weight width to b (loihi numerics, where weights are 1–8
  bit mantissas), when synaptic memory, SDRAM, cores or chips bind; the largest b that fits;
* ``move``: start layer X on a chip of its own, when a per-chip resource (SDRAM, routing
  entries) binds and more chips are allowed;
* ``groups``: split a conv layer's input channels into k groups (a grouped convolution: changes
  the model, needs retraining), when per-core fan-in or synaptic memory binds at a conv layer;
* ``target``: use another target from targets.yaml that fits the same graph;
* ``prune``: zero the smallest fraction of the smallest-magnitude weights (per layer, and global)
  that makes the network fit, when synaptic memory, fan-in/out, synaptic rows, SDRAM, cores or
  chips bind (:mod:`neurocc.compiler.prune`; fractions 5 %, 10 %, ..., 95 %, 98 %, 99 %, found by
  bisection). With ``recompile`` (the compile pipeline passes it) the source model is pruned and
  compiled again as ``compile --prune`` would, the fit is re-checked on that graph and the
  accuracy on the calibration data (emulator, labels required) is reported.

Ranking: fixes that make the network fit first; then deployment changes (chips, move) before
quantization (weight_bits), other hardware (target) and model changes (groups, prune); then fewer
cores.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from neurocc.compiler.passes.partition import conn_bits
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Conv2d
from neurocc.targets import Target

if TYPE_CHECKING:
    from neurocc.compiler.mapping import Fix, MappingReport

_KIND_RANK = {"chips": 0, "move": 0, "weight_bits": 1, "target": 2, "groups": 3, "prune": 3}
_PRUNABLE = {"synapse_memory_bits", "sdram_bytes", "chips", "cores_per_chip", "fan_in_axons",
             "fan_out_axons", "synapses_per_row"}
PRUNE_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20)) + (0.98, 0.99)
_MEMORY = {"synapse_memory_bits", "sdram_bytes", "chips", "cores_per_chip"}


def compute_fixes(graph: Graph, target: Target, report: "MappingReport", targets: dict[str, Target],
                  weight_bits: int | None, recompile=None) -> list["Fix"]:
    resources = {v.resource for v in report.violations}
    fixes: list[Fix] = []
    if resources == {"chips"}:
        fixes += _chips_fix(graph, target, report, weight_bits)
    if resources & _MEMORY and target.numerics == "loihi":
        fixes += _weight_bits_fix(graph, target, report, weight_bits)
    if resources & {"sdram_bytes", "routing_entries"}:
        fixes += _move_fixes(graph, target, report, weight_bits)
    if resources & {"fan_in_axons", "synapse_memory_bits"}:
        fixes += _groups_fixes(graph, target, report, weight_bits)
    fixes += _target_fixes(graph, target, targets)
    if resources & _PRUNABLE:
        fixes += _prune_fixes(graph, target, weight_bits, recompile)
    return sorted(fixes, key=lambda f: (not f.fits, _KIND_RANK[f.kind], f.cores, f.action))


def _outcome(graph: Graph, target: Target, weight_bits: int | None = None, pin: str | None = None):
    """(fits, cores, chips, effect text) of mapping ``graph`` on ``target``."""
    from neurocc.compiler.mapping import build_report, map_network
    from neurocc.compiler.passes.place import place

    part, pl = map_network(graph, target, weight_bits=weight_bits)
    if pin is not None:
        pl = place(part, target, graph, refine=False, own_chip=pin)
    r = build_report(target, part, pl)
    chips = "chip" if r.chips == 1 else "chips"
    if r.fits:
        return True, r.cores, r.chips, f"fits: {r.cores} cores on {r.chips} {chips}"
    return False, r.cores, r.chips, f"still does not fit ({r.cores} cores on {r.chips} {chips}); then binding: {r.binding.text()}"


def _fix(kind: str, action: str, outcome, changes_model: bool = False, accuracy: float | None = None) -> "Fix":
    from neurocc.compiler.mapping import Fix

    fits, cores, chips, effect = outcome
    if accuracy is not None:
        effect += f"; accuracy on the calibration data after pruning {100 * accuracy:.2f}%"
    return Fix(kind, action, fits, cores, chips, effect, changes_model, accuracy)


def _chips_fix(graph, target, report, weight_bits) -> list["Fix"]:
    if target.limits.chips is None:
        return []
    k = report.chips
    t = dataclasses.replace(target, limits=dataclasses.replace(target.limits, chips=k))
    return [_fix("chips", f"deploy on {k} chips (target allows {target.limits.chips})",
                 _outcome(graph, t, weight_bits))]


def _weight_bits_fix(graph, target, report, weight_bits) -> list["Fix"]:
    """The largest weight width below the current one that fits; else the narrowest tried."""
    current = max((conn_bits(c, target.limits, weight_bits)[1] for c in report.partition.network.conns),
                  default=target.limits.weight_bits)
    last = None
    for b in range(current - 1, 0, -1):
        out = _outcome(graph, target, b)
        last = (b, out)
        if out[0]:
            break
    if last is None:
        return []
    b, out = last
    return [_fix("weight_bits", f"lower weight bits from {current} to {b} (quantize with fewer bits)", out)]


def _move_fixes(graph, target, report, weight_bits) -> list["Fix"]:
    """For each chip over a per-chip limit: start its largest layer on a chip of its own."""
    bad = {v.layer for v in report.violations if v.scope == "chip" and v.layer}
    out = []
    for chip in report.placement.chips:
        for layer in chip.layers[-1:]:
            if layer in bad or any(layer in c.layers for c in report.placement.chips if c.chip != chip.chip):
                out.append(_fix("move", f"move layer '{layer}' to a chip of its own",
                                _outcome(graph, target, weight_bits, pin=layer)))
    return out[:3]


def _groups_fixes(graph, target, report, weight_bits) -> list["Fix"]:
    out = []
    layers = {v.layer for v in report.violations if v.resource in ("fan_in_axons", "synapse_memory_bits")}
    for layer in sorted(x for x in layers if x):
        for c in report.partition.network.into(layer):
            convs = [o for o in c.ops if isinstance(graph.nodes[o], Conv2d)]
            if c.kind == "local" and convs:
                fix = _grouped(graph, target, convs[-1], weight_bits)
                if fix is not None:
                    out.append(fix)
    return out


def _grouped(graph: Graph, target: Target, name: str, weight_bits) -> "Fix | None":
    """Smallest group count k > groups dividing C_in and C_out that makes the layer fit."""
    node = graph.nodes[name]
    cout, cin_pg = node.weight.shape[:2]
    cin = cin_pg * node.groups
    tried = None
    for k in range(node.groups + 1, cin + 1):
        if cin % k or cout % k:
            continue
        w = np.ascontiguousarray(node.weight[:, : cin // k])
        g2 = graph.with_node(name, node.replace(weight=w, groups=k))
        out = _outcome(g2, target, weight_bits)
        tried = (k, out)
        if out[0]:
            break
    if tried is None:
        return None
    k, out = tried
    return _fix("groups", f"split conv '{name}' into {k} channel groups (each output reads "
                f"{cin // k} of {cin} input channels; retrain)", out, changes_model=True)


def _target_fixes(graph: Graph, target: Target, targets: dict[str, Target]) -> list["Fix"]:
    out = []
    for name, t in targets.items():
        if name == target.name:
            continue
        outcome = _outcome(graph, t)
        if outcome[0]:
            out.append(_fix("target", f"use target '{name}'", outcome))
    return out


def _prune_fixes(graph, target, weight_bits, recompile) -> list["Fix"]:
    """Per layer and global: the smallest grid fraction whose pruned graph fits (module doc)."""
    from neurocc.compiler.prune import PruneSpec, prune_graph, weight_ops

    if not weight_ops(graph):
        return []
    out = []
    for scope in ("layer", "global"):
        def outcome(i: int, scope=scope):
            return _outcome(prune_graph(graph, PruneSpec(PRUNE_GRID[i], scope)), target, weight_bits)

        found = _bisect(outcome, len(PRUNE_GRID))
        if found is None:
            continue
        i, result = found
        spec, acc = PruneSpec(PRUNE_GRID[i], scope), None
        # the float model's magnitudes order a little differently: up to 2 grid steps more
        tries = range(i, min(i + 3, len(PRUNE_GRID))) if recompile is not None else range(0)
        for j in tries:
            spec = PruneSpec(PRUNE_GRID[j], scope)
            pruned, acc = recompile(spec)
            result = _outcome(pruned, target, weight_bits)
            if result[0]:
                break
        where = "in every layer" if scope == "layer" else "over all layers"
        out.append(_fix("prune", f"prune {100 * spec.fraction:.0f}% of the smallest-magnitude weights {where} "
                                 f"(`compile --prune {spec.text()}`; fine-tune to recover accuracy)",
                        result, changes_model=True, accuracy=acc))
    return out


def _bisect(outcome, n: int):
    """Smallest index i < n with outcome(i) fitting (outcome assumed monotone), or None."""
    top = outcome(n - 1)
    if not top[0]:
        return None
    lo, hi, best = -1, n - 1, top
    while hi - lo > 1:
        mid = (lo + hi) // 2
        res = outcome(mid)
        if res[0]:
            hi, best = mid, res
        else:
            lo = mid
    return hi, best
