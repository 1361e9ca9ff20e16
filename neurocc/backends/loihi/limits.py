"""The target's resource limits for the loihi backend (loihi1, loihi2 in targets.yaml).

A graph that does not fit its target is refused with the mapping report
(:func:`neurocc.compiler.mapping.mapping_report`: the binding constraint, the ranked fixes and
the per-layer table) before any Lava process starts: Lava itself would run it happily on the
CPU, which would prove nothing about the chip. Targets whose backend is not ``loihi`` (e.g.
``emulator``, which has no limits) are not checked.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neurocc.errors import BackendError, NeuroccError
from neurocc.ir.graph import Graph


def target_from_settings(settings: Mapping[str, Any] | None) -> Any:
    """The Target as compiled, rebuilt from an artifact manifest's ``target.settings`` (None when
    there are none or they do not describe a Target)."""
    if not settings:
        return None
    from neurocc.targets import Energy, Limits, Target, Validation

    s = dict(settings)
    try:
        return Target(**{**s, "limits": Limits(**s.get("limits", {})), "energy": Energy(**s.get("energy", {})),
                         "validation": Validation(**s.get("validation", {})),
                         "reset_modes": tuple(s.get("reset_modes", ("zero",))),
                         "supported": tuple(s.get("supported", ()))})
    except TypeError:
        return None


def _report(graph: Graph, target: Any) -> Any:
    from neurocc.compiler.mapping import mapping_report

    return mapping_report(graph, target)


def fit_problems(graph: Graph, target: Any) -> list[str]:
    """Empty when ``graph`` fits ``target`` (or the target is not a loihi one); else one line with
    the binding constraint and the best fixes."""
    if getattr(target, "backend", None) != "loihi":
        return []
    try:
        report = _report(graph, target)
    except NeuroccError as err:
        return [f"graph '{graph.name}' cannot be mapped onto target '{target.name}': {err.what}"]
    if report.fits:
        return []
    b = report.binding
    fixes = "; ".join(f"{f.action} ({f.effect})" for f in report.fixes[:3]) or "see `neurocc plan`"
    binding = b.text() if b else "a limit is exceeded"
    return [f"graph '{graph.name}' does not fit target '{target.name}': {binding}; fixes: {fixes}"]


def refuse_unfit(graph: Graph, target: Any) -> None:
    """BackendError with the mapping report when ``graph`` does not fit a loihi ``target``."""
    if getattr(target, "backend", None) != "loihi":
        return
    try:
        report = _report(graph, target)
    except NeuroccError as err:
        raise BackendError(f"graph '{graph.name}' cannot be mapped onto target '{target.name}'",
                           where="backend 'loihi'", problems=[str(err)],
                           fix="see `neurocc plan MODEL --target ...`") from err
    if report.fits:
        return
    b = report.binding
    fixes = [f"{f.action}: {f.effect}" for f in report.fixes[:3]]
    raise BackendError(f"graph '{graph.name}' does not fit target '{target.name}': "
                       f"{b.text() if b else 'a limit is exceeded'}", where="backend 'loihi'",
                       problems=report.format_table().splitlines(),
                       fix="; or ".join(fixes) if fixes else "use a larger target (see `neurocc plan MODEL`)")
