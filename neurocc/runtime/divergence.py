"""The divergence localiser: where two recorded runs of one network first split, and why.

``localise(expected, got, graph, *, profile=None) -> Divergence | None`` takes two recorded runs
(``run_artifact(..., record=True)``: outputs keyed by Output name, traces ``"<node>/out"`` and
``"<node>/<var>"``, time-major ``(steps, batch, *shape)``) of two backends on the same inputs
and names the **first** element where they differ: the node, the step, the position
``index = (batch item, *position in the node's shape)`` (a tuple, step axis excluded), the
variable, both values, and a likely class with a one-sentence explanation.

Which difference is "first" (and why that names the cause, not a consequence). Order the
recorded values by (step, position of the node in :meth:`Graph.order`, variable in update order
``u``, ``v``, ``ref``, ``out``). At step t a node computes from (a) its own state after step
t − 1, (b) the step-t outputs of the nodes before it in ``graph.order()`` (zero-delay edges)
and (c) outputs of earlier steps (delayed edges). If every recorded value agrees at all earlier
steps and at step t in every earlier node and earlier variable, then all of the named node's
inputs and its previous state agree in both runs: the difference can only come from the node's
own update in one of the backends. A later difference may be a consequence of this one; this
one cannot be a consequence of a later one. (This holds for what both runs record: a node one
backend does not record, e.g. Lava's Dense, is skipped, and the first difference shows in the
first recorded node after it; the explanation then names the unrecorded predecessors.)

Classes (checked in this order at the first divergence):

* ``timing``: the node's recorded values from the first divergence on are the other run's
  values shifted by k steps (1 <= k <= :data:`MAX_SHIFT`): a delay or latency difference.
* ``overflow``: a value at its register's bound (``u``: 24-bit wrap, ``v``: saturates at
  ±(2^23 − 1), synapse sums: int32 (Loihi conv: 24-bit)), two values that differ by a multiple
  of the register's modulus 2^bits (one run wrapped), or one value equal to the other scaled by
  2^k wrapped to the register (a shift difference that overflowed).
* ``reset``: the membrane ``v`` of a spiking node right after a spike at that neuron (reset to
  ``v_reset`` versus by subtraction of the threshold).
* ``rounding``: integer values one LSB apart where the node's update contains a rounded product
  (a decay of a non-zero state, or a negative ``weight_exp`` shift): toward zero versus floor,
  or a decay factor one LSB off; float values within 1e-9 relative.
* ``scaling``: one value is the other times 2^k: an exponent or shift mismatch.
* ``arithmetic``: anything else (a parameter or an operation of the node differs); ``shape``:
  the runs' arrays do not have the same shape.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph

MAX_SHIFT = 8          # largest timing shift (steps) the timing class looks for
MAX_SCALE_EXP = 16     # largest |k| the scaling/overflow classes try for a 2^k factor
REGISTER_PROFILES = ("loihi", "int8")   # profiles whose registers the checks know (others: skipped)
CLASSES = ("timing", "overflow", "reset", "rounding", "scaling", "arithmetic", "shape")


@dataclass(frozen=True)
class Divergence:
    """The first element where two runs differ. ``index`` is a tuple ``(batch item, *position in
    the node's output/state shape)``, the step axis excluded (as validation.json's ``index``)."""

    node: str
    step: int
    index: tuple[int, ...]
    var: str
    expected: Any
    got: Any
    cls: str
    explanation: str

    def contract(self) -> dict[str, Any]:
        """validation.json's ``first_divergence``: node, step, index (list), var, expected, got."""
        return {"node": self.node, "step": self.step, "index": list(self.index), "var": self.var,
                "expected": self.expected, "got": self.got}

    def to_dict(self) -> dict[str, Any]:
        return {**self.contract(), "class": self.cls, "explanation": self.explanation}

    def text(self) -> str:
        return (f"node '{self.node}' var {self.var} step {self.step} index {list(self.index)}: expected "
                f"{self.expected}, got {self.got} [{self.cls}] {self.explanation}")


@dataclass(frozen=True)
class _Site:
    """Where the first difference is, plus the two arrays it was found in."""

    node: str
    var: str
    step: int
    index: tuple[int, ...]
    e: np.ndarray
    g: np.ndarray


def localise(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], graph: Graph, *,
             profile: Any = None) -> Divergence | None:
    """The first divergence between two recorded runs (see the module docstring), or None when
    every array both runs hold is equal. ``profile``: a numerics Profile or its name (default:
    ``graph.numerics``). The register checks know the ``loihi`` and ``int8`` profiles; for float
    graphs and other profiles they are skipped and the other classes still apply."""
    site = _first_site(expected, got, graph)
    if site is None:
        return None
    prof = _resolve_profile(profile, graph)
    if site.e.shape[1:] != site.g.shape[1:] or site.step >= min(len(site.e), len(site.g)):
        return Divergence(site.node, site.step, site.index, site.var, f"shape {list(site.e.shape)}",
                          f"shape {list(site.g.shape)}", "shape", "the two runs' arrays have different shapes "
                          "(steps, batch or neurons): compare runs of the same inputs and steps")
    ev, gv = _scalar(site.e[(site.step, *site.index)]), _scalar(site.g[(site.step, *site.index)])
    cls, why = classify(site, expected, got, graph, prof)
    return Divergence(site.node, site.step, site.index, site.var, ev, gv, cls,
                      why + _unrecorded_note(site.node, expected, got, graph))


# ----- finding the first difference ---------------------------------------------------------------
def _split_key(key: str, graph: Graph) -> tuple[str, str]:
    if key in graph.nodes or "/" not in key:
        return key, "out"
    node, _, var = key.rpartition("/")
    return node, var


def _var_rank(graph: Graph, node: str, var: str) -> int:
    n = graph.nodes.get(node)
    order = [*(n.state_vars if n is not None else ()), "ref", "out"]
    return order.index(var) if var in order else len(order)


def _first_step(e: np.ndarray, g: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(step, index) of the first difference in step-major C order, or None."""
    if e.shape[1:] != g.shape[1:]:
        return 0, ()
    T = min(len(e), len(g))
    diff = e[:T] != g[:T]
    rows = diff.reshape(T, -1).any(axis=1) if T else np.zeros(0, bool)
    if not rows.any():
        return (T, ()) if len(e) != len(g) else None
    t = int(np.argmax(rows))
    return t, tuple(int(i) for i in np.argwhere(diff[t])[0])


def _first_site(expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], graph: Graph) -> _Site | None:
    rank = {n: i for i, n in enumerate(graph.order())}
    seen: set[tuple[str, str]] = set()
    best: tuple[tuple[int, int, int, str], _Site] | None = None
    for key in sorted(set(expected) & set(got)):
        node, var = _split_key(key, graph)
        if (node, var) in seen:
            continue
        seen.add((node, var))
        e, g = np.asarray(expected[key]), np.asarray(got[key])
        hit = _first_step(e, g)
        if hit is None:
            continue
        order_key = (hit[0], rank.get(node, len(rank)), _var_rank(graph, node, var), key)
        if best is None or order_key < best[0]:
            best = (order_key, _Site(node, var, hit[0], hit[1], e, g))
    return None if best is None else best[1]


# ----- classification --------------------------------------------------------------------------
def classify(site: _Site, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray], graph: Graph,
             profile: Any) -> tuple[str, str]:
    """(class, explanation) of the divergence at ``site`` (rules in the module docstring)."""
    t, pos = site.step, (site.step, *site.index)
    e, g = site.e[pos], site.g[pos]
    shift = _timing_shift(site)
    if shift:
        who = "got runs late" if shift > 0 else "got runs early"
        return "timing", (f"from step {t} on, '{site.node}/{site.var}' in got equals expected shifted by "
                          f"{abs(shift)} step(s) ({who}): a delay or latency difference on an edge into "
                          f"'{site.node}' or in its synapse model")
    node = graph.nodes.get(site.node)
    reg = register(node, site.var, profile)
    if reg is not None and np.issubdtype(np.asarray(e).dtype, np.number):
        why = _overflow(int(e), int(g), reg) if _is_int(e) and _is_int(g) else None
        if why:
            return "overflow", why
    spiked = _spiked(site, expected, got)
    if node is not None and node.spiking and site.var == "v" and spiked:
        return "reset", _reset_text(site, node, profile, spiked)
    rnd = _rounding(site, node, e, g, _dense_sum(site, node, expected, graph, profile))
    if rnd:
        return "rounding", rnd
    k = _pow2_ratio(e, g)
    if k:
        return "scaling", (f"got = expected × 2^{k}: an exponent or shift difference (weight_exp, bias_exp, "
                           f"the state alignment <<6) in '{site.node}'")
    k = _bias_ratio(site, node, profile, e, g)
    if k:
        return "scaling", (f"the difference {_num(g) - _num(e)} is the bias of '{site.node}' times 2^{k} − 1: "
                           f"one run's bias term is 2^{k} times the other's (bias_exp)")
    return "arithmetic", (f"'{site.node}/{site.var}' differs by {_num(g) - _num(e)} although its inputs and "
                          f"previous state agree: a parameter or an operation of this {_kind(node)} node differs")


def _timing_shift(site: _Site) -> int | None:
    """k > 0 when got[s] == expected[s − k] from the divergence on (got late), k < 0 when early."""
    e, g, t = site.e, site.g, site.step
    T = min(len(e), len(g))
    for k in range(1, MAX_SHIFT + 1):
        for sign, (late, early) in ((1, (g, e)), (-1, (e, g))):
            s0 = max(t, k)
            if T - s0 < 2:
                continue
            a, b = late[s0:T], early[s0 - k:T - k]
            if np.array_equal(a, b) and not np.array_equal(a, early[s0:T]) and np.any(b != b.flat[0]):
                return sign * k
    return None


@dataclass(frozen=True)
class Register:
    """The integer register a recorded value lives in: [lo, hi], ``bits`` wide, wrap or saturate."""

    name: str
    bits: int
    lo: int
    hi: int
    overflow: str


def register(node: Any, var: str, profile: Any) -> Register | None:
    """The register of ``var`` of ``node`` under ``profile`` (None for float graphs and
    pass-through nodes). Loihi's ``u`` keeps +2^23 and wraps −2^23 (Lava's off-by-one)."""
    if profile is None or node is None:
        return None
    from neurocc.ir.numerics import U24_MAX, V24_LIM

    kind = node.kind
    if kind in ("QLIF", "QLI") and var == "u":
        lo, hi = (-U24_MAX + 1, U24_MAX) if profile.name == "loihi" else (-U24_MAX, U24_MAX - 1)
        return Register("24-bit current u (wraps)", 24, lo, hi, "wrap")
    if kind in ("QLIF", "QLI") and var == "v":
        return Register("24-bit voltage v (saturates)", 24, -V24_LIM, V24_LIM, "saturate")
    if kind in ("QDense", "QConv2d", "QSumPool2d") and var == "out":
        bits = 24 if (kind == "QConv2d" and profile.name == "loihi") else 32
        return Register(f"int{bits} synapse sum", bits, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, "wrap")
    return None


def _overflow(e: int, g: int, reg: Register) -> str | None:
    for name, val in (("expected", e), ("got", g)):
        if val in (reg.lo, reg.hi):
            return f"{name} = {val} sits at the bound of the {reg.name} [{reg.lo}, {reg.hi}]: one run wrapped or " \
                   "saturated where the other did not"
    mod = 1 << reg.bits
    if (e - g) % mod == 0:
        return f"the values differ by {(g - e) // mod} × 2^{reg.bits}: one run wrapped the {reg.name}, the other did not"
    for k in range(1, MAX_SCALE_EXP + 1):
        for name, a, b in (("got", e, g), ("expected", g, e)):
            scaled = a << k
            if not reg.lo <= scaled <= reg.hi and (b - scaled) % mod == 0:
                return (f"{name} = the other × 2^{k} ({scaled}) wrapped to the {reg.name}: a shift/exponent "
                        f"difference pushed the value past the register bound")
    return None


def _spiked(site: _Site, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> str:
    """Which runs spiked at this neuron and step ('' when neither or unknown)."""
    who = []
    for name, run in (("expected", expected), ("got", got)):
        z = run.get(f"{site.node}/out")
        if z is not None and len(z) > site.step and z[(site.step, *site.index)]:
            who.append(name)
    return " and ".join(who)


def _reset_text(site: _Site, node: Any, profile: Any, spiked: str) -> str:
    e, g = _num(site.e[(site.step, *site.index)]), _num(site.g[(site.step, *site.index)])
    th = _threshold(node, profile, site.index[1:])
    modes = {"expected": _reset_mode(e, th), "got": _reset_mode(g, th)}
    return (f"'{site.node}' spiked at step {site.step} ({spiked}); after the spike expected v = {e} "
            f"({modes['expected']}), got v = {g} ({modes['got']}): the runs reset the membrane differently "
            "(to v_reset versus v − threshold)")


def _threshold(node: Any, profile: Any, pos: tuple[int, ...]) -> float | None:
    try:
        if getattr(node, "vth", None) is not None and profile is not None:
            th = np.broadcast_to(profile.lif_threshold(node.vth), node.vth.shape)
        else:
            th = np.asarray(node.v_threshold, np.float64)
        return float(th[pos] if th.ndim else th)
    except (AttributeError, IndexError, ValueError):
        return None


def _reset_mode(v: float, th: float | None) -> str:
    if v == 0:
        return "reset to zero"
    if th is not None and 0 < v <= th:
        return "consistent with v − threshold"
    return "neither zero nor below the threshold"


def _dense_sum(site: _Site, node: Any, run: Mapping[str, np.ndarray], graph: Graph, profile: Any) -> int | None:
    """QDense only: the exact sum ``acc = W' · s`` of output ``index`` at the divergence step,
    recomputed from the recorded inputs of ``run`` (None when they are not recorded)."""
    if profile is None or getattr(node, "kind", None) != "QDense" or site.var != "out":
        return None
    s = None
    for edge in graph.in_edges(site.node):
        src = run.get(f"{edge.src}/out")
        if src is None:
            return None
        t = site.step - edge.delay
        part = np.asarray(src[t, site.index[0]], np.int64).ravel() if t >= 0 else 0
        s = part if s is None else s + part
    if s is None:
        return None
    w = profile.dense_weights(node.weight, node.num_weight_bits)[site.index[1]]
    x = np.asarray(s, np.int64) if node.graded else (np.asarray(s) != 0).astype(np.int64)
    return int(np.dot(w, x))


def _rounding(site: _Site, node: Any, e: Any, g: Any, acc: int | None = None) -> str | None:
    if not (_is_int(e) and _is_int(g)):
        a, b = float(e), float(g)
        if np.isfinite(a) and np.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300):
            return f"float values {a!r} and {b!r} differ in the last bits: a rounding or summation-order difference"
        return None
    if abs(int(e) - int(g)) != 1:
        return None
    prev = site.e[(site.step - 1, *site.index)] if site.step > 0 else 0
    if site.var in ("u", "v") and node is not None and node.kind in ("QLIF", "QLI") and int(prev) != 0:
        sign = " (negative: floor and toward-zero rounding differ here)" if int(prev) < 0 else ""
        return (f"one LSB apart in the decay of {site.var} (previous {site.var} = {int(prev)}{sign}): the decay "
                f"product {site.var}·factor/2^12 is rounded differently or its factor (du/dv) is one LSB off")
    k = -int(getattr(node, "weight_exp", 0) or 0)
    if site.var != "out" or k <= 0:
        return None
    if acc is None:
        return (f"one LSB apart after the right shift by weight_exp = {-k} (likely floor versus toward-zero "
                "rounding of the synapse sum; its inputs are not recorded, so this is not checked)")
    ways = {int(np.floor(acc / 2 ** k)), int(np.trunc(acc / 2 ** k))}
    if {int(e), int(g)} == ways:
        return (f"the synapse sum {acc} shifted right by {k} is {min(ways)} rounded down (floor) and {max(ways)} "
                "rounded toward zero: the runs round the weight_exp shift differently")
    return None


def _pow2_ratio(e: Any, g: Any) -> int | None:
    """k != 0 with g == e · 2^k (k > 0) or e == g · 2^-k (k < 0), else None."""
    if not (_is_int(e) and _is_int(g)) or int(e) == 0 or int(g) == 0:
        return None
    a, b = int(e), int(g)
    for k in range(1, MAX_SCALE_EXP + 1):
        if b == a << k:
            return k
        if a == b << k:
            return -k
    return None


def _bias_ratio(site: _Site, node: Any, profile: Any, e: Any, g: Any) -> int | None:
    """k with (bias + g − e) == bias · 2^k for the neuron's effective bias (v only), else None."""
    if site.var != "v" or profile is None or getattr(node, "bias_mant", None) is None or not _is_int(e):
        return None
    bias = np.broadcast_to(profile.lif_bias(node.bias_mant, node.bias_exp), node.bias_mant.shape)
    b = int(bias[site.index[1:]]) if bias.ndim else int(bias)
    return _pow2_ratio(b, b + int(g) - int(e)) if b else None


def _unrecorded_note(node: str, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                     graph: Graph) -> str:
    keys = set(expected) & set(got)
    missing = [p for p in graph.predecessors(node) if f"{p}/out" not in keys and p not in keys]
    if not missing:
        return ""
    return (f" (not recorded by both runs: {', '.join(repr(p) for p in missing)}, feeding '{node}': the "
            "divergence may start there)")


# ----- helpers ----------------------------------------------------------------------------------
def _resolve_profile(profile: Any, graph: Graph) -> Any:
    if profile is not None and not isinstance(profile, str):
        return profile if getattr(profile, "name", None) in REGISTER_PROFILES else None
    name = profile if isinstance(profile, str) else graph.numerics
    if name not in REGISTER_PROFILES:
        return None
    from neurocc.ir.numerics import get_profile

    return get_profile(name)


def _is_int(x: Any) -> bool:
    v = np.asarray(x)
    return v.dtype.kind in "biu" or (v.dtype.kind == "f" and bool(np.isfinite(v)) and float(v).is_integer())


def _num(x: Any) -> int | float:
    return int(x) if _is_int(x) else float(x)


def _scalar(x: Any) -> Any:
    v = np.asarray(x).item()
    if isinstance(v, bool):
        return int(v)
    return v if not isinstance(v, float) or np.isfinite(v) else str(v)


def _kind(node: Any) -> str:
    return getattr(node, "kind", "unknown")


__all__ = ["CLASSES", "MAX_SHIFT", "Divergence", "Register", "classify", "localise", "register"]
