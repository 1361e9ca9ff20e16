"""Reward-modulated (three-factor) STDP: a neuron learns to prefer the input pattern that is rewarded.

    python examples/reward_stdp.py                          # emulator
    python examples/reward_stdp.py --backends emulator,loihi --out build/rstdp

Eight inputs ``x`` drive one post neuron ``P`` through a plastic synapse ``W`` (QPlasticDense)
with the ``reward_stdp`` preset (:func:`neurocc.ir.plasticity.reward_stdp`)::

    dt = 2^-1 · y0 · x1 − 2^-2 · x0 · y1 − 2^-2 · u0 · t     (the tag: pair STDP, leaking)
    dw = 2^-3 · u0 · t · y2                                  (the tag times the reward trace)

Pattern A is inputs 0..3, pattern B inputs 4..7. Each trial sends one volley of a pattern; both
start with the same weights (40), so ``P`` fires one step later for either, and the synapses of
the pattern that fired it get a positive tag (pre before post). Only after an A trial, ``reward``
(a graph Input, the third factor, 0..127 per step) delivers ``reward_size`` two steps after
``P``'s spike, into the post neuron's reward trace ``y2``; the tagged synapses then grow by
``t · y2``. B's tags decay to 0 before any reward arrives, so B's weights never change.
Trials are ``gap`` steps apart (tags and the reward trace decay to 0 in between). A test phase
follows, without reward: half of A (inputs 0, 1), then half of B (inputs 4, 5); at the initial
weights neither half fires ``P`` (2 · 40 ≤ 100), after learning half of A does and half of B
does not. Everything is in Loihi units (the graph is built already quantized for the ``loihi``
numerics).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from neurocc.ir import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.plasticity import reward_stdp
from neurocc.ir.qnodes import QLIF
from neurocc.ir.qnodes_plastic import QPlasticDense

A, B = np.arange(0, 4), np.arange(4, 8)


@dataclass(frozen=True)
class Protocol:
    trials: int = 8          # trials per pattern (A and B alternate)
    gap: int = 24            # steps per trial
    reward_delay: int = 3    # steps from the volley to the reward (the post spike is 1 step after the volley)
    reward_size: int = 64    # third-factor value (0..127) for one step
    w0: int = 40             # initial weight of every synapse


def build_graph(w0: int = 40, seed: int = 3) -> Graph:
    """x (8) → W (plastic, R-STDP) → P (1 memoryless LIF: spikes when this step's input > 100);
    ``reward`` (1 value per post neuron) is the third factor of ``W``."""
    rule = reward_stdp(a_plus=2 ** -1, a_minus=2 ** -2, tag_decay=2 ** -2, rate=2 ** -3, tau_plus=4,
                       tau_minus=4, impulse=32, reward_tau=4, reward="reward")
    z = np.zeros(1, np.int32)
    nodes = {
        "x": Input(shape=(8,)), "reward": Input(shape=(1,)),
        "W": QPlasticDense(weight=np.full((1, 8), w0, np.int32), sign_mode="excitatory", t_epoch=1,
                           rng_seed=seed, **rule),
        "P": QLIF(du=np.full(1, 4095), dv=np.full(1, 4096), vth=np.full(1, 100, np.int32), bias_mant=z, bias_exp=z),
        "out": Output(),
    }
    edges = (Edge("x", "W"), Edge("W", "P", 1), Edge("P", "out"))
    return Graph(nodes, edges, numerics="loihi", name="reward_stdp")


def inputs(p: Protocol = Protocol()) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(graph inputs (steps, 1, n), the step of each volley): trials A, B, A, B, ..., then the
    two test volleys (half of A, half of B)."""
    steps = (2 * p.trials + 2) * p.gap
    x, r = np.zeros((steps, 1, 8)), np.zeros((steps, 1, 1))
    onsets = np.arange(2 * p.trials + 2) * p.gap + 1
    for i, t in enumerate(onsets[:-2]):
        rewarded = i % 2 == 0
        x[t, 0, A if rewarded else B] = 1
        if rewarded:
            r[t + p.reward_delay, 0, 0] = p.reward_size
    x[onsets[-2], 0, A[:2]] = 1
    x[onsets[-1], 0, B[:2]] = 1
    return {"x": x, "reward": r}, onsets


def experiment(p: Protocol = Protocol()) -> tuple[Graph, dict[str, np.ndarray], np.ndarray]:
    x, onsets = inputs(p)
    return build_graph(p.w0), x, onsets


def summary(w: np.ndarray, spikes: np.ndarray, onsets: np.ndarray) -> dict[str, object]:
    """Mean learned weight per pattern, how many training volleys of each made P fire, and
    whether the test halves of A and B did."""
    fired = [bool(np.asarray(spikes)[t:t + 3].any()) for t in onsets]
    train = fired[:-2]
    return {"w_A": float(w[..., A].mean()), "w_B": float(w[..., B].mean()),
            "fired_A": int(sum(train[0::2])), "fired_B": int(sum(train[1::2])),
            "half_A_fires": fired[-2], "half_B_fires": fired[-1]}


def float_reference(graph: Graph, x: dict[str, np.ndarray], spikes: np.ndarray) -> np.ndarray:
    """``W``'s weights under the float reference of its rule (the emulator's plastic kernel with
    ``float_rule``: exact decays, no 127 cap, no fixed-point product shift), driven by the inputs
    and the post spikes ``spikes`` (steps, 1, 1) of a run."""
    from neurocc.backends.emulator.plastic import QPlastic

    k = QPlastic("W", graph.nodes["W"], (8,), (1,), True, float_rule=True)
    k.reset(1)
    for t in range(len(x["x"])):
        k.step(x["x"][t])
        k.learn(np.asarray(spikes[t]), x["reward"][t])
    return k.W[0]


def main() -> None:  # pragma: no cover - a demo printout
    import neurocc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="emulator", help="comma list of emulator, loihi")
    ap.add_argument("--out", default="build/reward-stdp")
    args = ap.parse_args()
    graph, x, onsets = experiment()
    neurocc.compile(graph, "loihi2", args.out)
    first = None
    for b in args.backends.split(","):
        res = neurocc.run(args.out, backend=b, inputs=x)
        w, s = np.asarray(res["W/w"][0]), np.asarray(res["out"])
        print(b, summary(w, s, onsets), "weights", w.ravel().tolist())
        if first is None:
            ref = float_reference(graph, x, s)
            print(f"  float reference on {b}'s spikes: weights", np.round(ref, 2).ravel().tolist())
        if first is not None:
            print(f"  vs {args.backends.split(',')[0]}: spikes equal {np.array_equal(s, first[1])}, "
                  f"weights equal {np.array_equal(w, first[0])}")
        first = first or (w, s)


if __name__ == "__main__":  # pragma: no cover
    main()
