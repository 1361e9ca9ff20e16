"""THE learning arithmetic: Lava 0.10's ``LearningDense`` (``PyLearningDenseModelBitApproximate``)
in fixed point, and the float reference of the same rule (``integer=False``).

One plastic synapse matrix ``W`` (post × pre, int) per batch element, per step ``t`` (1-based):

1. spikes: a pre (post) neuron spiking records ``tx`` (``ty``) = its step within the epoch
   (``t mod t_epoch``, t_epoch for 0); a second spike in one epoch adds the impulse at once
   (``trace ← min(trace + impulse, 127)``). Fixed point: the trace random stream advances twice
   per step (Lava's ``recv_traces``).
2. learning, when ``t mod t_epoch == 0``: the synapse random advances; ``x0 = tx > 0``,
   ``y0 = ty > 0``; the trace history over the epoch is built from the traces at its start:
   ``h[k] = decay(h[k-1])`` (0 where ``tau == 0``), plus the impulse where ``k`` is the spike
   step; traces become ``h[t_epoch]``; every term is evaluated with traces sampled at the
   dependency's spike step; then the weights update; ``tx, ty ← 0``.

Fixed point (bit widths from Lava's ``constants``: traces 7 bits unsigned, weights 8 bits plus
sign, accumulator 15 bits plus sign, scale mantissa 4 bits):

* decay: ``x ← floor(exp(−1/tau) · x) + (r_d < frac)`` (float64 product, one uniform ``r_d`` per
  trace pair and epoch from ``numpy.random.default_rng(seed)`` (x) / ``seed + 2`` (y));
* impulses are integers 0..127 (no fractional part, so no random rounding on impulses);
* a term: ``p = D · Π clip(f, −2**b, 2**b − 1)`` (b: 1 for x0/y0, 7 for traces, 9 for w, 8 for
  constants), ``p ← (p · m) >> max(0, Σb + 4 − 15) << (e + 7)``, clipped to ±(2**15 − 1) (the low
  end −2**15 − 1, as Lava); the accumulator ``A = (W << 7) + Σ p`` clipped the same way after each
  term; sign mode (excitatory: ``A ← max(A, 0)``, inhibitory: ``min``); stochastic rounding to
  the weight: ``W ← (A >> 7) + (r_w < (A mod 128) / 128)`` with ``r_w`` from
  ``default_rng(2)`` (Lava's fixed seed), then clip to the 8-bit sign-mode range.
* Float reference (``integer=False``): the same steps with ``decay(x) = exp(−1/tau) · x``,
  impulses added without the 127 cap, ``dw = Σ m · 2**e · D · Π f``, ``W ← clip(W + dw)``.
  (It does not apply the fixed-point product shift ``>> max(0, Σb + 4 − 15)``, as Lava's float
  model does not: a term of factors wider than 11 bits in all is smaller in fixed point by
  that power of two, e.g. ``t · y2`` by 2**5.)

Three-factor rules (Lava's ``Loihi3FLearningRule``; ``QPlasticDense.reward`` set):

* the tag ``T`` (``tag_1``, 8 bits + sign, from 0) learns by the rule ``dt`` exactly as the
  weight by ``dw`` (same accumulator, same shift by 7, the same synapse random ``r_w`` in the
  same epoch, no sign mode), then is clipped to −257..255 (Lava's bounds); both rules read the
  weights and tags of before the epoch. The float reference leaves the tag unbounded (Lava's).
* a ``u<k>`` dependency is 1 when ``(t / t_epoch) mod 2**k == 0``, traces in its terms are taken
  at the epoch's end;
* the post traces are kept by the post-synaptic neuron (:func:`neuron_traces`) and sent to the
  synapse every step; the synapse's own y traces are those values, decayed in its epoch history
  with ``tau`` = 65535 and impulse 0 (:data:`THREE_FACTOR_Y_TAU`, Lava's choice, so a sampled
  trace is, rarely, one less than the neuron's: stochastic rounding of ``y · e^(−1/65535)``).
"""
from __future__ import annotations

import numpy as np

from neurocc.ir.plasticity import TRACES, WEIGHT_RANGE, Term, decimation

W_TRACE = 7
W_ACC_U = 15
W_S_MANT = 4
ACC_SHIFT = 7            # W_ACCUMULATOR_S − W_WEIGHTS_S = 16 − 9
TRACE_MAX = 2 ** W_TRACE - 1
ACC_MAX = 2 ** W_ACC_U - 1
ACC_MIN = -(2 ** W_ACC_U) - 1
FACTOR_BITS = {"x0": 1, "y0": 1, "x1": W_TRACE, "x2": W_TRACE, "y1": W_TRACE, "y2": W_TRACE, "y3": W_TRACE,
               "w": 9, "t": 9, "C": 8}
CONN_SEED = 2            # Lava's ConnVarRandom default (LearningDense does not pass the rule's seed)
TAG_RANGE = (-(2 ** 8) - 1, 2 ** 8 - 1)   # Lava's tag_1 saturation (W_TAG_1_U = 8)
THREE_FACTOR_Y_TAU = 65535                # Loihi3FLearningRule: y taus uint16 max, y impulses 0
NEURON_DECAY_BITS = 12                    # the learning neuron's trace decay: 12-bit fraction


def initial_weights(weight: np.ndarray, sign_mode: str) -> np.ndarray:
    """Lava's ``truncate_weights`` at the first step (8 weight bits): mixed sign drops the LSB."""
    w = np.asarray(weight, np.int64)
    if sign_mode == "mixed":
        return (w >> 1) << 1
    return w.copy()


def decay_traces(x: np.ndarray, taus: np.ndarray, r: float, integer: bool) -> np.ndarray:
    """One step of decay for traces ``x`` (k, n) with time constants ``taus`` (k,)."""
    out = np.zeros_like(x)
    on = taus != 0
    if not on.any():
        return out
    v = np.exp(-1 / taus[on][:, None]) * x[on]
    if integer:
        frac = v % 1
        v = np.floor(v) + (r < frac)
    out[on] = v
    return out


def synapse_traces(impulses, taus, three_factor: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (impulses, taus) the synapse itself applies: as given, or for a three-factor synapse
    the x ones and, for y1..y3, impulse 0 and tau 65535 (the neuron keeps those traces)."""
    if not three_factor:
        return tuple(impulses), tuple(taus)
    return (*impulses[:2], 0, 0, 0), (*taus[:2], *(THREE_FACTOR_Y_TAU,) * 3)


def neuron_decay(tau: int) -> int:
    """The learning neuron's 12-bit trace multiplier ``round(4096 · e^(−1/tau))`` (0 for tau 0)."""
    return 0 if tau == 0 else round(2 ** NEURON_DECAY_BITS * float(np.exp(-1.0 / tau)))


def neuron_traces(y: np.ndarray, spiked: np.ndarray, reward: np.ndarray, impulses, taus, integer: bool
                  ) -> np.ndarray:
    """One step of a three-factor post-synaptic neuron's traces ``y`` (3, n) = ``y1, y2, y3``,
    after its spikes ``spiked`` (n,) and the third factor ``reward`` (n,) of the step:

        fixed point:  y_k ← min(127, ((y_k · D_k) >> 12) + I_k · s + [k = y2] · clip(r, 0, 127))
        float:        y_k ← e^(−1/τ_k) · y_k + I_k · s + [k = y2] · r

    with ``D_k`` = :func:`neuron_decay` of ``taus[2:]`` and ``I_k`` = ``impulses[2:]`` (7-bit
    traces, 12-bit multipliers, the product fits 19 bits)."""
    s = (np.asarray(spiked) != 0)[None, :]
    imp = np.asarray(impulses[2:], np.int64)[:, None]
    r = np.zeros_like(y)
    if integer:
        r[1] = np.clip(np.asarray(reward, np.int64), 0, TRACE_MAX)
        d = np.asarray([neuron_decay(t) for t in taus[2:]], np.int64)[:, None]
        return np.minimum(((y * d) >> NEURON_DECAY_BITS) + imp * s + r, TRACE_MAX)
    r[1] = np.asarray(reward, np.float64)
    d = np.asarray([0.0 if t == 0 else np.exp(-1.0 / t) for t in taus[2:]])[:, None]
    return d * y + imp * s + r


def add_impulse(x: np.ndarray, impulses: np.ndarray, integer: bool) -> np.ndarray:
    v = x + impulses
    return np.clip(v, 0, TRACE_MAX) if integer else v


class LearningState:
    """Traces, spike times and random streams of one plastic synapse for one batch element."""

    def __init__(self, n_post: int, n_pre: int, impulses, taus, t_epoch: int, seed: int, integer: bool) -> None:
        dt = np.int64 if integer else np.float64
        self.integer, self.t_epoch = integer, int(t_epoch)
        self.imp = np.asarray(impulses, dt)
        self.taus = np.asarray(taus, np.int64)
        self.x = np.zeros((2, n_pre), dt)
        self.y = np.zeros((3, n_post), dt)
        self.tx = np.zeros(n_pre, np.int64)
        self.ty = np.zeros(n_post, np.int64)
        self.t = 0
        self.r_x = self.r_y = self.r_c = 0.0     # float reference: no random rounding
        if integer:
            self.rx = np.random.default_rng(seed)
            self.ry = np.random.default_rng(seed + 2)
            self.rc = np.random.default_rng(CONN_SEED)
            self.r_x, self.r_y, self.r_c = self.rx.random(1)[0], self.ry.random(1)[0], self.rc.random(1)[0]

    def _advance_traces(self) -> None:
        if self.integer:
            self.r_x, self.r_y = self.rx.random(1)[0], self.ry.random(1)[0]

    def spikes(self, pre: np.ndarray, post: np.ndarray) -> bool:
        """Record step ``t``'s spikes; True when this step ends an epoch (learn now)."""
        self.t += 1
        within = self.t % self.t_epoch or self.t_epoch
        pre, post = np.asarray(pre) != 0, np.asarray(post) != 0
        again = (self.tx > 0) & pre
        self.x[:, again] = add_impulse(self.x[:, again], self.imp[:2, None], self.integer)
        self.tx[pre] = within
        self._advance_traces()
        again = (self.ty > 0) & post
        self.y[:, again] = add_impulse(self.y[:, again], self.imp[2:, None], self.integer)
        self.ty[post] = within
        self._advance_traces()
        return self.t % self.t_epoch == 0

    def _history(self, tr: np.ndarray, taus: np.ndarray, imp: np.ndarray, ts: np.ndarray, r: float) -> np.ndarray:
        h = np.zeros((self.t_epoch + 1, *tr.shape), tr.dtype)
        h[0] = tr
        for k in range(1, self.t_epoch + 1):
            h[k] = decay_traces(h[k - 1], taus, r, self.integer)
            ids = np.where(ts == k)[0]
            h[k][:, ids] = add_impulse(h[k][:, ids], imp[:, None], self.integer)
        return h

    def learn(self, W: np.ndarray, terms: tuple[Term, ...], sign_mode: str) -> np.ndarray:
        """End of an epoch: update the traces and return the new weights."""
        args = self._epoch_args(W, None, terms)
        W = apply_terms(W, terms, args, sign_mode, self.r_c if self.integer else None)
        self._end_epoch()
        return W

    def learn_tagged(self, W: np.ndarray, T: np.ndarray, terms: tuple[Term, ...], tag_terms: tuple[Term, ...],
                     sign_mode: str) -> tuple[np.ndarray, np.ndarray]:
        """End of an epoch of a rule with a tag: the new (weights, tags), both from the old ones."""
        args = self._epoch_args(W, T, terms + tag_terms)
        r = self.r_c if self.integer else None
        W2 = apply_terms(W, terms, args, sign_mode, r)
        T2 = apply_terms(T, tag_terms, args, sign_mode, r, tag=True) if tag_terms else T
        self._end_epoch()
        return W2, T2

    def set_post_traces(self, y: np.ndarray) -> None:
        """Three-factor: the post traces the neuron sent this step (after :meth:`spikes`)."""
        self.y = np.asarray(y, self.y.dtype).copy()

    def _end_epoch(self) -> None:
        self.tx[:] = 0
        self.ty[:] = 0

    def _epoch_args(self, W: np.ndarray, T: np.ndarray | None, terms: tuple[Term, ...]) -> dict:
        """Advance the synapse random, rebuild the epoch's trace history, set the traces to its
        end, and return the factor values per dependency (``<trace>_<dep>``)."""
        if self.integer:
            self.r_c = self.rc.random(1)[0]
        hx = self._history(self.x, self.taus[:2], self.imp[:2], self.tx, self.r_x)
        hy = self._history(self.y, self.taus[2:], self.imp[2:], self.ty, self.r_y)
        self.x, self.y = hx[-1].copy(), hy[-1].copy()
        args = {"x0": (self.tx > 0)[None, :].astype(np.int64), "y0": (self.ty > 0)[:, None].astype(np.int64),
                "w": W, "t": T}
        k = decimation(terms)
        if k is not None:
            args[f"u{k}"] = int((self.t // self.t_epoch) % 2 ** k == 0)
        for i, name in enumerate(TRACES):
            h, idx = (hx, i) if i < 2 else (hy, i - 2)
            at_x, at_y = h[self.tx, idx], h[self.ty, idx]      # (n_pre, n) and (n_post, n)
            if i < 2:
                args[f"{name}_x0"], args[f"{name}_y0"] = np.diagonal(at_x)[None, :], at_y
            else:
                args[f"{name}_x0"], args[f"{name}_y0"] = at_x.T, np.diagonal(at_y)[:, None]
            if k is not None:
                args[f"{name}_u{k}"] = h[-1, idx][None, :] if i < 2 else h[-1, idx][:, None]
        return args


def _factor(var: str, c: int, dep: str, args: dict) -> np.ndarray:
    if var == "C":
        return np.asarray(c)
    if var in TRACES:
        return args[f"{var}_{dep}"] + c
    return args[var] + c


def apply_terms(W: np.ndarray, terms: tuple[Term, ...], args: dict, sign_mode: str, r: float | None,
                tag: bool = False) -> np.ndarray:
    """The weight update of one epoch (fixed point when ``r`` is the synapse random, else float);
    ``tag``: the tag update instead (no sign mode, clipped to :data:`TAG_RANGE`, float unbounded)."""
    lo, hi = TAG_RANGE if tag else WEIGHT_RANGE[sign_mode]
    if r is None:
        dw = np.zeros(W.shape)
        for t in terms:
            p = t.mantissa * 2.0 ** t.exponent * np.broadcast_to(args[t.dependency], W.shape).astype(np.float64)
            for var, c in t.factors:
                p = p * _factor(var, c, t.dependency, args)
            dw += p
        return W + dw if tag else np.clip(W + dw, lo, hi)
    acc = np.asarray(W, np.int64) << ACC_SHIFT
    for t in terms:
        p = np.ones(W.shape, np.int64) * args[t.dependency]
        bits = W_S_MANT
        for var, c in t.factors:
            b = FACTOR_BITS[var]
            bits += b
            p = p * np.clip(_factor(var, c, t.dependency, args), -(2 ** b), 2 ** b - 1).astype(np.int64)
        p = ((p * t.mantissa) >> max(0, bits - W_ACC_U)) << (t.exponent + 7)
        acc = np.clip(acc + np.clip(p, ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
    if sign_mode == "excitatory" and not tag:
        acc = np.maximum(acc, 0)
    elif sign_mode == "inhibitory" and not tag:
        acc = np.minimum(acc, 0)
    rem = acc & ((1 << ACC_SHIFT) - 1)
    w = (acc >> ACC_SHIFT) + (r < rem / float(1 << ACC_SHIFT))
    return np.clip(w, lo, hi).astype(np.int64)
