"""Plastic synapses on Lava: QPlasticDense → ``LearningDense`` with a ``Loihi2FLearningRule``
(``PyLearningDenseModelBitApproximate`` under ``select_tag='fixed_pt'``), the post-synaptic LIF's
``s_out`` connected to its ``s_in_bap`` (back-propagating spikes), and the weights read back
after the run as ``"<node>/w"`` (batch, post, pre). Lava imports stay in the worker.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    return LProc(name, "learning_dense", tuple(node.weight.shape), params,
                 {"weights": node.weight.astype(np.int32)}, node=syn)


def make_learning_dense(L: SimpleNamespace, p: LProc) -> Any:
    """Worker side: the Lava process for ``p`` (``L`` from :func:`.shim.import_lava`)."""
    q = dict(p.params)
    traces = {}
    for i, t in enumerate(TRACES):
        traces[f"{t}_impulse"] = float(q["impulses"][i])
        traces[f"{t}_tau"] = float(q["taus"][i])
    rule = L.Loihi2FLearningRule(dw=q["dw"], t_epoch=int(q["t_epoch"]), rng_seed=int(q["rng_seed"]), **traces)
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
