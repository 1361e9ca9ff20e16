"""PyNN worker for a plastic network (run as a file by :mod:`.plastic_net` in a subprocess).

Populations of ``IF_curr_delta`` neurons (a spike of weight w mV steps the membrane by w; with
``tau_m`` 0.01 ms the membrane forgets everything between 1 ms steps, ``E_L = v_reset = 0``,
``tau_refrac`` 0), spike sources (``SpikeSourceArray``), fixed projections (``StaticSynapse``,
delay 1 ms; negative weights on the inhibitory receptor) and plastic ones
(``STDPMechanism(SpikePairRule, AdditiveWeightDependence)``): with ``relay_ms`` δ > 0 from parrot
neurons that repeat the pre spikes δ later, plastic delay ``delay_ms`` (1 − δ), NEST at the
config's ``resolution``; after the run, thresholds out of reach, a flush spike at ``flush_at``
reaches every parrot (NEST applies pending potentiation at a pre spike).
``batch`` copies of the network run side by side (element b's neuron i is b·n + i, projections
block-diagonal). Usage: ``python plastic_net_template.py CONFIG.json SIMULATOR``; prints
``RESULT {json}`` with each population's spike times (ms) and each plastic projection's final
weights per copy (batch, post, pre)."""
import json
import sys

import numpy as np

with open(sys.argv[1]) as f:
    cfg = json.load(f)
sim = __import__(f"pyNN.{sys.argv[2]}", fromlist=["setup"])
extra = {"spike_precision": "on_grid"} if sys.argv[2] == "nest" else {}
res = float(cfg.get("resolution", 1.0))
sim.setup(timestep=res, min_delay=res, **extra)
pops = {}
for name, times in cfg["sources"].items():
    pops[name] = sim.Population(len(times), sim.SpikeSourceArray(spike_times=[sim.Sequence(t) for t in times]))
for name, p in cfg["populations"].items():
    cell = sim.IF_curr_delta(tau_m=0.01, cm=1.0, tau_refrac=0.0, v_rest=0.0, v_reset=0.0,
                             v_thresh=p["v_thresh"], i_offset=0.0)
    pops[name] = sim.Population(len(p["v_thresh"]), cell, initial_values={"v": 0.0})
    pops[name].record("spikes")
plastic = {}
end = float(cfg["steps"])
B = int(cfg.get("batch", 1))                             # independent copies: element b's neuron i at b*n + i
for pr in cfg["projections"]:
    w = np.asarray(pr["weight"], float)                  # (post, pre)
    n_post, n_pre = w.shape
    if pr.get("stdp"):
        s = pr["stdp"]
        pre_pop, relay = pops[pr["pre"]], float(s.get("relay_ms", 0.0))
        if relay:                                        # pre spikes relayed by parrots, δ later
            pre_pop = sim.Population(n_pre * B, sim.native_cell_type("parrot_neuron")())
            sim.Projection(pops[pr["pre"]], pre_pop, sim.OneToOneConnector(), sim.StaticSynapse(weight=1.0, delay=relay))
            flush = sim.Population(1, sim.SpikeSourceArray(spike_times=[float(s["flush_at"])]))
            sim.Projection(flush, pre_pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=1.0, delay=relay))
            end = max(end, float(s["flush_at"]) + 2.0)
        d = float(s.get("delay_ms", 1.0))
        syn = sim.STDPMechanism(
            timing_dependence=sim.SpikePairRule(tau_plus=s["tau_plus"], tau_minus=s["tau_minus"],
                                                A_plus=s["A_plus"], A_minus=s["A_minus"]),
            weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=s["w_max"]), delay=d)
        conns = [(j + b * n_pre, i + b * n_post, float(w[i, j]), d)
                 for b in range(B) for i in range(n_post) for j in range(n_pre)]
        plastic[pr["name"]] = (sim.Projection(pre_pop, pops[pr["post"]],
                                              sim.FromListConnector(conns, column_names=["weight", "delay"]), syn),
                               n_pre, n_post)
        continue
    for receptor, sign in (("excitatory", 1.0), ("inhibitory", -1.0)):
        conns = [(j + b * n_pre, i + b * n_post, float(w[i, j]), 1.0)
                 for b in range(B) for i, j in zip(*np.nonzero(sign * w > 0))]
        if conns:
            sim.Projection(pops[pr["pre"]], pops[pr["post"]],
                           sim.FromListConnector(conns, column_names=["weight", "delay"]),
                           sim.StaticSynapse(), receptor_type=receptor)
sim.run(float(cfg["steps"]))
if end > float(cfg["steps"]):                           # flush NEST's pending potentiation, no more spikes
    for name in cfg["populations"]:
        pops[name].set(v_thresh=1e12)
    sim.run(end - float(cfg["steps"]))
out = {"spikes": {name: [[float(t) for t in st] for st in pops[name].get_data().segments[0].spiketrains]
                  for name in cfg["populations"]},
       "weights": {}}
for name, (pr, n_pre, n_post) in plastic.items():
    a = np.asarray(pr.get("weight", format="array"), float)   # (pre, post) over all copies
    out["weights"][name] = [a[b * n_pre:(b + 1) * n_pre, b * n_post:(b + 1) * n_post].T.tolist() for b in range(B)]
sim.end()
print("RESULT " + json.dumps(out))
