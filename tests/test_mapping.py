"""Mapping report: table, JSON, binding constraint, computed fixes, MappingError."""
from __future__ import annotations

import json

import pytest

from neurocc.compiler.mapping import MappingError, mapping_report, require_fit
from neurocc.compiler.passes.partition import partition
from neurocc.errors import NeuroccError
import numpy as np

from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Conv2d, Input, Output
from test_partition import conv_net, dense_chain, if_, target


def test_fitting_report_table_and_json():
    t = target(neurons_per_core=64, cores_per_chip=8, chips=1, fan_in_axons_per_core=4096,
               synapse_memory_bits_per_core=1 << 20)
    r = mapping_report(dense_chain(10, 100, 30), t)
    assert r.fits and r.cores == 3 and r.chips == 1 and not r.fixes
    table = r.format_table()
    for word in ("l0", "l1", "neurons/core", "fits", "tightest resource"):
        assert word in table
    d = json.loads(r.to_json())
    rows = {(x["layer"], x["resource"]): x for x in d["resources"]}
    # l0: 100 neurons in 2 slices of 50; each neuron reads 10 inputs at 8 bits
    assert rows[("l0", "neurons")]["used"] == 50 and rows[("l0", "neurons")]["slack"] == 14
    assert rows[("l0", "synapse_memory_bits")]["used"] == 50 * 10 * 8
    assert rows[("network", "chips")]["used"] == 1
    assert d["fits"] is True and len(d["placement"]["slices"]) == 3


def test_fan_in_binding_named_and_error_message():
    t = target(neurons_per_core=1024, fan_in_axons_per_core=4096)
    r = mapping_report(dense_chain(5000, 10), t)
    assert not r.fits
    b = r.binding
    assert (b.layer, b.resource, b.needed, b.available) == ("l0", "fan_in_axons", 5000, 4096)
    with pytest.raises(MappingError) as err:
        require_fit(r)
    assert isinstance(err.value, NeuroccError)
    msg = str(err.value)
    assert "layer 'l0'" in msg and "fan_in_axons needs 5,000, available 4,096" in msg
    assert err.value.report is r


def test_too_many_cores_binds_chips_and_fix_is_computed():
    t = target(neurons_per_core=10, cores_per_chip=4, chips=1, synapse_memory_bits_per_core=10 * 40 * 8)
    r = mapping_report(dense_chain(40, 40, 40), t)
    assert not r.fits
    assert (r.binding.resource, r.binding.needed, r.binding.available) == ("chips", 2, 1)
    kinds = [f.kind for f in r.fixes]
    assert kinds[0] == "chips" and r.fixes[0].fits and r.fixes[0].chips == 2
    wb = next(f for f in r.fixes if f.kind == "weight_bits")
    # predicted effect is what the mapping gives with that width: re-check independently
    bits = int(wb.action.split(" to ")[1].split()[0])
    again = mapping_report(dense_chain(40, 40, 40), t, weight_bits=bits, with_fixes=False)
    assert (again.fits, again.cores, again.chips) == (wb.fits, wb.cores, wb.chips)


def test_memory_binding_weight_bits_fix_makes_it_fit():
    # each neuron reads 100 inputs: 800 bits at 8-bit weights, 500 bits of memory per core
    t = target(neurons_per_core=16, synapse_memory_bits_per_core=500, weight_bits=8)
    r = mapping_report(dense_chain(100, 20), t)
    assert (r.binding.layer, r.binding.resource, r.binding.needed, r.binding.available) == \
        ("l0", "synapse_memory_bits", 800, 500)
    fix = r.fixes[0]
    assert fix.kind == "weight_bits" and fix.fits and "to 5" in fix.action   # 100 x 5 = 500 bits


def test_other_target_offered_when_it_fits():
    small = target("small", neurons_per_core=1024, fan_in_axons_per_core=4096)
    big = target("big", neurons_per_core=8192)
    r = mapping_report(dense_chain(5000, 10), small, targets={"small": small, "big": big})
    assert (r.fixes[0].kind, r.fixes[0].action, r.fixes[0].fits) == ("target", "use target 'big'", True)
    assert {f.kind for f in r.fixes[1:]} == {"prune"}   # pruning fan-in also fits; a model change ranks after


def test_conv_fan_in_groups_fix():
    # each neuron of n reads 4 channels x 3 x 3 = 36 inputs; limit 20 -> 2 groups of 2 channels (18)
    g = Graph.chain(("in", Input(shape=(4, 8, 8))),
                    ("c", Conv2d(weight=np.ones((4, 4, 3, 3)), bias=np.zeros(4))),
                    ("n", if_((4, 6, 6))), ("out", Output()))
    r = mapping_report(g, target(neurons_per_core=1024, fan_in_axons_per_core=20))
    assert not r.fits and (r.binding.layer, r.binding.resource, r.binding.needed) == ("n", "fan_in_axons", 36)
    (grp,) = [f for f in r.fixes if f.kind == "groups"]
    assert grp.changes_model and grp.fits and "'c' into 2 channel groups" in grp.action


def test_report_uses_same_partition_as_pass():
    t = target(neurons_per_core=30)
    g = conv_net()
    r = mapping_report(g, t)
    assert [s.box for s in r.partition.slices] == [s.box for s in partition(g, t).slices]
