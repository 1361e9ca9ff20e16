"""Sparse connectivity in the mapper: per-slice counts of random sparse masks against brute force
(synapses, fan-in, fan-out, traffic, Loihi and SpiNNaker synapse encodings), and a pruned layer
that fits where the dense one does not."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.compiler.mapping import mapping_report
from neurocc.compiler.passes.partition import partition
from neurocc.compiler.passes.place import place, traffic_edges
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Affine, Input, Output
from test_partition import lif, target


def sparse_chain(weights: list[np.ndarray]) -> Graph:
    nodes: dict = {"in": Input(shape=(weights[0].shape[1],))}
    edges, prev = [], "in"
    for k, w in enumerate(weights):
        nodes[f"w{k}"] = Affine(weight=w, bias=np.zeros(w.shape[0]))
        nodes[f"l{k}"] = lif(w.shape[0])
        edges += [Edge(prev, f"w{k}"), Edge(f"w{k}", f"l{k}")]
        prev = f"l{k}"
    nodes["out"] = Output()
    edges.append(Edge(prev, "out"))
    return Graph(nodes, tuple(edges), dt=1e-3)


def random_mask(rng, n_post, n_pre, density) -> np.ndarray:
    w = rng.normal(size=(n_post, n_pre))
    w[rng.random((n_post, n_pre)) >= density] = 0.0
    return w


# ----- brute force: loops over slices and axons, written from the published descriptions -------
def loihi_axon_bits(n: int, bits_per_weight: int) -> int:
    """nengo-loihi ``SynapseFmt.bits_per_axon`` as published (groups of 64, 10 header bits, 64-bit words)."""
    bits = 0
    for i in range(0, n, 64):
        k = min(n - i, 64)
        bits += -64 * (-(k * bits_per_weight + 4 + 6) // 64)
    return bits


def brute_loihi(rows: np.ndarray, w_bits: int) -> int:
    """Σ over axons of the cheapest list: dense (all rows), sparse (index bits), run-length."""
    m = rows.shape[0]
    idx = next(b for b in (6, 7, 8, 9, 10, 11, 12) if 2 ** b >= m)
    total = 0
    for col in rows.T:
        nz = [j for j in range(m) if col[j] != 0]
        if not nz:
            continue
        gaps, prev = [], -1
        for j in nz:
            gaps.append(j - prev - 1)
            prev = j
        skip = max(1, max(gaps).bit_length())
        total += min(loihi_axon_bits(m, w_bits), loihi_axon_bits(len(nz), w_bits + idx),
                     loihi_axon_bits(len(nz), w_bits + skip))
    return total


def brute_rows(rows: np.ndarray) -> int:
    lengths = [int((col != 0).sum()) for col in rows.T]
    used = [n for n in lengths if n]
    return len(used) * (3 + max(used, default=0)) * 32


@pytest.mark.parametrize("seed,density,npc", [(0, 0.1, 7), (1, 0.3, 16), (2, 0.02, 5), (3, 0.6, 30)])
def test_slice_counts_match_brute_force(seed, density, npc):
    rng = np.random.default_rng(seed)
    w0, w1 = random_mask(rng, 37, 23, density), random_mask(rng, 29, 37, density)
    g = sparse_chain([w0, w1])
    for enc, brute in (("loihi", lambda r: brute_loihi(r, 8)), ("spinnaker_rows", brute_rows), (None, None)):
        t = target(neurons_per_core=npc, synapse_encoding=enc, weight_bits=8)
        part = partition(g, t)
        for name, w in (("l0", w0), ("l1", w1)):
            for s in part.layers[name].slices:
                (a, b), = s.box
                rows = w[a:b]
                assert s.usage.synapses == int((rows != 0).sum())
                assert s.usage.fan_in_axons == int((rows != 0).any(axis=0).sum())
                expect = brute(rows) if brute else 8 * int((rows != 0).sum())
                assert s.usage.synapse_memory_bits == expect, (enc, name, s.box)
        post = [s.box[0] for s in part.layers["l1"].slices]
        for s in part.layers["l0"].slices:
            (a, b), = s.box
            feeds = sum(int((w1[c:d, i] != 0).any()) for i in range(a, b) for c, d in post)
            assert s.usage.fan_out_axons == feeds


def test_traffic_counts_only_connected_neurons():
    rng = np.random.default_rng(5)
    w0, w1 = random_mask(rng, 40, 10, 0.5), random_mask(rng, 30, 40, 0.05)
    g = sparse_chain([w0, w1])
    part = partition(g, target(neurons_per_core=8))
    src, dst, w = traffic_edges(part)
    pre, post = part.layers["l0"].slices, part.layers["l1"].slices
    got = {(int(a), int(b)): float(x) for a, b, x in zip(src, dst, w)}
    for i, s in enumerate(pre):
        for j, t in enumerate(post):
            (a, b), (c, d) = s.box[0], t.box[0]
            n = int((w1[c:d, a:b] != 0).any(axis=0).sum())
            assert got.get((i, len(pre) + j), 0.0) == n
    place(part, target(neurons_per_core=8, cores_per_chip=2), g)  # runs on the sparse traffic
    # measured spike rates weight the traffic of each source layer (unnamed layers: 1 spike/step)
    src2, dst2, w2 = traffic_edges(part, {"l0": 0.25})
    np.testing.assert_array_equal(src2, src)
    np.testing.assert_array_equal(w2, np.where(src < len(pre), 0.25, 1.0) * w)
    pl = place(part, target(neurons_per_core=8, cores_per_chip=2), g, rates={"l0": 0.25})
    assert pl.total_traffic == pytest.approx(float(w2.sum()))


def test_pruned_layer_fits_where_dense_does_not():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(64, 512))
    pruned = dense.copy()
    pruned[np.abs(pruned) < np.quantile(np.abs(pruned), 0.9)] = 0.0
    t = target(neurons_per_core=64, synapse_memory_bits_per_core=64 * 512 * 8 // 4, synapse_encoding="loihi",
               cores_per_chip=1, chips=1)
    dense_report = mapping_report(sparse_chain([dense]), t, with_fixes=False)
    assert not dense_report.fits and dense_report.cores > 1
    pruned_report = mapping_report(sparse_chain([pruned]), t, with_fixes=False)
    assert pruned_report.fits and pruned_report.cores == 1


def test_spinnaker_row_limit():
    w = np.ones((300, 4))
    w[:, 0] = 0.0
    t = target(numerics="spinnaker", neurons_per_core=300, max_synapses_per_row=256,
               synapse_encoding="spinnaker_rows", weight_bits=16, bits_per_synapse=32)
    v = [v for v in partition(sparse_chain([w]), t).violations if v.resource == "synapses_per_row"]
    assert v and v[0].needed == 300


def test_conv_with_zero_taps_counts_only_real_synapses():
    from neurocc.ir.nodes import Conv2d
    from test_partition import if_

    rng = np.random.default_rng(4)
    w = rng.normal(size=(5, 3, 3, 3))
    w[rng.random(w.shape) < 0.7] = 0.0
    conv = Conv2d(weight=w, bias=np.zeros(5), stride=(2, 1), padding=(1, 1))
    g = Graph.chain(("in", Input(shape=(3, 9, 7))), ("c", conv), ("n", if_((5, 5, 7))), ("out", Output()))
    part = partition(g, target(neurons_per_core=12))
    for s in part.layers["n"].slices:
        brute = 0
        for c in range(*s.box[0]):
            for y in range(*s.box[1]):
                for x in range(*s.box[2]):
                    for ci, ky, kx in zip(*np.nonzero(w[c])):
                        iy, ix = 2 * y - 1 + ky, x - 1 + kx
                        brute += int(0 <= iy < 9 and 0 <= ix < 7)
        assert s.usage.synapses == brute
        assert s.usage.synapse_memory_bits == 8 * brute


def test_mapping_json_counts_only_nonzero_synapses():
    rng = np.random.default_rng(9)
    w = random_mask(rng, 30, 20, 0.25)
    layers = mapping_report(sparse_chain([w]), target(neurons_per_core=8), with_fixes=False).to_dict()["layers"]
    assert {lay["name"]: lay["synapses"] for lay in layers}["l0"] == np.count_nonzero(w)
