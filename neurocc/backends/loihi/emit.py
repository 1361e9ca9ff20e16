"""The compile hook's work: ``network.net`` (when netx expresses the graph exactly) and ``loihi.json``.

``loihi.json`` always lists, per graph node, whether it is in the written file, expressible, or
not (and why), the netx layer table, how to load and drive the file, the timing note, what the
Lava-process path cannot run (``lava.problems``) and the placement (per chip, core-ordered
``[layer, box]`` slices: the hardware grouping; the CPU simulation runs one Lava process per
population, see docs/backends/loihi.md).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from neurocc.ir.graph import Graph

from .lower import problems as lava_problems
from .netx import BIAS_START_PROBLEM, plan_netx
from .netx_file import NET_FILE, SIDECAR, sidecar, write_json, write_net

MAPPING_FILE = "mapping.json"  # the compile pipeline's mapping report (docs/artifact-format.md §6)


def placement_summary(directory: Path, target: Any) -> dict[str, Any] | None:
    """Target, fit, cores, chips and the per-chip slice grouping (None without limits to map on)."""
    if target is None or getattr(target, "backend", None) != "loihi":
        return None
    try:  # written by the compile pipeline before the backend's files (neurocc/compiler/mapping.py)
        doc = json.loads((directory / MAPPING_FILE).read_text())
    except (OSError, ValueError):
        return None
    return {"target": target.name, "fits": doc.get("fits"), "cores": doc.get("cores"), "chips": doc.get("chips"),
            "binding": doc.get("binding"), "slices": (doc.get("placement") or {}).get("slices")}


_WARNED: set[str] = set()   # graphs already warned about in this process (a budget search compiles many trials)


def _warn_once(name: str, problems: list[str]) -> None:
    """One short warning per graph and process: the first problem, the count, where the rest are."""
    if name in _WARNED:
        return
    _WARNED.add(name)
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    hint = ""
    if all(BIAS_START_PROBLEM in p for p in problems):   # the flag would then give a network.net
        hint = ("; `--bias-from-step-zero` (Python: bias_from_step_zero=True) writes one, the biases then "
                "acting from step 0 as in netx")
    warnings.warn(f"network.net (lava-dl netx) not written for '{name}': netx cannot express it exactly: "
                  f"{problems[0]}{more}{hint}; `--backend loihi` still runs it; details in {SIDECAR}",
                  UserWarning, stacklevel=4)


def emit(directory: Path, graph: Graph, target: Any) -> list[Path]:
    """Write the loihi backend's files into ``directory``; return their paths."""
    plan = plan_netx(graph)
    written = []
    if plan.expressible:
        written.append(write_net(plan, directory / NET_FILE))
    else:
        _warn_once(graph.name, plan.problems)
    doc = sidecar(graph, plan, bool(written), lava_problems(graph), placement_summary(directory, target))
    written.append(write_json(directory / SIDECAR, doc))
    return written
