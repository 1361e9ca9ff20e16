"""Magnitude pruning: zero the smallest weights so that a network fits a smaller chip.

A pruned weight is a synapse that no longer exists: the mapper does not count it
(:mod:`neurocc.compiler.sparsity`) and the backends do not build it. ``prune_graph(graph, spec)``
is pure (Graph → Graph) and deterministic.

**SPEC** (``neurocc compile --prune SPEC``; :func:`parse_spec`)::

    FRACTION            per layer: in every weight op, zero the round(FRACTION · n) weights of
                        smallest |w| (ties broken by position, so exactly that many)
    layer:FRACTION      the same, spelled out
    global:FRACTION     one threshold over all weight ops: the FRACTION of all weights with the
                        smallest |w| (a layer's magnitudes scaled by 2**weight_exp in an
                        integer graph, so the comparison is of effective weights)
    neurons:FRACTION    structured: in every weight op, the whole output neurons (dense rows) or
                        output channels (conv) with the smallest L2 norm go. Where a float dense
                        op (Affine, Linear) feeds a chain of elementwise nodes (neurons, ReLU,
                        BatchNorm) read only by other float dense ops, those neurons are removed
                        from the graph (rows, per-neuron parameters and the readers' columns):
                        fewer neurons, fewer cores. Elsewhere (convolutions, a layer read by an
                        Output, recurrence) the rows/channels are zeroed instead (a dead neuron
                        keeps its bias and its slot on a core)

FRACTION is a number in [0, 1) or a percentage (``75%``). Weight ops: Affine, Linear, Conv1d,
Conv2d (float graphs) and QDense, QSpiNNakerDense, QConv2d (integer graphs). Weights that are
already zero count as pruned: a fraction below the current sparsity changes nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph

WEIGHT_KINDS = ("Affine", "Linear", "Conv1d", "Conv2d", "QDense", "QSpiNNakerDense", "QConv2d")
SCOPES = ("layer", "global", "neurons")
SPEC_HELP = "FRACTION | layer:FRACTION | global:FRACTION | neurons:FRACTION (FRACTION in [0, 1) or NN%)"


@dataclass(frozen=True)
class PruneSpec:
    fraction: float
    scope: str = "layer"

    def text(self) -> str:
        f = f"{self.fraction:.4g}"
        return f if self.scope == "layer" else f"{self.scope}:{f}"


def parse_spec(text: str | PruneSpec) -> PruneSpec:
    """Parse a SPEC (module doc); CompileError naming the problem otherwise."""
    if isinstance(text, PruneSpec):
        return text
    raw = str(text).strip()
    scope, _, frac = raw.rpartition(":")
    scope = scope or "layer"
    try:
        f = float(frac[:-1]) / 100 if frac.endswith("%") else float(frac)
    except ValueError:
        f = -1.0
    if scope not in SCOPES or not 0.0 <= f < 1.0:
        raise CompileError(f"bad prune spec '{raw}'", where="--prune",
                           fix=f"write {SPEC_HELP}, e.g. `--prune 0.75` or `--prune global:90%`")
    return PruneSpec(f, scope)


def weight_ops(graph: Graph) -> list[str]:
    return [n for n, node in graph.nodes.items() if node.kind in WEIGHT_KINDS]


def prune_graph(graph: Graph, spec: str | PruneSpec) -> Graph:
    """``graph`` with the weights chosen by ``spec`` set to zero (dtype and shape kept)."""
    spec = parse_spec(spec)
    names = weight_ops(graph)
    if spec.fraction == 0.0 or not names:
        return graph
    if spec.scope == "neurons":
        graph, removed = _remove_units(graph, spec.fraction)
        new = {n: _prune_units(graph.nodes[n].weight, spec.fraction) for n in weight_ops(graph) if n not in removed}
    elif spec.scope == "global":
        new = _prune_global(graph, names, spec.fraction)
    else:
        new = {n: _prune_smallest(graph.nodes[n].weight, np.abs(graph.nodes[n].weight), spec.fraction)
               for n in names}
    out = graph
    for n, w in new.items():
        out = out.with_node(n, out.nodes[n].replace(weight=w))
    return out


def _prune_smallest(w: np.ndarray, mag: np.ndarray, fraction: float) -> np.ndarray:
    k = int(round(fraction * w.size))
    if k == 0:
        return w
    order = np.argsort(mag, axis=None, kind="stable")[:k]
    out = np.array(w, copy=True)
    out.flat[order] = 0
    return out


def _prune_global(graph: Graph, names: list[str], fraction: float) -> dict[str, np.ndarray]:
    mags = [np.abs(np.asarray(graph.nodes[n].weight, np.float64)).ravel()
            * 2.0 ** getattr(graph.nodes[n], "weight_exp", 0) for n in names]
    flat = np.concatenate(mags)
    k = int(round(fraction * flat.size))
    drop = np.zeros(flat.size, bool)
    drop[np.argsort(flat, kind="stable")[:k]] = True
    out, start = {}, 0
    for n, m in zip(names, mags):
        w = np.array(graph.nodes[n].weight, copy=True)
        w.flat[np.flatnonzero(drop[start:start + m.size])] = 0
        out[n], start = w, start + m.size
    return out


def _prune_units(w: np.ndarray, fraction: float) -> np.ndarray:
    """Zero the output units (axis 0) of smallest L2 norm."""
    norms = np.sqrt((np.asarray(w, np.float64).reshape(w.shape[0], -1) ** 2).sum(axis=1))
    k = int(round(fraction * w.shape[0]))
    out = np.array(w, copy=True)
    out[np.argsort(norms, kind="stable")[:k]] = 0
    return out


_DENSE = ("Affine", "Linear")
_ELEMENTWISE = ("ReLU", "BatchNorm", "IF", "LIF", "LI", "I", "CubaLI", "CubaLIF", "Threshold")


def _unit_chain(graph: Graph, dense: str) -> tuple[list[str], list[str]] | None:
    """(elementwise chain after ``dense``, the dense ops reading it) when its neurons can be removed."""
    chain, cur = [], dense
    while True:
        nxt = graph.successors(cur)
        if len(nxt) != 1 or len(graph.predecessors(nxt[0])) != 1 or graph.nodes[nxt[0]].kind not in _ELEMENTWISE:
            break
        cur = nxt[0]
        chain.append(cur)
    readers = graph.successors(cur)
    if not chain or not readers or any(graph.nodes[r].kind not in _DENSE or len(graph.predecessors(r)) != 1
                                       or r == dense for r in readers):
        return None
    return chain, readers


def _remove_units(graph: Graph, fraction: float) -> tuple[Graph, set[str]]:
    """Remove the output neurons of smallest L2 norm of every float dense op whose layer allows it."""
    removed: set[str] = set()
    for dense in [n for n, node in graph.nodes.items() if node.kind in _DENSE]:
        found = _unit_chain(graph, dense)
        node = graph.nodes[dense]
        n = node.weight.shape[0]
        k = int(round(fraction * n))
        if found is None or k == 0 or k >= n:
            continue
        norms = np.sqrt((np.asarray(node.weight, np.float64) ** 2).sum(axis=1))
        keep = np.sort(np.argsort(norms, kind="stable")[k:])
        graph = graph.with_node(dense, _take_units(node, keep, n))
        for name in found[0]:
            graph = graph.with_node(name, _take_units(graph.nodes[name], keep, n))
        for r in found[1]:
            rn = graph.nodes[r]
            graph = graph.with_node(r, rn.replace(weight=np.ascontiguousarray(rn.weight[:, keep])))
        removed.add(dense)
    return graph.verify(), removed


def _take_units(node, keep: np.ndarray, n: int):
    """``node`` with every per-unit array (first axis ``n``) cut to the units ``keep``."""
    import dataclasses

    changes = {f.name: np.ascontiguousarray(np.asarray(getattr(node, f.name))[keep]) for f in dataclasses.fields(node)
               if isinstance(getattr(node, f.name), np.ndarray) and getattr(node, f.name).ndim >= 1
               and getattr(node, f.name).shape[0] == n}
    return node.replace(**changes)


def density(graph: Graph) -> dict[str, float]:
    """Fraction of non-zero weights per weight op."""
    return {n: float(np.count_nonzero(graph.nodes[n].weight)) / max(graph.nodes[n].weight.size, 1)
            for n in weight_ops(graph)}
