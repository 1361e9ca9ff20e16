"""The emulator kernel of QPlasticDense (weights that learn; arithmetic in
:mod:`neurocc.ir.numerics.learning`).

A graph with plastic synapses runs step by step as one block (:class:`.program.Program`):
at step t every node computes its output, then each plastic kernel's :meth:`QPlastic.learn`
sees its own input spikes of step t and its post-synaptic QLIF's spikes of step t, and updates
its weights; step t + 1 uses them (Lava's spike phase then learning phase). Each batch element
learns independently, from the same initial weights and random streams (as separate Lava runs).
A three-factor synapse (``reward`` set) also keeps the post neurons' traces
(:func:`~neurocc.ir.numerics.learning.neuron_traces`, fed by the reward node's output of step t)
and hands them to the synapse each step; a tag rule ``dt`` keeps a tag per synapse.
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator.kernels import Kernel
from neurocc.ir.numerics import learning as L
from neurocc.ir.qnodes_plastic import reward_problems


class QPlastic(Kernel):
    """``a = (W_b · s) << weight_exp`` per batch element b (binary spikes), int64 output."""

    stateful = True

    def __init__(self, *a, float_rule: bool = False, **kw) -> None:
        super().__init__(*a, **kw)
        self.terms = self.node.terms()
        self.tag_terms = self.node.tag_terms()
        self.integer = self.integer and not float_rule   # a PlasticDense (float graph): the float rule
        self.out_dtype = np.int64 if self.integer else np.float64

    def reset(self, batch: int) -> None:
        n = self.node
        w0 = L.initial_weights(n.weight, n.sign_mode) if self.integer else np.asarray(n.weight, np.float64)
        self.W = np.repeat(w0[None], batch, axis=0)
        self.mask = (w0 != 0) if n.sparse else None   # sparse: absent synapses never learn
        post, pre = n.weight.shape
        imp, taus = L.synapse_traces(n.impulses, n.taus, bool(n.reward))
        self.learners = [L.LearningState(post, pre, imp, taus, n.t_epoch, n.rng_seed, self.integer)
                         for _ in range(batch)]
        self.last_in = np.zeros((batch, pre), np.int64)
        self.T = np.zeros_like(self.W)                         # tags (eligibility), used with a dt rule
        self.Y = np.zeros((batch, 3, post), self.W.dtype)     # three-factor: the post neurons' traces

    def step(self, x: np.ndarray) -> np.ndarray:
        s = (np.asarray(x) != 0).astype(self.W.dtype)
        self.last_in = s
        acc = np.einsum("bij,bj->bi", self.W, s)
        e = int(self.node.weight_exp)
        if not self.integer:
            return acc * 2.0 ** e
        acc = acc.astype(np.int64)
        return acc << e if e > 0 else acc >> -e

    def learn(self, post: np.ndarray, reward: np.ndarray | None = None) -> None:
        """End of a step: record the spikes (and, three-factor, the post traces after this step's
        spikes and ``reward``) and, at the end of an epoch, update the weights (and tags)."""
        n = self.node
        post = np.asarray(post).reshape(len(self.learners), -1)
        for b, st in enumerate(self.learners):
            epoch_end = st.spikes(self.last_in[b], post[b])
            if n.reward:
                self.Y[b] = L.neuron_traces(self.Y[b], post[b], np.asarray(reward)[b], n.impulses, n.taus,
                                            self.integer)
                st.set_post_traces(self.Y[b])
            if not epoch_end:
                continue
            if self.tag_terms:
                w, self.T[b] = st.learn_tagged(self.W[b], self.T[b], self.terms, self.tag_terms, n.sign_mode)
            else:
                w = st.learn(self.W[b], self.terms, n.sign_mode)
            self.W[b] = w if self.mask is None else np.where(self.mask, w, 0)


def post_neuron(graph, name: str) -> str:
    """The QLIF a plastic node feeds (checked by :func:`plastic_problems`)."""
    return graph.successors(name)[0]


def plastic_problems(graph) -> list[str]:
    """Plastic synapses the emulator cannot pair with one post-synaptic spiking neuron."""
    out = []
    for name, node in graph.nodes.items():
        if not getattr(node, "plastic", False):
            continue
        succ = graph.successors(name)
        if len(succ) != 1 or not graph.nodes[succ[0]].spiking:
            out.append(f"node '{name}' ({node.kind}) must feed exactly one spiking neuron node (its post-synaptic "
                       "neurons), "
                       f"it feeds {', '.join(succ) or 'nothing'}")
        preds = graph.predecessors(name)
        if any(graph.nodes[p].kind != "Input" and not graph.nodes[p].spiking for p in preds):
            out.append(f"node '{name}' ({node.kind}) must read spikes of an Input or a spiking neuron node")
        out += reward_problems(graph, name, node)
    return out
