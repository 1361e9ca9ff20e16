"""Place pass: assign every slice of a :class:`Partition` to a (chip, core).

``place(partition, target, graph=None) -> Placement``. The slice graph has one node per slice
and an edge weighted by the **axon traffic** ``w(S, T) = |S ∩ R(T)|``: how many neurons of slice S
feed slice T (each spike of such a neuron crosses S → T once). It is computed per connection
from the same separable per-axis tables as the partition (no per-synapse lists); for a sparse
dense op only the neurons of S with a non-zero weight into T count
(:func:`neurocc.compiler.sparsity.traffic`).

1. **Fill**: slices in network (topological) order fill chip 0, then chip 1, ...; a chip is
   closed when the next slice would exceed ``cores_per_chip``, ``sdram_bytes_per_chip`` (Σ
   slices' synaptic bytes) or ``routing_entries_per_chip`` (distinct source layers whose spikes
   enter or leave the chip: one routing key per population, as sPyNNaker's zoned keys give).
   Feed-forward networks then cut only at chip boundaries.
2. **Refine**: for each pair of neighbouring chips, networkx's Kernighan–Lin bisection
   (``networkx.algorithms.community.kernighan_lin_bisection``, seeded, weight = traffic) swaps
   slices between the two chips; a swap set is kept only when the total inter-chip traffic falls
   and both chips still meet their limits. KL keeps the two sides' sizes, so core counts per chip
   never change. Why KL from networkx: it is deterministic with a seed, needs no extra
   dependency (networkx is already required), works on weighted graphs, and on a pair of chips
   the graph has at most 2 × cores_per_chip nodes, so its quadratic passes stay cheap.

More chips than ``limits.chips`` is reported as a ``chips`` :class:`Violation` (the placement
still lists where each slice would go).
"""
from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neurocc.compiler import sparsity
from neurocc.compiler.connectivity import Conn
from neurocc.compiler.passes.partition import Partition, Slice, Violation
from neurocc.compiler.slicing import no_gc, sizes
from neurocc.ir.graph import Graph
from neurocc.targets import Target


@dataclass(frozen=True)
class ChipUsage:
    chip: int
    cores: int
    sdram_bytes: int
    routing_entries: int
    layers: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Placement:
    """Where each slice goes. ``location[(layer, slice index)] = (chip, core)``. Traffic is in
    axons (neurons whose spikes must reach another core) per step at one spike per neuron."""

    partition: Partition
    location: Mapping[tuple[str, int], tuple[int, int]]
    chips: tuple[ChipUsage, ...]
    inter_chip_traffic: float
    total_traffic: float
    violations: tuple[Violation, ...] = ()
    refined: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "location", types.MappingProxyType(dict(self.location)))

    @property
    def n_chips(self) -> int:
        return len(self.chips)

    @property
    def n_cores(self) -> int:
        return len(self.location)

    def cores_of(self, layer: str) -> list[tuple[int, int]]:
        """(chip, core) of each slice of ``layer``, in slice order."""
        lp = self.partition.layers[layer]
        return [self.location[(layer, s.index)] for s in lp.slices] if lp.on_cores else []

    def groups(self) -> dict[int, list[tuple[str, tuple[tuple[int, int], ...]]]]:
        """Per chip, the (layer, box) slices it holds in core order: Lava process grouping."""
        out: dict[int, list[tuple[int, str, tuple]]] = {}
        for s in self.partition.slices:
            chip, core = self.location[(s.layer, s.index)]
            out.setdefault(chip, []).append((core, s.layer, s.box))
        return {c: [(layer, box) for _, layer, box in sorted(v)] for c, v in sorted(out.items())}

    def max_neurons_per_core(self) -> dict[str, int]:
        """Per layer on cores, the neurons of its largest slice: sPyNNaker's
        ``set_max_atoms_per_core`` / PyNN population splits (``block`` gives the box shape)."""
        return {n: lp.max_neurons_per_core for n, lp in self.partition.layers.items() if lp.on_cores}

    def to_dict(self) -> dict:
        return {"chips": [dict(chip=c.chip, cores=c.cores, sdram_bytes=c.sdram_bytes,
                               routing_entries=c.routing_entries, layers=list(c.layers)) for c in self.chips],
                "slices": [{"layer": layer, "slice": i, "chip": ch, "core": co}
                           for (layer, i), (ch, co) in self.location.items()],
                "inter_chip_traffic": self.inter_chip_traffic, "total_traffic": self.total_traffic}


def place(partition: Partition, target: Target, graph: Graph | None = None, *, refine: bool = True,
          own_chip: str | None = None, rates: Mapping[str, float] | None = None) -> Placement:
    """Assign slices to chips and cores (deterministic). ``own_chip`` names a layer that starts
    on a fresh chip and shares it with no other layer. ``rates`` (spikes per neuron per step of
    each layer, e.g. measured on calibration data) weight the traffic, so the refinement keeps
    the busiest connections on chip; layers without a rate count one spike per step. ``graph``
    is accepted for symmetry with the other passes; everything needed is in the partition."""
    with no_gc():
        slices = partition.slices
        src, dst, w = traffic_edges(partition, rates)
        chip = _fill(partition, target, slices, own_chip)
        refined = False
        if refine and chip.size and chip.max() > 0:
            refined = _refine(partition, target, slices, chip, src, dst, w)
        return _finish(partition, target, slices, chip, src, dst, w, refined)


# ----- traffic ------------------------------------------------------------------------------------
def traffic_edges(partition: Partition, rates: Mapping[str, float] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source slice id, destination slice id, axons × the source layer's rate) over the slices
    on cores (rate 1 when ``rates`` does not name the layer)."""
    ids: dict[str, int] = {}
    k = 0
    for name, lp in partition.layers.items():
        if lp.on_cores:
            ids[name] = k
            k += len(lp.slices)
    parts = [_conn_pairs(partition, c, ids) for c in partition.network.conns if c.pre in ids and c.post in ids]
    if rates:
        pres = [c.pre for c in partition.network.conns if c.pre in ids and c.post in ids]
        parts = [(a, b, x * float(rates.get(pre, 1.0))) for (a, b, x), pre in zip(parts, pres)]
    if not parts:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _conn_pairs(partition: Partition, c: Conn, ids: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pre, post = partition.layers[c.pre], partition.layers[c.post]
    if c.sparse is not None:
        mat = sparsity.traffic(c.sparse, pre.view, pre.block, post.view, post.block)
    elif c.kind == "full":
        w_pre = np.asarray([s.n_neurons for s in pre.slices], np.float64)
        mat = np.broadcast_to(w_pre[:, None], (len(pre.slices), len(post.slices)))
    else:
        mat = _local_overlap(c, pre.view, pre.block, post.view, post.block)
    s_idx, t_idx = np.nonzero(mat)
    return ids[c.pre] + s_idx, ids[c.post] + t_idx, mat[s_idx, t_idx].astype(np.float64)


def _local_overlap(c: Conn, pre_view, pre_block, post_view, post_block) -> np.ndarray:
    """|S ∩ R(T)| for every (pre slice S, post slice T): outer product of per-axis overlaps."""
    mats = []
    for m, bp, bq in zip(c.axes, pre_block, post_block):
        pairs = m.pairs(bq)
        nbp, nbq = len(sizes(m.n_pre, bp)), len(sizes(m.n_post, bq))
        code = ((pairs % m.n_pre) // bp) * nbq + pairs // m.n_pre
        mats.append(np.bincount(code, minlength=nbp * nbq).reshape(nbp, nbq).astype(np.float64))
    out = mats[0]
    for m in mats[1:]:
        out = np.einsum("ab,cd->acbd", out, m).reshape(out.shape[0] * m.shape[0], out.shape[1] * m.shape[1])
    return out


# ----- fill -------------------------------------------------------------------------------------
def _fill(partition: Partition, target: Target, slices: tuple[Slice, ...], own_chip: str | None) -> np.ndarray:
    lim = target.limits
    pres = {n: {c.pre for c in partition.network.into(n)} for n in partition.layers}
    chip = np.zeros(len(slices), np.int64)
    cur, cores, sdram, keys = 0, 0, 0, set()
    for i, s in enumerate(slices):
        new_keys = keys | {s.layer} | pres[s.layer]
        full = ((lim.cores_per_chip is not None and cores + 1 > lim.cores_per_chip)
                or (lim.sdram_bytes_per_chip is not None and sdram + s.usage.sdram_bytes > lim.sdram_bytes_per_chip)
                or (lim.routing_entries_per_chip is not None and len(new_keys) > lim.routing_entries_per_chip))
        alone = own_chip is not None and i > 0 and (s.layer == own_chip) != (slices[i - 1].layer == own_chip)
        if (full or alone) and cores:
            cur, cores, sdram, new_keys = cur + 1, 0, 0, {s.layer} | pres[s.layer]
        chip[i] = cur
        cores, sdram, keys = cores + 1, sdram + s.usage.sdram_bytes, new_keys
    return chip


def _chip_state(partition: Partition, slices: tuple[Slice, ...], members: np.ndarray) -> tuple[int, int, int]:
    """(cores, sdram bytes, routing entries) of the chip holding slice ids ``members``."""
    layers = {slices[i].layer for i in members}
    keys = set(layers)
    for n in layers:
        keys |= {cn.pre for cn in partition.network.into(n)}
    return len(members), sum(slices[i].usage.sdram_bytes for i in members), len(keys)


def _chip_ok(partition: Partition, target: Target, slices, members: np.ndarray) -> bool:
    lim = target.limits
    cores, sdram, keys = _chip_state(partition, slices, members)
    return ((lim.sdram_bytes_per_chip is None or sdram <= lim.sdram_bytes_per_chip)
            and (lim.routing_entries_per_chip is None or keys <= lim.routing_entries_per_chip))


# ----- refine -----------------------------------------------------------------------------------
class _Edges:
    """Traffic edges indexed by source and by destination slice, so the edges touching a set
    of slices are found without scanning all of them."""

    def __init__(self, src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int) -> None:
        self.src, self.dst, self.w = src, dst, w
        self.by_src, self.by_dst = np.argsort(src, kind="stable"), np.argsort(dst, kind="stable")
        self.ptr_src = np.searchsorted(src[self.by_src], np.arange(n + 1))
        self.ptr_dst = np.searchsorted(dst[self.by_dst], np.arange(n + 1))

    def touching(self, nodes: np.ndarray) -> np.ndarray:
        parts = [self.by_src[self.ptr_src[i]:self.ptr_src[i + 1]] for i in nodes.tolist()]
        parts += [self.by_dst[self.ptr_dst[i]:self.ptr_dst[i + 1]] for i in nodes.tolist()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def cut(self, chip: np.ndarray, sel: np.ndarray | None = None) -> float:
        s, d, w = (self.src, self.dst, self.w) if sel is None else (self.src[sel], self.dst[sel], self.w[sel])
        return float(w[chip[s] != chip[d]].sum())


def _refine(partition, target, slices, chip, src, dst, w) -> bool:
    """Kernighan–Lin on each pair of neighbouring chips; keep improvements only. Only the edges
    touching the two chips are read, so a sweep is linear in the network."""
    from networkx.algorithms.community import kernighan_lin_bisection

    edges = _Edges(src, dst, w, len(slices))
    order = np.argsort(chip, kind="stable")
    bounds = np.searchsorted(chip[order], np.arange(int(chip.max()) + 2))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(len(bounds) - 1)]
    improved = False
    for a in range(len(members) - 1):
        nodes = np.concatenate([members[a], members[a + 1]])
        sel = edges.touching(nodes)
        g = _pair_graph(nodes, src[sel], dst[sel], w[sel], chip, a)
        if g is None:
            continue
        part = ({int(i) for i in members[a]}, {int(i) for i in members[a + 1]})
        new_a, _ = kernighan_lin_bisection(g, partition=part, max_iter=4, weight="weight", seed=0)
        trial = chip.copy()
        trial[nodes] = a + 1
        trial[sorted(new_a)] = a
        ma, mb = nodes[trial[nodes] == a], nodes[trial[nodes] == a + 1]
        if (edges.cut(trial, sel) < edges.cut(chip, sel) - 1e-9
                and _chip_ok(partition, target, slices, ma) and _chip_ok(partition, target, slices, mb)):
            chip[:] = trial
            members[a], members[a + 1] = ma, mb
            improved = True
    return improved


def _pair_graph(nodes, es, ed, ew, chip, a):
    """The weighted graph of two chips' slices, or None when no traffic crosses between them."""
    import networkx as nx

    inside = np.isin(chip[es], (a, a + 1)) & np.isin(chip[ed], (a, a + 1)) & (es != ed)
    if not (inside & (chip[es] != chip[ed])).any():
        return None
    g = nx.Graph()
    g.add_nodes_from(nodes.tolist())
    for u, v, x in zip(es[inside].tolist(), ed[inside].tolist(), ew[inside].tolist()):
        g.add_edge(u, v, weight=g.get_edge_data(u, v, {"weight": 0.0})["weight"] + x)
    return g


def _finish(partition, target, slices, chip, src, dst, w, refined) -> Placement:
    location: dict[tuple[str, int], tuple[int, int]] = {}
    next_core: dict[int, int] = {}
    for i, s in enumerate(slices):
        c = int(chip[i])
        location[(s.layer, s.index)] = (c, next_core.get(c, 0))
        next_core[c] = next_core.get(c, 0) + 1
    order = np.argsort(chip, kind="stable")
    bounds = np.searchsorted(chip[order], np.arange(int(chip.max()) + 2 if chip.size else 1))
    chips = []
    for c in range(len(bounds) - 1):
        members = order[bounds[c]:bounds[c + 1]]
        cores, sdram, keys = _chip_state(partition, slices, members)
        layers = tuple(dict.fromkeys(slices[i].layer for i in members))
        chips.append(ChipUsage(c, cores, sdram, keys, layers))
    return Placement(partition, location, tuple(chips), _Edges(src, dst, w, len(slices)).cut(chip), float(w.sum()),
                     tuple(_violations(target, slices, chips)), refined)


def _violations(target: Target, slices: tuple[Slice, ...], chips: list[ChipUsage]) -> list[Violation]:
    lim = target.limits
    out = []
    if lim.chips is not None and len(chips) > lim.chips:
        out.append(Violation("chips", len(chips), lim.chips, None, "network",
                             f"{len(slices)} cores at most {lim.cores_per_chip} per chip"))
    for c in chips:
        if lim.sdram_bytes_per_chip is not None and c.sdram_bytes > lim.sdram_bytes_per_chip:
            out.append(Violation("sdram_bytes", c.sdram_bytes, lim.sdram_bytes_per_chip, c.layers[0], "chip",
                                 f"chip {c.chip}: one slice needs more SDRAM than a chip has"))
        if lim.routing_entries_per_chip is not None and c.routing_entries > lim.routing_entries_per_chip:
            out.append(Violation("routing_entries", c.routing_entries, lim.routing_entries_per_chip,
                                 c.layers[0], "chip", f"chip {c.chip}"))
    return out
