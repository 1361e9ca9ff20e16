"""Stateful node kinds as one ONNX step: ``(x, state) → (output, new state)`` on ``(B, *shape)``.

Float (float32; coefficients from ``decay_factors``, the float reference's discretisation)::

    Cuba*:  u ← α_u·u + g_u·x;   in = u        (others: in = x)
    all:    v ← α_v·v + g_v·in + b_v
    spiking: z = v > θ;  v ← v_reset (zero) | v − θ (subtract);  output z (else v)
    multi_spike (Sinabs): z = Floor(v/θ) where v > θ (≥: fire_at_threshold), else 0; v ← v − z·θ | v_reset

Integer (QLIF, QLI; the profile's updates of :mod:`neurocc.ir.numerics.profiles`)::

    a = wrap(x, 32)                                               Profile.neuron_input
    u ← loihi: lava_wrap24(wrap(decay(u, 4096−(du+1)) + wrap(wrap(a·64, 32) + bias_u, 32), 32))
        int8:  wrap(decay(u, 4096−(du+1)) + a·64 + bias_u, 24)    Profile.lif_current
    v ← saturate([loihi: wrap(·, 32)] decay(v, 4096−dv) + u + bias, ±(2**23−1))   lif_voltage
    bias, bias_u are 0 while fewer than bias_start steps are done (state t: the step count)
    periodic reset (reset_interval; numerics.reset.periodic_due): u, v ← 0 before step t when
          t = o or t = o + P (state rt: t reduced to 1..o+P−1, so it never wraps)
    QLIF: z = v > vth<<6 (refractory: v held and no spike while ref > 0);
          v ← 0 | v − vth<<6;  ref ← refractory where z else max(ref − 1, 0)
          multi_spike: n = Where(z, Div(v, vth<<6), 0) (v > 0 there: Div's truncation is the floor);
          v ← v − n·(vth<<6) | 0;  output n (int32)
    ``decay(x, f) = Div(x·f, 4096)`` in int64 (ONNX Div truncates: numerics.decay's trunc_shift).

Delay (per-element steps ``k = rint(delay/dt)``): a shift register ``buffer`` of depth max(k)+1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocc.ir.discrete import delay_steps
from neurocc.ir import numerics
from neurocc.ir.nodes import Delay, Node
from neurocc.ir.numerics import reset as reset_rule
from neurocc.ir.types import ResetMode, ResetTiming

from .intops import i32, i64, to_int32, wrap_bits

if TYPE_CHECKING:
    from .builder import Builder
    from .lower import Ctx

StateSpec = dict[str, tuple[np.dtype, tuple[int, ...]]]


def state_spec(ctx: "Ctx", name: str, node: Node, shape: tuple[int, ...] | None = None) -> StateSpec:
    """Per state variable: (dtype, shape without batch)."""
    shape = ctx.shapes[name] if shape is None else shape
    if isinstance(node, Delay):
        return {"buffer": (ctx.dtype_of(name), (int(_delay_steps(ctx, node).max(initial=0)) + 1, *shape))}
    if node.kind == "QSigmaDelta":
        from .sigma_delta import sd_state_spec

        return sd_state_spec(node, shape)
    # int8 keeps u, v in int64 (no casts in the recurrence); loihi in int32 (its int32 wraps)
    dt = np.dtype(np.float32) if not ctx.integer else np.dtype(np.int32 if ctx.profile.name == "loihi" else np.int64)
    spec = {var: (dt, shape) for var in node.state_vars}
    if ctx.integer and getattr(node, "refractory", 0):
        spec["ref"] = (dt, shape)
    if ctx.integer and getattr(node, "bias_start", 0):
        spec["t"] = (np.dtype(np.int32), (1,) * len(shape))   # steps done, saturating at bias_start
    if ctx.integer and getattr(node, "reset_interval", 0):
        spec["rt"] = (np.dtype(np.int32), (1,) * len(shape))  # steps done, reduced by the reset period
    return spec


def emit_neuron(b: "Builder", ctx: "Ctx", name: str, node: Node, x: str,
                state: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(output, new state) of one step of stateful ``node`` with summed input ``x``:
    ``post(step(pre(x), state))``."""
    if isinstance(node, Delay):
        return _delay(b, ctx, name, node, x, state)
    raw, new = neuron_step(b, ctx, name, node, neuron_pre(b, ctx, name, node, x), state)
    return neuron_post(b, ctx, node, raw), new


def neuron_pre(b: "Builder", ctx: "Ctx", name: str, node: Node, x: str) -> str:
    """The part of a neuron update that depends on the input only (element-wise, no state), so
    a window graph applies it to all steps at once before the Scan:
    float ``g_u·x`` (Cuba) or ``g_v·x + b_v``; integer ``a·64`` with ``a = wrap(x, 32)``
    (loihi: the int32 shift ``wrap(a·64, 32)``; int8: exact, in int64)."""
    if node.kind == "QSigmaDelta":                                              # graded sum, as the emulator
        return x if ctx.dtype_of_input(name) == np.int64 else b.cast(x, np.int64)
    if ctx.integer:
        a = to_int32(b, x, ctx.dtype_of_input(name))                           # neuron_input
        if ctx.profile.name == "loihi":
            return b.op("Mul", [a, i32(b, 1 << numerics.STATE_SHIFT)], "a6")
        return b.op("Mul", [b.cast(a, np.int64), i64(b, 1 << numerics.STATE_SHIFT)], "a6")
    d = ctx.decays(name)
    f = lambda a, key: b.const(np.asarray(a, np.float32), f"{name}.{key}")  # noqa: E731
    if d.alpha_u is not None:
        return b.op("Mul", [f(d.gain_u, "gain_u"), x], "gx")
    gx = b.op("Mul", [f(d.gain_v, "gain_v"), x], "gx")
    return b.op("Add", [gx, f(d.bias_v, "bias_v")], "gx") if np.any(d.bias_v) else gx


def raw_dtype(ctx: "Ctx", node: Node) -> np.dtype:
    """dtype of :func:`neuron_step`'s first result: bool spikes, or v in the state dtype."""
    if node.kind == "QSigmaDelta":
        return np.dtype(np.int64)
    if node.spiking and not getattr(node, "multi_spike", False):
        return np.dtype(np.bool_)
    return state_spec(ctx, "", node, ())["v"][0]      # v, or a spike count in the state dtype


def neuron_post(b: "Builder", ctx: "Ctx", node: Node, raw: str) -> str:
    """Spikes (bool) → uint8 (integer) or float32 0/1; leaky integrators output v (int32 for
    integer graphs, as the emulator stores it)."""
    if ctx.integer and getattr(node, "multi_spike", False):
        return b.cast(raw, np.int32)        # spike counts, int32 as the emulator's
    if node.spiking:
        return b.cast(raw, np.uint8 if ctx.integer else np.float32)
    if node.kind == "QSigmaDelta":
        return raw                          # graded payloads, int64 as the emulator's
    return b.cast(raw, np.int32) if raw_dtype(ctx, node) == np.int64 else raw


def neuron_step(b: "Builder", ctx: "Ctx", name: str, node: Node, xin: str,
                state: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The state recurrence given ``xin = pre(x)``: (spikes as bool, or v; new state)."""
    if node.kind == "QSigmaDelta":
        from .sigma_delta import sd_step

        return sd_step(b, node, xin, state)
    if ctx.integer:
        return _int_neuron(b, ctx, name, node, xin, state)
    return _float_neuron(b, ctx, name, node, xin, state)


# --------------------------------------------------------------------------------------------
def _float_neuron(b, ctx, name, node, gx, st):
    d = ctx.decays(name)
    f = lambda a, key: b.const(np.asarray(a, np.float32), f"{name}.{key}")  # noqa: E731
    new: dict[str, str] = {}
    if d.alpha_u is not None:          # u ← α_u·u + g_u·x;  v ← α_v·v + g_v·u + b_v
        new["u"] = u = b.op("Add", [b.op("Mul", [f(d.alpha_u, "alpha_u"), st["u"]]), gx], "u")
        gx = b.op("Mul", [f(d.gain_v, "gain_v"), u], "gu")
        if np.any(d.bias_v):
            gx = b.op("Add", [gx, f(d.bias_v, "bias_v")], "gu")
    if not node.spiking:
        new["v"] = b.op("Add", [b.op("Mul", [f(d.alpha_v, "alpha_v"), st["v"]]), gx], "v")
        return new["v"], new
    th = f(node.v_threshold, "v_threshold")
    r, v_prev = spike_pre(b, node, node.v_threshold, st["v"], np.float32)
    v = b.op("Add", [b.op("Mul", [f(d.alpha_v, "alpha_v"), v_prev]), gx], "v")
    if r is not None:  # snnTorch's timings: the float form of numerics.reset.post without saturation
        sub = node.reset is ResetMode.SUBTRACT
        if sub:
            v = b.op("Sub", [v, b.op("Mul", [b.cast(r, np.float32), th])], "v")
        elif node.reset_timing is ResetTiming.NEXT_STEP_END:
            v = b.op("Where", [r, f(0.0, "zero"), v], "v")
        z = _fire(b, node, v, th)
        if node.reset_now:
            dz = b.op("Sub", [b.cast(z, np.float32), b.cast(r, np.float32)], "d")
            v = b.op("Sub", [v, b.op("Mul", [dz, th if sub else v])], "v")
    else:
        z = _fire(b, node, v, th)
        if node.multi_spike:   # Sinabs MultiSpike: the count ⌊v/θ⌋ where it fires, reset by n·θ (or to v_reset)
            z = b.op("Where", [z, b.op("Floor", [b.op("Div", [v, th])]), f(0.0, "zero")], "n")
            after = b.op("Sub", [v, b.op("Mul", [z, th])]) if node.reset is ResetMode.SUBTRACT else None
            if node.reset is ResetMode.ZERO:
                after = b.op("Where", [b.op("Greater", [z, f(0.0, "zero")]), f(node.v_reset, "v_reset"), v])
            v = after if after is not None else v
        elif node.reset is not ResetMode.NONE:
            after = b.op("Sub", [v, th]) if node.reset is ResetMode.SUBTRACT else f(node.v_reset, "v_reset")
            v = b.op("Where", [z, after, v], "v")
    if node.v_min is not None:
        v = b.op("Max", [v, f(node.v_min, "v_min")], "v")
    new["v"] = v
    return z, new


def _int_neuron(b, ctx, name, node, a6, st):
    p = ctx.profile
    lava = p.name == "loihi"
    sdt = np.dtype(np.int32 if lava else np.int64)                              # state dtype
    fu = i64(b, np.asarray(numerics.current_decay_factor(node.du), np.int64))
    fv = i64(b, np.asarray(numerics.voltage_decay_factor(node.dv), np.int64))
    on, t_next = _bias_gate(b, node, st)
    st, rt_next = _periodic_reset(b, node, st)
    bias_u = getattr(node, "bias_u", None)
    dec_u = _decay(b, st["u"], fu, sdt)                                         # int64
    if lava:  # lif_current: int32 shift (+ bias_u, int32 wrap), int32 add, one 24-bit correction
        if bias_u is not None:
            s_a = b.op("Add", [b.cast(a6, np.int64), _gated(b, on, bias_u, "bias_u")])
            a6 = b.cast(wrap_bits(b, s_a, 32, np.dtype(np.int64)), np.int32)
        u = _lava_wrap24(b, b.op("Add", [b.cast(dec_u, np.int32), a6]))
    else:     # lif_current: exact sum (+ bias_u), true two's-complement 24-bit wrap
        s_u = b.op("Add", [dec_u, a6])
        if bias_u is not None:
            s_u = b.op("Add", [s_u, _gated(b, on, bias_u, "bias_u")])
        u = wrap_bits(b, s_u, p.current.bits, np.dtype(np.int64))
    bias = p.lif_bias(node.bias_mant, node.bias_exp)
    r, v_in = (None, st["v"]) if node.kind == "QLI" else spike_pre(b, node, p.lif_threshold(node.vth), st["v"], sdt)
    s = b.op("Add", [_decay(b, v_in, fv, sdt), b.cast(u, np.int64) if lava else u])   # lif_voltage
    if np.any(bias):
        s = b.op("Add", [s, _gated(b, on, bias, "bias")])
    lim = numerics.V24_LIM
    if lava:
        v = b.op("Clip", [b.cast(s, np.int32), i32(b, -lim), i32(b, lim)], "v")
    else:
        v = b.op("Clip", [s, i64(b, -lim), i64(b, lim)], "v")
    new = {"u": u} if t_next is None else {"u": u, "t": t_next}
    if rt_next is not None:
        new["rt"] = rt_next
    if node.kind == "QLI":
        new["v"] = v
        return v, new
    return _int_spike(b, node, p.lif_threshold(node.vth), v, st, new, sdt, r)


def _bias_gate(b, node, st) -> tuple[str | None, str | None]:
    """``bias_start`` (the emulator's ``steps_done > bias_start``, counted from 1): state ``t``
    (int32, the steps done before this one, saturating at bias_start so it never wraps);
    ``on = t >= bias_start``; ``t ← min(t + 1, bias_start)``. (None, None) without a bias start."""
    start = int(getattr(node, "bias_start", 0))
    if not start:
        return None, None
    t, k = st["t"], i32(b, start)
    return (b.op("GreaterOrEqual", [t, k], "bias_on"),
            b.op("Min", [b.op("Add", [t, i32(b, 1)]), k], "t"))


def _periodic_reset(b, node, st: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """netx's periodic reset, :func:`neurocc.ir.numerics.reset.periodic_due` in ONNX: with
    ``o`` the first reset step and ``P`` the period, the step ``t = rt + 1`` (the emulator's
    ``steps_done``, counted from 1) resets u and v to 0 when ``t == o`` or ``t == o + P``; state
    ``rt ← t − P`` when ``t >= o + P``, else t (so the next reset is again at o + P, and rt
    stays below o + P). (st, None) without a periodic reset."""
    interval = int(getattr(node, "reset_interval", 0))
    if not interval:
        return st, None
    o = reset_rule.periodic_first(interval, int(node.reset_offset))
    period = reset_rule.periodic_period(interval, node.reset_schedule)
    t = b.op("Add", [st["rt"], i32(b, 1)], "t")
    hit = b.op("Or", [b.op("Equal", [t, i32(b, o)]), b.op("Equal", [t, i32(b, o + period)])], "reset")
    zero = lambda x: b.op("Where", [hit, b.op("Sub", [x, x]), x], "st0")  # noqa: E731  (0 in x's dtype)
    rt = b.op("Where", [b.op("GreaterOrEqual", [t, i32(b, o + period)]), b.op("Sub", [t, i32(b, period)]), t], "rt")
    return dict(st, u=zero(st["u"]), v=zero(st["v"])), rt


def _gated(b, on: str | None, value, key: str) -> str:
    """The int64 constant ``value``, or ``Where(on, value, 0)`` under a bias start."""
    c = b.const(np.asarray(value, np.int64), key)
    return c if on is None else b.op("Where", [on, c, i64(b, 0)], key)


def _fire(b, node, v: str, vth: str) -> str:
    return b.op("GreaterOrEqual" if node.fire_at_threshold else "Greater", [v, vth], "z")


def spike_pre(b, node, vth_value, v_prev: str, sdt) -> tuple[str | None, str]:
    """:func:`neurocc.ir.numerics.reset.pre` in ONNX: (r or None, the membrane the update starts from)."""
    if not reset_rule.early(node):
        return None, v_prev
    r = _fire(b, node, v_prev, b.const(np.asarray(vth_value, sdt), "vth"))
    if node.reset is ResetMode.ZERO and node.reset_timing is ResetTiming.NEXT_STEP:
        return r, b.op("Where", [r, b.const(np.zeros((), sdt), "k"), v_prev], "v_in")
    return r, v_prev


def _spike_post_early(b, node, v: str, r: str, vth: str, new: dict[str, str], sdt) -> str:
    """:func:`neurocc.ir.numerics.reset.post` for the next_step timings (r = previous step's spike)."""
    k = lambda val: b.const(np.asarray(val, sdt), "k")  # noqa: E731
    sat = lambda x: b.op("Clip", [x, k(-numerics.V24_LIM), k(numerics.V24_LIM)], "v")  # noqa: E731
    sub = node.reset is ResetMode.SUBTRACT
    if sub:
        v = sat(b.op("Sub", [v, b.op("Mul", [b.cast(r, sdt), vth])]))
    elif node.reset_timing is ResetTiming.NEXT_STEP_END:
        v = b.op("Where", [r, k(0), v], "v")
    z = _fire(b, node, v, vth)
    if node.reset_now:
        d = b.op("Sub", [b.cast(z, sdt), b.cast(r, sdt)], "d")
        v = sat(b.op("Sub", [v, b.op("Mul", [d, vth if sub else v])]))
    new["v"] = _int_floor(b, node, v, sdt)
    return z


def _int_floor(b, node, v: str, sdt) -> str:
    """:func:`neurocc.ir.numerics.reset._floor`: ``v ← max(v, v_min)`` when the QLIF has a v_min."""
    v_min = getattr(node, "v_min", None)
    return v if v_min is None else b.op("Max", [v, b.const(np.asarray(v_min, sdt), "v_min")], "v")


def _int_spike(b, node, vth_value, v, st, new, sdt, r=None):
    """Spike ``v > vth`` (``>=``: fire_at_threshold), reset (zero | subtract vth | none, at the
    node's timing), refractory hold, in the state dtype ``sdt`` (int32, int64, or float64
    holding integers: :mod:`.fastint`)."""
    k = lambda b, val: b.const(np.asarray(val, sdt), "k")  # noqa: E731
    vth = k(b, np.asarray(vth_value, np.int64))
    if r is not None:
        return _spike_post_early(b, node, v, r, vth, new, sdt), new
    if node.refractory:
        hold = b.op("Greater", [st["ref"], k(b, 0)], "hold")
        v = b.op("Where", [hold, st["v"], v], "v")
        z = b.op("And", [b.op("Greater", [v, vth]), b.op("Not", [hold])], "z")
    else:
        z = _fire(b, node, v, vth)
    if getattr(node, "multi_spike", False):
        return _multi_spike(b, node, v, z, vth, new, sdt), new
    if node.reset is not ResetMode.NONE:
        after = b.op("Sub", [v, vth]) if node.reset is ResetMode.SUBTRACT else k(b, 0)
        v = b.op("Where", [z, after, v], "v")
    new["v"] = _int_floor(b, node, v, sdt)
    if node.refractory:
        dec = b.op("Max", [b.op("Sub", [st["ref"], k(b, 1)]), k(b, 0)])
        new["ref"] = b.op("Where", [z, k(b, node.refractory), dec], "ref")
    return z, new


def _multi_spike(b, node, v: str, z: str, vth: str, new: dict[str, str], sdt) -> str:
    """:func:`neurocc.ir.numerics.reset._multi`: the count ``n = Div(v, vth)`` where ``z`` (v > 0,
    vth >= 1 there: ONNX's truncating integer Div is the floor), else 0; ``v ← v − n·vth``
    (subtract) or 0 where z (zero); then the v_min floor."""
    zero = b.const(np.zeros((), sdt), "k")
    n = b.op("Where", [z, b.op("Div", [v, vth]), zero], "n")
    if node.reset is ResetMode.SUBTRACT:
        v = b.op("Sub", [v, b.op("Mul", [n, vth])], "v")
    elif node.reset is ResetMode.ZERO:
        v = b.op("Where", [z, zero, v], "v")
    new["v"] = _int_floor(b, node, v, sdt)
    return n


def _decay(b, x: str, factor: str, dtype: np.dtype) -> str:
    """``numerics.decay(x, factor)`` = trunc0(x·factor / 2**12): int64 Mul, truncating Div."""
    x64 = x if np.dtype(dtype) == np.int64 else b.cast(x, np.int64)
    return b.op("Div", [b.op("Mul", [x64, factor]), i64(b, numerics.DECAY_ONE)], "decay")


def _lava_wrap24(b, s: str) -> str:
    """``numerics.lava_wrap24`` on int32: x > 2**23 → x − 2**24; x <= −2**23 → x + 2**24."""
    m = numerics.U24_MAX
    hi = b.op("Greater", [s, i32(b, m)])
    lo = b.op("LessOrEqual", [s, i32(b, -m)])
    return b.op("Where", [hi, b.op("Sub", [s, i32(b, 2 * m)]),
                          b.op("Where", [lo, b.op("Add", [s, i32(b, 2 * m)]), s])], "u")


# --------------------------------------------------------------------------------------------
def _delay_steps(ctx: "Ctx", node: Delay) -> np.ndarray:
    return delay_steps(node.delay, ctx.graph.dt)


def _delay(b, ctx, name, node, x, st):
    """Delay (``Kernel Delay``): buffer[:, 0] = x[t], buffer[:, j] = x[t − j]; y = buffer[:, k]
    per element (state ``buffer`` is (B, depth, *shape))."""
    k = _delay_steps(ctx, node)
    depth = int(k.max(initial=0)) + 1
    ax1 = b.const(np.array([1], np.int64), "ax")
    xin = x if ctx.dtype_of_input(name) == ctx.dtype_of(name) else b.cast(x, ctx.dtype_of(name))
    head = b.op("Unsqueeze", [xin, ax1])
    if depth > 1:
        old = b.op("Slice", [st["buffer"], b.const(np.array([0], np.int64), "s"),
                             b.const(np.array([depth - 1], np.int64), "e"), ax1])
        buf = b.op("Concat", [head, old], "buffer", axis=1)
    else:
        buf = head
    # one-hot over the depth axis: y = Σ_j buf[:, j] · [k == j] (exact: one non-zero term)
    onehot = (np.arange(depth).reshape(1, depth, *([1] * k.ndim)) == k[None, None]).astype(ctx.dtype_of(name))
    y = b.op("ReduceSum", [b.op("Mul", [buf, b.const(onehot, f"{name}.onehot")]), ax1], "delayed", keepdims=0)
    return y, {"buffer": buf}
