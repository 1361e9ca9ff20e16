"""Sparse connectivity for the mapper: which synapses exist, and what they cost per core.

A dense op (Affine, Linear, QDense, QSpiNNakerDense) whose weight matrix has zeros is a
**sparse connection**: a zero weight is a synapse that does not exist (it is neither stored on
a chip nor routed). That includes weights that quantization rounds to zero: the mapper reads the
weights of the graph it maps (the integer graph after ``compile``), so a synapse the quantizer
zeroed is absent, exactly as the backends build it (Lava ``Sparse``, PyNN ``FromListConnector``
list only non-zeros).

The pattern is kept as CSR (:class:`SparseRows`: post neuron ``j`` reads the pre neurons
``indices[indptr[j]:indptr[j+1]]``). Per-slice quantities for any block are computed with one
``bincount`` / ``unique`` over the non-zeros (no per-synapse Python loop):

* synapses of slice ``T`` = Σ_{j∈T} nnz(row j);
* fan-in of ``T`` = |{i : W[j, i] ≠ 0 for some j ∈ T}|;
* fan-out of pre slice ``S`` = Σ_{i∈S} |{post slices T : W[T, i] ≠ 0}|;
* traffic S → T = |{i ∈ S : W[T, i] ≠ 0}|.

Synapse memory under a target's ``synapse_encoding`` (see :func:`encoded_bits`):

* ``loihi``: each presynaptic axon entering a core has one synapse list, stored in the cheapest
  of three formats (Davies et al., IEEE Micro 2018: dense, sparse and run-length compressed
  synapse lists). Sizes follow nengo-loihi's ``SynapseFmt.bits_per_axon`` (the published model
  of Loihi 1's synapse memory): entries come in groups of ``numSynapses + 1 = 64``, each group
  costs ``n · bits_per_entry + 4 + 6`` header bits rounded up to a 64-bit word;
  *dense* (compression 3) stores one ``w``-bit entry per neuron of the slice (zeros included),
  *sparse* (compression 0) stores one ``w + idx`` entry per non-zero, ``idx`` the smallest of
  6..12 bits that indexes the slice (INDEX_BITS_MAP); *run-length* stores one ``w + skip`` entry
  per non-zero, ``skip`` the bits of the longest run of absent synapses before a non-zero
  (# assumed: the field layout of Loihi's run-length format is not published; nengo-loihi
  implements only dense and sparse).
* ``spinnaker_rows``: sPyNNaker 7.4.1 (``synapse_io.py``) stores, per presynaptic neuron with a
  synapse into the core, one row of ``3`` header words + ``max_row`` 32-bit synaptic words, where
  ``max_row`` is the longest row of the connection into that core (rows are padded to it); a row
  holds at most ``POP_TABLE_MAX_ROW_LENGTH = 256`` synapses. Rows of presynaptic neurons with no
  synapse into the core are not counted (sPyNNaker allocates them when their presynaptic slice
  has other rows; the partition does not know the presynaptic slicing when it sizes a core).
* none: ``synapses × bits_per_synapse`` (the expanded model of :mod:`neurocc.compiler.slicing`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

ENCODINGS = ("loihi", "spinnaker_rows")
LOIHI_GROUP = 64                   # numSynapses + 1 (nengo-loihi: numSynapses = 63)
LOIHI_GROUP_HEADER = 4 + 6         # SYNAPSE_FMT_IDX_BITS + N_SYNAPSES_BITS (nengo-loihi)
LOIHI_WORD = 64                    # groups round up to one int64 memory unit (nengo-loihi)
LOIHI_INDEX_BITS = (6, 7, 8, 9, 10, 11, 12)  # SynapseFmt.INDEX_BITS_MAP without 0
SPINNAKER_ROW_HEADER_WORDS = 3     # sPyNNaker synapse_io._N_HEADER_WORDS
SPINNAKER_WORD_BITS = 32
SPINNAKER_MAX_ROW = 256            # sPyNNaker POP_TABLE_MAX_ROW_LENGTH


@dataclass(frozen=True, eq=False)
class SparseRows:
    """CSR pattern of the non-zero weights of a dense op ``(n_post, n_pre)``."""

    n_post: int
    n_pre: int
    indptr: np.ndarray
    indices: np.ndarray

    @classmethod
    def from_weight(cls, weight: np.ndarray) -> "SparseRows | None":
        """The pattern of ``weight`` (out, in), or None when every weight is non-zero."""
        w = np.asarray(weight)
        core = w[tuple(slice(0, 1) if st == 0 else slice(None) for st in w.strides)]  # broadcast axes once
        if core.all():
            return None
        rows, cols = np.nonzero(w)
        indptr = np.zeros(w.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
        return cls(int(w.shape[0]), int(w.shape[1]), indptr, cols.astype(np.int64))

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @functools.cached_property
    def rows(self) -> np.ndarray:
        """Post index of every non-zero (row-major order)."""
        return np.repeat(np.arange(self.n_post, dtype=np.int64), np.diff(self.indptr))

    @functools.cached_property
    def csc(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) of every non-zero in column-major order (post ascending per column)."""
        order = np.argsort(self.indices, kind="stable")
        return self.indices[order], self.rows[order]

    def pairs(self, view: tuple[int, ...], block: tuple[int, ...]) -> "Pairs":
        """The (post slice, pre neuron) pairs of this pattern under ``block`` (cached)."""
        cache = self.__dict__.setdefault("_pairs", {})
        key = (tuple(view), tuple(block))
        if key not in cache:
            cache[key] = _make_pairs(self, *key)
        return cache[key]


@dataclass(frozen=True)
class Pairs:
    """Unique (post slice, pre neuron) pairs: ``slice``, ``pre``, ``k`` (synapses of the pair) and,
    for 1-D views, ``gap`` (the longest run of absent synapses before one of the pair's; else −1)."""

    slice: np.ndarray
    pre: np.ndarray
    k: np.ndarray
    gap: np.ndarray


def _make_pairs(sp: SparseRows, view: tuple[int, ...], block: tuple[int, ...]) -> Pairs:
    if len(view) != 1:
        ids = slice_ids(view, block)
        keys, k = np.unique(ids[sp.rows] * sp.n_pre + sp.indices, return_counts=True)
        return Pairs(keys // sp.n_pre, keys % sp.n_pre, k, np.full(keys.size, -1, np.int64))
    b = int(block[0])
    pre, post = sp.csc                       # grouped by pre, post ascending: slices ascending too
    sl = post // b
    first = np.ones(pre.size, bool)
    first[1:] = (pre[1:] != pre[:-1]) | (sl[1:] != sl[:-1])
    starts = np.flatnonzero(first)
    k = np.diff(np.append(starts, pre.size))
    local = post - sl * b
    prev = np.empty_like(local)
    prev[0:1] = 0
    prev[1:] = local[:-1] + 1
    g = np.where(first, local, local - prev)
    gap = np.maximum.reduceat(g, starts) if starts.size else np.zeros(0, np.int64)
    return Pairs(sl[starts], pre[starts], k.astype(np.int64), gap)


@functools.lru_cache(maxsize=4096)
def slice_ids(view: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    """Slice number (C order over the block grid) of every neuron (flat C order) of ``view``."""
    ids = np.zeros((), np.int64)
    for n, b in zip(view, block):
        nb = -(-n // b)
        ids = np.add.outer(ids * nb, np.arange(n, dtype=np.int64) // b)
    out = ids.ravel()
    out.setflags(write=False)
    return out


def grid_of(view: tuple[int, ...], block: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-(-n // b) for n, b in zip(view, block))


def slice_sizes(view: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
    """Neurons per slice, shape ``grid``."""
    out = np.ones((), np.int64)
    for n, b in zip(view, block):
        starts = np.arange(0, n, b, dtype=np.int64)
        out = np.multiply.outer(out, np.minimum(starts + b, n) - starts)
    return out


def per_slice_synapses(sp: SparseRows, view, block) -> np.ndarray:
    grid = grid_of(view, block)
    ids = slice_ids(tuple(view), tuple(block))
    return np.bincount(ids[sp.rows], minlength=math.prod(grid)).reshape(grid).astype(np.float64)


def per_slice_sum(values: np.ndarray, view, block) -> np.ndarray:
    """Σ of a per-neuron array (view shape) over each slice."""
    grid = grid_of(view, block)
    ids = slice_ids(tuple(view), tuple(block))
    return np.bincount(ids, weights=np.asarray(values, np.float64).ravel(),
                       minlength=math.prod(grid)).reshape(grid)


def per_slice_fan_in(sp: SparseRows, view, block) -> np.ndarray:
    grid = grid_of(view, block)
    return np.bincount(sp.pairs(view, block).slice, minlength=math.prod(grid)).reshape(grid).astype(np.float64)


def per_slice_fan_out(sp: SparseRows, pre_view, pre_block, post_view, post_block) -> np.ndarray:
    """Σ over the pre neurons of each pre slice of the post slices each one feeds."""
    pre = sp.pairs(post_view, post_block).pre
    grid = grid_of(pre_view, pre_block)
    pre_ids = slice_ids(tuple(pre_view), tuple(pre_block))
    return np.bincount(pre_ids[pre], minlength=math.prod(grid)).reshape(grid).astype(np.float64)


def traffic(sp: SparseRows, pre_view, pre_block, post_view, post_block) -> np.ndarray:
    """``(pre slices, post slices)`` matrix of |{i ∈ S : W[T, i] ≠ 0}|."""
    pr = sp.pairs(post_view, post_block)
    post, pre = pr.slice, pr.pre
    n_s = math.prod(grid_of(pre_view, pre_block))
    n_t = math.prod(grid_of(post_view, post_block))
    code = slice_ids(tuple(pre_view), tuple(pre_block))[pre] * n_t + post
    return np.bincount(code, minlength=n_s * n_t).reshape(n_s, n_t).astype(np.float64)


# ----- encodings ---------------------------------------------------------------------------------
def loihi_list_bits(n: np.ndarray, bits_per_entry: np.ndarray | int) -> np.ndarray:
    """nengo-loihi ``bits_per_axon``: groups of 64 entries, 10 header bits, rounded to 64."""
    n = np.asarray(n, np.int64)
    bpe = np.asarray(bits_per_entry, np.int64)
    full, rem = n // LOIHI_GROUP, n % LOIHI_GROUP
    word = lambda k: -LOIHI_WORD * (-(k * bpe + LOIHI_GROUP_HEADER) // LOIHI_WORD)  # noqa: E731
    return full * word(LOIHI_GROUP) + np.where(rem > 0, word(rem), 0)


_IDX_LUT = np.array([next((b for b in LOIHI_INDEX_BITS if b >= n), 0) for n in range(65)], np.int64)
_NEVER = np.iinfo(np.int64).max


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bits of each non-negative integer (0 for 0), vectorised."""
    return np.frexp(np.asarray(x, np.float64))[1].astype(np.int64)


def index_bits(m: np.ndarray) -> np.ndarray:
    """Smallest Loihi index width (6..12) that addresses ``m`` neurons; 0 when none does."""
    return _IDX_LUT[np.minimum(_bit_length(np.maximum(np.asarray(m, np.int64) - 1, 0)), 64)]


@dataclass(frozen=True)
class AxonLists:
    """Per (slice, axon) synapse lists: slice number, entries ``k``, slice size ``m`` and the
    longest run of absent synapses before an entry (``gap``; −1 when unknown)."""

    slice: np.ndarray
    k: np.ndarray
    m: np.ndarray
    gap: np.ndarray
    mult: np.ndarray | int = 1   # how many axons share the list (a dense connection: all n_pre)


def axon_lists(sp: SparseRows | None, n_pre: int, view, block) -> AxonLists:
    """The synapse lists of one connection into every slice (dense: every axon, k = m)."""
    sizes = slice_sizes(tuple(view), tuple(block)).ravel()
    if sp is None:
        return AxonLists(np.arange(sizes.size, dtype=np.int64), sizes, sizes, np.zeros(sizes.size, np.int64), n_pre)
    pr = sp.pairs(view, block)
    sl, k, gap = pr.slice, pr.k, pr.gap
    return AxonLists(sl, k, sizes[sl], gap)


def encoded_bits(lists: AxonLists, n_slices: int, encoding: str, w: int) -> np.ndarray:
    """Synapse memory bits per slice under ``encoding`` (module doc) for weight width ``w``."""
    if encoding == "loihi":
        dense = loihi_list_bits(lists.m, w)
        idx = index_bits(lists.m)
        sparse = np.where(idx > 0, loihi_list_bits(lists.k, w + idx), _NEVER)
        rle = np.where(lists.gap >= 0, loihi_list_bits(lists.k, w + np.maximum(_bit_length(lists.gap), 1)),
                       _NEVER)
        cost = np.minimum(np.minimum(dense, sparse), rle) * lists.mult
        return np.bincount(lists.slice, weights=cost.astype(np.float64), minlength=n_slices)
    if encoding == "spinnaker_rows":
        rows = np.bincount(lists.slice, weights=np.broadcast_to(np.asarray(lists.mult, np.float64), lists.slice.shape),
                           minlength=n_slices).astype(np.int64)
        longest = np.zeros(n_slices, np.int64)
        np.maximum.at(longest, lists.slice, lists.k)
        return (rows * (SPINNAKER_ROW_HEADER_WORDS + longest) * SPINNAKER_WORD_BITS).astype(np.float64)
    raise ValueError(f"unknown synapse encoding {encoding!r} (known: {', '.join(ENCODINGS)})")


def longest_row(lists: AxonLists, n_slices: int) -> np.ndarray:
    """Longest synaptic row (synapses of one presynaptic neuron) into each slice."""
    longest = np.zeros(n_slices, np.int64)
    np.maximum.at(longest, lists.slice, lists.k)
    return longest
