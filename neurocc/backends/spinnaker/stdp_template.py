"""PyNN STDP worker (run as a file by :mod:`.plastic` in a subprocess): one plastic projection
``pre`` (parrot neurons repeating a SpikeSourceArray) → ``post`` (IF_curr_exp neurons driven to
spike by a second SpikeSourceArray) with ``STDPMechanism(SpikePairRule, AdditiveWeightDependence)``.
Usage: ``python stdp_template.py CONFIG.json SIMULATOR``; prints ``RESULT {json}`` with the final
weights (post, pre) and the recorded spike times of both populations (ms)."""
import json
import sys

import numpy as np

with open(sys.argv[1]) as f:
    cfg = json.load(f)
sim = __import__(f"pyNN.{sys.argv[2]}", fromlist=["setup"])
extra = {"spike_precision": "on_grid"} if sys.argv[2] == "nest" else {}
sim.setup(timestep=1.0, min_delay=1.0, **extra)
n_pre, n_post = len(cfg["pre"]), len(cfg["post"])
pre_src = sim.Population(n_pre, sim.SpikeSourceArray(spike_times=[sim.Sequence(t) for t in cfg["pre"]]))
drive = sim.Population(n_post, sim.SpikeSourceArray(spike_times=[sim.Sequence(t) for t in cfg["post"]]))
pre = sim.Population(n_pre, sim.native_cell_type("parrot_neuron")())
post = sim.Population(n_post, sim.IF_curr_exp(tau_refrac=2.0, tau_syn_E=1.0, v_thresh=-50.0, v_reset=-65.0,
                                             v_rest=-65.0))
sim.Projection(pre_src, pre, sim.FromListConnector([(i, i) for i in range(n_pre)]),
               sim.StaticSynapse(weight=1.0, delay=1.0))
sim.Projection(drive, post, sim.FromListConnector([(i, i) for i in range(n_post)]),
               sim.StaticSynapse(weight=30.0, delay=1.0))
p = cfg["stdp"]
stdp = sim.STDPMechanism(
    timing_dependence=sim.SpikePairRule(tau_plus=p["tau_plus"], tau_minus=p["tau_minus"],
                                        A_plus=p["A_plus"], A_minus=p["A_minus"]),
    weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=p["w_max"]), delay=1.0)
conns = [(j, i, float(cfg["weight"][i][j]), 1.0) for i in range(n_post) for j in range(n_pre)]
proj = sim.Projection(pre, post, sim.FromListConnector(conns, column_names=["weight", "delay"]), stdp)
pre.record("spikes")
post.record("spikes")
sim.run(float(cfg["steps"]))
w = np.asarray(proj.get("weight", format="array"), float).T        # (post, pre)
spikes = {name: [[float(t) for t in st] for st in pop.get_data().segments[0].spiketrains]
          for name, pop in (("pre", pre), ("post", post))}
sim.end()
print("RESULT " + json.dumps({"weight": w.tolist(), **spikes}))
