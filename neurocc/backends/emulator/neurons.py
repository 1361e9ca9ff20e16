"""Neuron kernels: float (reference semantics) and integer (numerics profiles).

Float kinds (discretised by ``decay_factors`` of ``neurocc.ir.discrete``: α, g, b per neuron;
x = the summed input of step t; all float64)::

    I, LI:        v ← α_v·v + g_v·x + b_v                               output v
    IF, LIF:      v ← α_v·v + g_v·x + b_v;  z = v > θ;  v ← v_reset | v − θ   output z
    CubaLI:       u ← α_u·u + g_u·x;  v ← α_v·v + g_v·u + b_v           output v
    CubaLIF:      CubaLI's u, v;  z = v > θ;  reset as LIF              output z

    euler: α = 1 − dt/τ, g_v = r·dt/τ, b_v = v_leak·dt/τ, g_u = w_in·dt/τ_syn
    exact: α = exp(−dt/τ), g_v = r·(1 − α), b_v = v_leak·(1 − α), g_u = w_in·(1 − α_u)
    I, IF: α_v = 1, g_v = r, b_v = 0 (integrate once per step, whatever dt)

The spike and reset above are NIR's (``reset_timing=after_spike``); snnTorch's timings, reset
``none``, ``v ≥ θ``, multi-spike and ``v_min`` follow :class:`neurocc.ir.nodes._Spiking` (float)
and :mod:`neurocc.ir.numerics.reset` (integer).

The input of step t acts in step t (the NIR paper's convention: an input at step 60 is in v at
step 60). States start at 0; ``v_reset`` applies only after a spike.

Integer kinds (QLIF, QLI) run the profile's updates (:mod:`neurocc.ir.numerics.profiles`)::

    a = int32(Σ inputs);  u ← profile.lif_current(u, a, du, bias_u);  v ← profile.lif_voltage(v, u, bias, dv)
    (bias and bias_u are 0 at the steps t < bias_start of a run: the layer's input latency)
    QLIF: z = v > vth<<6;  v ← 0 (zero) | v − vth<<6 (subtract);  refractory (int8): v held;
          multi_spike: the count z = ⌊v / vth<<6⌋ where it fires, v ← v − z·vth<<6 (int32 output)
    QLI: no spike, output v
"""
from __future__ import annotations

import numpy as np

from neurocc.backends.emulator.kernels import Kernel
from neurocc.ir.discrete import decay_factors
from neurocc.ir.numerics import core
from neurocc.ir.numerics import reset as reset_rule
from neurocc.ir.types import ResetMode, ResetTiming


def _decays(node, dt: float | None, method):
    needs_dt = any(hasattr(node, k) for k in ("tau", "tau_mem", "tau_syn"))
    if needs_dt and not dt:
        raise ValueError(f"{node.kind} needs the graph's dt (run the discretize pass or pass --dt)")
    return decay_factors(node, dt or 1.0, method or "euler")


class FloatNeuron(Kernel):
    """I, IF, LI, LIF, CubaLI, CubaLIF in float64 (see the module docstring); the spike/reset
    semantics of IF/LIF/CubaLIF (reset mode and timing, ≥ test, multi-spike, v_min) are the
    equations of :class:`neurocc.ir.nodes._Spiking`."""

    stateful = True

    def __init__(self, *a, dt=None, method=None, **kw) -> None:
        super().__init__(*a, **kw)
        n = self.node
        d = _decays(n, dt, method)
        f = lambda x: None if x is None else np.asarray(x, np.float64)  # noqa: E731
        self.au, self.gu, self.av, self.gv, self.bv = map(f, (d.alpha_u, d.gain_u, d.alpha_v, d.gain_v, d.bias_v))
        self.cuba = self.au is not None
        self.spiking = n.spiking
        if self.spiking:
            self.th = np.asarray(n.v_threshold, np.float64)
            self.v_reset = np.asarray(n.v_reset, np.float64)
            self.mode = n.reset
            self.timing = n.reset_timing
        self.has_bias = bool(np.any(self.bv))
        self.record_vars = n.state_vars

    def reset(self, batch: int) -> None:
        self.state = {var: np.zeros((batch, *self.out_shape)) for var in self.node.state_vars}

    def _fire(self, v: np.ndarray) -> np.ndarray:
        return v >= self.th if self.node.fire_at_threshold else v > self.th

    def step(self, x: np.ndarray) -> np.ndarray:
        st = self.state
        inp = x
        if self.cuba:
            st["u"] = u = self.au * st["u"] + self.gu * x
            inp = u
        if not self.spiking:
            v = self.av * st["v"] + self.gv * inp
            st["v"] = v + self.bv if self.has_bias else v
            return st["v"]
        v, z = self._spike_step(st["v"], inp)
        if self.node.v_min is not None:
            v = np.maximum(v, self.node.v_min)
        st["v"] = v
        return z

    def _spike_step(self, v0: np.ndarray, inp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(new membrane, spikes) for one step: integration, spike and reset as the node's timing says."""
        zero, sub = self.mode is ResetMode.ZERO, self.mode is ResetMode.SUBTRACT
        early = self.timing is not ResetTiming.AFTER_SPIKE
        r = self._fire(v0).astype(np.float64) if early and self.mode is not ResetMode.NONE else None
        dec = self.av * v0
        if r is not None and zero and self.timing is ResetTiming.NEXT_STEP:
            dec = dec * (1.0 - r)
        v = dec + self.gv * inp
        if self.has_bias:
            v = v + self.bv
        if r is not None and sub:
            v = v - r * self.th
        elif r is not None and zero and self.timing is ResetTiming.NEXT_STEP_END:
            v = v - r * v
        fired = self._fire(v)
        z = np.where(fired, np.floor(v / self.th), 0.0) if self.node.multi_spike else fired.astype(np.float64)
        if r is not None:
            if self.node.reset_now:
                d = fired - r
                v = v - d * self.th if sub else v - d * v
        elif fired.any():
            if sub:
                v = v - z * self.th
            elif zero:
                v = np.where(fired, self.v_reset, v)
        return v, z


class IntNeuron(Kernel):
    """QLIF / QLI under a loihi or int8 profile (see the module docstring).

    State is held as float64 arrays of integers (every value < 2**53, so exact; the numerics
    functions accept that representation) because it needs fewer numpy operations per step
    than int64; recorded traces are int64."""

    stateful = True

    def __init__(self, *a, profile=None, **kw) -> None:
        super().__init__(*a, **kw)
        from neurocc.ir.numerics import current_decay_factor, voltage_decay_factor

        n, p = self.node, profile
        self.profile = p
        shape = self.out_shape
        f = lambda x: np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float64), shape))  # noqa: E731
        self.fu, self.fv = f(current_decay_factor(n.du)), f(voltage_decay_factor(n.dv))
        bias = p.lif_bias(n.bias_mant, n.bias_exp)
        self.bias = f(bias) if np.any(bias) else None
        bias_u = getattr(n, "bias_u", None)
        self.bias_u = f(bias_u) if bias_u is not None and np.any(bias_u) else None
        self.bias_start = int(getattr(n, "bias_start", 0))   # steps before it: no bias, no bias_u
        self.spiking = n.kind == "QLIF"
        self.refractory = 0
        if self.spiking:
            self.vth = f(p.lif_threshold(n.vth))
            self.subtract = n.reset is ResetMode.SUBTRACT
            self.refractory = int(n.refractory)
            self.out_dtype = np.int32 if n.multi_spike else np.uint8   # spike counts: graded payloads
        self.record_vars = n.state_vars + (("ref",) if self.refractory else ())
        self._fast_static: bool | None = None
        self.reset_interval = int(getattr(n, "reset_interval", 0))
        self.reset_offset = int(getattr(n, "reset_offset", 0))
        self.reset_schedule = str(getattr(n, "reset_schedule", "lava"))
        self.steps_done = 0

    def reset(self, batch: int) -> None:
        shape = (batch, *self.out_shape)
        self.state = {"u": np.zeros(shape), "v": np.zeros(shape)}
        if self.refractory:
            self.state["ref"] = np.zeros(shape)
        self.steps_done = 0

    def _periodic_reset(self) -> None:
        """netx's periodic reset (Lava's LIFReset, or the chip's schedule): zero u and v before
        step t = steps_done + 1 when :func:`neurocc.ir.numerics.reset.periodic_due` says so."""
        self.steps_done += 1
        if reset_rule.periodic_due(self.steps_done, self.reset_interval, self.reset_offset, self.reset_schedule):
            self.state["u"] = np.zeros_like(self.state["u"])
            self.state["v"] = np.zeros_like(self.state["v"])

    def window(self, x: np.ndarray, rec: dict[str, np.ndarray] | None = None) -> np.ndarray:
        k = self.bias_start - self.steps_done   # steps of this window still before the bias starts
        if 0 < k < x.shape[0]:
            part = lambda sl: None if rec is None else {var: arr[sl] for var, arr in rec.items()}  # noqa: E731
            head = self.window(x[:k], part(slice(None, k)))
            return np.concatenate([head, self.window(x[k:], part(slice(k, None)))])
        a, n = self.profile.neuron_input(x)   # the int32 sum register, whole window at once
        self.count("input_wrap", n)
        a = np.asarray(a, np.float64)
        out = np.empty(x.shape, self.out_dtype)
        if not self.reset_interval and k <= 0 and self._fast_ok(a):
            self._window_fast(a, out, rec)
            self.steps_done += x.shape[0]
            return out
        for t in range(x.shape[0]):
            self.t = t
            self._periodic_reset()
            out[t] = self._update(a[t])
            if rec is not None:
                for var, arr in rec.items():
                    arr[t] = self.state[var]
        return out

    # ---- loihi fast path: the same numbers with fewer operations per step -------------------
    def _fast_ok(self, a: np.ndarray) -> bool:
        """Whether :meth:`_window_fast` may run this window: loihi profile, no refractory,
        decay factors in [0, 4096], ``|a << 6| <= 2**24`` over the window, ``|bias| < 2**31 −
        2**24``, and the state starts inside the invariant ``|u| <= 2**23``, ``|v| <= 2**23 − 1``
        (always true for states this kernel produced; see :meth:`_window_fast` for the proof)."""
        if self.profile.name != "loihi" or self.refractory or a.size == 0 or self.bias_u is not None:
            return False
        if self.spiking and (self.node.reset is not ResetMode.ZERO or self.node.fire_at_threshold
                             or self.node.multi_spike
                             or self.node.reset_timing is not ResetTiming.AFTER_SPIKE or self.node.v_min is not None):
            return False
        if self._fast_static is None:
            b = 0.0 if self.bias is None else float(np.abs(self.bias).max(initial=0))
            self._fast_static = bool(self.fu.min(initial=0) >= 0 and self.fu.max(initial=0) <= core.DECAY_ONE
                                     and self.fv.min(initial=0) >= 0 and self.fv.max(initial=0) <= core.DECAY_ONE
                                     and b < 2.0 ** 31 - 2.0 ** 24)
        u, v = self.state["u"], self.state["v"]
        return (self._fast_static and max(a.max(), -a.min()) * (1 << core.STATE_SHIFT) <= 2.0 ** 24
                and max(u.max(initial=0), -u.min(initial=0)) <= core.U24_MAX
                and max(v.max(initial=0), -v.min(initial=0)) <= core.V24_LIM)

    def _window_fast(self, a: np.ndarray, out: np.ndarray, rec: dict[str, np.ndarray] | None) -> None:
        """The loihi update of :meth:`Profile.lif_current` / :meth:`Profile.lif_voltage` with
        the int32 wraps that cannot happen left out (their counts are 0) and the 24-bit wrap /
        saturation applied only when a value is out of range. Proof, by induction over steps,
        of the invariant |u| <= 2**23, |v| <= 2**23 − 1 (checked at the window start):
        dec = trunc0(u·fu/2**12) with 0 <= fu <= 2**12, so |dec| <= |u| <= 2**23;
        |a6| = |a << 6| <= 2**24 < 2**31 (no int32 wrap of the shift);
        |dec + a6| <= 2**23 + 2**24 < 2**31 (no int32 wrap of the sum); lava_wrap24 maps
        (2**23, 2**23 + 2**24] into (−2**23, 2**23] and [−2**23 − 2**24, −2**23] into
        [−2**23, 2**23], so |u'| <= 2**23; then |trunc0(v·fv/2**12) + u' + bias| <=
        (2**23 − 1) + 2**23 + |bias| < 2**31 (no int32 wrap), saturation gives |v'| <= 2**23 − 1
        and the reset writes 0. Values are float64 holding integers (< 2**53: exact)."""
        a6 = a * (1 << core.STATE_SHIFT)
        st, fu, fv, bias = self.state, self.fu, self.fv, self.bias
        u, v = st["u"], st["v"]
        for t in range(a.shape[0]):
            self.t = t
            u = core.decay(u, fu)
            u += a6[t]
            if u.max() > core.U24_MAX or u.min() <= -core.U24_MAX:
                u, n = core.lava_wrap24(u)
                self.count("u_wrap", n)
            v = core.decay(v, fv)
            v += u
            if bias is not None:
                v += bias
            if v.max() > core.V24_LIM or v.min() < -core.V24_LIM:
                v, n = core.saturate(v, -core.V24_LIM, core.V24_LIM)
                self.count("v_saturate", n)
            if self.spiking:
                z = v > self.vth
                np.copyto(v, 0.0, where=z)
                out[t] = z
            else:
                out[t] = v
            st["u"], st["v"] = u, v
            if rec is not None:
                rec["u"][t] = u
                rec["v"][t] = v

    def step(self, x: np.ndarray) -> np.ndarray:
        a, n = self.profile.neuron_input(x)
        self.count("input_wrap", n)
        self._periodic_reset()
        return self._update(np.asarray(a, np.float64))

    def _update(self, a: np.ndarray) -> np.ndarray:
        """One step; ``steps_done`` already counts it (the bias is off while it is <= bias_start)."""
        p, st = self.profile, self.state
        on = self.steps_done > self.bias_start
        u, nu, n32 = p.lif_current(st["u"], a, self.fu, self.bias_u if on else None)
        r, v_in = reset_rule.pre(st["v"], self.vth, self.node) if self.spiking else (None, st["v"])
        v, nsat, n32v = p.lif_voltage(v_in, u, self.bias if on else None, self.fv)
        if nu or nsat or n32 or n32v:
            self.count("u_wrap", nu)
            self.count("v_saturate", nsat)
            self.count("int32_wrap", n32 + n32v)
        st["u"] = u
        if not self.spiking:
            st["v"] = v
            return v
        if not self.refractory:
            z, v, n = reset_rule.post(v, r, self.vth, self.node)
            self.count("v_saturate", n)
            st["v"] = v
            return z
        hold = st["ref"] > 0  # refractory (int8 QLIF from netx; after_spike timing only)
        v = np.where(hold, st["v"], v)
        z = (v > self.vth) & ~hold
        st["ref"] = np.where(z, float(self.refractory), np.maximum(st["ref"] - 1, 0))
        if z.any():
            v = np.where(z, v - self.vth if self.subtract else 0.0, v)
        st["v"] = v
        return z
