"""Plastic synapses on Lava: QPlasticDense → ``LearningDense`` with a ``Loihi2FLearningRule``
(``PyLearningDenseModelBitApproximate`` under ``select_tag='fixed_pt'``), the post-synaptic LIF's
``s_out`` connected to its ``s_in_bap`` (back-propagating spikes), and the weights read back
after the run as ``"<node>/w"`` (batch, post, pre). Lava imports stay in the worker.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np

from neurocc.ir.plasticity import TRACES, parse_rule, rule_text

from .plan import LavaNet, LProc


def learning_proc(name: str, syn: str, node: Any) -> LProc:
    """The plain description of one LearningDense (the rule as Lava's canonical ``dw`` string)."""
    params = {"weight_exp": int(node.weight_exp), "sign_mode": node.sign_mode,
              "dw": rule_text(parse_rule(node.dw)), "impulses": [int(i) for i in node.impulses],
              "taus": [int(t) for t in node.taus], "t_epoch": int(node.t_epoch), "rng_seed": int(node.rng_seed)}
    if node.sparse:
        params["sparse"] = True
    if node.dt.strip():
        params["dt"] = rule_text(parse_rule(node.dt))
    if node.reward:
        params["three_factor"] = True
    return LProc(name, "learning_dense", tuple(node.weight.shape), params,
                 {"weights": node.weight.astype(np.int32)}, node=syn)


def make_learning_dense(L: SimpleNamespace, p: LProc) -> Any:
    """Worker side: the Lava process for ``p`` (``L`` from :func:`.shim.import_lava`)."""
    q = dict(p.params)
    traces = {}
    for i, t in enumerate(TRACES[:2] if q.get("three_factor") else TRACES):
        traces[f"{t}_impulse"] = float(q["impulses"][i])
        traces[f"{t}_tau"] = float(q["taus"][i])
    if q.get("three_factor"):   # y traces come from the post neuron (lava_learning.NeuroccLearningLIF)
        from lava.magma.core.learning.learning_rule import Loihi3FLearningRule as Rule
    else:
        Rule = L.Loihi2FLearningRule
    rule = Rule(dw=q["dw"], dt=q.get("dt"), t_epoch=int(q["t_epoch"]), rng_seed=int(q["rng_seed"]), **traces)
    if q.get("sparse"):
        from lava.proc.sparse.process import LearningSparse
        from scipy.sparse import csr_matrix

        return LearningSparse(weights=csr_matrix(np.asarray(p.arrays["weights"])), weight_exp=int(q["weight_exp"]),
                              num_weight_bits=8, sign_mode=getattr(L.SignMode, q["sign_mode"].upper()),
                              learning_rule=rule, name=p.name)
    return L.LearningDense(weights=np.asarray(p.arrays["weights"]).copy(), weight_exp=int(q["weight_exp"]),
                           num_weight_bits=8, sign_mode=getattr(L.SignMode, q["sign_mode"].upper()),
                           learning_rule=rule, name=p.name)


def read_weights(net: LavaNet, objs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Worker side, after the run and before stop: ``"<proc>/weights"`` per LearningDense built."""
    return {f"{p.name}/weights": np.rint(_dense(objs[p.name].weights.get())).astype(np.int32)
            for p in net.procs if p.kind == "learning_dense" and p.name in objs}


def _dense(w: Any) -> np.ndarray:
    return np.asarray(w.toarray() if hasattr(w, "toarray") else w)


def three_factor(lowering: Any, syn_proc: str, syn: str, dst: str) -> None:
    """Wire a three-factor synapse (``reward`` set): its post neuron ``dst`` becomes a learning
    neuron keeping the post traces (:mod:`.lava_learning`), the reward Input feeds the neuron's
    ``a_third_factor_in`` in the same step (RingBuffer shift 0), the neuron's ``s_out_y1..3``
    feed the synapse's ``s_in_y1..3``."""
    from neurocc.ir.qnodes_plastic import reward_problems

    node, proc = lowering.g.nodes[syn], lowering.procs[dst]
    bad = reward_problems(lowering.g, syn, node)
    if bad:
        lowering.found.extend(p for p in bad if p not in lowering.found)
        return
    if "learning" in proc.params:
        lowering.problem(dst, "is the post neuron of two three-factor plastic synapses; Lava's learning neuron "
                              "keeps one set of post traces (give each its own post population)")
        return
    learning = {"trace_impulses": [int(i) for i in node.impulses], "trace_taus": [int(t) for t in node.taus]}
    lowering.procs[dst] = replace(proc, params={**proc.params, "learning": learning})
    shape = tuple(lowering.g.nodes[node.reward].shape)
    lowering._connect(lowering._source(node.reward, 0, shape), "s_out", dst, "a_third_factor_in")
    for k in ("y1", "y2", "y3"):
        lowering._connect(dst, f"s_out_{k}", syn_proc, f"s_in_{k}")


def problems(name: str, node: Any) -> list[str]:
    """What Lava 0.10 cannot run of a plastic node."""
    if node.sparse and node.sign_mode != "mixed":
        return [(f"node '{name}' (QPlasticDense): sparse with sign_mode={node.sign_mode}: Lava 0.10's "
                 "LearningSparse fails on it (np.maximum on its csr accumulator); use sign_mode='mixed' "
                 "(the same updates while weights stay positive) or a dense plastic synapse")]
    return []


def assemble_weights(net: LavaNet, per_batch: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``"<node>/w"`` (batch, post, pre) from the worker's per-element weights."""
    return {f"{p.node}/w": np.stack([b[f"{p.name}/weights"] for b in per_batch]).astype(np.int64)
            for p in net.procs if p.kind == "learning_dense"}
