"""The int8 neuron recurrence of the window graph in float64 holding integers (no int64 Div/Mod).

The window graph's ``Scan`` over a feed-forward QLIF/QLI is the hot loop of an integer model.
The step graph (and every recurrent block) keeps the int64 sequences of :mod:`.neurons`; this
module gives the window graph an equal, cheaper encoding of the **same** numerics functions,
with state ``u``, ``v`` (and ``ref``) as float64 tensors that hold integers. Exactness rests on
facts proven here and tested in ``tests/test_edge_cpu_fastint.py``:

* every value is an integer of magnitude < 2**53 (float64 represents it exactly, and ``+``,
  ``−`` of two such integers with an integer result < 2**53 are exact);
* ``core.decay(x, f) = trunc0(x·f / 2**12)`` for integers |x| < 2**31 − 2**24 (u, v: 24 bits;
  v − vth after a subtract reset: the threshold is kept below 2**30) and 0 <= f <= 4096: the
  constant ``f·2**−12`` is exact (13-bit integer times a power of two) and the real product
  ``x·f·2**−12`` has at most 44 significant bits, so one float64 ``Mul`` is exact; ``Cast``
  float64 → int32 truncates toward zero (ONNX Runtime's ``static_cast``; the ONNX spec leaves
  it open, so a test pins it: negative values, exact multiples, ±0.5, ±(2**31 − 0.5)) and
  ``Cast`` back is exact;
* ``wrap(y, 24)`` for |y| < 2**52: ``y − 2**24·Floor((y + 2**23)·2**−24)`` (every step exact);
* static bounds (:func:`input_bound`) drop wraps that provably never fire: |a| <= A for the
  neuron input and ``64·A·4096 < 2**23·(4096 − max fu)`` give |u| < 2**23 at every step, since
  |trunc0(u·fu/4096)| <= |u|·fu/4096 (the geometric series of a contraction).

Per step (int8 profile; ``Profile.neuron_input``, ``lif_current``, ``lif_voltage``)::

    a6 = wrap(a·64, 24)                          (a = wrap(x, 32), int32 sequence → float64)
    u  = a6                          if every fu == 0 (du = 4095: no current memory, no u state)
    u  = wrap(trunc0(u·fu/4096) + a6, 24)        otherwise (wrap dropped when bounded)
    v  = clip(trunc0(v·fv/4096) + u + bias, ±(2**23 − 1))
    z = v > vth<<6;  reset zero: v ← v·[v <= vth<<6];  subtract/refractory: ``neurons._int_spike``
    on float64 (exact on integers < 2**33)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocc.ir import numerics
from neurocc.ir.nodes import Node
from neurocc.ir.types import ResetMode

from .intops import I32_MAX, _abs_bound

if TYPE_CHECKING:
    from .builder import Builder
    from .lower import Ctx

F64 = np.dtype(np.float64)
U24 = numerics.U24_MAX          # 2**23


def factors(node: Node) -> tuple[np.ndarray, np.ndarray]:
    """(fu, fv) = (current_decay_factor(du), voltage_decay_factor(dv)) as int64 arrays."""
    return (np.asarray(numerics.current_decay_factor(node.du), np.int64),
            np.asarray(numerics.voltage_decay_factor(node.dv), np.int64))


def applies(ctx: "Ctx", node: Node) -> bool:
    """The float64 form covers int8 QLIF/QLI whose decay factors lie in [0, 4096] and whose
    threshold is below 2**30 (the node's documented ranges; anything else keeps the int64 form)."""
    if not ctx.integer or ctx.profile.name != "int8" or node.kind not in ("QLIF", "QLI"):
        return False
    if (getattr(node, "bias_u", None) is not None or getattr(node, "bias_start", 0)
            or getattr(node, "reset_interval", 0) or getattr(node, "multi_spike", False)):
        return False              # a bias on the current, a bias start, a periodic reset or spike counts: int64
    fu, fv = factors(node)
    if node.kind == "QLIF" and np.any(np.abs(ctx.profile.lif_threshold(node.vth)) > (1 << 30)):
        return False  # keeps |v − vth| well inside the int32 truncation of decay()
    return all(f.size == 0 or (f.min() >= 0 and f.max() <= numerics.DECAY_ONE) for f in (fu, fv))


def needs_u(node: Node) -> bool:
    """u is carried across steps unless every fu is 0 (then u_t depends on a_t only)."""
    return bool(np.any(factors(node)[0]))


def state_spec(ctx: "Ctx", name: str, node: Node) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    shape = ctx.shapes[name]
    spec = {"u": (F64, shape)} if needs_u(node) else {}
    spec["v"] = (F64, shape)
    if getattr(node, "refractory", 0):
        spec["ref"] = (F64, shape)
    return spec


# --------------------------------------------------------------------------------------------
def output_bound(ctx: "Ctx", name: str, seen: frozenset[str] = frozenset()) -> int | None:
    """A bound on |output| of node ``name`` at every step, or None when none is known.

    Spikes: 1. Binary QDense/QConv2d: Σ|W'| per output (``_abs_bound``), through ``shift_sum``
    (left: · 2**k; right: (B >> k) + 1 covers both roundings); None when it could wrap int32.
    Flatten, Output, Delay: their input's bound; Add: the sum; a cycle: None."""
    node = ctx.graph.nodes[name]
    if name in seen:
        return None
    if node.kind == "QLIF":
        return None if getattr(node, "multi_spike", False) else 1   # spike counts: no static bound kept
    if node.kind in ("QDense", "QConv2d") and not node.graded:
        w = ctx.profile.dense_weights(node.weight, node.num_weight_bits) if node.kind == "QDense" else node.weight
        bnd, e = _abs_bound(np.asarray(w)), node.weight_exp
        bnd = bnd << e if e >= 0 else (bnd >> -e) + 1
        return bnd if bnd <= I32_MAX else None
    if node.kind in ("Flatten", "Output", "Add", "Delay"):
        return input_bound(ctx, name, seen | {name})
    return None


def input_bound(ctx: "Ctx", name: str, seen: frozenset[str] = frozenset()) -> int | None:
    """Bound on |summed input| of ``name`` (sum of its sources' bounds; None if any unknown)."""
    total = 0
    for e in ctx.graph.in_edges(name):
        b = output_bound(ctx, e.src, seen)
        if b is None:
            return None
        total += b
    return total if total <= I32_MAX else None


# --------------------------------------------------------------------------------------------
def _f(b: "Builder", v) -> str:
    return b.const(np.asarray(v, np.float64), "f64")


def trunc(b: "Builder", y: str, wide: bool = False) -> str:
    """trunc0(y) of a float64 tensor: Cast → int32 (truncates toward zero; needs |y| < 2**31,
    and packs to SIMD conversions) → float64; ``wide``: through int64 (|y| < 2**63)."""
    return b.cast(b.cast(y, np.int64 if wide else np.int32), np.float64)


def wrap24(b: "Builder", y: str) -> str:
    """``numerics.wrap(y, 24)`` on float64 integers |y| < 2**52: y − 2**24·Floor((y + 2**23)/2**24)."""
    k = b.op("Floor", [b.op("Mul", [b.op("Add", [y, _f(b, U24)]), _f(b, 2.0 ** -24)])], "k")
    return b.op("Sub", [y, b.op("Mul", [k, _f(b, float(2 * U24))])], "wrapped")


def decay(b: "Builder", x: str, f: np.ndarray) -> str | None:
    """``numerics.decay(x, f)`` = trunc0(x·f/4096) for |x| <= 2**23, 0 <= f <= 4096 (exact, see
    the module docstring); None stands for 0 (every f zero); x itself when every f is 4096."""
    if not f.any():
        return None
    if np.all(f == numerics.DECAY_ONE):
        return x
    return trunc(b, b.op("Mul", [x, _f(b, f / numerics.DECAY_ONE)], "decay"))


def pre(b: "Builder", ctx: "Ctx", name: str, x: str) -> str:
    """Window-level part: ``a = wrap(x, 32)`` (``Profile.neuron_input``) as an int32 sequence
    (the cast to float64 is done per step inside the Scan, where the tensor is cache-sized)."""
    from .intops import to_int32

    return to_int32(b, x, ctx.dtype_of_input(name))


def step(b: "Builder", ctx: "Ctx", name: str, node: Node, a: str,
         st: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One step from the int32 input ``a`` and float64 state: (spikes bool | v float64, new state)."""
    from .neurons import _int_spike, spike_pre

    p = ctx.profile
    new: dict[str, str] = {}
    u = _current(b, ctx, name, node, a, st, new)
    r, v_in = (None, st["v"]) if node.kind == "QLI" else spike_pre(b, node, p.lif_threshold(node.vth), st["v"], F64)
    dv_ = decay(b, v_in, factors(node)[1])                                            # Profile.lif_voltage
    s = b.op("Add", [dv_, u], "s") if dv_ is not None else u
    bias = p.lif_bias(node.bias_mant, node.bias_exp)
    if np.any(bias):
        s = b.op("Add", [s, _f(b, np.asarray(bias, np.float64))], "s")
    lim = numerics.V24_LIM
    v = b.op("Clip", [s, _f(b, -lim), _f(b, lim)], "v")
    if node.kind == "QLI":
        new["v"] = v
        return v, new
    if (node.reset is ResetMode.ZERO and not node.refractory and r is None and not node.fire_at_threshold
            and node.v_min is None):
        return _spike_reset_zero(b, p.lif_threshold(node.vth), v, new)
    return _int_spike(b, node, p.lif_threshold(node.vth), v, st, new, F64, r)


def _current(b: "Builder", ctx: "Ctx", name: str, node: Node, a: str, st: dict[str, str],
             new: dict[str, str]) -> str:
    """``Profile.lif_current``: u = wrap(trunc0(u·fu/4096) + wrap(a·64, 24), 24) (wrap(·, 24) is
    a residue mod 2**24, so pre-wrapping a·64 changes nothing); each wrap is left out when
    :func:`input_bound` proves it cannot fire (module docstring)."""
    fu, bound = factors(node)[0], input_bound(ctx, name)
    a6 = b.op("Mul", [b.cast(a, np.float64), _f(b, 1 << numerics.STATE_SHIFT)], "a6")   # exact: |a| < 2**31
    if bound is None or bound >= (1 << 17):                       # |a·64| may reach 2**23
        a6 = wrap24(b, a6)
    if not needs_u(node):                                         # decay(u, 0) = 0: u = a6
        return a6
    du_ = decay(b, st["u"], fu)
    u = b.op("Add", [du_, a6], "u") if du_ is not None else a6
    fmax, one = int(fu.max()), numerics.DECAY_ONE
    if bound is None or fmax >= one or (bound << numerics.STATE_SHIFT) * one >= U24 * (one - fmax):
        u = wrap24(b, u)
    new["u"] = u
    return u


def _spike_reset_zero(b: "Builder", vth: np.ndarray, v: str, new: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``z = v > vth``; ``v ← 0 where z`` as ``v · [v <= vth]`` (exact on integers: v·1 = v,
    v·0 = ±0, and −0 behaves as 0 in every later op). A Mul is cheaper than a Where in ORT."""
    keep = b.op("LessOrEqual", [v, _f(b, np.asarray(vth, np.float64))], "keep")
    new["v"] = b.op("Mul", [v, b.cast(keep, np.float64)], "v")
    return b.op("Not", [keep], "z"), new


def post(b: "Builder", node: Node, raw: str) -> str:
    """Spikes → uint8; a QLI's v → int32 (the emulator's dtypes)."""
    return b.cast(raw, np.uint8 if node.spiking else np.int32)
