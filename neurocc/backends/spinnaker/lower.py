"""Lower a discretised float graph to a PyNN network description (pure: numpy only).

Populations: every Input becomes a ``SpikeSourceArray``; every neuron node (LIF, IF, CubaLIF,
and the non-spiking LI, CubaLI, I readouts) one ``IF_curr_exp`` population. Each chain of
linear nodes (Linear, Affine, Conv1d/2d, Sum/AvgPool2d, Flatten, Scale, Add) between two
populations is composed into one expanded matrix (conv and pool expanded) and emitted as two
``FromListConnector`` projections, positive weights on ``excitatory``, negative on
``inhibitory``. Why ``IF_curr_exp``: it is the 256-neuron-per-core workhorse of sPyNNaker, its
exponential current is CubaLIF's ``u`` exactly, and with ``tau_syn = dt/32`` (decay 0 in u0.32)
it is an "add to the membrane" LIF; ``IF_curr_delta`` scales its input by 1/dt through the same
closed form (nothing gained) and ``IF_cond_exp`` makes the input depend on V.

Mapping (per neuron, SpiNNaker's tick, :mod:`neurocc.ir.numerics.spinnaker`): with the IR's
per-step coefficients α_u, g_u, α_v, g_v, b_v (:func:`~neurocc.ir.discrete.decay_factors`)::

    tau_m = −dt/ln α_v (IF, I: 1e6·dt float, 2048·dt on SpiNNaker)   tau_syn = −dt/ln α_u (Cuba) | dt/32
    V = k · v  (k mV per IR unit, per layer)        gain G = 1 − exp(−dt/tau_m(SpiNNaker)) mV/nA/step
    cm = tau_m (1 − β) / G   (so that (1 − β)·R = G; β from expk on SpiNNaker)
    current I = c · u,  c = k g_v / G               weight w = c · (g_u ·) W / init,  init = τs/dt (1 − e^(−dt/τs))
    v_rest = k b_v / (1 − β);  v_thresh = k θ;  v_reset = k v_reset;  tau_refrac = 0
    i_offset = c · b_affine (LIF)  |  c · g_u b / (1 − α_u) (Cuba: exact after the current settles)

``k`` keeps the steady state α = R·I + V_rest below 2^13 mV (s16.15 holds ±2^16).
Delays: a projection from S to N gets ``ir_delay + lag(N) − lag(S)`` steps, with
``lag(N) = max(lag(S) + 1 − ir_delay)`` (PyNN's minimum delay is one step).
"""
from __future__ import annotations

import types
from typing import Any

import numpy as np

from neurocc.ir.discrete import decay_factors, delay_steps
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import (
    IF,
    LI,
    LIF,
    Affine,
    AvgPool2d,
    Conv2d,
    CubaLI,
    CubaLIF,
    Delay,
    Flatten,
    I,
    Input,
    Node,
    Output,
    Scale,
    SumPool2d,
    _Dense,
)
from neurocc.ir.numerics.reset import semantics_problems
from neurocc.ir.types import Method, ResetMode

from .network import Network, Population, Projection

NEURONS = (LIF, IF, CubaLIF, LI, CubaLI, I)
LINEAR = (_Dense, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale)
T0 = 2                      # input step 0 is sent at 2·dt (NEST needs spike times > min_delay)
TAU_SYN_DELTA = 1.0 / 32    # in dt: decay exp(−32) is 0 in u0.32, init = 1/32
INTEGRATOR_TAU_FLOAT = 1e6  # in dt: IF/I on float simulators (a leak of 1e-6 per step)
INTEGRATOR_TAU_SPINN = 2048.0  # in dt: IF/I on SpiNNaker (expk resolution: 17/32768 leak per step)
A_MAX_MV = 8192.0           # bound on |R·I + V_rest| (s16.15 holds ±65536)
V_NEVER = 65535.0           # v_thresh of non-spiking readouts (the largest s16.15)
MAX_DENSE = 50_000_000      # largest expanded matrix (pre × post) lowered at once
MAX_DELAY = 288             # steps reachable with a delay extension (spinnaker.md §3)


# What sPyNNaker's IF_curr_exp computes beyond v > θ → v_reset: nothing (reset right after the spike).
SPINNAKER_SEMANTICS = types.SimpleNamespace(name="spinnaker", reset_modes=("zero",), reset_timings=("after_spike",),
                                            fire_at_threshold=False)


def problems(graph: Graph) -> list[str]:
    """Every node or edge this lowering cannot map, all at once (empty: fine)."""
    found: list[str] = []
    if graph.numerics is not None:
        found.append(f"graph '{graph.name}' is quantized ('{graph.numerics}'); lower the float graph")
    if not graph.dt:
        found.append(f"graph '{graph.name}' has no dt: run the discretize pass (compile does)")
    for name, node in graph.nodes.items():
        where = f"node '{name}' ({node.kind})"
        if isinstance(node, NEURONS):
            if getattr(node, "reset", ResetMode.ZERO) in (ResetMode.SUBTRACT, ResetMode.NONE):
                found.append(f"{where}: reset '{node.reset.value}' has no IF_curr_exp equivalent (it resets to "
                             "v_reset); retrain or convert with reset 'zero'")
            found += semantics_problems(node, where, "spinnaker", SPINNAKER_SEMANTICS)
            if any(isinstance(graph.nodes[p], (Input,) + NEURONS) for p in graph.predecessors(name)):
                found.append(f"{where}: fed directly by a population; put a Linear (identity) in front")
        elif isinstance(node, Delay):
            succ = graph.successors(name)
            if len(succ) != 1 or not isinstance(graph.nodes[succ[0]], NEURONS) or \
                    graph.shapes()[succ[0]] != graph.shapes()[name]:
                found.append(f"{where}: a per-neuron delay maps to per-connection PyNN delays only right "
                             "before the neurons it delays")
        elif not isinstance(node, (Input, Output) + LINEAR):
            found.append(f"{where}: no PyNN lowering (supported: Input, Output, LIF, IF, CubaLIF, LI, CubaLI, I "
                         "and the linear kinds Linear, Affine, Conv1d/2d, pools, Flatten, Scale, Add)")
    if found or not graph.dt:
        return found
    found += output_problems(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, NEURONS):
            d = decay_factors(node, graph.dt, graph.method or Method.EULER)
            if np.any(d.alpha_v <= 0) or np.any(d.alpha_v > 1):
                found.append(f"node '{name}' ({node.kind}): membrane decay {float(np.min(d.alpha_v)):.4g} is not "
                             "in (0, 1]; use method 'exact' or a dt below tau")
            if d.alpha_u is not None and (np.any(d.alpha_u <= 0) or np.any(d.alpha_u >= 1)):
                found.append(f"node '{name}' ({node.kind}): current decay must be in (0, 1) for an exponential synapse")
    return found


def _paths(graph: Graph, n: str) -> list[tuple[str, list[str], int]]:
    """(source population, linear nodes from source side to ``n``, summed edge delay) per path."""
    out = []
    stack = [(e.src, [], e.delay) for e in graph.in_edges(n)]
    while stack:
        src, path, d = stack.pop()
        node = graph.nodes[src]
        if isinstance(node, (Input,) + NEURONS):
            out.append((src, path, d))
        else:
            stack.extend((e.src, [src] + path, d + e.delay) for e in graph.in_edges(src))
    return out


def _delay_rows(graph: Graph, path: list[str]) -> list[tuple[int, np.ndarray | None]]:
    """(extra steps, post-neuron row mask) per distinct value of a ``Delay`` ending ``path``
    (PyNN delays are per connection); [(0, None)] without one."""
    if not path or not isinstance(graph.nodes[path[-1]], Delay):
        return [(0, None)]
    k = delay_steps(graph.nodes[path[-1]].delay, graph.dt).reshape(-1)
    return [(int(v), (k == v).astype(np.float64)) for v in np.unique(k)]


def _apply(node: Node, x: np.ndarray, bias: bool) -> np.ndarray:
    """One linear node on rows x (R, *in_shape), float64."""
    from neurocc.backends.emulator import convpool

    if isinstance(node, _Dense):
        y = x.reshape(len(x), -1) @ np.asarray(node.weight, np.float64).T
        return y + node.bias if bias and isinstance(node, Affine) else y
    if isinstance(node, Conv2d):
        y = convpool.conv(x, np.asarray(node.weight, np.float64), node.stride, node.padding, node.dilation,
                          node.groups, integer=False)
        return y + np.asarray(node.bias, np.float64).reshape(-1, *([1] * (y.ndim - 2))) if bias else y
    if isinstance(node, (SumPool2d, AvgPool2d)):
        y = convpool.sum_pool(x, node.kernel_size, node.stride, node.padding)
        return y / float(np.prod(node.kernel_size)) if isinstance(node, AvgPool2d) else y
    if isinstance(node, Scale):
        return x * np.asarray(node.scale, np.float64)
    if isinstance(node, Flatten):
        shape = node.out_shape(x.shape[1:])
        return x.reshape(len(x), *shape)
    return x  # Add


def compose(graph: Graph, src: str, path: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(M, b): the path's affine map from ``src``'s flat output to the flat input of its end,
    ``y = M x + b`` (M is (n_out, n_in), expanded from convolutions and pools)."""
    shape = graph.shapes()[src]
    n = int(np.prod(shape))
    out_n = int(np.prod(graph.shapes()[path[-1]])) if path else n
    if n * out_n > MAX_DENSE:
        raise ValueError(f"the connection {src} -> {path[-1] if path else src} expands to {n} x {out_n} "
                         f"synapses, more than {MAX_DENSE} this lowering builds")
    x = np.eye(n).reshape(n, *shape)
    b = np.zeros((1, *shape))
    for p in path:
        x, b = _apply(graph.nodes[p], x, False), _apply(graph.nodes[p], b, True)
    return x.reshape(n, -1).T.copy(), b.reshape(-1)


def _lags(graph: Graph, groups: dict[str, dict[tuple[str, int], Any]]) -> dict[str, int]:
    """lag(Input) = 0, lag(N) = max over its sources (lag(S) + 1 − ir_delay), by relaxation."""
    lag = {n: 0 for n in graph.inputs}
    for _ in range(len(graph.nodes) + 1):
        changed = False
        for n, g in groups.items():
            cand = max((lag[s] + 1 - d for (s, d) in g if s in lag), default=None)
            if cand is not None and lag.get(n, -10**9) < cand:
                lag[n], changed = cand, True
        if not changed:
            return lag
    raise ValueError("a recurrent loop has fewer delay steps than projections (each needs one step)")


def _scale(theta_abs: float, reset_abs: float, drive: np.ndarray, gain_spinn: float) -> float:
    """k (mV per IR unit): the steady state of the strongest-driven neuron stays below A_MAX_MV."""
    a = max(float(np.max(drive, initial=0.0)) / gain_spinn, theta_abs, reset_abs, 1e-12)
    return A_MAX_MV / a


def _beta(node: Node, dt: float, method: Method) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(decays, tau_m float [ms], tau_m SpiNNaker [ms], tau_syn [ms]) per neuron, flat."""
    d = decay_factors(node, dt, method)
    dt_ms = dt * 1e3
    av = np.asarray(d.alpha_v, np.float64).ravel()
    integ = av >= 1.0
    tm = np.where(integ, INTEGRATOR_TAU_FLOAT * dt_ms, -dt_ms / np.log(np.where(integ, 0.5, av)))
    tm_sp = np.where(integ, INTEGRATOR_TAU_SPINN * dt_ms, tm)
    if d.alpha_u is None:
        ts = np.full(av.shape, TAU_SYN_DELTA * dt_ms)
    else:
        ts = -dt_ms / np.log(np.broadcast_to(d.alpha_u, np.shape(d.alpha_v)).ravel())
    return d, tm, tm_sp, ts


def _flat(a: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(a, np.float64), (n,)) if np.ndim(a) == 0 else np.asarray(a, np.float64).ravel()


def lower(graph: Graph, *, max_atoms: dict[str, int] | None = None, t0: int = T0) -> Network:
    """The PyNN description of float ``graph`` (see the module docstring). ``max_atoms`` caps
    neurons per core per layer (neurocc's partition); BackendError lists every problem."""
    from neurocc.errors import BackendError

    found = problems(graph)
    if found:
        raise BackendError(f"graph '{graph.name}' cannot be lowered to PyNN ({len(found)} problem(s))",
                           where=f"graph '{graph.name}'", problems=found, fix="see each problem")
    shapes = graph.shapes()
    neurons = [n for n in graph.order() if isinstance(graph.nodes[n], NEURONS)]
    groups: dict[str, dict[tuple[str, int], np.ndarray]] = {n: {} for n in neurons}
    bias = {n: np.zeros(int(np.prod(shapes[n]))) for n in neurons}
    try:
        for n in neurons:
            for src, path, d in _paths(graph, n):
                M, b = compose(graph, src, path)
                for extra, rows in _delay_rows(graph, path):   # a per-neuron Delay: one group per value
                    key = (src, d + extra)
                    groups[n][key] = groups[n].get(key, 0.0) + (M if rows is None else M * rows[:, None])
                bias[n] += b
        lag = _lags(graph, groups)
    except ValueError as err:
        raise BackendError(str(err), where=f"graph '{graph.name}'", fix="reduce the layer or add delays") from err
    caps = dict(max_atoms or {})
    pops = [Population(n, tuple(shapes[n]), "source", max_atoms_per_core=caps.get(n, 256))
            for n in graph.inputs]
    projs: list[Projection] = []
    dt = float(graph.dt)  # type: ignore[arg-type]
    for n in neurons:
        pop, weights = neuron_population(graph.nodes[n], n, shapes[n], groups[n], bias[n], dt,
                                         graph.method or Method.EULER, lag[n], caps.get(n, 256))
        pops.append(pop)
        for (src, d), w in weights.items():
            delay = d + lag[n] - lag[src]
            if not 1 <= delay <= MAX_DELAY:
                raise BackendError(f"projection {src} -> {n} needs a delay of {delay} steps",
                                   where=f"node '{n}'", fix=f"keep delays within 1..{MAX_DELAY} steps")
            projs += _split(src, n, d, w, delay)
    return Network(graph.name, dt * 1e3, t0, tuple(pops), tuple(projs), _outputs(graph),
                   notes=tuple(_notes(graph)))


def neuron_population(node: Node, name: str, shape: tuple[int, ...], groups: dict[tuple[str, int], np.ndarray],
                      bias: np.ndarray, dt: float, method: Method, lag: int, max_atoms: int
                      ) -> tuple[Population, dict[tuple[str, int], np.ndarray]]:
    """One IF_curr_exp population and its incoming weights in nA (module docstring)."""
    from neurocc.ir.numerics import spinnaker as S

    n = int(np.prod(shape))
    d, tm, tm_sp, ts = _beta(node, dt, method)
    dt_ms = dt * 1e3
    beta_f = np.exp(-dt_ms / tm)
    gain = 1.0 - np.exp(-dt_ms / tm_sp)
    ts_bits = int(S.encode_s1615(dt_ms))
    beta_q = np.array([S.expk(-S.kdivk(ts_bits, int(b))) for b in S.encode_s1615(tm_sp)]) / S.ONE
    gv = _flat(d.gain_v, n)
    cuba = d.alpha_u is not None
    au = _flat(d.alpha_u, n) if cuba else np.zeros(n)
    gu = _flat(d.gain_u, n) if cuba else np.ones(n)
    settle = 1.0 / (1.0 - au)                      # Cuba: u's steady state per unit of input
    init = (ts / dt_ms) * (1.0 - np.exp(-dt_ms / ts))
    row = sum(np.abs(M).sum(axis=1) for M in groups.values()) if groups else np.zeros(n)
    c1 = gv / gain                                  # nA per IR current unit at k = 1
    w_row1 = c1 * gu * row / init                   # Σ|w| per neuron at k = 1
    a1 = c1 * gu * settle * (row + np.abs(bias)) + np.abs(_flat(d.bias_v, n)) / gain
    spiking = node.spiking
    theta = _flat(node.v_threshold, n) if spiking else np.zeros(n)
    v_reset = _flat(node.v_reset, n) if spiking else np.zeros(n)
    k = min(A_MAX_MV / max(float(a1.max(initial=0)), 1e-12), 16384.0 / max(float(w_row1.max(initial=0)), 1e-12),
            A_MAX_MV / max(float(np.abs(theta).max(initial=0)), float(np.abs(v_reset).max(initial=0)), 1e-12))
    c = k * c1
    bv = k * _flat(d.bias_v, n)
    params = {"cm": tm * (1.0 - beta_f) / gain, "tau_m": tm, "v_rest": bv / (1.0 - beta_f),
              "v_reset": k * v_reset, "v_thresh": k * theta if spiking else np.full(n, V_NEVER),
              "tau_syn_E": ts, "tau_syn_I": ts.copy(), "tau_refrac": np.zeros(n),
              "i_offset": c * gu * settle * bias if cuba else c * bias}
    if np.any(np.isclose(ts, tm, rtol=1e-6)):
        ts = np.where(np.isclose(ts, tm, rtol=1e-6), ts * (1 + 1e-5), ts)  # keep β ≠ α (psc_scale's pole)
        params["tau_syn_E"], params["tau_syn_I"] = ts, ts.copy()
    spinn = {"tau_m": tm_sp, "cm": tm_sp * (1.0 - beta_q) / gain, "v_rest": bv / (1.0 - beta_q)}
    weights = {key: (c * gu / init)[:, None] * M for key, M in groups.items()}
    exc = sum(np.clip(w, 0, None).sum(axis=1) for w in weights.values()) if weights else np.zeros(n)
    inh = sum(np.clip(-w, 0, None).sum(axis=1) for w in weights.values()) if weights else np.zeros(n)
    pop = Population(name, tuple(shape), "IF_curr_exp", spiking, "spikes" if spiking else "v",
                     {k2: np.asarray(v, np.float64) for k2, v in params.items()},
                     {k2: np.asarray(v, np.float64) for k2, v in spinn.items()}, psc_scale(tm, ts, dt_ms),
                     float(k), lag,
                     (float(np.max(exc, initial=0)), float(np.max(inh, initial=0))), int(max_atoms))
    return pop, weights


def psc_scale(tau_m: np.ndarray, tau_s: np.ndarray, dt_ms: float) -> np.ndarray:
    """Weight factor that gives NEST's/brian2's exact integration SpiNNaker's per-step response.

    A spike of weight w makes ``V_k = w·(τs τm / (cm (τm − τs)))·(β^k − α^k)`` in continuous time
    (k steps after it lands) and ``(1 − β) R w init · (β^k − α^k)/(β − α)`` on SpiNNaker's tick
    (β = e^(−dt/τm), α = e^(−dt/τs)): the same shape, amplitudes in the ratio
    ``ρ = dt (β − α) / ((τm − τs)(1 − β)(1 − α))``. Float simulators use ``w / ρ``."""
    b, a = np.exp(-dt_ms / tau_m), np.exp(-dt_ms / tau_s)
    rho = dt_ms * (b - a) / ((tau_m - tau_s) * (1.0 - b) * (1.0 - a))
    return 1.0 / rho


def _split(src: str, dst: str, d: int, w: np.ndarray, delay: int) -> list[Projection]:
    """Two FromList projections: w > 0 excitatory, w < 0 inhibitory (negative, PyNN's rule)."""
    out = []
    base = f"{src}->{dst}" + (f"@{d}" if d else "")
    for receptor, mask in (("excitatory", w > 0), ("inhibitory", w < 0)):
        # sorted by (pre, post): sPyNNaker 7.4.1's FromListConnector row-length estimate
        # (``__numpy_group``) splits the *unsorted* list at split points of the sorted one, so an
        # unsorted list over-counts synapses per row and fails with SynapseRowTooBigException
        pre, post = np.nonzero(mask.T)
        if post.size:
            out.append(Projection(f"{base}:{receptor[:3]}", src, dst, receptor, pre.astype(np.int32),
                                  post.astype(np.int32), w[post, pre].astype(np.float64), delay, d))
    return out


def _outputs(graph: Graph) -> dict[str, dict[str, str]]:
    out = {}
    for o in graph.outputs:
        src = graph.predecessors(o)[0]
        while isinstance(graph.nodes[src], Flatten):
            src = graph.predecessors(src)[0]
        node = graph.nodes[src]
        out[o] = {"population": src, "values": "spikes" if node.spiking or isinstance(node, Input) else "v"}
    return out


def _notes(graph: Graph) -> list[str]:
    kinds = {type(nd).__name__ for nd in graph.nodes.values()}
    notes = []
    if kinds & {"IF", "I"}:
        notes.append("IF/I neurons: tau_m = 1e6 dt on float simulators, 2048 dt on SpiNNaker (a leak of "
                     "17/32768 per step: expk's resolution)")
    if kinds & {"CubaLIF", "CubaLI"} and any(isinstance(n, Affine) and np.any(n.bias) for n in graph.nodes.values()):
        notes.append("Affine bias into a Cuba neuron: i_offset at the current's steady state (exact after it settles)")
    return notes


def output_problems(graph: Graph) -> list[str]:
    """Outputs that are not a population (or a Flatten of one)."""
    found = []
    for o in graph.outputs:
        src = graph.predecessors(o)[0]
        while isinstance(graph.nodes[src], Flatten):
            src = graph.predecessors(src)[0]
        if not isinstance(graph.nodes[src], (Input,) + NEURONS):
            found.append(f"output '{o}' reads '{src}' ({graph.nodes[src].kind}), not a neuron layer")
    return found


__all__ = ["NEURONS", "T0", "compose", "lower", "neuron_population", "output_problems", "problems"]
