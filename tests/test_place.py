"""Place pass: every slice on exactly one core, per-chip limits, multi-chip, traffic."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocc.compiler.passes.partition import partition
from neurocc.compiler.passes.place import place, traffic_edges
from test_partition import conv_net, dense_chain, oracle, target


def check_placement(part, pl, t) -> None:
    locs = list(pl.location.values())
    assert len(locs) == len(set(locs)) == part.cores, "each core holds exactly one slice"
    assert set(pl.location) == {(s.layer, s.index) for s in part.slices}
    lim = t.limits
    for c in pl.chips:
        assert lim.cores_per_chip is None or c.cores <= lim.cores_per_chip
        assert lim.sdram_bytes_per_chip is None or c.sdram_bytes <= lim.sdram_bytes_per_chip
        assert lim.routing_entries_per_chip is None or c.routing_entries <= lim.routing_entries_per_chip
        cores = sorted(co for ch, co in locs if ch == c.chip)
        assert cores == list(range(c.cores))


def test_single_chip_when_it_fits():
    t = target(neurons_per_core=64, cores_per_chip=8, chips=1)
    part = partition(dense_chain(10, 100, 100), t)
    pl = place(part, t)
    check_placement(part, pl, t)
    assert pl.n_chips == 1 and pl.inter_chip_traffic == 0 and not pl.violations


def test_multi_chip_and_chip_violation():
    t = target(neurons_per_core=10, cores_per_chip=4, chips=2)
    part = partition(dense_chain(10, 40, 40, 40), t)       # 12 cores -> 3 chips of 4
    pl = place(part, t)
    check_placement(part, pl, t)
    assert pl.n_chips == 3
    (v,) = pl.violations
    assert (v.resource, v.needed, v.available) == ("chips", 3, 2)


def test_traffic_edges_match_oracle():
    g = conv_net()
    t = target(neurons_per_core=40)
    part = partition(g, t)
    src, dst, w = traffic_edges(part)
    slices = part.slices
    got = {(int(a), int(b)): float(x) for a, b, x in zip(src, dst, w)}
    want = {}
    index = {(s.layer, s.index): i for i, s in enumerate(slices)}
    for c in part.network.conns:
        if not (part.layers[c.pre].on_cores and part.layers[c.post].on_cores):
            continue
        m = oracle(g, c.pre, c.post)
        for S in part.layers[c.pre].slices:
            for T in part.layers[c.post].slices:
                n = int(m[T.indices(part.layers[c.post].view)][:, S.indices(part.layers[c.pre].view)].any(0).sum())
                if n:
                    key = (index[(S.layer, S.index)], index[(T.layer, T.index)])
                    want[key] = want.get(key, 0) + n
    assert got == want


def test_sdram_per_chip_respected():
    # 4 slices of 10 neurons x 100 inputs x 16 bits = 2000 bytes each; 5000 bytes per chip -> 2 per chip
    t = target(numerics="spinnaker", neurons_per_core=10, cores_per_chip=16, sdram_bytes_per_chip=5000,
               weight_bits=16)
    part = partition(dense_chain(100, 40), t)
    pl = place(part, t)
    check_placement(part, pl, t)
    # the 10 input cores hold no synapses; the 4 l0 slices need 2000 B each: 2 per chip
    assert [c.cores for c in pl.chips] == [12, 2]
    assert [c.sdram_bytes for c in pl.chips] == [4000, 4000]


def test_groups_and_pynn_helpers():
    t = target(neurons_per_core=25, cores_per_chip=3)
    part = partition(dense_chain(10, 60), t)
    pl = place(part, t)
    assert pl.max_neurons_per_core() == {"l0": 20}
    groups = pl.groups()
    assert sum(len(v) for v in groups.values()) == 3
    assert groups[0][0] == ("l0", ((0, 20),))
    assert pl.cores_of("l0") == [(0, 0), (0, 1), (0, 2)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(npc=st.integers(8, 200), cpc=st.integers(1, 12), hw=st.integers(8, 14), refine=st.booleans())
def test_property_every_slice_placed_once_and_refine_never_worse(npc, cpc, hw, refine):
    t = target(neurons_per_core=npc, cores_per_chip=cpc)
    part = partition(conv_net(hw=hw), t)
    pl = place(part, t, refine=refine)
    check_placement(part, pl, t)
    base = place(part, t, refine=False)
    assert pl.inter_chip_traffic <= base.inter_chip_traffic
    assert pl.inter_chip_traffic <= pl.total_traffic
    assert np.isclose(pl.total_traffic, base.total_traffic)
