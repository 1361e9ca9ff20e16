"""The emulator kernel of QPlasticDense (weights that learn; arithmetic in
:mod:`neurocc.ir.numerics.learning`).

A graph with plastic synapses runs step by step as one block (:class:`.program.Program`):
at step t every node computes its output, then each plastic kernel's :meth:`QPlastic.learn`
sees its own input spikes of step t and its post-synaptic QLIF's spikes of step t, and updates
its weights; step t + 1 uses them (Lava's spike phase then learning phase). Each batch element
learns independently, from the same initial weights and random streams (as separate Lava runs).
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator.kernels import Kernel
from neurocc.ir.numerics import learning as L


class QPlastic(Kernel):
    """``a = (W_b · s) << weight_exp`` per batch element b (binary spikes), int64 output."""

    stateful = True

    def __init__(self, *a, float_rule: bool = False, **kw) -> None:
        super().__init__(*a, **kw)
        self.terms = self.node.terms()
        self.integer = self.integer and not float_rule   # a PlasticDense (float graph): the float rule
        self.out_dtype = np.int64 if self.integer else np.float64

    def reset(self, batch: int) -> None:
        n = self.node
        w0 = L.initial_weights(n.weight, n.sign_mode) if self.integer else np.asarray(n.weight, np.float64)
        self.W = np.repeat(w0[None], batch, axis=0)
        self.mask = (w0 != 0) if n.sparse else None   # sparse: absent synapses never learn
        post, pre = n.weight.shape
        self.learners = [L.LearningState(post, pre, n.impulses, n.taus, n.t_epoch, n.rng_seed, self.integer)
                         for _ in range(batch)]
        self.last_in = np.zeros((batch, pre), np.int64)

    def step(self, x: np.ndarray) -> np.ndarray:
        s = (np.asarray(x) != 0).astype(self.W.dtype)
        self.last_in = s
        acc = np.einsum("bij,bj->bi", self.W, s)
        e = int(self.node.weight_exp)
        if not self.integer:
            return acc * 2.0 ** e
        acc = acc.astype(np.int64)
        return acc << e if e > 0 else acc >> -e

    def learn(self, post: np.ndarray) -> None:
        """End of a step: record the spikes and, at the end of an epoch, update the weights."""
        post = np.asarray(post).reshape(len(self.learners), -1)
        for b, st in enumerate(self.learners):
            if st.spikes(self.last_in[b], post[b]):
                w = st.learn(self.W[b], self.terms, self.node.sign_mode)
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
    return out
