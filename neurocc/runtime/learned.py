"""How ``validate`` judges the learned weights of plastic synapses (``<node>/w``, (batch, post,
pre), the weights after the run).

Learning amplifies every difference in the spikes (one spike more or less changes a weight,
which changes later spikes), so each comparison states what it holds the weights to:

* ``exact`` (an integer backend against the emulator: Lava's LearningDense): every weight equal;
* ``dw_cosine`` (the integer emulator against the float reference of the rule): the cosine of
  the weight *changes* ``Δw = w − w₀`` over all synapses and samples must reach
  :data:`DW_MIN_COSINE`, the same bar as the spikes' quantization agreement (mean-activity
  cosine ≥ 0.9). The changes, not the weights, so that the initial weights (which both share)
  cannot make unrelated learning look alike. The float rule has exact trace decays, no 127 cap
  and no stochastic rounding, so element-wise equality is not expected; what must agree is what
  was learned (which synapses grew, which shrank, by how much relative to each other);
* ``pynn_replay`` (the spinnaker backend, PyNN's ``STDPMechanism`` on NEST, against the float
  reference): NEST executed the lowered rule: its weights equal, within
  :data:`REPLAY_MAX_DIFF` weight units (an integer weight's LSB is 1; float64 round-off in
  another order of operations stays far below it), a float64 replay of NEST's documented
  ``stdp_synapse``, as the lowering configures it (relayed pre spikes, fitted amplitudes,
  flush), on the spikes NEST itself produced
  (:func:`neurocc.backends.spinnaker.plastic.replay_lowered`); and NEST learned the rule: the
  Δw cosine against the float reference reaches :data:`DW_MIN_COSINE`, the emulator row's bar.
  NEST's ``stdp_synapse`` cannot pair a same-step pair both ways, so the lowering fits the
  same-step side's kernel (exact for same-step pairs, for the other side and for the fitted
  side's total, one exponential for its shape); measured in docs/plasticity.md (CA3 memory with
  overwriting: Δw cosine 0.9996, spikes 1.0000). The spikes are judged by the target's rule
  (mean-activity cosine).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DW_MIN_COSINE = 0.9      # = validate.QUANT_MIN_COSINE: the quantization agreement's bar
REPLAY_MAX_DIFF = 1e-6   # weight units (LSB 1); measured 3.7e-13 on the CA3 memory (docs/plasticity.md)


def plastic_nodes(art: Any) -> dict[str, Any]:
    return {n: node for n, node in art.graph.nodes.items() if getattr(node, "plastic", False)}


def dw_cosine(w0: np.ndarray, expected: np.ndarray, got: np.ndarray) -> float:
    """Cosine of the weight changes of two runs from the same initial weights ``w0`` (1.0 when
    neither learned anything, 0.0 when only one did)."""
    from neurocc.runtime.compare import trace_cosine

    w0 = np.asarray(w0, np.float64)
    return trace_cosine(np.asarray(expected, np.float64) - w0, np.asarray(got, np.float64) - w0)


def judge(art: Any, backend: str, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]
          ) -> dict[str, dict[str, Any]]:
    """Per plastic node, the float-vs-integer weight verdict (module docstring): ``compared``,
    ``mismatches`` (elements not equal), ``max_abs_diff``, ``rule``, ``dw_cosine``, ``limit``,
    ``passed`` (and for spinnaker ``replay_max_abs_diff``, ``replay_limit``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, node in plastic_nodes(art).items():
        key = f"{name}/w"
        if key not in expected or key not in got:
            continue
        a, b = np.asarray(expected[key], np.float64), np.asarray(got[key], np.float64)
        if a.shape != b.shape:
            out[name] = {"compared": int(a.size), "mismatches": int(a.size), "max_abs_diff": None, "rule": "dw_cosine",
                         "dw_cosine": None, "limit": DW_MIN_COSINE, "passed": False}
            continue
        cos = dw_cosine(node.weight, a, b)
        res = {"compared": int(a.size), "mismatches": int(np.count_nonzero(a != b)),
               "max_abs_diff": float(np.abs(a - b).max(initial=0)), "rule": "dw_cosine", "dw_cosine": cos,
               "limit": DW_MIN_COSINE, "passed": bool(cos >= DW_MIN_COSINE)}
        if backend == "spinnaker":   # judged by the replay and the Δw cosine (module docstring)
            res.update(_replay(art, name, node, got, b))
            diff = res["replay_max_abs_diff"]
            res["passed"] = bool(res["passed"] and diff is not None and diff <= REPLAY_MAX_DIFF)
        out[name] = res
    return out


def _replay(art: Any, name: str, node: Any, got: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, Any]:
    """NEST's weights against the float replay of its own rule on its own spikes (``pynn_replay``)."""
    from neurocc.backends.spinnaker.plastic import nest_pairing, replay_lowered

    pre = art.graph.predecessors(name)[0]
    post = art.graph.successors(name)[0]
    if f"{pre}/out" not in got or f"{post}/out" not in got:
        return {"rule": "pynn_replay", "replay_max_abs_diff": None, "replay_limit": REPLAY_MAX_DIFF}
    p = nest_pairing(name, node, 1.0)
    s_pre, s_post = np.asarray(got[f"{pre}/out"]), np.asarray(got[f"{post}/out"])
    diff = 0.0
    for bi in range(w.shape[0]):
        times = [[list(np.flatnonzero(s[:, bi, i])) for i in range(s.shape[2])] for s in (s_pre, s_post)]
        ref = replay_lowered(node.weight, times[0], times[1], p, p["w_max"], s_pre.shape[0])
        diff = max(diff, float(np.abs(ref - w[bi]).max(initial=0)))
    return {"rule": "pynn_replay", "replay_max_abs_diff": diff, "replay_limit": REPLAY_MAX_DIFF}


def failures(weights: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One reason per failed weight verdict (for ``validate``'s ``reason``)."""
    why = []
    for n, r in weights.items():
        if "rule" not in r:      # exact: judged by the mismatches
            continue
        if r.get("limit") is not None and (r.get("dw_cosine") is None or r["dw_cosine"] < r["limit"]):
            got = "-" if r.get("dw_cosine") is None else f"{r['dw_cosine']:.4f}"
            why.append(f"learned weights '{n}': Δw cosine {got} < {r['limit']}")
        if "replay_limit" in r and (r.get("replay_max_abs_diff") is None or r["replay_max_abs_diff"] > r["replay_limit"]):
            got = "-" if r.get("replay_max_abs_diff") is None else f"{r['replay_max_abs_diff']:.3g}"
            why.append(f"learned weights '{n}': {got} weight units from the replay of the PyNN rule on the "
                       f"simulator's spikes (> {r['replay_limit']:g})")
    return why


def format_lines(result: Mapping[str, Any]) -> list[str]:
    """The learned-weight verdicts of one validation result, one line per plastic node."""
    lines = []
    for n, w in (result.get("weights") or {}).items():
        head = f"  learned weights '{n}' ({result['backend']} vs {result['reference']}, {w['compared']} values): "
        if "rule" not in w:
            lines.append(head + f"exact, {w['mismatches']} differ, max |diff| {w['max_abs_diff']}")
            continue
        cos = "-" if w.get("dw_cosine") is None else f"{w['dw_cosine']:.4f}"
        text = f"Δw cosine {cos} " + ("(reported)" if w.get("limit") is None else f"(>= {w['limit']:g})")
        if "replay_limit" in w:
            rd = w.get("replay_max_abs_diff")
            text += f", PyNN rule replayed on its spikes: max |diff| {'-' if rd is None else f'{rd:.2g}'} " \
                    f"(<= {w['replay_limit']:g})"
        mad = w.get("max_abs_diff")
        lines.append(head + text + ("" if mad is None else f", max |w - reference| {mad:.3g} (reported)")
                     + f": {'PASS' if w['passed'] else 'FAIL'}")
    return lines


def divergence_cause(backend: str, res: Mapping[str, Any]) -> tuple[str, str] | None:
    """(class, explanation) for a failed float-vs-integer row of a plastic artifact whose spikes
    diverge (instead of the float simulators' timing causes, which do not apply to it)."""
    w = next(iter((res.get("weights") or {}).values()), None)
    if w is None:
        return None
    cos = "-" if w.get("dw_cosine") is None else f"{w['dw_cosine']:.3f}"
    if backend == "spinnaker":
        rd = w.get("replay_max_abs_diff")
        why = (f"the synapses learn: NEST's stdp_synapse cannot pair spikes of the same step both ways, so the "
               f"lowering fits that kernel (docs/plasticity.md, 'Pairing on NEST') and learns other weights than "
               f"the rule where the fit is not exact (Δw cosine {cos} against the float reference); the spikes that "
               f"follow them differ; NEST executed its lowered rule exactly (replay max |diff| "
               f"{'-' if rd is None else f'{rd:.2g}'}). Judge the rule itself by the emulator and loihi rows")
        return "learning", why
    return "learning", (f"the synapses learn, and learning amplifies every spike that differs (Δw cosine {cos} "
                        "against the float reference)")
