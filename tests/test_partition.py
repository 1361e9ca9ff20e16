"""Partition pass: coverage, limits, counts against a brute-force connectivity oracle, splits."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, HealthCheck, given, settings
from hypothesis import strategies as st

from neurocc.compiler.passes.partition import partition
from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import IF, LIF, Affine, Conv2d, Flatten, Input, Output, ReLU, SumPool2d
from neurocc.ir.qnodes import QDense, QLIF
from neurocc.targets import Limits, Target


# ----- helpers shared by the mapping tests (kept here, imported by test_place/test_mapping) --------
def lif(shape) -> LIF:
    shape = tuple(np.atleast_1d(shape))
    return LIF(tau=np.ones(shape), r=np.ones(shape), v_leak=np.zeros(shape),
               v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def if_(shape) -> IF:
    return IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))


def target(name="t", numerics="loihi", **limits) -> Target:
    return Target(name, "test target", "loihi", numerics, 1e-3, Limits(**limits))


def dense_chain(*widths: int, recurrent: bool = False) -> Graph:
    nodes: dict = {"in": Input(shape=(widths[0],))}
    edges, prev = [], "in"
    for k, (a, b) in enumerate(zip(widths, widths[1:])):
        nodes[f"w{k}"] = Affine(weight=np.full((b, a), 0.5), bias=np.zeros(b))
        nodes[f"l{k}"] = lif(b)
        edges += [Edge(prev, f"w{k}"), Edge(f"w{k}", f"l{k}")]
        prev = f"l{k}"
    if recurrent:
        b = widths[-1]
        nodes["rec"] = Affine(weight=np.full((b, b), 0.1), bias=np.zeros(b))
        edges += [Edge(prev, "rec", 1), Edge("rec", prev)]
    nodes["out"] = Output()
    edges.append(Edge(prev, "out"))
    return Graph(nodes, tuple(edges), dt=1e-3)


def conv_net(c_in=2, hw=12, c1=4, k=3, stride=1, pad=1, groups=1, pool=True, c2=6, n_out=5) -> Graph:
    rng = np.random.default_rng(0)
    nodes: dict = {"in": Input(shape=(c_in, hw, hw)),
                   "c1": Conv2d(weight=rng.normal(size=(c1, c_in // groups, k, k)), bias=np.zeros(c1),
                                stride=(stride, stride), padding=(pad, pad), groups=groups)}
    g = Graph.chain(*nodes.items())
    shp = g.shapes()["c1"]
    nodes["n1"] = if_(shp)
    if pool:
        nodes["p1"] = SumPool2d(kernel_size=(2, 2), stride=(2, 2))
    nodes["c2"] = Conv2d(weight=rng.normal(size=(c2, c1, 3, 3)), bias=np.zeros(c2), padding=(0, 0))
    shp2 = Graph.chain(*nodes.items()).shapes()["c2"]
    nodes["n2"] = if_(shp2)
    nodes["fl"] = Flatten()
    nodes["fc"] = Affine(weight=np.ones((n_out, int(np.prod(shp2)))), bias=np.zeros(n_out))
    nodes["n3"] = if_((n_out,))
    nodes["out"] = Output()
    return Graph.chain(*nodes.items(), dt=1e-3).verify()


def oracle(graph: Graph, pre: str, post: str) -> np.ndarray:
    """Boolean (n_post, n_pre) connectivity of every synapse path pre → post, by pushing unit
    impulses through the ops with all-positive weights (torch), independent of the mapper."""
    import torch
    import torch.nn.functional as F

    shapes = graph.shapes()
    n_pre = int(np.prod(shapes[pre]))
    total = np.zeros((int(np.prod(shapes[post])), n_pre), bool)

    def walk(node: str, x: torch.Tensor) -> None:
        for e in graph.out_edges(node):
            dst, op = e.dst, graph.nodes[e.dst]
            if dst == post:
                total[:] |= (x.reshape(n_pre, -1) != 0).numpy().T
                continue
            if op.kind in ("Affine", "Linear", "QDense"):
                y = x.reshape(n_pre, -1) @ torch.ones(op.weight.shape[::-1], dtype=torch.float64)
            elif op.kind in ("Conv2d", "QConv2d"):
                w = torch.ones(op.weight.shape, dtype=torch.float64)
                y = F.conv2d(x, w, stride=op.stride, padding=op.padding, dilation=op.dilation, groups=op.groups)
            elif op.kind in ("SumPool2d", "AvgPool2d"):
                y = F.avg_pool2d(x, op.kernel_size, op.stride, op.padding) * 4.0
            elif op.kind == "Flatten":
                y = x.reshape(n_pre, -1)
            else:
                continue  # another layer or Output: the path ends elsewhere
            walk(dst, y)

    walk(pre, torch.eye(n_pre, dtype=torch.float64).reshape(n_pre, *shapes[pre]))
    return total


def check_against_oracle(graph: Graph, part, bits: int) -> None:
    """Every slice's synapses, memory and fan-in, and every slice's fan-out, from brute force."""
    net = part.network
    mats = {(c.pre, c.post): oracle(graph, c.pre, c.post) for c in net.conns}
    for name, lp in part.layers.items():
        ins = [m for (a, b), m in mats.items() if b == name]
        outs = [(b, m) for (a, b), m in mats.items() if a == name]
        for s in lp.slices:
            idx = s.indices(lp.view)
            assert s.usage.neurons == idx.size
            assert s.usage.synapses == sum(int(m[idx].sum()) for m in ins)
            assert s.usage.synapse_memory_bits == bits * s.usage.synapses
            assert s.usage.fan_in_axons == sum(int(m[idx].any(axis=0).sum()) for m in ins)
            if lp.on_cores:
                fo = sum(int(m[t.indices(part.layers[b].view)][:, idx].any(axis=0).sum())
                         for b, m in outs for t in part.layers[b].slices)
                assert s.usage.fan_out_axons == fo


def check_cover_and_limits(part) -> None:
    lim = part.target.limits
    for name, lp in part.layers.items():
        idx = np.concatenate([s.indices(lp.view) for s in lp.slices])
        assert np.array_equal(np.sort(idx), np.arange(lp.n_neurons)), f"{name}: not every neuron exactly once"
        if not part.violations and lp.on_cores:
            for s in lp.slices:
                u = s.usage
                for used, limit in ((u.neurons, lim.neurons_per_core), (u.synapse_memory_bits, lim.synapse_memory_bits_per_core),
                                    (u.fan_in_axons, lim.fan_in_axons_per_core), (u.fan_out_axons, lim.fan_out_axons_per_core)):
                    assert limit is None or used <= limit, (name, s, limit)


# ----- tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, expect", [(64, 1), (65, 2), (128, 2), (129, 3)])
def test_one_neuron_too_many_splits(n, expect):
    part = partition(dense_chain(10, n), target(neurons_per_core=64))
    lp = part.layers["l0"]
    assert len(lp.slices) == expect
    assert [s.n_neurons for s in lp.slices][0] <= 64
    check_cover_and_limits(part)


def test_input_off_chip_on_loihi_but_on_cores_on_spinnaker():
    g = dense_chain(300, 10)
    loihi = partition(g, target(neurons_per_core=256))
    spinn = partition(g, target(numerics="spinnaker", neurons_per_core=256))
    assert not loihi.layers["in"].on_cores and loihi.cores == 1
    assert spinn.layers["in"].on_cores and len(spinn.layers["in"].slices) == 2 and spinn.cores == 3


def test_conv_counts_match_brute_force_oracle():
    g = conv_net()
    part = partition(g, target(neurons_per_core=40, fan_out_axons_per_core=2000, weight_bits=6))
    assert not part.violations
    check_cover_and_limits(part)
    check_against_oracle(g, part, bits=6)


def test_shared_conv_kernels_count_kernel_once_per_core():
    g = conv_net(pool=False)
    t = target(numerics="spinnaker", neurons_per_core=100, weight_bits=8)
    part = partition(g, t)
    lp = part.layers["n1"]          # c1: 4 out channels, kernel 2×3×3 per channel
    for s in lp.slices:
        channels = s.box[0][1] - s.box[0][0]
        assert s.usage.synapse_memory_bits == channels * 2 * 3 * 3 * 8
    expanded = partition(g, dataclasses.replace(t, numerics="loihi"))
    assert expanded.layers["n1"].slices[0].usage.synapse_memory_bits > lp.slices[0].usage.synapse_memory_bits


def test_recurrent_connection_counts_own_layer():
    g = dense_chain(10, 50, recurrent=True)
    part = partition(g, target(neurons_per_core=20, fan_out_axons_per_core=10_000))
    lp = part.layers["l0"]
    assert [x.n_neurons for x in lp.slices] == [17, 17, 16]   # 50 neurons in 3 balanced slices
    s = lp.slices[0]
    assert s.usage.fan_in_axons == 10 + 50        # the input and the whole layer itself
    assert s.usage.synapses == 17 * (10 + 50)
    assert s.usage.fan_out_axons == 17 * 3         # each neuron feeds the 3 slices of its layer
    check_against_oracle(g, part, bits=8)


def test_quantized_graph_uses_real_weight_bits():
    w = np.ones((30, 20), np.int32)
    q = Graph.chain(("in", Input(shape=(20,))), ("d", QDense(weight=w, num_weight_bits=3)),
                    ("n", QLIF(du=np.zeros(30, np.int32), dv=np.zeros(30, np.int32), vth=np.ones(30, np.int32),
                               bias_mant=np.zeros(30, np.int32), bias_exp=np.zeros(30, np.int32))),
                    ("out", Output()), numerics="loihi")
    part = partition(q, target(neurons_per_core=1024, weight_bits=8, bits_per_synapse=12))
    # 12 bits per synapse at 8-bit weights = 4 index bits + 3 weight bits = 7 bits per synapse
    assert part.layers["n"].slices[0].usage.synapse_memory_bits == 30 * 20 * 7


def test_fan_in_too_large_is_a_core_violation_naming_layer():
    part = partition(dense_chain(5000, 10), target(neurons_per_core=1024, fan_in_axons_per_core=4096))
    (v,) = part.violations
    assert (v.layer, v.resource, v.needed, v.available) == ("l0", "fan_in_axons", 5000, 4096)


def test_memory_per_neuron_too_large_is_reported():
    part = partition(dense_chain(2000, 10), target(synapse_memory_bits_per_core=8000, weight_bits=8))
    (v,) = part.violations
    assert (v.layer, v.resource, v.needed, v.available) == ("l0", "synapse_memory_bits", 2000 * 8, 8000)


def test_memory_limit_splits_by_rows():
    part = partition(dense_chain(100, 50), target(synapse_memory_bits_per_core=100 * 8 * 12, weight_bits=8))
    assert [s.n_neurons for s in part.layers["l0"].slices] == [10, 10, 10, 10, 10]  # 50 = 5 x 10 (<=12)


def test_delay_beyond_target_is_reported():
    g = dense_chain(10, 10)
    g = g.replace(edges=tuple(Edge(e.src, e.dst, 70) if e.dst == "l0" else e for e in g.edges))
    part = partition(g, target(max_delay_steps=62))
    assert [(v.layer, v.resource, v.needed, v.available) for v in part.violations] == [("l0", "delay_steps", 70, 62)]


def test_ann_only_node_is_a_clear_error():
    g = Graph.chain(("in", Input(shape=(4,))), ("a", Affine(weight=np.ones((4, 4)), bias=np.zeros(4))),
                    ("r", ReLU()), ("out", Output()))
    with pytest.raises(CompileError, match="'r' \\(ReLU\\)"):
        partition(g, target())


def test_deterministic_and_input_untouched():
    g = conv_net()
    text = g.text()
    t = target(neurons_per_core=30, fan_in_axons_per_core=200)
    a, b = partition(g, t), partition(g, t)
    assert [(s.layer, s.box, s.usage) for s in a.slices] == [(s.layer, s.box, s.usage) for s in b.slices]
    assert g.text() == text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c_in=st.integers(1, 3), hw=st.integers(6, 11), c1=st.sampled_from([2, 4, 6]), k=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 1), grouped=st.booleans(), pool=st.booleans(),
       npc=st.integers(5, 300), fan_in=st.sampled_from([None, 40, 200]), fan_out=st.sampled_from([None, 300, 3000]),
       mem=st.sampled_from([None, 4000, 40000]))
def test_property_every_neuron_once_and_within_limits(c_in, hw, c1, k, stride, pad, grouped, pool, npc, fan_in,
                                                      fan_out, mem):
    groups = c_in if grouped and c1 % c_in == 0 else 1
    out = (hw + 2 * pad - k) // stride + 1
    assume(out >= 3)  # the second conv has a 3x3 kernel without padding
    g = conv_net(c_in=c_in, hw=hw, c1=c1, k=k, stride=stride, pad=pad, groups=groups, pool=pool and out >= 6)
    t = target(neurons_per_core=npc, fan_in_axons_per_core=fan_in, fan_out_axons_per_core=fan_out,
               synapse_memory_bits_per_core=mem, weight_bits=4)
    part = partition(g, t)
    check_cover_and_limits(part)
    check_against_oracle(g, part, bits=4)
    for v in part.violations:        # a violation only where even the smallest slice cannot fit
        assert v.needed > v.available
