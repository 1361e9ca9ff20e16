"""Learning rules as data: Loihi's sum-of-products form, parsed, checked and named presets.

A rule changes a plastic synapse's weight once per learning epoch (``t_epoch`` steps) by

    dw = Σ_k  m_k · 2**e_k · D_k · Π_j (V_kj + c_kj)

where each term ``k`` has a scale ``m_k · 2**e_k`` (``m`` −8..7, ``e`` −7..8: Loihi's 4-bit
mantissa and exponent), a *dependency* ``D_k`` ∈ {``x0``, ``y0``, ``u<k>``} (1 if the pre- resp.
post-synaptic neuron spiked in the epoch, else 0; ``u<k>``: 1 at every ``2**k``-th epoch end,
whatever spiked) and factors ``V`` drawn from ``x0``, ``y0``
(spike flags), ``x1``, ``x2`` (pre-synaptic traces), ``y1``, ``y2``, ``y3`` (post-synaptic
traces), ``w`` (the weight itself), ``t`` (the synapse's tag, the eligibility trace of
three-factor rules) with an optional integer constant ``c``, or a constant alone.
Traces are sampled at the dependency's spike time (``x1`` in an ``y0`` term: the pre trace when
the post neuron spiked; in a ``u`` term: at the epoch's end). The same form, as a second rule
``dt``, updates the tag ``t`` (Lava's ``Loihi3FLearningRule(dt=...)``). This is the string Lava's ``Loihi2FLearningRule(dw=...)`` takes, e.g.
``"2^-2 * x1 * y0 - 2^-2 * y1 * x0"`` (pair STDP); :func:`parse_rule` reads it into
:class:`Term` s exactly as Lava's ``ProductSeries`` does (same mantissa/exponent folding).

Traces: each of ``x1, x2, y1, y2, y3`` has an integer ``impulse`` (0..127, added on a spike)
and a decay time constant ``tau`` in steps (0: the trace lives only in its spike's step).
The arithmetic (fixed point and float) is :mod:`neurocc.ir.numerics.learning`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

TRACES = ("x1", "x2", "y1", "y2", "y3")
DEPENDENCIES = ("x0", "y0")   # spike dependencies; u0..u9 (epoch-decimated, no spike needed) as well
VARIABLES = ("x0", "y0", "x1", "x2", "y1", "y2", "y3", "w", "t")
U_DEPENDENCY = re.compile(r"u\d")
SIGN_MODES = ("excitatory", "inhibitory", "mixed")
WEIGHT_RANGE = {"excitatory": (0, 255), "inhibitory": (-255, 0), "mixed": (-256, 255)}  # 8-bit, Lava's clip
MAX_FACTORS = 3   # keeps every product inside 32 bits (7+7+9 bits + the 4-bit mantissa)


@dataclass(frozen=True)
class Term:
    """One product of the sum: ``mantissa · 2**exponent · dependency · Π (var + const)``;
    ``factors`` holds ``(var, const)`` pairs (``var`` ``"C"``: the constant alone)."""

    mantissa: int
    exponent: int
    dependency: str
    factors: tuple[tuple[str, int], ...]

    def text(self) -> str:
        parts = [f"{self.mantissa} * 2^{self.exponent}", self.dependency]
        for var, c in self.factors:
            if var == "C":
                parts.append(f"({c})")
            elif c:
                parts.append(f"({var} {'+' if c > 0 else '-'} {abs(c)})")
            else:
                parts.append(var)
        return " * ".join(parts)


_TOKEN = re.compile(r"\s*(?:(?P<pow>2\s*\^\s*\(?\s*(?P<exp>[+-]?\d+)\s*\)?)|(?P<int>\d+)|"
                    r"(?P<br>\(\s*(?P<bv>[a-z]\d|w|t)\s*(?P<bs>[+-])\s*(?P<bc>\d+)\s*\))|(?P<var>[a-z]\d|w|t)|"
                    r"(?P<op>[*+-]))")


def _tokens(text: str) -> list[tuple[str, str | tuple]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read the learning rule at {text[pos:pos + 12]!r} (terms are products of "
                             "integers, 2^e, x0, y0, u0..u9, x1, x2, y1, y2, y3, w, t and (var ± c), joined by + and -)")
        pos = m.end()
        if m["pow"]:
            out.append(("pow", int(m["exp"])))
        elif m["int"]:
            out.append(("int", int(m["int"])))
        elif m["br"]:
            c = int(m["bc"]) * (-1 if m["bs"] == "-" else 1)
            out.append(("var", (m["bv"], c)))
        elif m["var"]:
            out.append(("var", (m["var"], 0)))
        else:
            out.append(("op", m["op"]))
    return out


def _term(sign: int, items: list) -> Term:
    mant, exp, dep, factors = sign, 0, None, []
    for kind, val in items:
        if kind == "int":
            mant *= val
        elif kind == "pow":
            exp += val
        else:
            var, c = val
            if var not in VARIABLES and not U_DEPENDENCY.fullmatch(var):
                raise ValueError(f"unknown variable {var!r} (use {', '.join(VARIABLES)})")
            if U_DEPENDENCY.fullmatch(var) and (dep is not None or c):
                raise ValueError(f"{var} is a dependency only (one per term, without a constant)")
            if dep is None and (var in DEPENDENCIES or U_DEPENDENCY.fullmatch(var)) and c == 0:
                dep = var
            else:
                factors.append((var, c))
    while abs(mant) > 7 and mant % 2 == 0 and exp < 8:   # Lava's folding of the scale
        mant, exp = mant // 2, exp + 1
    if dep is None:
        raise ValueError("every term needs a dependency x0, y0 (Loihi evaluates a term only when that "
                         "neuron spiked in the epoch) or u0..u9 (every 2^k-th epoch)")
    if not -8 <= mant <= 7 or not -7 <= exp <= 8:
        raise ValueError(f"scale {mant}·2^{exp} is not a 4-bit mantissa (−8..7) times 2^e with e in −7..8")
    if len(factors) > MAX_FACTORS:
        raise ValueError(f"a term has {len(factors)} factors besides its dependency; at most {MAX_FACTORS}")
    return Term(mant, exp, dep, tuple(factors))


def parse_rule(text: str) -> tuple[Term, ...]:
    """The terms of a ``dw`` string (ValueError naming what is wrong)."""
    toks = _tokens(text)
    terms, sign, items = [], 1, []
    expect_factor = True
    for kind, val in toks:
        if kind == "op" and val in "+-" and expect_factor and not items:
            sign = -sign if val == "-" else sign
            continue
        if kind == "op" and val in "+-":
            terms.append(_term(sign, items))
            sign, items, expect_factor = (-1 if val == "-" else 1), [], True
        elif kind == "op":
            expect_factor = True
        else:
            if not expect_factor:
                raise ValueError("factors must be joined by '*'")
            items.append((kind, val))
            expect_factor = False
    if not items or expect_factor:
        raise ValueError("the learning rule is empty or ends with an operator")
    terms.append(_term(sign, items))
    return tuple(terms)


def rule_text(terms: tuple[Term, ...]) -> str:
    """The canonical ``dw`` string of ``terms`` (what the Lava lowering passes to Lava)."""
    out = ""
    for t in terms:
        s = t.text()
        out += (s if not out else (" - " + s[1:] if s.startswith("-") else " + " + s))
    return out


def used_traces(terms: tuple[Term, ...]) -> set[str]:
    return {v for t in terms for v, _ in t.factors if v in TRACES}


def decimation(*rules: tuple[Term, ...]) -> int | None:
    """The ``k`` of the ``u<k>`` dependencies of ``rules`` (None without any); ValueError when
    they mix several ``k`` (Lava's ``_validate_uk``: one decimation per synapse)."""
    ks = {int(t.dependency[1:]) for terms in rules for t in terms if U_DEPENDENCY.fullmatch(t.dependency)}
    if len(ks) > 1:
        raise ValueError(f"the rules mix u dependencies u{', u'.join(map(str, sorted(ks)))}; use one u<k>")
    return ks.pop() if ks else None


# ----- presets --------------------------------------------------------------------------------
def _scale(rate: float) -> str:
    """``rate`` as Loihi's ``m * 2^e`` (exact powers of two times a small mantissa only)."""
    import math

    if rate == 0:
        raise ValueError("a learning rate must be non-zero")
    for e in range(8, -8, -1):
        m = rate / 2.0 ** e
        if float(m).is_integer() and -8 <= m <= 7:
            return f"{int(m)} * 2^{e}"
    raise ValueError(f"learning rate {rate} is not m·2^e with m in −8..7 and e in −7..8 "
                     f"(nearest power of two: 2^{round(math.log2(abs(rate)))})")


def stdp_pair(a_plus: float = 2 ** -2, a_minus: float = 2 ** -2, tau_plus: int = 8, tau_minus: int = 8,
              impulse: int = 32) -> dict:
    """Pair-based STDP: on a post spike add ``a_plus · x1`` (pre trace), on a pre spike subtract
    ``a_minus · y1`` (post trace). Returns the plastic-synapse fields (``dw``, ``impulses``, ``taus``)."""
    return {"dw": f"{_scale(a_plus)} * y0 * x1 - {_scale(a_minus)} * x0 * y1",
            "impulses": (impulse, 0, impulse, 0, 0), "taus": (tau_plus, 0, tau_minus, 0, 0)}


def hebbian(rate: float = 2 ** -2, tau: int = 8, impulse: int = 32, anti: bool = False) -> dict:
    """(Anti-)Hebbian: on every post spike add (subtract) ``rate · x1`` (pre trace): co-active
    pairs strengthen (weaken); no depression without a post spike."""
    return {"dw": f"{'-' if anti else ''}{_scale(rate)} * y0 * x1",
            "impulses": (impulse, 0, 0, 0, 0), "taus": (tau, 0, 0, 0, 0)}


def stdp_decay(a_plus: float = 2 ** -2, a_minus: float = 2 ** -2, decay: float = 2 ** -7, tau: int = 8,
               impulse: int = 32) -> dict:
    """Pair STDP plus weight decay on every post spike (``−decay · w``): forgetting by overwrite."""
    d = stdp_pair(a_plus, a_minus, tau, tau, impulse)
    d["dw"] += f" - {_scale(decay)} * y0 * w"
    return d


def reward_stdp(a_plus: float = 2 ** -1, a_minus: float = 2 ** -2, tag_decay: float = 2 ** -2,
                rate: float = 2 ** -2, tau_plus: int = 4, tau_minus: int = 4, impulse: int = 32,
                reward_tau: int = 4, reward: str = "reward") -> dict:
    """Reward-modulated (three-factor) STDP, R-STDP with an eligibility tag (Frémaux & Gerstner
    2016; the form of Lava's ``RewardModulatedSTDP``). Per epoch:

        dt = a+ · y0 · x1 − a− · x0 · y1 − tag_decay · u0 · t      (the tag: pair STDP, leaking)
        dw = rate · u0 · t · y2                                    (the tag, gated by the reward)

    ``y2`` is the reward trace: the graph node ``reward`` (an Input, one value 0..127 per post
    neuron and step) is added to it every step and it decays with ``reward_tau``; ``y1`` is the
    post trace (impulse, ``tau_minus``), ``x1`` the pre trace (impulse, ``tau_plus``). All post
    traces of a three-factor synapse are kept by its post-synaptic neuron
    (:func:`neurocc.ir.numerics.learning.neuron_traces`). In fixed point the product ``t · y2``
    (9 + 7 bits and the 4-bit mantissa) is shifted right by 5 before scaling, so there
    ``dw = rate · t · y2 / 32`` (the float reference, like Lava's float model, has no shift)."""
    return {"dw": f"{_scale(rate)} * u0 * t * y2",
            "dt": f"{_scale(a_plus)} * y0 * x1 - {_scale(a_minus)} * x0 * y1 - {_scale(tag_decay)} * u0 * t",
            "impulses": (impulse, 0, impulse, 0, 0), "taus": (tau_plus, 0, tau_minus, reward_tau, 0),
            "reward": reward}


PRESETS = {"stdp": stdp_pair, "hebbian": hebbian, "anti_hebbian": lambda **k: hebbian(anti=True, **k),
           "stdp_decay": stdp_decay, "reward_stdp": reward_stdp}
