"""Plastic synapses on SpiNNaker through PyNN's ``STDPMechanism`` (run on NEST here; the same
PyNN calls run on sPyNNaker): the lowering of a pair-STDP QPlasticDense rule and a runner.

Mapping (float semantics, :mod:`neurocc.ir.numerics.learning` with ``integer=False``): the rule
``a+ · y0 · x1 − a− · x0 · y1`` with trace impulses ``I+`` (x1), ``I−`` (y1) and time constants
``τ+``, ``τ−`` (steps of dt = 1 ms) is PyNN's all-to-all ``SpikePairRule(tau_plus=τ+,
tau_minus=τ−, A_plus=a+·I+/W, A_minus=a−·I−/W)`` with ``AdditiveWeightDependence(0, W)`` where
``W`` is the sign mode's maximum (255 for excitatory), in weight units × ``w_scale`` nA.
NEST's ``stdp_synapse`` treats the connection delay d as dendritic: a pre spike at T and a post
spike at T' pair with Δ = T' + d − T, never at Δ = 0, and potentiation is applied at the next pre
spike. :func:`run_stdp` (one projection, delay 1 ms) uses this direct form; the plastic network
(:mod:`.plastic_net`) relays the pre spikes and fits the same-step kernel
(:func:`nest_pairing`) so that NEST pairs spikes as the rule does.
Only pair STDP (the two terms above, either may be absent: an amplitude of 0) on dense excitatory
synapses with ``t_epoch`` 1 and ``weight_exp`` 0 lowers; anything else is refused, every reason
listed with the node, the rule and the change (:func:`rule_problems`).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.plasticity import WEIGHT_RANGE

TEMPLATE = Path(__file__).with_name("stdp_template.py")
NEST_RESOLUTION_MS = 0.25   # the plastic network's NEST step: the relay delays are multiples of it


def rule_problems(name: str, node: Any) -> list[str]:
    """Every reason ``node``'s rule has no ``SpikePairRule``/``AdditiveWeightDependence`` form
    (each names the node, the rule and what to change); empty when it lowers."""
    where = f"node '{name}' ({node.kind}) rule {node.dw!r}"
    out = []
    if node.sign_mode != "excitatory":
        out.append(f"{where}: sign mode '{node.sign_mode}' (AdditiveWeightDependence bounds the weights to "
                   "0..255 here); use sign_mode='excitatory'")
    if node.t_epoch != 1:
        out.append(f"{where}: t_epoch {node.t_epoch} (PyNN updates at every spike); use t_epoch=1")
    if getattr(node, "sparse", False):
        out.append(f"{where}: sparse synapses (absent synapses must never learn); use a dense QPlasticDense")
    if node.weight_exp != 0:
        out.append(f"{where}: weight_exp {node.weight_exp} (one weight unit is 1 mV); fold it into the "
                   "thresholds and use weight_exp=0")
    pair = {("y0", (("x1", 0),)): (1, 0, "potentiation 'a+ * y0 * x1'"),
            ("x0", (("y1", 0),)): (-1, 2, "depression 'a- * x0 * y1'")}
    seen = set()
    for t in node.terms():
        key = (t.dependency, t.factors)
        sign, trace, _ = pair.get(key, (0, 0, ""))
        if not sign or key in seen:
            out.append(f"{where}: the term '{t.text()}' is not a pair-STDP term (PyNN's SpikePairRule has only "
                       "'a+ * y0 * x1' and 'a- * x0 * y1', a+, a- > 0: no weight decay, no third factor, no "
                       "x2/y2/y3 traces, no constants); remove it or run the rule on loihi2")
        elif t.mantissa * sign < 0:
            out.append(f"{where}: the term '{t.text()}' has the wrong sign for SpikePairRule ({'potentiation' if sign > 0 else 'depression'} "
                       "must " + ("add" if sign > 0 else "subtract") + "); flip it or run the rule on loihi2")
        elif node.taus[trace] <= 0:
            out.append(f"{where}: trace {'x1' if sign > 0 else 'y1'} has tau 0 (SpikePairRule needs a time "
                       "constant > 0); give it taus[{trace}] >= 1")
        seen.add(key)
    return out


def stdp_parameters(name: str, node: Any, w_scale: float = 1e-3) -> dict[str, float]:
    """PyNN ``SpikePairRule``/``AdditiveWeightDependence`` parameters of ``node``'s rule (a missing
    pair term is an amplitude of 0); BackendError listing :func:`rule_problems`."""
    found = rule_problems(name, node)
    if found:
        raise BackendError(f"node '{name}' (QPlasticDense): rule {node.dw!r} has no PyNN STDPMechanism form",
                           where="backend 'spinnaker'", problems=found,
                           fix="use pair STDP (neurocc.ir.plasticity.stdp_pair) on excitatory synapses with "
                               "t_epoch=1, or run it on loihi")
    terms = {(t.dependency, t.factors): t for t in node.terms()}
    plus, minus = terms.get(("y0", (("x1", 0),))), terms.get(("x0", (("y1", 0),)))
    wmax = float(WEIGHT_RANGE[node.sign_mode][1])
    a_plus = plus.mantissa * 2.0 ** plus.exponent * node.impulses[0] if plus else 0.0
    a_minus = -minus.mantissa * 2.0 ** minus.exponent * node.impulses[2] if minus else 0.0
    return {"tau_plus": float(max(node.taus[0], 1)), "tau_minus": float(max(node.taus[2], 1)),
            "A_plus": a_plus / wmax, "A_minus": a_minus / wmax, "w_max": wmax * w_scale}


PAIRINGS = ("fit", "potentiation", "depression", "none")
FLUSH_TAUS = 30          # the flush pre spike comes 30 τ− after the run: its depression is e^−30 ≈ 1e-13 of A−


def _fit_same_step(p: dict[str, Any]) -> float:
    """Fit the side of the same-step pair (``p`` amplitudes in NEST units, changed in place) and
    return ε. The rule's same-step pair changes the weight by ``net = a+·I+ − a−·I−``; on the
    side of its sign (ε = +½ for net > 0, −½ for net < 0) the kernel becomes ``|net|·q^|k|``
    with ``q = tail / (|net| + tail)``, ``tail = A / (e^(1/τ) − 1)`` = the rule's total over
    |k| ≥ 1 on that side, so the same-step pair and the side's total are exact (the shape over
    |k| ≥ 1 is one exponential of time constant ``−1/ln q``); the other side stays exact."""
    net = p["A_plus"] - p["A_minus"]
    if net == 0:                  # a kernel |net|·q^|k| cannot be 0 at k = 0: pair it as potentiation
        return 0.5
    amp, tau = ("A_plus", "tau_plus") if net > 0 else ("A_minus", "tau_minus")
    tail = p[amp] / np.expm1(1.0 / p[tau])
    p[tau], p[amp] = float(-1.0 / np.log(tail / (abs(net) + tail))), abs(net)
    return 0.5 if net > 0 else -0.5


def nest_pairing(name: str, node: Any, w_scale: float = 1e-3, pairing: str = "fit") -> dict[str, Any]:
    """How the plastic network lowers ``node``'s pair rule onto NEST's ``stdp_synapse``
    (docs/plasticity.md, "Pairing on NEST"). The rule (float, ``t_epoch`` 1) pairs a pre spike of
    step s with a post spike of step u, k = u − s, as ``f(k) = a+·I+·e^(−k/τ+)`` (k > 0),
    ``−a−·I−·e^(k/τ−)`` (k < 0) and ``a+·I+ − a−·I−`` (k = 0: both terms). NEST pairs
    Δ = T' + d − T, never Δ = 0. The pre spikes are relayed by parrot neurons (static delay
    ``relay_ms`` δ), the plastic synapse has the delay ``delay_ms`` 1 − δ (one step in all), at a
    NEST resolution of :data:`NEST_RESOLUTION_MS`: Δ = k + ε, ε = 1 − 2δ; amplitudes
    ``A+ → A+·e^(ε/τ+)``, ``A− → A−·e^(−ε/τ−)`` cancel the shift, so every k ≠ 0 pair is exact.
    ``pairing``: ``"fit"`` (the lowering): :func:`_fit_same_step`; ``"potentiation"`` /
    ``"depression"``: ε = ±½ with the rule's kernels, so the same-step pair gets only that term;
    ``"none"``: the direct lowering (no relay, delay 1: Δ = k + 1, amplitudes unscaled), kept to
    measure against. ``flush_ms``: a relayed pre spike that long after the run applies NEST's
    pending potentiation (NEST applies it at the next pre spike, the rule at the post spike)."""
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing {pairing!r} is not one of {PAIRINGS}")
    p: dict[str, Any] = dict(stdp_parameters(name, node, w_scale))
    eps = {"potentiation": 0.5, "depression": -0.5, "none": 1.0}.get(pairing) or _fit_same_step(p)
    if pairing != "none":
        p["A_plus"] *= float(np.exp(eps / p["tau_plus"]))
        p["A_minus"] *= float(np.exp(-eps / p["tau_minus"]))
    relay = 0.0 if pairing == "none" else (1.0 - eps) / 2
    p.update(pairing=pairing, eps=eps, relay_ms=relay, delay_ms=1.0 - relay,
             flush_ms=0.0 if pairing == "none" else float(np.ceil(FLUSH_TAUS * p["tau_minus"])))
    return p


def replay_lowered(w0: np.ndarray, pre_steps: list, post_steps: list, p: dict[str, Any], wmax: float,
                   steps: int) -> np.ndarray:
    """:func:`replay_pair_stdp` of what the plastic network runs (:func:`nest_pairing` ``p``) on
    spikes given as the emulator's step indices: pre spikes at s + δ (the relay), post spikes at
    u, the plastic delay 1 − δ, and the flush pre spike ``flush_ms`` after the last step."""
    relay = p["relay_ms"]
    flush = [steps - 1 + p["flush_ms"] + relay] if p["flush_ms"] else []
    pre = [[float(s) + relay for s in ts] + flush for ts in pre_steps]
    return replay_pair_stdp(w0, pre, [[float(u) for u in ts] for ts in post_steps], p, wmax, p["delay_ms"])


def replay_pair_stdp(w0: np.ndarray, pre: list, post: list, p: dict[str, float], wmax: float,
                     delay: float = 1.0) -> np.ndarray:
    """NEST's ``stdp_synapse`` (what PyNN's ``SpikePairRule`` + ``AdditiveWeightDependence``
    become on NEST, all-to-all pairs) replayed in float64 on given spike times ``pre[j]``,
    ``post[i]`` (ms), weights ``w0`` (post, pre) in units of ``wmax``'s. A pre spike at T and a
    post spike at T' pair as Δ = T' + delay − T (the delay is dendritic); Δ > 0 adds
    ``A+·wmax·e^(−Δ/τ+)``, applied only at the next pre spike (pairings after the last pre spike
    are never applied); Δ < 0 subtracts ``A−·wmax·e^(Δ/τ−)`` at the pre spike; Δ = 0 pairs
    nothing; the weight is clipped to [0, wmax] at every update. Used by ``validate`` to judge
    that the simulator executed the lowered rule on the spikes it produced."""
    w = np.asarray(w0, np.float64).copy()
    d = float(delay)
    for i, tpost in enumerate(post):
        tpost = np.asarray(tpost, np.float64)
        for j, tpre in enumerate(pre):
            k_plus, last = 0.0, 0.0
            for t in tpre:
                for tp in tpost[(tpost > last - d) & (tpost <= t - d)]:        # facilitation, deferred
                    w[i, j] = min(w[i, j] + p["A_plus"] * wmax * k_plus * np.exp((last - tp - d) / p["tau_plus"]), wmax)
                k_minus = np.exp((tpost[tpost < t - d] - (t - d)) / p["tau_minus"]).sum()
                w[i, j] = max(w[i, j] - p["A_minus"] * wmax * k_minus, 0.0)
                k_plus = k_plus * np.exp((last - t) / p["tau_plus"]) + 1.0
                last = t
    return w


def run_stdp(name: str, node: Any, pre: list[list[int]], post: list[list[int]], steps: int,
             simulator: str = "nest", w_scale: float = 1e-3, timeout_s: float = 300.0) -> dict[str, Any]:
    """Run ``node``'s initial weights under its STDP rule on PyNN: pre neurons spike at the given
    steps (ms), post neurons are driven to spike one or two steps after theirs. Returns the final
    ``weight`` (post, pre) in the node's weight units and the recorded ``pre``/``post`` spike
    times (ms); a last pre spike at ``steps + 60`` flushes NEST's pending potentiation."""
    flush = steps + 60
    cfg = {"pre": [sorted(t) + [flush] for t in pre], "post": [sorted(t) for t in post],
           "weight": (np.asarray(node.weight, float) * w_scale).tolist(), "steps": flush + 2,
           "stdp": stdp_parameters(name, node, w_scale)}
    out = run_template(TEMPLATE, cfg, simulator, timeout_s, what="STDP", where=f"node '{name}'")
    out["weight"] = np.asarray(out["weight"]) / w_scale
    out["pre"] = [[t for t in ts if t < flush] for ts in out["pre"]]
    return out


def run_template(template: Path, cfg: dict[str, Any], simulator: str, timeout_s: float, *, what: str,
                 where: str) -> dict[str, Any]:
    """Run a PyNN worker script (``template``, a fresh Python process) on ``cfg`` written as JSON;
    its last ``RESULT {json}`` line, or a BackendError naming ``where`` with stderr's tail."""
    with tempfile.TemporaryDirectory(prefix="neurocc-pynn-") as tmp:
        (Path(tmp) / "cfg.json").write_text(json.dumps(cfg))
        proc = subprocess.run([sys.executable, str(template), str(Path(tmp) / "cfg.json"), simulator], check=False,
                              capture_output=True, text=True, timeout=timeout_s, cwd=tmp)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise BackendError(f"the PyNN {what} run failed ({simulator}): {proc.stderr.strip()[-600:]}",
                           where=where, fix="check that pyNN and NEST are installed")
    return json.loads(lines[-1][7:])
