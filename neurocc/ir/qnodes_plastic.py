"""The plastic synapse kind: dense integer synapses whose weights learn on chip (Lava
``LearningDense`` with a ``Loihi2FLearningRule``; :mod:`neurocc.ir.plasticity` for the rule form,
:mod:`neurocc.ir.numerics.learning` for the arithmetic).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from neurocc.ir.nodes import OMIT_DEFAULT, Node, Shape
from neurocc.ir.plasticity import (
    SIGN_MODES,
    TRACES,
    WEIGHT_RANGE,
    Term,
    decimation,
    parse_rule,
    used_traces,
)


@dataclass(frozen=True, eq=False)
class QPlasticDense(Node):
    """Integer dense synapses that learn (``loihi`` numerics only).

    Forward, per step: ``a = (W · s) << weight_exp`` (arithmetic ``>>`` for a negative exponent),
    binary spikes ``s``, with the weights ``W`` as they stand after the previous step's learning;
    under ``loihi`` the edge to the post-synaptic QLIF carries ``delay=1`` as for QDense.
    ``weight`` int (post × pre): the initial 8-bit weights (mixed sign loses its LSB at the first
    step, as Lava's ``truncate_weights``); ``sign_mode`` fixes the weights' range during learning
    (excitatory 0..255, inhibitory −255..0, mixed −256..255).

    Learning: the rule ``dw`` (a Loihi sum-of-products string, :func:`~neurocc.ir.plasticity.parse_rule`),
    trace ``impulses`` and decay ``taus`` (steps; 0 = no memory) for ``x1, x2, y1, y2, y3``, the
    epoch ``t_epoch`` and the trace random ``rng_seed`` (explicit: stochastic trace rounding is
    reproducible). The post-synaptic spikes are those of the single QLIF this node feeds, at the
    same step. The learned weights are state ``w`` (recorded as ``<node>/w`` at the end of a run).
    ``sparse``: only the synapses whose initial weight is non-zero (after the mixed-sign LSB drop)
    exist; the others stay 0 and never learn (Lava ``LearningSparse``).

    Three-factor learning (reward-modulated STDP, :func:`~neurocc.ir.plasticity.reward_stdp`):
    ``dt`` (default empty: no tag) is a second rule of the same form updating each synapse's
    tag ``t`` (8 bits + sign, starts at 0; the eligibility trace), which ``dw`` may use; and
    ``reward`` names the graph node (an ``Input`` of the post-synaptic shape, integer values
    0..127 per step) added to the post trace ``y2`` every step. With ``reward`` set the post
    traces ``y1, y2, y3`` belong to the post-synaptic neuron, which keeps them in integer
    arithmetic (:func:`~neurocc.ir.numerics.learning.neuron_traces`; Lava's
    ``Loihi3FLearningRule``: the synapse receives them every step).
    """

    kind: ClassVar[str] = "QPlasticDense"
    quantized: ClassVar[bool] = True
    plastic: ClassVar[bool] = True
    num_weight_bits: ClassVar[int] = 8     # Lava's learning engine works on full 8-bit weights
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    weight_exp: int = 0
    sign_mode: str = "excitatory"
    dw: str = "2^-2 * y0 * x1 - 2^-2 * x0 * y1"
    impulses: tuple[int, ...] = (32, 0, 32, 0, 0)
    taus: tuple[int, ...] = (8, 0, 8, 0, 0)
    t_epoch: int = 1
    rng_seed: int = 0
    sparse: bool = field(default=False, metadata=OMIT_DEFAULT)
    dt: str = field(default="", metadata=OMIT_DEFAULT)
    reward: str = field(default="", metadata=OMIT_DEFAULT)

    def terms(self) -> tuple[Term, ...]:
        return parse_rule(self.dw)

    def tag_terms(self) -> tuple[Term, ...]:
        """The terms of the tag rule ``dt`` (empty without one)."""
        return parse_rule(self.dt) if self.dt.strip() else ()

    def own_shape(self) -> Shape | None:
        return (int(self.weight.shape[1]),)

    def out_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.weight.shape[1],):
            raise ValueError(f"expects input ({self.weight.shape[1]},), got {in_shape}")
        return (int(self.weight.shape[0]),)

    def n_synapses(self, in_shape: Shape) -> int:
        return int(self.weight.size)

    def check(self) -> list[str]:
        probs = []
        if self.weight.ndim != 2 or (self.quantized and not np.issubdtype(self.weight.dtype, np.integer)):
            probs.append(f"weight must be a 2-D {'integer ' if self.quantized else ''}array, got {self.weight.dtype} {self.weight.shape}")
        if self.sign_mode not in SIGN_MODES:
            probs.append(f"sign_mode {self.sign_mode!r} is not one of {', '.join(SIGN_MODES)}")
        elif self.weight.size:
            lo, hi = WEIGHT_RANGE[self.sign_mode]
            if self.weight.min() < lo or self.weight.max() > hi:
                probs.append(f"weights {self.weight.min()}..{self.weight.max()} leave the {self.sign_mode} "
                             f"range {lo}..{hi}")
        if len(self.impulses) != 5 or len(self.taus) != 5:
            probs.append("impulses and taus need 5 values each (x1, x2, y1, y2, y3)")
        elif any(not 0 <= i <= 127 for i in self.impulses) or any(t < 0 for t in self.taus):
            probs.append(f"impulses must be integers 0..127 and taus ≥ 0, got {self.impulses} / {self.taus}")
        if not 1 <= self.t_epoch <= 63:
            probs.append(f"t_epoch {self.t_epoch} must be 1..63 (Loihi's 6-bit epoch time)")
        terms = ()
        for label, text, parse in (("learning rule", self.dw, self.terms), ("tag rule dt", self.dt, self.tag_terms)):
            try:
                terms += parse()
            except ValueError as err:
                probs.append(f"{label} {text!r}: {err}")
        try:
            decimation(terms)
        except ValueError as err:
            probs.append(str(err))
        if len(self.impulses) == 5:
            fed = {"y2"} if self.reward else set()   # the reward feeds y2
            dead = sorted(t for t in used_traces(terms) - fed if self.impulses[TRACES.index(t)] == 0)
            if dead:
                probs.append(f"the rule uses trace(s) {', '.join(dead)} whose impulse is 0 (always zero)")
        if any(v == "t" for t in terms for v, _ in t.factors) and not self.dt.strip():
            probs.append("the rule uses the tag t but there is no tag rule dt (t stays 0)")
        if self.reward and self.sparse:
            probs.append("a three-factor (reward) synapse cannot be sparse: neurocc wires the third factor for "
                         "dense plastic synapses only (LearningDense); use sparse=False")
        return probs


def reward_problems(graph, name: str, node) -> list[str]:
    """A three-factor synapse's ``reward`` must name an Input of the post-synaptic shape."""
    if not node.reward:
        return []
    src = graph.nodes.get(node.reward)
    want = (int(node.weight.shape[0]),)
    if src is None or src.kind != "Input" or tuple(src.shape) != want:
        got = "no such node" if src is None else f"a {src.kind}" + (f" of shape {tuple(src.shape)}" if
                                                                    src.kind == "Input" else "")
        return [(f"node '{name}' (QPlasticDense): reward '{node.reward}' must be a graph Input of shape {want} "
                 f"(one third-factor value 0..127 per post neuron and step); it is {got}")]
    return []


@dataclass(frozen=True, eq=False)
class PlasticDense(QPlasticDense):
    """The float form of :class:`QPlasticDense` (the ``reference`` backend's model of a plastic
    graph, from :func:`neurocc.compiler.passes.dequantize.dequantize`): float ``weight`` in the
    same weight units (0..255 excitatory), forward ``a = (W · s) · 2**weight_exp``, and the rule's
    float reference (:mod:`neurocc.ir.numerics.learning`, ``integer=False``: exact trace decays,
    no trace cap, no rounding of the weights, which are only clipped to the sign mode's range)."""

    kind: ClassVar[str] = "PlasticDense"
    quantized: ClassVar[bool] = False
    weight: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


def freeze(graph, weights=None, batch: int = 0):
    """``graph`` with every QPlasticDense replaced by a QDense holding its learned weights
    (``weights``: ``{"<node>/w": (batch, post, pre)}`` as a run returns them, or ``{"<node>":
    (post, pre)}``; absent nodes keep their initial weights). Exact under ``loihi`` for
    excitatory/inhibitory synapses; a mixed-sign QDense drops the weights' LSB (Lava's Dense)."""
    from neurocc.ir.graph import Graph
    from neurocc.ir.qnodes import QDense

    weights = dict(weights or {})
    nodes = dict(graph.nodes)
    for name, node in graph.nodes.items():
        if not getattr(node, "plastic", False):
            continue
        w = weights.get(f"{name}/w", weights.get(name))
        w = node.weight if w is None else (np.asarray(w)[batch] if np.ndim(w) == 3 else np.asarray(w))
        nodes[name] = QDense(weight=np.asarray(w, np.int32), weight_exp=node.weight_exp)
    return Graph(nodes, graph.edges, dt=graph.dt, method=graph.method, numerics=graph.numerics, name=graph.name)
