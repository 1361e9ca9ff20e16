"""Parameter values a model file can hold but no chip can compute: checked at the boundary.

NaN or infinite weights, biases, thresholds or time constants make every later step meaningless
(the quantizer cannot round them), so :func:`check_finite` refuses them before compiling, naming
each node and parameter. :func:`warn_suspicious` warns (at load, so ``inspect`` still shows the
graph) about values that are legal but almost certainly a mistake: non-finite values and
thresholds of 0 (a neuron that fires on any positive input). Negative or zero time constants are
refused by :mod:`neurocc.ir.verify`.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from neurocc.errors import CompileError

THRESHOLDS = ("v_threshold", "threshold")
MAX_ABS = 1e30  # beyond any chip's range (float32 ends at 3.4e38; products of two such values overflow it)


def _arrays(node: Any) -> list[tuple[str, np.ndarray]]:
    if not dataclasses.is_dataclass(node):
        return []
    out = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, np.ndarray) and value.dtype.kind in "fc" and value.size:
            out.append((f.name, value))
    return out


def non_finite(graph: Any) -> list[str]:
    """One line per node parameter holding NaN or infinite values."""
    problems = []
    for name, node in graph.nodes.items():
        for param, value in _arrays(node):
            finite = np.isfinite(value)
            if not finite.all():
                problems.append(f"node '{name}' ({node.kind}): {param} holds {int(np.isnan(value).sum())} NaN and "
                                f"{int(np.isinf(value).sum())} infinite value(s) of {value.size}")
            elif np.abs(value).max() > MAX_ABS:
                problems.append(f"node '{name}' ({node.kind}): {param} reaches {np.abs(value).max():.3g}, beyond "
                                f"{MAX_ABS:g} (no chip represents it)")
    return problems


def zero_thresholds(graph: Any) -> list[str]:
    return [f"node '{name}' ({node.kind}): {param} is 0 for {int((value == 0).sum())} of {value.size} neurons "
            "(they fire on any positive input)"
            for name, node in graph.nodes.items() for param, value in _arrays(node)
            if param in THRESHOLDS and np.any(value == 0)]


def warn_suspicious(graph: Any, where: str) -> None:
    """Warn (one warning per kind) about non-finite parameters and zero thresholds."""
    for problems, what in ((non_finite(graph), "NaN, infinite or huge parameters (compile will refuse them)"),
                           (zero_thresholds(graph), "thresholds of 0")):
        if problems:
            warnings.warn(f"{where}: {what}: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
                          stacklevel=3)


def check_finite(graph: Any, where: str) -> None:
    """CompileError listing every node parameter that holds NaN or infinite values."""
    problems = non_finite(graph)
    if problems:
        raise CompileError("the model holds NaN, infinite or huge parameters, which no target can compute",
                           where=where, problems=problems,
                           fix="retrain or re-export the model (a training run that diverged leaves NaN weights); "
                               "check the values with `neurocc inspect`")
