"""A plastic spiking network on SpiNNaker's PyNN API (run on NEST here): memoryless integer LIF
populations, fixed dense synapses and pair-STDP ``QPlasticDense`` synapses, lowered from a
``loihi``-numerics graph and run in a subprocess (:mod:`.plastic_net_template`). ``compile
--target spinnaker`` keeps such a graph's integers (:mod:`neurocc.compiler.prequantized`) and
writes :func:`emit`'s files; the backend's ``run`` calls :func:`run_graph` on the artifact's graph.

Lowering (weights in mV, one integer weight unit = 1 mV, dt = 1 ms):

* ``QLIF`` with ``du = 4095``, ``dv = 4096`` (no memory: spikes at step t iff ``Σ_j W_ij s_j(t−1)
  > vth``) → ``IF_curr_delta`` (``tau_m`` 0.01 ms, ``v_rest = v_reset = 0``, ``tau_refrac`` 0,
  ``v_thresh = vth + 0.5``: the membrane holds the step's summed input, and 0.5 mV separates
  ``> vth`` from ``≤ vth`` for integer sums). Other neuron parameters are refused, naming the node.
* ``QDense`` → ``StaticSynapse`` (delay 1 ms; negative weights on the ``inhibitory`` receptor),
  with the weights Lava really uses (:func:`neurocc.ir.numerics.core.lava_dense_weights`).
* ``QPlasticDense`` → ``STDPMechanism`` (:func:`.plastic.nest_pairing`, ``w_scale`` 1 mV) from a
  population of parrot neurons that relays the pre spikes δ = ¼ or ¾ ms later (static, one per
  pre neuron), plastic delay 1 − δ; NEST runs at 0.25 ms (spikes stay on whole ms).
* ``Input`` row t (non-zero entries) → ``SpikeSourceArray`` spikes at t + 2 ms; the run lasts
  until the last step's time (steps + 1 ms); then, all thresholds raised out of reach, one
  relayed flush pre spike ``flush_ms`` later applies NEST's pending potentiation.

Timeline: a spike of the emulator's step t is the NEST spike at t + 2 ms (inputs included), so
every delay-1 edge keeps its one-step latency. STDP pairing: the rule pairs a pre spike of step
s and a post spike of step u (k = u − s) both ways at k = 0; NEST pairs Δ = T' + d − T and never
Δ = 0. The relay makes Δ = k ± ½ and :func:`.plastic.nest_pairing` fits the same-step side
(docs/plasticity.md, "Pairing on NEST").
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.numerics.core import lava_dense_weights

from .plastic import NEST_RESOLUTION_MS, nest_pairing, rule_problems, run_template

TEMPLATE = Path(__file__).with_name("plastic_net_template.py")
# pyNN.nest scales STDP weight bounds by 1000 (nA -> pA) but IF_curr_delta's weights by
# 1000 * 1e-3 (mV), and reads a plastic projection's weights back divided by 1000: measured NEST
# Wmax 255000 for w_max=255 next to weights in mV, and a weight of 90 mV read back as 0.09. Bounds
# are therefore passed, and weights read back, in 1e-3 units (NEST's Wmax = the range in mV).
PYNN_NEST_WMAX_SCALE = 1e-3


KINDS = ("Input", "Output", "QLIF", "QDense", "QPlasticDense")


def problems(graph: Any) -> list[str]:
    """Every reason ``graph`` (``loihi`` numerics, plastic synapses) has no plastic PyNN form, each
    naming the node and what to change; empty when :func:`lower_network` lowers it."""
    found = []
    for name, node in graph.nodes.items():
        if node.kind not in KINDS:
            found.append(f"node '{name}' ({node.kind}): the plastic PyNN network takes only {', '.join(KINDS)}; "
                         "remove it or run the graph on loihi2")
        elif node.kind == "QLIF" and not ((np.asarray(node.du) == 4095).all() and (np.asarray(node.dv) == 4096).all()
                                          and not np.asarray(node.bias_mant).any()):
            found.append(f"node '{name}' (QLIF): only memoryless neurons (du 4095, dv 4096, no bias) lower to "
                         "IF_curr_delta here; use them, or run the graph on loihi2")
        elif node.kind == "QPlasticDense":
            found += rule_problems(name, node)
        elif node.kind == "QDense" and node.weight_exp != 0:
            found.append(f"node '{name}' (QDense): weight_exp {node.weight_exp} (one weight unit is 1 mV); fold "
                         "it into the thresholds and use weight_exp=0")
    for e in graph.edges:
        src, dst = graph.nodes[e.src].kind, graph.nodes[e.dst].kind
        if src in ("QDense", "QPlasticDense") and (dst != "QLIF" or e.delay != 1):
            found.append(f"edge {e.src} -> {e.dst}: a synapse must feed a QLIF with delay 1 (got {dst}, delay "
                         f"{e.delay}); the PyNN projection carries that one step")
        elif src in ("Input", "QLIF") and dst not in ("QDense", "QPlasticDense", "Output"):
            found.append(f"edge {e.src} -> {e.dst}: a population feeds synapses or an Output only; put a QDense "
                         "between them")
    return found


def _neurons(graph: Any, batch: int) -> dict[str, dict]:
    return {name: {"v_thresh": np.tile(np.asarray(node.vth, float) + 0.5, batch).tolist()}
            for name, node in graph.nodes.items() if node.kind == "QLIF"}


def lower_network(graph: Any, inputs: dict[str, np.ndarray], pairing: str = "fit") -> dict[str, Any]:
    """The worker's configuration: populations, spike sources and projections of ``graph``, with
    ``batch`` independent copies of the network (batch element b's neurons at b·n + i); plastic
    projections carry their :func:`.plastic.nest_pairing` (``pairing`` as there)."""
    found = problems(graph)
    if found:
        raise BackendError("the plastic network has no PyNN form", where="backend 'spinnaker'", problems=found,
                           fix="see each problem, or run the graph on loihi")
    batch = int(np.asarray(next(iter(inputs.values()))).shape[1])
    # step t is NEST's time t + 2 ms: the run ends with the last step (t = steps − 1 at steps + 1 ms),
    # not one later, or spikes the emulator never computes would still move the weights
    steps = max(len(np.asarray(v)) for v in inputs.values()) + 1
    pops = _neurons(graph, batch)
    dst = {e.src: e.dst for e in graph.edges}
    sources, projections, resolution = {}, [], 1.0
    for name, node in graph.nodes.items():
        if node.kind == "Input":
            x = np.asarray(inputs[name])
            sources[name] = [[float(t + 2) for t in np.flatnonzero(x[:, b, i])]
                             for b in range(batch) for i in range(x.shape[2])]
    for name, node in graph.nodes.items():
        if node.kind not in ("QDense", "QPlasticDense"):
            continue
        pre = next(e.src for e in graph.edges if e.dst == name)
        proj = {"name": name, "pre": pre, "post": dst[name]}
        if node.kind == "QPlasticDense":
            stdp = nest_pairing(name, node, 1.0, pairing)
            stdp["w_max"] *= PYNN_NEST_WMAX_SCALE
            if stdp["relay_ms"]:
                resolution = NEST_RESOLUTION_MS
                stdp["flush_at"] = steps + stdp["flush_ms"]     # NEST ms of the flush source's spike
            proj.update(weight=np.asarray(node.weight, float).tolist(), stdp=stdp)
        else:
            proj["weight"] = lava_dense_weights(node.weight, node.num_weight_bits).astype(float).tolist()
        projections.append(proj)
    return {"populations": pops, "sources": sources, "projections": projections, "steps": steps, "batch": batch,
            "resolution": resolution}


def run_plastic_network(graph: Any, inputs: dict[str, np.ndarray], simulator: str = "nest",
                        timeout_s: float = 600.0, pairing: str = "fit") -> dict[str, np.ndarray]:
    """Run ``graph`` (time-major ``inputs`` (steps, batch, n)) on PyNN. Returns
    ``<population>/spikes`` (steps, batch, n) on the emulator's step index (sources included) and
    ``<plastic node>/w`` (batch, post, pre) float, in weight units."""
    cfg = lower_network(graph, inputs, pairing)
    steps, batch = cfg["steps"] - 1, cfg["batch"]
    res = run_template(TEMPLATE, cfg, simulator, timeout_s, what="plastic network", where=f"graph '{graph.name}'")
    out: dict[str, np.ndarray] = {}
    for name, trains in res["spikes"].items():
        n = len(trains) // batch
        s = np.zeros((steps, batch * n), np.int64)
        for i, ts in enumerate(trains):
            idx = [round(t) - 2 for t in ts if 0 <= round(t) - 2 < steps]
            s[idx, i] = 1
        out[f"{name}/spikes"] = s.reshape(steps, batch, n)
    for name, w in res["weights"].items():
        out[f"{name}/w"] = np.asarray(w, float) / PYNN_NEST_WMAX_SCALE
    return out


def is_plastic(graph: Any) -> bool:
    """A ``loihi`` graph with plastic synapses: the spinnaker backend runs it as this module's network."""
    return graph.numerics == "loihi" and any(getattr(n, "plastic", False) for n in graph.nodes.values())


def run_graph(graph: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None, record: bool = False,
              simulator: str = "nest") -> dict[str, np.ndarray]:
    """The backend contract for a plastic artifact's graph: one array of spikes per graph output
    (int64, time-major, on the emulator's step index), ``<node>/w`` (batch, post, pre) for every
    plastic synapse, and with ``record`` ``<population>/out`` for every QLIF and Input."""
    x = {k: np.asarray(v) for k, v in inputs.items()}
    if steps is not None:
        x = {k: np.concatenate([v[:steps], np.zeros((max(steps - len(v), 0), *v.shape[1:]), v.dtype)])
             for k, v in x.items()}
    res = run_plastic_network(graph, x, simulator)
    pops = {n: (res[f"{n}/spikes"] if graph.nodes[n].kind == "QLIF" else (x[n] != 0).astype(np.int64))
            for n, node in graph.nodes.items() if node.kind in ("QLIF", "Input")}
    out = {o: pops[graph.predecessors(o)[0]] for o in graph.outputs}
    if record:
        out.update({f"{n}/out": s for n, s in pops.items()})
    out.update({k: v for k, v in res.items() if k.endswith("/w")})
    return out


PLASTIC_JSON = "plastic_network.json"
PLASTIC_SCRIPT = "plastic_network.py"
README = """Plastic PyNN network emitted by neurocc for target '{target}' (graph '{name}').

  {json}   populations (IF_curr_delta thresholds, mV), projections (weights in mV, post x pre;
                          STDPMechanism parameters for the plastic ones), the graph's inputs
  {script}     the PyNN worker neurocc runs (pyNN.nest here; written for PyNN's common API)

`neurocc run DIR --backend spinnaker` lowers the artifact's graph to this network and runs it on
NEST; `--save-weights W.npz` writes the learned weights. To run the worker yourself, add to the
JSON "sources" (per input, per neuron: spike times in ms = step + 2), "steps" (input steps + 1),
"batch" (1) and, per plastic projection, "stdp"."flush_at" (steps + "stdp"."flush_ms"), then:
python {script} CONFIG.json nest  (NEST resolution "resolution" ms: the relay delays need 0.25)
"""


def emit(directory: Path, graph: Any, target_name: str = "spinnaker") -> Path:
    """Write the plastic network's description, the worker script and a README into ``directory/pynn``."""
    import json
    import shutil

    d = Path(directory) / "pynn"
    d.mkdir(parents=True, exist_ok=True)
    empty = {n: np.zeros((1, 1, *graph.shapes()[n])) for n in graph.inputs}
    cfg = lower_network(graph, empty)
    doc = {"format": "neurocc-pynn-plastic", "version": 2, "name": graph.name, "resolution": cfg["resolution"],
           "inputs": {n: list(graph.shapes()[n]) for n in graph.inputs},
           "populations": cfg["populations"], "projections": cfg["projections"],
           "pynn_nest_wmax_scale": PYNN_NEST_WMAX_SCALE}
    (d / PLASTIC_JSON).write_text(json.dumps(doc, indent=1) + "\n")
    shutil.copyfile(TEMPLATE, d / PLASTIC_SCRIPT)
    (d / "README.txt").write_text(README.format(target=target_name, name=graph.name, json=PLASTIC_JSON,
                                                script=PLASTIC_SCRIPT))
    return d
