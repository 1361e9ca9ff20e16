"""Measure how NEST's pair STDP (the spinnaker plastic network) agrees with the rule's float
reference, per pairing lowering (``neurocc.backends.spinnaker.plastic.nest_pairing``:
``none`` = the direct lowering, ``potentiation``/``depression`` = the relayed one pairing the same
step that way with the rule's kernels, ``fit`` = the relayed, fitted lowering the backend uses).
Printed per case and lowering:

* ``replay``: max |NEST − replay of the lowered stdp_synapse on NEST's spikes| (the judge, ≤ 1e-6);
* ``dw_cos_own``: Δw cosine of NEST's weights against the float rule driven by NEST's *own* E
  spikes (the pairing alone, no spike divergence); ``max_own``: max |w − that|;
* ``dw_cos_ref``: Δw cosine against the reference backend's weights (what validate reports);
* ``spike_cos``: mean-activity cosine of the outputs against the reference backend (validate's
  spike check, ≥ 0.99); ``recall``: the example's recall scores (CA3 cases).

Cases: the CA3 memory (``examples/ca3_memory.py --rule stdp``) with overwrite 0 and 3, and
seeded random recurrent networks (Input → plastic → E, E → plastic E→E).

    PYTHONPATH=. OPENBLAS_NUM_THREADS=1 python scripts/stdp_pairing_nest.py [--cases ca3,random]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

from neurocc.backends.spinnaker.plastic import nest_pairing, replay_lowered
from neurocc.backends.spinnaker.plastic_net import run_plastic_network
from neurocc.ir.numerics.learning import LearningState
from neurocc.runtime.compare import activity_cosine
from neurocc.runtime.learned import dw_cosine

ROOT = Path(__file__).resolve().parents[1]


def _ca3():
    spec = importlib.util.spec_from_file_location("ca3_memory", ROOT / "examples" / "ca3_memory.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ca3_memory"] = mod
    spec.loader.exec_module(mod)
    return mod


def float_rule(node, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """The float reference of ``node``'s rule driven by given spikes (steps, n_pre) / (steps, n_post)."""
    st = LearningState(*node.weight.shape, node.impulses, node.taus, node.t_epoch, node.rng_seed, False)
    w = node.weight.astype(np.float64)
    for a, b in zip(pre, post):
        if st.spikes(a, b):
            w = st.learn(w, node.terms(), node.sign_mode)
    return w


def random_graph(seed: int, n_in: int = 12, n: int = 10):
    """Input → plastic (pair STDP) → E, E → plastic → E (recurrent), thresholds that make E fire
    sometimes together with its inputs."""
    from neurocc.ir.graph import Edge, Graph
    from neurocc.ir.nodes import Input, Output
    from neurocc.ir.plasticity import stdp_pair
    from neurocc.ir.qnodes import QLIF
    from neurocc.ir.qnodes_plastic import QPlasticDense

    rng = np.random.default_rng(seed)
    z = np.zeros(n, np.int32)
    rule = stdp_pair(2 ** -1, 2 ** -2, 2, 3, 24)
    nodes = {"x": Input(shape=(n_in,)),
             "P": QPlasticDense(weight=rng.integers(40, 160, (n, n_in)).astype(np.int32), sign_mode="excitatory",
                                t_epoch=1, rng_seed=seed, **rule),
             "R": QPlasticDense(weight=rng.integers(0, 60, (n, n)).astype(np.int32), sign_mode="excitatory",
                                t_epoch=1, rng_seed=seed + 1, **rule),
             "E": QLIF(du=np.full(n, 4095), dv=np.full(n, 4096), vth=np.full(n, 300, np.int32), bias_mant=z, bias_exp=z),
             "out": Output()}
    edges = (Edge("x", "P"), Edge("P", "E", 1), Edge("E", "R"), Edge("R", "E", 1), Edge("E", "out"))
    g = Graph(nodes, edges, numerics="loihi", name=f"random{seed}")
    x = (rng.random((120, 2, n_in)) < 0.15).astype(np.int64)
    return g, {"x": x}


def measure(graph, inputs, lowering: str, ref: dict, info=None, M=None) -> dict:
    got = run_plastic_network(graph, inputs, pairing=lowering)
    spikes = {n: got[f"{n}/spikes"] if f"{n}/spikes" in got else (np.asarray(inputs[n]) != 0).astype(np.int64)
              for n in graph.nodes if graph.nodes[n].kind in ("QLIF", "Input")}
    steps = len(next(iter(inputs.values())))
    out = {"replay": 0.0, "dw_cos_own": [], "max_own": 0.0, "dw_cos_ref": []}
    for name, node in graph.nodes.items():
        if not getattr(node, "plastic", False):
            continue
        pre, post = graph.predecessors(name)[0], graph.successors(name)[0]
        p = nest_pairing(name, node, 1.0, lowering)
        w = got[f"{name}/w"]
        for b in range(w.shape[0]):
            sp, so = spikes[pre][:, b], spikes[post][:, b]
            rep = replay_lowered(node.weight, [list(np.flatnonzero(sp[:, j])) for j in range(sp.shape[1])],
                                 [list(np.flatnonzero(so[:, i])) for i in range(so.shape[1])], p, p["w_max"], steps)
            out["replay"] = max(out["replay"], float(np.abs(rep - w[b]).max()))
            own = float_rule(node, sp, so)
            out["max_own"] = max(out["max_own"], float(np.abs(own - w[b]).max()))
        own_all = np.stack([float_rule(node, spikes[pre][:, b], spikes[post][:, b]) for b in range(w.shape[0])])
        out["dw_cos_own"].append(dw_cosine(node.weight, own_all, w))
        out["dw_cos_ref"].append(dw_cosine(node.weight, ref[f"{name}/w"], w))
    outs = [o for o in graph.outputs]
    out["spike_cos"] = float(np.mean([activity_cosine(ref[o], spikes[graph.predecessors(o)[0]]) for o in outs]))
    if M is not None:
        out["recall"] = M.evaluate(spikes["E"], info)
    out["dw_cos_own"] = round(min(out["dw_cos_own"]), 4)
    out["dw_cos_ref"] = round(min(out["dw_cos_ref"]), 4)
    return out


def reference(graph, inputs, tmp: Path) -> dict:
    import neurocc

    neurocc.compile(graph, "loihi2", tmp)
    return neurocc.run(tmp, backend="reference", inputs=inputs)


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="ca3,random")
    ap.add_argument("--lowerings", default="none,potentiation,depression,fit")
    args = ap.parse_args()
    cases = []
    if "ca3" in args.cases:
        M = _ca3()
        for ow in (0, 3):
            g, x, info = M.experiment(overwrite=ow, rule="stdp")
            cases.append((f"ca3 overwrite {ow}", g, x, info, M))
    if "random" in args.cases:
        for seed in (1, 2, 3):
            g, x = random_graph(seed)
            cases.append((f"random seed {seed}", g, x, None, None))
    with tempfile.TemporaryDirectory() as tmp:
        for k, (label, g, x, info, M) in enumerate(cases):
            ref = reference(g, x, Path(tmp) / f"a{k}")
            if M is not None:
                print(f"{label}: reference recall {M.evaluate(ref['out'], info)}")
            for low in args.lowerings.split(","):
                print(f"{label} [{low}]: {measure(g, x, low, ref, info, M)}", flush=True)


if __name__ == "__main__":
    main()
