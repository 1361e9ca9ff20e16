"""The reading options of :func:`.netx.read_netx` (``netx.hdf5.Network``'s arguments): their
check, and ``skip_layers`` applied to the read graph.

``reset_offset`` and ``reset_schedule`` other than ``lava`` need a ``reset_interval``; the
schedule is one of :data:`neurocc.ir.numerics.reset.RESET_SCHEDULES` and ``variant`` one of the
sigma-delta rules :data:`neurocc.ir.numerics.sigma_delta.VARIANTS`. All problems are listed in
one ModelLoadError naming the file.
"""
from __future__ import annotations

from pathlib import Path

from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Input


def check_options(path: Path, reset_interval: int | None, reset_offset: int, variant: str,
                   reset_schedule: str = "lava") -> None:
    """Refuse options that do not fit together, every problem at once (ModelLoadError)."""
    from neurocc.ir.numerics.reset import RESET_SCHEDULES
    from neurocc.ir.numerics.sigma_delta import VARIANTS

    problems = []
    if reset_offset and not reset_interval:
        problems.append(f"reset_offset={reset_offset} without reset_interval: there is no periodic reset to shift")
    if reset_schedule not in RESET_SCHEDULES:
        problems.append(f"reset_schedule={reset_schedule!r} is not one of {', '.join(RESET_SCHEDULES)}")
    elif reset_schedule != "lava" and not reset_interval:
        problems.append(f"reset_schedule={reset_schedule!r} without reset_interval: there is no periodic reset "
                        "to schedule")
    if variant not in VARIANTS:
        problems.append(f"variant={variant!r} is not a sigma-delta numerics rule ({', '.join(VARIANTS)})")
    if problems:
        raise ModelLoadError("the netx reading options do not fit together", where=str(path), problems=problems,
                             fix="pass reset_interval (CLI --reset-interval) with reset_offset or "
                                 "reset_schedule (CLI --reset-schedule lava|chip), and variant "
                                 "lava-0.10 or lava-pr875 (CLI --sigma-delta)")


def drop_layers(graph: Graph, path: Path, k: int) -> Graph:
    """netx's ``skip_layers``: drop layers 0..k−1; a new ``input`` (the last dropped layer's
    output shape) feeds what that layer fed."""
    last = f"layer{k - 1}"
    if last not in graph.nodes:
        raise ModelLoadError(f"skip_layers={k}: layer {k - 1} is not a block with a neuron", where=str(path),
                             fix="skip whole blocks (e.g. skip_layers=1 drops the input layer)")
    keep, stack = set(), ["output"]
    while stack:  # everything downstream of the skipped layer, walking back from the output
        n = stack.pop()
        if n in keep or n == last:
            continue
        keep.add(n)
        stack.extend(graph.predecessors(n))
    shape = graph.shapes()[last]
    nodes = {"input": Input(shape=shape), **{n: v for n, v in graph.nodes.items() if n in keep and n != "input"}}
    edges = [Edge("input" if e.src == last else e.src, e.dst, e.delay) for e in graph.edges
             if e.dst in keep and (e.src in keep or e.src == last)]
    return graph.replace(nodes=nodes, edges=tuple(edges))
