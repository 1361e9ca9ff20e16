"""Partition pass: cut every neuron layer into slices that each fit one core of the target.

``partition(graph, target) -> Partition``. A slice is a box of the layer's view shape
``(C, *spatial)`` (a contiguous neuron range whenever the block is whole channels or rows; see
:mod:`neurocc.compiler.slicing`). Limits come from ``target.limits`` (None = unlimited):
``neurons_per_core``, ``synapse_memory_bits_per_core``, ``fan_in_axons_per_core``,
``fan_out_axons_per_core`` per core and ``max_delay_steps`` per connection; chips, cores per chip,
SDRAM and routing entries are checked by the place pass.

Rules (documented in docs/mapping.md):

* synapses are stored at the postsynaptic layer's cores; synaptic memory of a slice is
  ``expanded synapses × bits_per_synapse`` where ``bits_per_synapse = limits.bits_per_synapse +
  (w − limits.weight_bits)`` (index overhead kept, weight field ``w`` bits) or ``w`` when the
  target gives no ``bits_per_synapse``. ``w`` is the real width of a quantized weight op
  (``QDense.num_weight_bits``, the integer kernel's range for ``QConv2d``), else the target's
  ``weight_bits``, lowered by the ``weight_bits=`` override when given;
* targets that store conv kernels once per core (``shared_conv_kernels``; default: the
  ``spinnaker`` numerics, whose sPyNNaker local-only convolution keeps one kernel per core)
  count ``out channels × kernel weights × w`` for conv/pool paths, and ``rows × in_features × w``
  for a dense op after pooling (sPyNNaker's PoolDenseConnector);
* Input nodes are spike sources: off-chip (not on cores) unless ``inputs_use_cores`` (default:
  the ``spinnaker`` numerics, where a SpikeSourceArray population is placed on cores and
  limited by ``neurons_per_core``).

Deterministic: layers are handled in reverse topological order (so the slices of every
postsynaptic layer are known when a layer's fan-out is checked), blocks are tried in a fixed
order, and nothing depends on hash order or randomness.
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from neurocc.compiler import sparsity
from neurocc.compiler.connectivity import Conn, Network, analyse
from neurocc.compiler.slicing import Block, CoreBudget, LayerCalc, _contiguous, choose_block, no_gc, sizes
from neurocc.ir.graph import Graph
from neurocc.ir.types import Shape
from neurocc.targets import Limits, Target


@dataclass(frozen=True)
class Usage:
    """What one slice uses of its core."""

    neurons: int
    synapses: int
    synapse_memory_bits: int
    fan_in_axons: int
    fan_out_axons: int

    @property
    def sdram_bytes(self) -> int:
        """Bytes of synaptic matrix (SDRAM on SpiNNaker): ceil(synapse_memory_bits / 8)."""
        return -(-self.synapse_memory_bits // 8)


@dataclass(frozen=True)
class Slice:
    """Neurons ``box`` (one ``(start, stop)`` per view axis) of ``layer``, numbered ``index``."""

    layer: str
    index: int
    box: tuple[tuple[int, int], ...]
    usage: Usage

    @property
    def n_neurons(self) -> int:
        return int(np.prod([b - a for a, b in self.box], dtype=np.int64))

    def indices(self, view: Shape) -> np.ndarray:
        """Flat (C-order) indices of the slice's neurons in the layer (vectorised)."""
        strides = np.cumprod((1, *view[::-1]))[:-1][::-1]
        idx = np.zeros((), np.int64)
        for (a, b), s in zip(self.box, strides):
            idx = np.add.outer(idx, np.arange(a, b, dtype=np.int64) * s)
        return idx.ravel()


@dataclass(frozen=True)
class LayerPartition:
    """The slices of one layer. ``block`` is the box size (the last box per axis may be
    smaller); ``on_cores`` is False for spike sources kept off-chip; ``contiguous`` says every
    slice is one flat neuron range (``range_of``)."""

    name: str
    kind: str
    shape: Shape
    view: Shape
    block: Block
    slices: tuple[Slice, ...]
    on_cores: bool
    contiguous: bool

    @property
    def n_neurons(self) -> int:
        return int(np.prod(self.view, dtype=np.int64))

    @property
    def max_neurons_per_core(self) -> int:
        return int(np.prod(self.block, dtype=np.int64))

    def range_of(self, s: Slice) -> tuple[int, int] | None:
        """(start, stop) flat neuron range of a slice when the layer is contiguous."""
        if not self.contiguous:
            return None
        idx = s.indices(self.view)
        return int(idx[0]), int(idx[-1]) + 1


@dataclass(frozen=True)
class Violation:
    """A limit the network cannot meet: ``needed`` of ``resource`` against ``available``.
    ``scope``: per ``core`` (even the smallest slice exceeds it), per ``chip``, or ``network``
    (cores / chips in total)."""

    resource: str
    needed: float
    available: float
    layer: str | None = None
    scope: Literal["core", "chip", "network", "connection"] = "core"
    detail: str = ""

    @property
    def ratio(self) -> float:
        return self.needed / self.available if self.available else float("inf")


@dataclass(frozen=True, eq=False)
class Partition:
    target: Target
    layers: Mapping[str, LayerPartition]
    network: Network
    violations: tuple[Violation, ...] = ()
    weight_bits: int | None = None
    shared_conv_kernels: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", types.MappingProxyType(dict(self.layers)))

    @property
    def slices(self) -> tuple[Slice, ...]:
        """Every slice that occupies a core, layer by layer in network order."""
        return tuple(s for lp in self.layers.values() if lp.on_cores for s in lp.slices)

    @property
    def cores(self) -> int:
        return len(self.slices)


def inputs_use_cores(target: Target) -> bool:
    """Spike sources occupy cores (``limits.inputs_use_cores``, else the spinnaker numerics)."""
    v = getattr(target.limits, "inputs_use_cores", None)
    return bool(v) if v is not None else target.numerics == "spinnaker"


def shared_conv_kernels(target: Target) -> bool:
    """Conv kernels stored once per core (``limits.shared_conv_kernels``, else spinnaker numerics)."""
    v = getattr(target.limits, "shared_conv_kernels", None)
    return bool(v) if v is not None else target.numerics == "spinnaker"


def conn_bits(c: Conn, limits: Limits, override: int | None) -> tuple[int, int]:
    """(bits per expanded synapse, weight bits) for connection ``c`` (rules in the module doc)."""
    w = c.weight_bits or limits.weight_bits
    if override is not None:
        w = min(w, override)
    per_syn = limits.bits_per_synapse + (w - limits.weight_bits) if limits.bits_per_synapse else w
    return max(per_syn, 1), max(w, 1)


def partition(graph: Graph, target: Target, *, weight_bits: int | None = None) -> Partition:
    """Slice every layer of ``graph`` to fit one core of ``target`` (pure; never raises for a
    network that does not fit: the result lists its :class:`Violation` s)."""
    with no_gc():
        return _partition(graph, target, weight_bits)


def _partition(graph: Graph, target: Target, weight_bits: int | None) -> Partition:
    net = analyse(graph)
    lim = target.limits
    budget = CoreBudget(lim.neurons_per_core, lim.synapse_memory_bits_per_core,
                        lim.fan_in_axons_per_core, lim.fan_out_axons_per_core)
    on_cores = {n: (not layer.is_input) or inputs_use_cores(target) for n, layer in net.layers.items()}
    bits = {id(c): conn_bits(c, lim, weight_bits) for c in net.conns}
    shared = shared_conv_kernels(target)
    enc = lim.synapse_encoding
    cache: dict = {}   # sparse/encoded per-slice grids, shared by the block search and the final usage
    blocks, unfixable = _choose_all(net, budget, on_cores, bits, shared, enc, cache)
    layers = {n: _layer_partition(net, n, blocks, bits, shared, on_cores[n], enc, cache) for n in net.order}
    violations = [Violation(r, v, budget.get(r) or 0, n, "core",
                            "even the smallest slice needs more than one core has")
                  for n, found in unfixable.items() for r, v in found.items()]
    violations += _delay_violations(net, lim)
    violations += _row_violations(net, blocks, lim)
    return Partition(target, layers, net, tuple(violations), weight_bits, shared)


def _choose_all(net: Network, budget: CoreBudget, on_cores: dict[str, bool],
                bits: dict[int, tuple[int, int]], shared: bool, enc: str | None,
                cache: dict | None = None) -> tuple[dict[str, Block], dict]:
    """Blocks for every layer, reverse topological; layers whose fan-out saw an unsliced
    successor (a recurrent cycle) are revisited until nothing changes (at most 4 rounds)."""
    blocks: dict[str, Block] = {}
    unfixable: dict[str, dict[str, float]] = {}
    dirty = list(reversed(net.order))
    for _ in range(4):
        again: list[str] = []
        for name in dirty:
            if not on_cores[name]:
                blocks[name] = tuple(net.layers[name].view)
                continue
            calc = LayerCalc(net, name, blocks, bits, shared, encoding=enc, cache=cache)
            choice = choose_block(calc, budget)
            prev = blocks.get(name)
            changed = prev is not None and prev != choice.block
            blocks[name] = choice.block
            unfixable.pop(name, None)
            if choice.unfixable:
                unfixable[name] = choice.unfixable
            if calc.ignored_outs:
                again.append(name)
            if changed:
                again.extend(c.pre for c in net.into(name) if c.pre != name and on_cores[c.pre])
        dirty = [n for n in reversed(net.order) if n in set(again)]
        if not dirty:
            break
    return blocks, unfixable


def _layer_partition(net: Network, name: str, blocks: dict[str, Block], bits: dict[int, tuple[int, int]],
                     shared: bool, on_cores: bool, enc: str | None = None, cache: dict | None = None) -> LayerPartition:
    """Exact per-slice usage from the separable terms (one value per slice, C-order)."""
    layer = net.layers[name]
    block = blocks[name]
    calc = LayerCalc(net, name, blocks, bits, shared, count_fan_out=on_cores, encoding=enc, cache=cache)
    terms = calc.terms(block)
    grid = tuple(len(sizes(n, b)) for n, b in zip(layer.view, block))
    vals = {r: np.rint(LayerCalc.exact(t, grid)).astype(np.int64) if t else np.zeros(int(np.prod(grid)), np.int64)
            for r, t in terms.items()}
    starts = [np.arange(0, n, b) for n, b in zip(layer.view, block)]
    slices = []
    for k, corner in enumerate(np.ndindex(*grid)):
        box = tuple((int(s[i]), int(min(s[i] + b, n))) for s, i, b, n in zip(starts, corner, block, layer.view))
        usage = Usage(int(vals["neurons"][k]), int(vals["synapses"][k]), int(vals["synapse_memory_bits"][k]),
                      int(vals["fan_in_axons"][k]), int(vals["fan_out_axons"][k]))
        slices.append(Slice(name, k, box, usage))
    contig = bool(_contiguous(np.asarray([block]), np.asarray(layer.view))[0])
    return LayerPartition(name, layer.kind, layer.shape, layer.view, block, tuple(slices), on_cores, contig)


def _delay_violations(net: Network, lim: Limits) -> list[Violation]:
    if lim.max_delay_steps is None:
        return []
    return [Violation("delay_steps", c.delay_steps, lim.max_delay_steps, c.post, "connection",
                      f"path {c.pre} -> {c.post} delays spikes by {c.delay_steps} steps")
            for c in net.conns if c.delay_steps > lim.max_delay_steps]


def _row_violations(net: Network, blocks: dict[str, Block], lim: Limits) -> list[Violation]:
    """Synaptic rows longer than ``max_synapses_per_row`` (one pre neuron's synapses into one core)."""
    if lim.max_synapses_per_row is None:
        return []
    out = []
    for c in net.conns:
        if c.kind != "full" or c.post not in blocks:
            continue
        view, block = net.layers[c.post].view, blocks[c.post]
        n_slices = int(np.prod(sparsity.grid_of(view, block)))
        longest = int(sparsity.longest_row(sparsity.axon_lists(c.sparse, c.n_pre, view, block), n_slices).max(initial=0))
        if longest > lim.max_synapses_per_row:
            out.append(Violation("synapses_per_row", longest, lim.max_synapses_per_row, c.post, "core",
                                 f"path {c.pre} -> {c.post}: one presynaptic neuron has {longest} synapses "
                                 f"into one core; lower neurons_per_core or prune the connection"))
    return out
