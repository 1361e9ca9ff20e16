"""A CA3-style content-addressable memory that learns on chip, built with neurocc's API.

    python examples/ca3_memory.py                       # float reference and emulator: learn, recall, forget
    python examples/ca3_memory.py --backends emulator,loihi --out build/ca3
    python examples/ca3_memory.py --rule stdp --backends emulator,loihi,spinnaker

An excitatory population ``E`` (one neuron per pattern bit) with plastic recurrent synapses
``EE`` (QPlasticDense), a cue input ``cue → E`` (fixed, one-to-one), and feedback inhibition
``E → I → E`` (fixed) plus an external ``stop`` input to ``I`` that silences the network between
trials. The rule is Hebbian with weight decay (a CA3 auto-association)::

    dw = 2^-1 · y0 · x1  −  2^-4 · x0 · y1  −  2^-4 · y0 · w

potentiation of synapses from co-active neurons at every post spike, a little depression for
pre-after-post and, at every post spike, a decay of the weight towards 8·x1 (so a later pattern
that reuses some of a stored pattern's neurons overwrites it). Learning: each pattern is cued in full for ``learn_steps`` steps,
``repeats`` times. Recall: a fragment (``fraction`` of the pattern's ones) is cued; the answer is
the set of E neurons that spike in the recall window; accuracy = fraction of bits (ones and
zeros) equal to the stored pattern, and ``exact`` = the whole pattern recovered.
``--rule stdp`` replaces the rule by pair STDP ``2^-1 · y0 · x1 − 2^-2 · x0 · y1`` (weights
bounded to 0..255, no decay: forgetting only by interference), which PyNN's ``STDPMechanism``
expresses, so the same memory also compiles for ``spinnaker`` and runs on SpiNNaker's PyNN API
(on NEST here). Every backend runs a compiled artifact (``neurocc.compile`` → ``neurocc.run``):
``loihi2`` for the emulator, Lava and the float reference (the rule's float form), ``spinnaker``
for NEST; recall and the learned weights are printed per backend, the weights also against the
float reference (the cosine of the weight changes, the measure ``neurocc validate`` judges).
Everything is in Loihi units (the graph is built already quantized for the ``loihi`` numerics).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from neurocc.ir import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QLIF, QDense
from neurocc.ir.qnodes_plastic import QPlasticDense

RULE = "2^-1 * y0 * x1 - 2^-4 * x0 * y1 - 2^-4 * y0 * w"
STDP_RULE = "2^-1 * y0 * x1 - 2^-2 * x0 * y1"   # pair STDP: both chips express it (PyNN SpikePairRule)
RULES = {"decay": RULE, "stdp": STDP_RULE}


@dataclass(frozen=True)
class Protocol:
    n: int = 32            # pattern bits (E neurons)
    ones: int = 6          # active bits per pattern
    patterns: int = 3
    learn_steps: int = 6   # cue steps per presentation
    repeats: int = 5
    recall_steps: int = 4
    gap: int = 3           # silent steps after the stop pulse
    fraction: float = 0.5  # cued share of a pattern's ones at recall
    seed: int = 0


def _lif(n: int, vth) -> QLIF:
    """Memoryless LIF (du, dv: no memory): spikes when this step's input exceeds ``vth``."""
    z = np.zeros(n, np.int32)
    return QLIF(du=np.full(n, 4095), dv=np.full(n, 4096), vth=np.broadcast_to(vth, (n,)).astype(np.int32),
                bias_mant=z, bias_exp=z)


def build_graph(n: int = 32, n_inh: int = 8, seed: int = 7, ones: int = 6, rule: str = "decay") -> Graph:
    """The memory network (``loihi`` numerics; every synapse → neuron edge has delay 1).
    Inhibitory neuron k (1..n_inh) fires when more than ``ones + k − 1`` E neurons spiked (graded
    feedback inhibition: a soft k-winners-take-all); ``stop`` fires them all."""
    nodes = {
        "cue": Input(shape=(n,)), "stop": Input(shape=(n_inh,)),
        "C": QDense(weight=np.eye(n, dtype=np.int32) * 255),
        "EE": QPlasticDense(weight=np.zeros((n, n), np.int32), sign_mode="excitatory", dw=RULES[rule],
                            impulses=(16, 0, 16, 0, 0), taus=(1, 0, 1, 0, 0), t_epoch=1, rng_seed=seed),
        "EI": QDense(weight=np.full((n_inh, n), 10, np.int32)),
        "S": QDense(weight=np.eye(n_inh, dtype=np.int32) * 120),
        "IE": QDense(weight=np.full((n, n_inh), -255, np.int32)),
        "E": _lif(n, 250), "I": _lif(n_inh, 10 * (ones + np.arange(1, n_inh + 1)) - 5), "out": Output(), "inh": Output(),
    }
    edges = (Edge("cue", "C"), Edge("C", "E", 1), Edge("E", "EE"), Edge("EE", "E", 1), Edge("E", "EI"),
             Edge("EI", "I", 1), Edge("stop", "S"), Edge("S", "I", 1), Edge("I", "IE"), Edge("IE", "E", 1),
             Edge("E", "out"), Edge("I", "inh"))
    return Graph(nodes, edges, numerics="loihi", name="ca3_memory")


def make_patterns(p: Protocol) -> np.ndarray:
    rng = np.random.default_rng(p.seed)
    pats = np.zeros((p.patterns, p.n), np.int64)
    k = 0
    while k < p.patterns:   # random patterns sharing at most one bit with each other
        cand = np.zeros(p.n, np.int64)
        cand[rng.choice(p.n, p.ones, replace=False)] = 1
        if k == 0 or (pats[:k] @ cand).max() <= 1:
            pats[k] = cand
            k += 1
    return pats


def overwriting(pats: np.ndarray, seed: int) -> np.ndarray:
    """New patterns that each keep half of an old pattern's ones and move the rest to unused bits."""
    rng = np.random.default_rng(seed + 2)
    free = list(rng.permutation(np.flatnonzero(pats.sum(0) == 0)))
    new = np.zeros_like(pats)
    for k, pat in enumerate(pats):
        on = np.flatnonzero(pat)
        new[k, on[: len(on) // 2]] = 1
        for _ in range(len(on) - len(on) // 2):
            new[k, free.pop()] = 1
    return new


def fragment(pattern: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    on = np.flatnonzero(pattern)
    keep = rng.choice(on, max(1, int(np.ceil(fraction * len(on)))), replace=False)
    out = np.zeros_like(pattern)
    out[keep] = 1
    return out


class Schedule:
    """Time-major cue/stop inputs and the recall windows to score."""

    def __init__(self, p: Protocol, n_inh: int = 8) -> None:
        self.p, self.n_inh = p, n_inh
        self.cue: list[np.ndarray] = []
        self.stop: list[np.ndarray] = []
        self.windows: list[tuple[int, int, int]] = []   # (pattern, start, end)

    def _block(self, cue: np.ndarray | None, steps: int) -> int:
        start = len(self.cue)
        for _ in range(steps):
            self.cue.append(cue if cue is not None else np.zeros(self.p.n))
            self.stop.append(np.zeros(self.n_inh))
        self.stop.append(np.ones(self.n_inh))      # silence the network, then rest
        self.cue.append(np.zeros(self.p.n))
        for _ in range(self.p.gap):
            self.cue.append(np.zeros(self.p.n))
            self.stop.append(np.zeros(self.n_inh))
        return start

    def learn(self, pats: np.ndarray, repeats: int) -> None:
        for _ in range(repeats):
            for pat in pats:
                self._block(pat, self.p.learn_steps)

    def recall(self, pats: np.ndarray, ids: list[int], rng: np.random.Generator) -> None:
        for k in ids:
            s = self._block(fragment(pats[k], self.p.fraction, rng), self.p.recall_steps)
            self.windows.append((k, s + 1, s + self.p.recall_steps + 1))

    def inputs(self) -> dict[str, np.ndarray]:
        return {"cue": np.asarray(self.cue, np.float64)[:, None], "stop": np.asarray(self.stop, np.float64)[:, None]}


def score(spikes: np.ndarray, pats: np.ndarray, windows) -> dict[str, float]:
    """Bit accuracy and exact-recall rate over ``windows`` (spikes: (steps, 1, n))."""
    bits, exact = [], []
    for k, a, b in windows:
        got = (spikes[a:b, 0] != 0).any(axis=0).astype(np.int64)
        bits.append(float((got == pats[k]).mean()))
        exact.append(float((got == pats[k]).all()))
    return {"bit_accuracy": float(np.mean(bits)), "exact": float(np.mean(exact))}


def experiment(p: Protocol = Protocol(), overwrite: int = 0, rule: str = "decay") -> tuple[Graph, dict[str, np.ndarray], dict]:
    """Learn ``p.patterns`` patterns, recall each from a fragment; with ``overwrite`` > 0, then
    learn that many new patterns and recall the first ones again. Returns (graph, inputs, info)."""
    old = make_patterns(p)
    new = overwriting(old, p.seed)[:overwrite]
    pats = np.concatenate([old, new])
    sch = Schedule(p)
    rng = np.random.default_rng(p.seed + 1)
    sch.learn(old, p.repeats)
    sch.recall(pats, list(range(p.patterns)), rng)
    first = len(sch.windows)
    if overwrite:
        sch.learn(new, 2 * p.repeats)
        sch.recall(pats, list(range(p.patterns)), rng)
    return build_graph(p.n, ones=p.ones, rule=rule), sch.inputs(), {"patterns": pats, "windows": sch.windows, "first": first}


def evaluate(spikes: np.ndarray, info: dict) -> dict[str, dict[str, float]]:
    w = info["windows"]
    out = {"recall": score(spikes, info["patterns"], w[:info["first"]])}
    if len(w) > info["first"]:
        out["after_overwrite"] = score(spikes, info["patterns"], w[info["first"]:])
    return out


def float_reference(graph: Graph, spikes: np.ndarray) -> np.ndarray:
    """The float reference of ``EE``'s rule (:class:`neurocc.ir.numerics.learning.LearningState`,
    ``integer=False``: exact decays, no rounding) driven by the E spikes ``spikes`` (steps, 1, n)."""
    from neurocc.ir.numerics.learning import LearningState

    node = graph.nodes["EE"]
    n = node.weight.shape[0]
    st = LearningState(n, n, node.impulses, node.taus, node.t_epoch, node.rng_seed, False)
    w = node.weight.astype(np.float64)
    for s in np.asarray(spikes)[:, 0] != 0:
        if st.spikes(s, s):
            w = st.learn(w, node.terms(), node.sign_mode)
    return w


def structure(w: np.ndarray, pats: np.ndarray) -> dict[str, float]:
    """Within-pattern synapses (both ends in one stored pattern) against the others."""
    inside = np.zeros(w.shape, bool)
    for pat in pats:
        inside |= np.outer(pat, pat).astype(bool)
    return {"within_mean": float(w[inside].mean()), "within_min": float(w[inside].min()),
            "outside_max": float(w[~inside].max())}


TARGETS = {"emulator": "loihi2", "loihi": "loihi2", "reference": "loihi2", "spinnaker": "spinnaker"}


def compile_for(graph: Graph, backends: list[str], out: str) -> dict[str, str]:
    """The artifact each backend runs: ``loihi2`` (emulator, loihi, reference: the rule's float
    form) in ``out``, ``spinnaker`` (PyNN's STDPMechanism, pair STDP only) in ``out-spinnaker``;
    the normal ``neurocc.compile`` path for both."""
    import neurocc

    dirs = {}
    for target in sorted({TARGETS[b] for b in backends}):
        d = out if target == "loihi2" else f"{out}-{target}"
        neurocc.compile(graph, target, d)
        dirs[target] = d
    return {b: dirs[TARGETS[b]] for b in backends}


def run_backend(backend: str, artifact: str, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(E spikes, learned EE weights) of one backend run on its compiled artifact (``neurocc.run``)."""
    import neurocc

    res = neurocc.run(artifact, backend=backend, inputs=inputs)
    return np.asarray(res["out"]), np.asarray(res["EE/w"][0], np.float64)


def main() -> None:  # pragma: no cover - a demo printout
    from neurocc.runtime.learned import dw_cosine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="emulator",
                    help="comma list of emulator, loihi, spinnaker (the float reference always runs first)")
    ap.add_argument("--rule", default="decay", choices=sorted(RULES),
                    help="decay: Hebbian with weight decay (loihi only); stdp: pair STDP (loihi and spinnaker)")
    ap.add_argument("--out", default="build/ca3-memory")
    ap.add_argument("--overwrite", type=int, default=3)
    args = ap.parse_args()
    graph, inputs, info = experiment(overwrite=args.overwrite, rule=args.rule)
    backends = ["reference"] + [b for b in args.backends.split(",") if b != "reference"]
    arts = compile_for(graph, backends, args.out)
    w0 = graph.nodes["EE"].weight
    ref = first = None
    for b in backends:
        spikes, w = run_backend(b, arts[b], inputs)
        print(f"{b} ({arts[b]}):", evaluate(spikes, info))
        print("  weights:", structure(w, info["patterns"]))
        if ref is not None:
            print(f"  vs reference: weight-change cosine {dw_cosine(w0, ref, w):.4f}, max |w - w_ref| "
                  f"{np.abs(w - ref).max():.1f} (of 255)")
        ref = w if ref is None else ref
        if first is not None:
            s0, w_first = first
            print(f"  vs {backends[1]}: spikes equal {np.array_equal(spikes != 0, s0 != 0)} "
                  f"({int(((spikes != 0) != (s0 != 0)).sum())} of {s0.size} differ), weights max |diff| "
                  f"{np.abs(w - w_first).max():.1f}")
        elif b != "reference":
            first = (spikes, w)


if __name__ == "__main__":  # pragma: no cover
    main()
