"""A plastic spiking network on SpiNNaker's PyNN API (run on NEST here): memoryless integer LIF
populations, fixed dense synapses and pair-STDP ``QPlasticDense`` synapses, lowered from a
``loihi``-numerics graph and run in a subprocess (:mod:`.plastic_net_template`).

Lowering (weights in mV, one integer weight unit = 1 mV, dt = 1 ms):

* ``QLIF`` with ``du = 4095``, ``dv = 4096`` (no memory: spikes at step t iff ``Σ_j W_ij s_j(t−1)
  > vth``) → ``IF_curr_delta`` (``tau_m`` 0.01 ms, ``v_rest = v_reset = 0``, ``tau_refrac`` 0,
  ``v_thresh = vth + 0.5``: the membrane holds the step's summed input, and 0.5 mV separates
  ``> vth`` from ``≤ vth`` for integer sums). Other neuron parameters are refused, naming the node.
* ``QDense`` → ``StaticSynapse`` (delay 1 ms; negative weights on the ``inhibitory`` receptor),
  with the weights Lava really uses (:func:`neurocc.ir.numerics.core.lava_dense_weights`).
* ``QPlasticDense`` → ``STDPMechanism`` (:func:`.plastic.stdp_parameters`, ``w_scale`` 1 mV).
* ``Input`` row t (non-zero entries) → ``SpikeSourceArray`` spikes at t + 2 ms.

Timeline: a spike of the emulator's step t is the NEST spike at t + 2 ms (inputs included), so
every delay-1 edge keeps its one-step latency. What stays different is the STDP pairing (see
:mod:`.plastic`): NEST pairs a pre spike at T with a post spike at T' as Δ = T' + 1 − T (the
1 ms dendritic delay) and never at Δ = 0; the rule pairs same-step spikes both ways.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.numerics.core import lava_dense_weights

from .plastic import run_template, stdp_parameters

TEMPLATE = Path(__file__).with_name("plastic_net_template.py")
# pyNN.nest scales STDP weight bounds by 1000 (nA -> pA) but IF_curr_delta's weights by
# 1000 * 1e-3 (mV), and reads a plastic projection's weights back divided by 1000: measured NEST
# Wmax 255000 for w_max=255 next to weights in mV, and a weight of 90 mV read back as 0.09. Bounds
# are therefore passed, and weights read back, in 1e-3 units (NEST's Wmax = the range in mV).
PYNN_NEST_WMAX_SCALE = 1e-3


def _neurons(graph: Any) -> dict[str, dict]:
    out, problems = {}, []
    for name, node in graph.nodes.items():
        if node.kind != "QLIF":
            continue
        if not ((np.asarray(node.du) == 4095).all() and (np.asarray(node.dv) == 4096).all()
                and not np.asarray(node.bias_mant).any()):
            problems.append(f"node '{name}' (QLIF): only memoryless neurons (du 4095, dv 4096, no bias) lower "
                            "to the plastic PyNN network")
        out[name] = {"v_thresh": (np.asarray(node.vth, float) + 0.5).tolist()}
    if problems:
        raise BackendError("the plastic network has no PyNN form", where="backend 'spinnaker'", problems=problems,
                           fix="use memoryless QLIF populations, or run the graph on loihi")
    return out


def lower_network(graph: Any, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """The worker's configuration: populations, spike sources and projections of ``graph``."""
    pops = _neurons(graph)
    dst = {e.src: e.dst for e in graph.edges}
    sources, projections = {}, []
    for name, node in graph.nodes.items():
        if node.kind == "Input":
            x = np.asarray(inputs[name])[:, 0]
            sources[name] = [[float(t + 2) for t in np.flatnonzero(x[:, i])] for i in range(x.shape[1])]
    for name, node in graph.nodes.items():
        if node.kind not in ("QDense", "QPlasticDense"):
            continue
        pre = next(e.src for e in graph.edges if e.dst == name)
        proj = {"name": name, "pre": pre, "post": dst[name]}
        if node.kind == "QPlasticDense":
            stdp = stdp_parameters(name, node, 1.0)
            stdp["w_max"] *= PYNN_NEST_WMAX_SCALE
            proj.update(weight=np.asarray(node.weight, float).tolist(), stdp=stdp)
        else:
            proj["weight"] = lava_dense_weights(node.weight, node.num_weight_bits).astype(float).tolist()
        projections.append(proj)
    steps = max(len(np.asarray(v)) for v in inputs.values()) + 2
    return {"populations": pops, "sources": sources, "projections": projections, "steps": steps}


def run_plastic_network(graph: Any, inputs: dict[str, np.ndarray], simulator: str = "nest",
                        timeout_s: float = 600.0) -> dict[str, np.ndarray]:
    """Run ``graph`` (time-major ``inputs``, batch 1) on PyNN. Returns ``<population>/spikes``
    (steps, 1, n) on the emulator's step index and ``<plastic node>/w`` (1, post, pre) float."""
    cfg = lower_network(graph, inputs)
    steps = cfg["steps"] - 2
    res = run_template(TEMPLATE, cfg, simulator, timeout_s, what="plastic network", where=f"graph '{graph.name}'")
    out: dict[str, np.ndarray] = {}
    for name, trains in res["spikes"].items():
        s = np.zeros((steps, 1, len(trains)), np.int64)
        for i, ts in enumerate(trains):
            idx = [round(t) - 2 for t in ts if 0 <= round(t) - 2 < steps]
            s[idx, 0, i] = 1
        out[f"{name}/spikes"] = s
    for name, w in res["weights"].items():
        out[f"{name}/w"] = np.asarray(w, float)[None] / PYNN_NEST_WMAX_SCALE
    return out
