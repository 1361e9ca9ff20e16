"""Judge one backend's run against its reference: the comparison fields and verdict of a result.

Who is judged against whom (the report's format: :mod:`neurocc.runtime.validate`): an ``exact`` target's backend against the ``emulator`` element for element; a ``cosine``
target's backend against the float ``reference`` by mean-activity cosine; the ``emulator`` against
the ``reference`` (the quantization agreement, :data:`QUANT_MIN_COSINE`). Graded readouts are judged
bit for bit under ``exact``, else by the target's ``readout_rule``; plastic synapses' learned weights
exactly, or by :mod:`neurocc.runtime.learned` across the float/int divide. Pure: no backend runs here.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc import overflow
from neurocc.errors import NeuroccError
from neurocc.ir.artifact import Artifact
from neurocc.ir.graph import Graph
from neurocc.runtime import compare
from neurocc.targets import Validation

QUANT_MIN_COSINE = 0.9   # emulator vs reference: mean-activity cosine a default-scaled model must reach

def latency(graph: Graph) -> dict[str, int]:
    """Fewest steps from any Input to each node (sum of edge delays on the shortest path)."""
    return graph.input_delays()


def _spiking_layers(graph: Graph, run: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Spike arrays of the spiking nodes found in ``run`` (as ``<node>/out``, ``<node>`` or an Output
    fed only by that node)."""
    out: dict[str, np.ndarray] = {}
    for n, node in graph.nodes.items():
        if not node.spiking:
            continue
        for key in (f"{n}/out", n, f"{n}/z"):
            if key in run:
                out[n] = run[key]
                break
    for o in graph.outputs:
        srcs = graph.predecessors(o)
        if len(srcs) == 1 and srcs[0] in out:
            continue
        if len(srcs) == 1 and graph.nodes[srcs[0]].spiking and o in run:
            out[srcs[0]] = run[o]
    return out


def readout_outputs(graph: Graph) -> list[str]:
    """Graph outputs that carry graded values (a non-spiking source: LI/CubaLI membranes, Affine)."""
    return [o for o in graph.outputs if graph.predecessors(o)
            and not all(graph.nodes[p].spiking for p in graph.predecessors(o))]


def _readout_rule(art: Artifact) -> Validation:
    """The target's validation settings (its readout rule), from the artifact's manifest."""
    fields = {f.name for f in dataclasses.fields(Validation)}
    settings = art.target_settings.get("validation", {}) or {}
    return Validation(**{k: v for k, v in settings.items() if k in fields})


def _readouts(art: Artifact, graph: Graph, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
              lags: Mapping[str, int], exact: bool) -> dict[str, dict[str, Any]]:
    """Per graded readout: elements compared, relative error, trace cosine, the rule and its verdict.
    ``exact`` comparisons judge readouts bit for bit; others by the target's readout rule."""
    val = _readout_rule(art)
    out: dict[str, dict[str, Any]] = {}
    for o in readout_outputs(graph):
        if o not in expected or o not in got:
            continue
        e, g = compare.align(_float_units(art, o, expected[o]), _float_units(art, o, got[o]), lags.get(o, 0))
        err, cos = compare.relative_error(e, g), compare.trace_cosine(e, g)
        if exact:
            rule, limit, ok = "exact", None, bool(np.array_equal(expected[o], got[o]))
        elif val.readout_rule == "cosine":
            rule, limit = "cosine", val.readout_limit()
            ok = cos >= limit
        else:
            rule, limit = "relative_error", val.readout_limit()
            ok = err <= limit
        out[o] = {"compared": int(e.size), "mismatches": int(np.count_nonzero(e != g)), "relative_error": err,
                  "cosine": cos, "rule": rule, "limit": limit, "passed": bool(ok and e.size > 0)}
    return out


def _judge(art: Artifact, backend: str) -> tuple[str, str, float | None]:
    """(reference backend, rule, min_cosine) for ``backend`` of this artifact."""
    settings = art.target_settings.get("validation", {}) or {}
    if backend == "emulator":
        if art.graph.numerics is None:
            return "reference", "exact", None
        return "reference", "cosine", QUANT_MIN_COSINE
    if settings.get("rule", "exact") == "exact":
        return "emulator", "exact", None
    return "reference", "cosine", float(settings.get("min_cosine") or 0.99)


def compare_runs(art: Artifact, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                 float_vs_int: bool, exact: bool = True, backend: str = "") -> dict[str, Any]:
    """The comparison fields of one result (see the module docstring); ``exact``: the rule is
    ``exact`` (readouts judged bit for bit), else readouts follow the target's readout rule."""
    graph = art.float_graph if float_vs_int else art.graph
    lags = _lags(art) if float_vs_int else {}
    exp_l, got_l = _spiking_layers(graph, expected), _spiking_layers(graph, got)
    per_layer, rates = _layer_activity(exp_l, got_l, lags)
    outs = [o["name"] for o in art.outputs]
    pairs = {o: compare.align(_float_units(art, o, expected[o]), _float_units(art, o, got[o]), lags.get(o, 0))
             for o in outs if o in expected and o in got}
    comp_e, comp_g = _comparable(expected, got, exp_l, got_l, lags, float_vs_int)
    weights = _learned_weights(art, comp_e, comp_g)
    if float_vs_int:   # learned weights across the float/int divide: a stated measure, not equality
        from neurocc.runtime import learned

        weights = learned.judge(art, backend, expected, got)
    diffs = [compare.exact_diff(comp_e[k], comp_g[k]) for k in comp_e]
    compared, mismatches = sum(d["compared"] for d in diffs), sum(d["mismatches"] for d in diffs)
    compared += sum(w["compared"] for w in weights.values())
    mismatches += sum(w["mismatches"] for w in weights.values())
    readouts = _readouts(art, graph, expected, got, lags, exact=exact and not float_vs_int)
    if float_vs_int:   # readouts are not in comp_e there: count their elements too
        compared += sum(r["compared"] for r in readouts.values())
        mismatches += sum(r["mismatches"] for r in readouts.values())
    cos = (float(np.mean(list(per_layer.values()))) if per_layer else
           float(np.mean([compare.activity_cosine(*p) for p in pairs.values()])) if pairs else None)
    first, cls, why = _first_divergence(graph, comp_e, comp_g, float_vs_int)
    o0 = next(iter(pairs.values()), None)
    return {"exact": mismatches == 0 and compared > 0, "compared": compared, "mismatches": mismatches,
            "cosine": cos, "cosine_per_layer": per_layer, "rate_per_layer": rates, "first_divergence": first,
            "first_divergence_class": cls, "first_divergence_explanation": why,
            "spike_count_error": compare.spike_count_error(*o0) if o0 else None,
            "class_agreement": compare.class_agreement(*o0) if o0 else None,
            "lag": {k: v for k, v in lags.items() if v and k in set(outs) | set(per_layer)}, "readouts": readouts,
            **({"weights": weights} if weights else {})}


def _lags(art: Artifact) -> dict[str, int]:
    """Per node, the integer graph's extra steps of latency over the float graph's."""
    li, lf = latency(art.graph), latency(art.float_graph)
    return {n: li.get(n, 0) - lf.get(n, 0) for n in art.graph.nodes}


def _layer_activity(exp_l: Mapping[str, np.ndarray], got_l: Mapping[str, np.ndarray], lags: Mapping[str, int]
                    ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Per spiking layer in both runs: mean-activity cosine, and mean spikes per neuron per step
    ``[expected, got]``."""
    per_layer: dict[str, float] = {}
    rates: dict[str, list[float]] = {}
    for n in exp_l:
        if n in got_l:
            a, b = compare.align(exp_l[n], got_l[n], lags.get(n, 0))
            per_layer[n] = compare.activity_cosine(a, b)
            rates[n] = [float(np.mean(a)) if a.size else 0.0, float(np.mean(b)) if b.size else 0.0]
    return per_layer, rates


def _comparable(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], exp_l: Mapping[str, np.ndarray],
                got_l: Mapping[str, np.ndarray], lags: Mapping[str, int], float_vs_int: bool
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The arrays compared element by element: every array both runs recorded, or across the
    float/int divide only the spiking layers (aligned by ``lags``)."""
    if float_vs_int:
        aligned = {n: compare.align(exp_l[n], got_l[n], lags.get(n, 0)) for n in exp_l if n in got_l}
        return {n: a for n, (a, _) in aligned.items()}, {n: b for n, (_, b) in aligned.items()}
    common = sorted(set(expected) & set(got))
    return {k: expected[k] for k in common}, {k: got[k] for k in common}


def _learned_weights(art: Artifact, expected: dict, got: dict) -> dict[str, Any]:
    """Plastic synapses' weights after the run (``<node>/w``, (batch, post, pre)), compared
    exactly and moved out of ``expected``/``got`` (they are not time-major); their elements
    count in ``compared``/``mismatches`` through the returned ``diff`` entries."""
    out: dict[str, Any] = {}
    for k in [k for k in expected if k.endswith("/w") and k in got]:
        node = art.graph.nodes.get(k[:-2])
        if node is None or not getattr(node, "plastic", False):
            continue
        a, b = np.asarray(expected.pop(k), np.int64), np.asarray(got.pop(k), np.int64)
        same = a.shape == b.shape
        out[k[:-2]] = {"compared": int(a.size), "mismatches": int(np.count_nonzero(a != b)) if same else int(a.size),
                       "max_abs_diff": int(np.abs(a - b).max(initial=0)) if same else None}
    return out


def _float_units(art: Artifact, output: str, values: np.ndarray) -> np.ndarray:
    """An integer readout (a non-spiking output's state) in the float model's units, using the
    quantization report's ``float_per_lsb``; spikes and float values are returned unchanged."""
    info = ((art.quantization or {}).get("outputs") or {}).get(output) or {}
    if values.dtype.kind in "iu" and info.get("values") == "state" and info.get("float_per_lsb"):
        return values * float(info["float_per_lsb"])
    return values


def _first_divergence(graph: Graph, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                      float_vs_int: bool) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(first_divergence, its class, explanation). Runs of one graph go through the localiser
    (:mod:`neurocc.runtime.divergence`); float-versus-integer runs differ by design (quantization),
    so there only the first differing spike is named, without a class."""
    if float_vs_int:
        return compare.first_divergence(expected, got, graph.order()), None, None
    from neurocc.runtime.divergence import localise

    d = localise(expected, got, graph)
    return (None, None, None) if d is None else (d.contract(), d.cls, d.explanation)


def _result(art: Artifact, backend: str, runs: dict[str, Any]) -> dict[str, Any]:
    ref, rule, min_cos = _judge(art, backend)
    res: dict[str, Any] = {"backend": backend, "reference": ref, "rule": rule, "min_cosine": min_cos}
    got, expected = runs.get(backend), runs.get(ref)
    for name, r in ((backend, got), (ref, expected)):
        if isinstance(r, NeuroccError):
            res.update(exact=False, compared=0, mismatches=0, cosine=None, cosine_per_layer={},
                       first_divergence=None, first_divergence_class=None, readouts={},
                       first_divergence_explanation=None, passed=False, error=f"backend '{name}' failed: {r}",
                       reason=f"backend '{name}' failed", overflow_cause=None)
            return res
    float_vs_int = art.graph.numerics is not None and (ref == "reference") != (backend == "reference")
    res.update(compare_runs(art, expected, got, float_vs_int, exact=rule == "exact", backend=backend))
    passed, reason = _verdict(res, rule, min_cos)
    res["passed"], res["reason"], res["error"] = passed, reason, None
    counts = getattr(runs.get("emulator"), "overflow", None)
    res["overflow_cause"] = None if passed else overflow.cause(counts)
    if float_vs_int and not passed and backend != "emulator" and not res.get("first_divergence_class"):
        from neurocc.runtime.float_cause import likely_cause
        from neurocc.runtime.learned import divergence_cause

        cause = (divergence_cause(backend, res) if res.get("weights") else
                 likely_cause(art.float_graph, backend, res, expected, got))
        if cause:
            res["first_divergence_class"], res["first_divergence_explanation"] = cause
    return res


def _verdict(res: Mapping[str, Any], rule: str, min_cos: float | None) -> tuple[bool, str | None]:
    """(passed, why not): never passed over 0 compared elements; ``exact``: no mismatch;
    ``cosine``: spiking layers' mean-activity cosine >= min_cos and every readout within its rule."""
    if not res["compared"]:
        return False, ("0 elements compared: the runs share no spiking layer, graded readout or recorded "
                       "state, so nothing was judged")
    if rule == "exact":
        ok = res["mismatches"] == 0
        return ok, None if ok else f"{res['mismatches']} of {res['compared']} elements differ (rule exact)"
    why = []
    cos, readouts = res["cosine"], res.get("readouts") or {}
    if (res["cosine_per_layer"] or not readouts) and (cos is None or cos < (min_cos or 0)):
        why.append(f"mean-activity cosine {'-' if cos is None else f'{cos:.4f}'} < {min_cos}")
    from neurocc.runtime.learned import failures

    why += failures(res.get("weights") or {})
    for o, r in readouts.items():
        if not r["passed"]:
            got = r["relative_error"] if r["rule"] == "relative_error" else r["cosine"]
            op = ">" if r["rule"] == "relative_error" else "<"
            why.append(f"readout '{o}': {r['rule'].replace('_', ' ')} {got:.4g} {op} {r['limit']:g}")
    return not why, "; ".join(why) or None
