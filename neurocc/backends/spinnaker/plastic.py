"""Plastic synapses on SpiNNaker through PyNN's ``STDPMechanism`` (run on NEST here; the same
PyNN calls run on sPyNNaker): the lowering of a pair-STDP QPlasticDense rule and a runner.

Mapping (float semantics, :mod:`neurocc.ir.numerics.learning` with ``integer=False``): the rule
``a+ · y0 · x1 − a− · x0 · y1`` with trace impulses ``I+`` (x1), ``I−`` (y1) and time constants
``τ+``, ``τ−`` (steps of dt = 1 ms) is PyNN's all-to-all ``SpikePairRule(tau_plus=τ+,
tau_minus=τ−, A_plus=a+·I+/W, A_minus=a−·I−/W)`` with ``AdditiveWeightDependence(0, W)`` where
``W`` is the sign mode's maximum (255 for excitatory), in weight units × ``w_scale`` nA.
NEST's ``stdp_synapse`` treats the connection delay d as dendritic: a pre spike at T and a post
spike at T' pair with Δ = T' + d − T, so a post neuron recorded at T' is the rule's post spike at
step T' + d. Two differences remain, both stated where this is judged: NEST pairs only Δ ≠ 0
(the rule also pairs spikes of the same step), and NEST applies potentiation only at the next
pre spike (the runner appends one late pre spike so that every pairing is applied).
Only pair STDP (optionally with x1 and y1 alone) on excitatory synapses lowers; anything else is
refused with the node named.
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


def stdp_parameters(name: str, node: Any, w_scale: float = 1e-3) -> dict[str, float]:
    """PyNN ``SpikePairRule``/``AdditiveWeightDependence`` parameters of ``node``'s rule."""
    terms = {(t.dependency, t.factors): t for t in node.terms()}
    plus, minus = terms.get(("y0", (("x1", 0),))), terms.get(("x0", (("y1", 0),)))
    ok = (len(terms) == 2 and plus is not None and minus is not None and plus.mantissa > 0 and minus.mantissa < 0
          and node.sign_mode == "excitatory" and node.t_epoch == 1)
    if not ok:
        raise BackendError(f"node '{name}' (QPlasticDense): rule {node.dw!r} ({node.sign_mode}, t_epoch "
                           f"{node.t_epoch}) has no PyNN STDPMechanism form", where="backend 'spinnaker'",
                           fix="use pair STDP (neurocc.ir.plasticity.stdp_pair) on excitatory synapses with "
                               "t_epoch=1, or run it on loihi")
    wmax = float(WEIGHT_RANGE[node.sign_mode][1])
    a_plus = plus.mantissa * 2.0 ** plus.exponent * node.impulses[0]
    a_minus = -minus.mantissa * 2.0 ** minus.exponent * node.impulses[2]
    return {"tau_plus": float(node.taus[0]), "tau_minus": float(node.taus[2]), "A_plus": a_plus / wmax,
            "A_minus": a_minus / wmax, "w_max": wmax * w_scale}


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
