"""sPyNNaker 7.4.1's own mapping on a virtual board: placement against neurocc's partition, and
the read-back of quantized weights and ring-buffer shifts against the ``spinnaker`` profile."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_numerics_spinnaker import (  # tests/ is on sys.path (rootdir conftest)
    ff_graph,
    spikes,
)

from neurocc.backends.emulator import simulate
from neurocc.backends.spinnaker.lower import lower
from neurocc.backends.spinnaker.pynn_run import available
from neurocc.backends.spinnaker.virtual_board import map_network
from neurocc.compiler.passes.partition import partition
from neurocc.compiler.passes.place import place
from neurocc.compiler.passes.quantize_spinnaker import (
    apply_readback,
    layer_caps,
    quantize_spinnaker,
    shifts_of,
)
from neurocc.targets import get_target

pytestmark = [pytest.mark.pynn, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _need_spynnaker():
    why = available("spiNNaker")
    if why:
        print(f"SKIP reason: {why}")
        pytest.skip(why)


def test_virtual_board_places_like_neurocc_and_reads_back_the_profile_weights():
    target = get_target("spinnaker")
    g = ff_graph("CubaLIF", sizes=(20, 600, 20), seed=2)
    caps = layer_caps(g, target)
    net = lower(g, max_atoms=caps)
    res = map_network(net, chips=target.limits.chips)
    assert res["fits"], res["error"]
    part = partition(g, target)
    ours = {n: len(lp.slices) for n, lp in part.layers.items()}
    pl = place(part, target, g)
    print("sPyNNaker cores per population", res["cores_per_population"], "chips", res["chips"], "cores", res["cores"])
    print("neurocc slices per layer", ours, "chips", pl.n_chips, "cores", pl.n_cores)
    assert res["cores_per_population"] == ours            # 600 neurons at 256 per core: 3 cores
    assert res["cores"] == part.cores
    # the quantization sPyNNaker did is the one the spinnaker profile computes
    assert {k: tuple(v) for k, v in res["shifts"].items()} == shifts_of(net)
    q, _ = quantize_spinnaker(g, target)
    q_read = apply_readback(g, net, res)
    for name, node in q.nodes.items():
        if node.kind == "QSpiNNakerDense":
            np.testing.assert_array_equal(q_read.nodes[name].weight, node.weight)
    x = spikes((60, 1, 20), seed=3)
    np.testing.assert_array_equal(simulate(q_read, {"in": x}).outputs["out"], simulate(q, {"in": x}).outputs["out"])


def test_network_too_big_for_the_machine_is_refused_by_both():
    """80 one-neuron cores do not fit a 4-chip SpiNN-3 (16 application cores per chip, fewer on
    the Ethernet chip): sPyNNaker's placer and neurocc's partition both say so."""
    base = get_target("spinnaker")
    small = dataclasses.replace(base, name="spinn3", limits=dataclasses.replace(base.limits, chips=4,
                                                                                  neurons_per_core=1))
    g = ff_graph("LIF", sizes=(2, 80, 2), seed=1)
    net = lower(g, max_atoms=layer_caps(g, small))
    res = map_network(net, chips=4)
    print("sPyNNaker:", res["error"])
    assert not res["fits"] and "Chips" in res["error"]
    pl = place(partition(g, small), small, g)
    print("neurocc:", pl.n_chips, "chips needed;", [v.resource for v in pl.violations] if hasattr(pl, "violations")
          else "")
    assert pl.n_chips > 4 or not getattr(pl, "fits", True)
