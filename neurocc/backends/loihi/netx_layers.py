"""The netx plan as data: one :class:`NetxLayer` per ``/layer/<index>`` group, the whole
:class:`NetxPlan` (layers, feeds, readouts, problems), and its per-layer table for ``loihi.json``.

Made by :func:`.netx.plan_netx`, written by :mod:`.netx_file`, run by :mod:`.netx_run`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .plan import Feed, Readout, lava_shape


@dataclass(frozen=True)
class NetxLayer:
    """One ``/layer/<index>`` group. ``block``: its position in ``Network.layers`` (None for
    ``flatten`` and a shape-only ``input``); ``data``: datasets (arrays or ints); ``neuron``: the
    ``neuron/`` group (None: none); ``nodes``: the graph nodes it implements."""

    index: int
    type: str
    shape: tuple[int, ...]
    nodes: tuple[str, ...]
    block: int | None = None
    neuron_node: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    neuron: Mapping[str, Any] | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NetxPlan:
    """The netx layers of a graph, how to drive and read them, and every reason it cannot be
    written (``problems``; empty when the file is exact)."""

    name: str
    layers: tuple[NetxLayer, ...]
    feeds: tuple[Feed, ...]
    feed_port: str                      # "neuron" (a_in of block 0) or "synapse" (s_in of block 0)
    input_message_bits: int
    readouts: tuple[Readout, ...]
    problems: tuple[str, ...]

    @property
    def expressible(self) -> bool:
        return not self.problems

    def probes(self) -> list[tuple[int, str]]:
        """(block index, var) for every readout, without repeats."""
        out: list[tuple[int, str]] = []
        for r in self.readouts:
            key = (int(r.proc), r.var)
            if key not in out:
                out.append(key)
        return out


def layer_table(plan: NetxPlan) -> list[dict[str, Any]]:
    """Per layer: index, type, shape (PyTorch order), Lava shape, nodes, neuron group, weight notes."""
    return [{"index": lay.index, "type": lay.type, "shape": list(lay.shape), "lava_shape": list(lava_shape(lay.shape)),
             "nodes": list(lay.nodes), "block": lay.block, "neuron": dict(lay.neuron) if lay.neuron else None,
             **dict(lay.info)} for lay in plan.layers]
