"""Discretize: fix the time step ``dt`` and the integration ``method`` of a float graph.

NIR describes neurons by ODEs and carries no ``dt``. This pass records ``dt`` (seconds per step)
and the method on the graph, checks that the combination is stable, and leaves every NIR
parameter in place. The per-step coefficients are computed by ONE function,
:func:`decay_factors`, used by the float reference simulator (emulator on a float graph) and by
the quantize pass alike, so both discretise identically.

The per-step coefficients and update equations are in :mod:`neurocc.ir.discrete`
(:func:`~neurocc.ir.discrete.decay_factors`).

Stability: Euler with τ < dt gives α < 0 (the state flips sign every step); the pass refuses
it, naming the node and the numbers. τ == dt gives α = 0 (no memory; snnTorch's ``beta = 0``)
and is accepted, also when τ differs from dt only by float32 rounding (e.g. τ = 0.00099999994 for
dt = 1 ms; :func:`neurocc.ir.discrete.same_as_dt`).
"""
from __future__ import annotations

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.discrete import NEURON_TYPES, Decays, decay_factors, same_as_dt  # noqa: F401  (re-exported)
from neurocc.ir.nodes import Node
from neurocc.ir.types import Method


def _time_constants(node: Node) -> dict[str, np.ndarray]:
    return {k: getattr(node, k) for k in ("tau", "tau_mem", "tau_syn") if hasattr(node, k)}


def stability_problems(graph: Graph, dt: float, method: Method) -> list[str]:
    """Every neuron whose Euler step would overshoot (τ < dt), with the numbers."""
    if method is not Method.EULER:
        return []
    found = []
    for name, node in graph.nodes.items():
        for key, tau in _time_constants(node).items():
            bad = (np.asarray(tau) < dt) & ~same_as_dt(tau, dt)
            if np.any(bad):
                low = float(np.min(np.asarray(tau)[bad]))
                digits = 6 if f"{low:.6g}" != f"{dt:.6g}" else 12
                found.append(
                    f"node '{name}' ({node.kind}): {key} = {low:.{digits}g} s < dt = {dt:.{digits}g} s "
                    f"({int(bad.sum())} of {bad.size} neurons): Euler decay 1 − dt/τ = "
                    f"{1 - dt / low:.4g} < 0 flips the sign of the state every step")
    return found


def discretize(graph: Graph, dt: float, method: Method | str = Method.EULER) -> Graph:
    """Return ``graph`` with ``dt`` and ``method`` recorded (parameters unchanged).

    Raises CompileError for a non-positive dt, an unknown method, or an unstable Euler step.
    """
    try:
        method = Method(method)
    except ValueError:
        raise CompileError(f"unknown discretisation method {method!r}", where="discretize",
                           fix=f"use one of: {', '.join(m.value for m in Method)}") from None
    if not (isinstance(dt, (int, float, np.integer, np.floating)) and not isinstance(dt, bool)
            and np.isfinite(dt) and dt > 0):
        raise CompileError(f"dt must be a positive number of seconds, got {dt!r}", where="discretize",
                           fix="pass --dt with a value such as 1e-3")
    if graph.dt is not None and graph.method is not None and (graph.dt, graph.method) != (float(dt), method):
        raise CompileError(f"graph '{graph.name}' is already discretised at dt={graph.dt}, "
                           f"method={graph.method.value}", where="discretize",
                           fix="discretise the original float graph once")
    problems = stability_problems(graph, float(dt), method)
    if problems:
        raise CompileError(f"dt = {dt:.6g} s is too long for forward Euler in graph '{graph.name}'",
                           where="discretize", problems=problems,
                           fix="use a smaller dt (--dt, at most the smallest τ), or the exact method "
                               "(Python: neurocc.compile(..., method='exact'))")
    return graph.replace(dt=float(dt), method=method)
