"""Per-core resource arithmetic for box-shaped slices of one layer, and the block-size search.

A layer of view shape ``(n_0, ..., n_{d-1})`` is cut into boxes by a **block** ``(b_0, ...)``:
along axis ``i`` the ranges ``[k·b_i, min((k+1)·b_i, n_i))``; slices are the C-order product of
the ranges. Every per-slice resource is a sum of separable **terms**
``scale · Π_i a_i[k_i]`` (``a_i`` one value per range of axis ``i``), so

* the exact per-slice value over all slices is ``Σ scale · outer(a_0, a_1, ...)`` (one number per
  slice, no per-neuron work), and
* a cheap upper bound on the largest slice is ``Σ scale · Π_i max(a_i)`` (exact for one term).

Resources per slice (``T`` = the slice, ``R(T)`` its receptive field in the source layer):

* ``neurons`` = |T|;
* ``synapses`` = Σ_conn Σ_{j∈T} |R(j)| (expanded: the synaptic events one presynaptic spike
  wave can cause; dense: |T|·n_pre; conv: kernel footprint per output position, less padding);
* ``synapse_memory_bits`` = expanded synapses × bits per synapse, or, where the chip shares conv
  kernels, (output channels in T) × (kernel weights per channel) × weight bits;
* ``fan_in_axons`` = Σ_conn |R(T)| (distinct presynaptic neurons);
* ``fan_out_axons`` = Σ_{n∈T} Σ_conn (number of slices of the postsynaptic layer that n feeds).

Sparse connections (zero weights, :mod:`neurocc.compiler.sparsity`) are not separable: their
per-slice values are one array over the slice grid (a term with a single grid-shaped array, so
``exact`` is exact and ``bound`` is the true maximum), computed with one pass over the non-zeros;
so is synapse memory under a target's ``synapse_encoding``.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from neurocc.compiler import sparsity
from neurocc.compiler.connectivity import Conn, Network

RESOURCES = ("neurons", "synapse_memory_bits", "fan_in_axons", "fan_out_axons")
Term = tuple[float, list[np.ndarray]]
Block = tuple[int, ...]


@dataclass(frozen=True)
class CoreBudget:
    """Per-core limits the slicing must respect (None = unlimited)."""

    neurons: int | None = None
    synapse_memory_bits: int | None = None
    fan_in_axons: int | None = None
    fan_out_axons: int | None = None

    def get(self, resource: str) -> int | None:
        return getattr(self, resource, None)


@functools.lru_cache(maxsize=8192)
def sizes(n: int, b: int) -> np.ndarray:
    """Lengths of the ranges of an axis of length n cut every b (read-only, cached)."""
    starts = np.arange(0, n, b, dtype=np.int64)
    out = np.minimum(starts + b, n) - starts
    out.setflags(write=False)
    return out


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for an allocation-heavy pass (restored after).

    The passes create no reference cycles; without this, collections that rescan every live
    object make the time grow faster than the network (measured: 1M-neuron dense net)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def block_sums(values: np.ndarray, b: int) -> np.ndarray:
    return np.add.reduceat(values, np.arange(0, values.size, b)) if values.size else values


class LayerCalc:
    """Resource terms for one layer under any candidate block.

    ``blocks`` holds the blocks already chosen for other layers (fan-out needs the slices of the
    postsynaptic layers); ``bits`` gives, per connection, (bits per expanded synapse, weight bits
    of a shared kernel); ``shared`` says whether the target stores conv kernels once per core;
    ``encoding`` is the target's synapse encoding for dense-op connections (None: expanded
    synapses × bits; see :mod:`neurocc.compiler.sparsity`). A sparse connection (``Conn.sparse``)
    counts only its non-zero synapses; its per-slice values are one array over the slice grid
    (a term with a single grid-shaped array: exact, and its max is the exact bound).
    """

    def __init__(self, net: Network, name: str, blocks: dict[str, Block],
                 bits: dict[int, tuple[int, int]], shared: bool, count_fan_out: bool = True,
                 encoding: str | None = None, cache: dict | None = None) -> None:
        self.net, self.name, self.blocks, self.bits, self.shared = net, name, blocks, bits, shared
        self.encoding = encoding
        self._shared = {} if cache is None else cache   # per-connection grids, reusable across calcs
        self.view = net.layers[name].view
        self.ins = net.into(name)
        self.outs = net.out_of(name) if count_fan_out else []
        self.ignored_outs = [c for c in self.outs if c.post != name and c.post not in blocks]
        self._cache: dict[tuple, np.ndarray] = {}

    # ----- terms --------------------------------------------------------------------------------
    def terms(self, block: Block) -> dict[str, list[Term]]:
        sz = [sizes(n, b) for n, b in zip(self.view, block)]
        out: dict[str, list[Term]] = {"neurons": [(1.0, sz)], "synapses": [],
                                      "synapse_memory_bits": [], "fan_in_axons": [], "fan_out_axons": []}
        for c in self.ins:
            syn_bits, w_bits = self.bits[id(c)]
            syn = self._syn(c, block, sz)
            out["synapses"].append(syn)
            out["synapse_memory_bits"].append(self._mem(c, block, sz, syn, syn_bits, w_bits))
            out["fan_in_axons"].append(self._rf(c, block))
        for c in self.outs:
            post_block = block if c.post == self.name else self.blocks.get(c.post)
            if post_block is not None:
                out["fan_out_axons"].append(self._fo(c, block, post_block, sz))
        return out

    def _grid(self, c: Conn, block: Block, what: str, fn) -> Term:
        key = (id(c), block, what)
        if key not in self._shared:
            self._shared[key] = fn()
        return 1.0, [self._shared[key]]

    def _syn(self, c: Conn, block: Block, sz: list[np.ndarray]) -> Term:
        if c.sparse is not None:
            return self._grid(c, block, "syn", lambda: sparsity.per_slice_synapses(c.sparse, self.view, block))
        if c.syn_counts is not None:
            return self._grid(c, block, "syn", lambda: sparsity.per_slice_sum(c.syn_counts, self.view, block))
        if c.kind == "full":
            return float(c.n_pre), sz
        return 1.0, [self._axis(c, i, b, "syn") for i, b in enumerate(block)]

    def _mem(self, c: Conn, block: Block, sz: list[np.ndarray], syn: Term, syn_bits: int, w_bits: int) -> Term:
        if self.shared and c.kind == "local" and c.shared_units:
            return float(c.shared_units * w_bits), [sz[0] if i == 0 else np.ones_like(s) for i, s in enumerate(sz)]
        if self.shared and c.kind == "full" and c.dense_in:
            return float(c.dense_in * w_bits), sz
        if self.encoding and c.kind == "full":
            return self._grid(c, block, f"mem{w_bits}", lambda: self._encoded(c, block, w_bits))
        return syn[0] * syn_bits, syn[1]

    def _encoded(self, c: Conn, block: Block, w_bits: int) -> np.ndarray:
        grid = sparsity.grid_of(self.view, block)
        lists = sparsity.axon_lists(c.sparse, c.n_pre, self.view, block)
        return sparsity.encoded_bits(lists, int(np.prod(grid)), self.encoding, w_bits).reshape(grid)

    def _rf(self, c: Conn, block: Block) -> Term:
        if c.sparse is not None:
            return self._grid(c, block, "rf", lambda: sparsity.per_slice_fan_in(c.sparse, self.view, block))
        if c.kind == "full":
            return float(c.n_pre), [np.ones(len(sizes(n, b)), np.int64) for n, b in zip(self.view, block)]
        return 1.0, [self._axis(c, i, b, "rf") for i, b in enumerate(block)]

    def _fo(self, c: Conn, block: Block, post_block: Block, sz: list[np.ndarray]) -> Term:
        post_view = self.net.layers[c.post].view
        if c.sparse is not None:
            return self._grid(c, (*block, -1, *post_block), "fo", lambda: sparsity.per_slice_fan_out(
                c.sparse, self.view, block, post_view, post_block))
        if c.kind == "full":
            n_post = int(np.prod([len(sizes(n, b)) for n, b in zip(post_view, post_block)]))
            return float(n_post), sz
        arrays = []
        for i, b in enumerate(block):
            key = (id(c), i, post_block[i], "fo")
            if key not in self._cache:
                m = c.axes[i]
                self._cache[key] = np.bincount(m.pairs(post_block[i]) % m.n_pre, minlength=m.n_pre)
            arrays.append(block_sums(self._cache[key], b))
        return 1.0, arrays

    def _axis(self, c: Conn, i: int, b: int, what: str) -> np.ndarray:
        key = (id(c), i, b, what)
        if key not in self._cache:
            m = c.axes[i]
            if what == "syn":
                self._cache[key] = block_sums(m.counts(), b)
            else:
                nb = len(sizes(m.n_post, b))
                self._cache[key] = np.bincount(m.pairs(b) // m.n_pre, minlength=nb)
        return self._cache[key]

    # ----- evaluation ---------------------------------------------------------------------------
    @staticmethod
    def bound(terms: list[Term]) -> float:
        return float(sum(s * math.prod(float(a.max(initial=0)) for a in arrs) for s, arrs in terms))

    @staticmethod
    def exact(terms: list[Term], grid: tuple[int, ...]) -> np.ndarray:
        total = np.zeros(grid, np.float64)
        for s, arrs in terms:
            prod = np.asarray(s, np.float64)
            for i, a in enumerate(arrs):
                prod = np.multiply.outer(prod, a.astype(np.float64)) if i else prod * a.astype(np.float64)
            total += prod
        return total.ravel()


def candidates(view: tuple[int, ...], max_neurons: int | None) -> np.ndarray:
    """Candidate blocks, best first: fewest slices, then contiguous flat ranges, then wider
    blocks on the outer axes. Each axis tries every distinct ceil(n/k)."""
    per_axis = [np.unique(-(-n // np.arange(1, n + 1)))[::-1] for n in view]
    grids = np.meshgrid(*per_axis, indexing="ij")
    blocks = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
    neurons = np.prod(blocks, axis=1)
    if max_neurons is not None:
        blocks, neurons = blocks[neurons <= max_neurons], neurons[neurons <= max_neurons]
    view_a = np.asarray(view, np.int64)
    n_slices = np.prod(-(-view_a // blocks), axis=1)
    contig = _contiguous(blocks, view_a)
    keys = [-blocks[:, i] for i in range(blocks.shape[1])][::-1] + [~contig, n_slices]
    return blocks[np.lexsort(keys)]


def _contiguous(blocks: np.ndarray, view: np.ndarray) -> np.ndarray:
    """A block is a flat C-order range when the axes before its first non-unit axis are 1 wide
    and the axes after it are full."""
    ok = np.ones(len(blocks), bool)
    seen = np.zeros(len(blocks), bool)
    for i in range(blocks.shape[1]):
        unit = (blocks[:, i] == 1) | (view[i] == 1)
        ok &= ~seen | (blocks[:, i] == view[i])
        seen |= ~unit
    return ok


@dataclass(frozen=True)
class Choice:
    block: Block
    unfixable: dict[str, float]  # resource → smallest achievable per-slice value over the limit


def choose_block(calc: LayerCalc, budget: CoreBudget) -> Choice:
    """The first candidate whose largest slice fits every limit; when none does, the resources
    that no block can satisfy (with the smallest value any block reaches) and the first block
    that fits the others."""
    quick = _quick_block(calc.view, budget.neurons)
    if quick is not None and not _over(calc.terms(quick), budget, {}):
        return Choice(quick, {})
    cands = candidates(calc.view, budget.neurons)
    if not len(cands):
        cands = candidates(calc.view, None)[-1:]
    best: dict[str, float] = {}
    for block in cands:
        b = tuple(int(x) for x in block)
        over = _over(calc.terms(b), budget, best)
        if not over:
            return Choice(b, {})
    unfixable = {r: v for r, v in best.items() if v > (budget.get(r) or np.inf)}
    relaxed = CoreBudget(**{r: (None if r in unfixable else budget.get(r)) for r in RESOURCES})
    for block in cands:
        b = tuple(int(x) for x in block)
        if not _over(calc.terms(b), relaxed, {}):
            return Choice(b, unfixable)
    return Choice(tuple(int(x) for x in cands[-1]), unfixable)


def _quick_block(view: tuple[int, ...], max_neurons: int | None) -> Block | None:
    """Whole trailing axes and as many channels as fit: the first candidate whenever it reaches
    the lower bound ceil(n / max_neurons) on the number of slices."""
    n = int(np.prod(view, dtype=np.int64))
    if max_neurons is None:
        return tuple(view)
    rest = int(np.prod(view[1:], dtype=np.int64))
    if rest > max_neurons:
        return None
    b0 = min(view[0], max_neurons // rest)
    b0 = -(-view[0] // -(-view[0] // b0))
    if -(-view[0] // b0) != -(-n // max_neurons):
        return None
    return (b0, *view[1:])


def _over(terms: dict[str, list[Term]], budget: CoreBudget, best: dict[str, float]) -> list[str]:
    over = []
    for r in RESOURCES:
        lim = budget.get(r)
        if lim is None:
            continue
        v = LayerCalc.bound(terms[r])
        best[r] = min(best.get(r, np.inf), v)
        if v > lim:
            over.append(r)
    return over
