"""NIR → IR → NIR → IR keeps every parameter exactly (paper fixtures and generated graphs)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocc.compiler.frontends.nir import read_nir, write_nir
from neurocc.ir import Graph

FIXTURES = ["cnn_sinabs.nir", "lif_norse.nir", "lif_rockpool.nir", "two_lif_neurons.nir"]


def _roundtrip(graph: Graph, path: Path) -> Graph:
    write_nir(graph, path)
    return read_nir(path)


def _assert_same(a: Graph, b: Graph) -> None:
    assert list(a.nodes) == list(b.nodes)
    assert a.edges == b.edges
    for name, node in a.nodes.items():
        other = b.nodes[name]
        assert node.kind == other.kind, name
        for key, value in node.params().items():
            if isinstance(value, np.ndarray):
                assert value.dtype == other.params()[key].dtype, (name, key)
                np.testing.assert_array_equal(value, other.params()[key], err_msg=f"{name}.{key}")
            else:
                assert value == other.params()[key], (name, key)
    assert (a.dt, a.method) == (b.dt, b.method)
    assert a.replace(name="g").digest() == b.replace(name="g").digest()


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_roundtrip(nir_paper: Path, tmp_path: Path, fixture: str) -> None:
    first = read_nir(nir_paper / fixture)
    raw = nir.read(nir_paper / fixture, type_check=False)
    for name, node in first.nodes.items():  # the first read equals what the nir package reads
        for key, value in node.arrays().items():
            np.testing.assert_array_equal(value, np.asarray(getattr(raw.nodes[name], key)))
    second = _roundtrip(first, tmp_path / fixture)
    _assert_same(first, second)
    _assert_same(second, _roundtrip(second, tmp_path / ("again_" + fixture)))


def test_remaining_kinds_roundtrip(tmp_path: Path) -> None:
    """Conv1d, CubaLI, Scale, Delay, Threshold, I, AvgPool2d (the kinds the generators leave out)."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.random(s).astype(np.float32) + 0.1  # noqa: E731
    a = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 8])}),
        "conv": nir.Conv1d(input_shape=8, weight=f(3, 2, 3), stride=1, padding=1, dilation=1, groups=1, bias=f(3)),
        "cuba": nir.CubaLI(tau_syn=f(3, 8), tau_mem=f(3, 8), r=f(3, 8), v_leak=f(3, 8), w_in=f(3, 8)),
        "flat": nir.Flatten(input_type={"input": np.array([3, 8])}, start_dim=0),
        "scale": nir.Scale(scale=f(24)), "delay": nir.Delay(delay=f(24)), "th": nir.Threshold(threshold=f(24)),
        "integ": nir.I(r=f(24)), "output": nir.Output(output_type={"output": np.array([24])})},
        edges=[("input", "conv"), ("conv", "cuba"), ("cuba", "flat"), ("flat", "scale"), ("scale", "delay"),
               ("delay", "th"), ("th", "integ"), ("integ", "output")], type_check=False)
    b = nir.NIRGraph.from_list(nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                             padding=np.array([1, 1])), type_check=False)
    b.nodes["input"] = nir.Input(input_type={"input": np.array([1, 4, 4])})
    for graph, expected in ((a, ["Input", "Conv1d", "CubaLI", "Flatten", "Scale", "Delay", "Threshold", "I",
                                 "Output"]), (b, ["Input", "AvgPool2d", "Output"])):
        first = read_nir(graph)
        assert [first.nodes[n].kind for n in first.order()] == expected
        _assert_same(first, _roundtrip(first, tmp_path / "k.nir"))
    assert read_nir(b).shapes()["output"] == (1, 5, 5)


# ----- generated graphs -------------------------------------------------------------------------
pos = st.floats(0.0001220703125, 1.0, allow_nan=False, width=32)  # 2**-13
val = st.floats(-2.0, 2.0, allow_nan=False, width=32)


def _arr(draw: st.DrawFn, elems: st.SearchStrategy[float], shape: tuple[int, ...]) -> np.ndarray:
    n = int(np.prod(shape))
    return np.array(draw(st.lists(elems, min_size=n, max_size=n)), np.float32).reshape(shape)


def _neuron(draw: st.DrawFn, kind: str, shape: tuple[int, ...]) -> nir.NIRNode:
    a = lambda e: _arr(draw, e, shape)  # noqa: E731
    if kind == "LIF":
        return nir.LIF(tau=a(pos), r=a(pos), v_leak=a(val), v_threshold=a(pos), v_reset=a(val))
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=a(pos), tau_mem=a(pos), r=a(pos), v_leak=a(val), v_threshold=a(pos),
                           v_reset=a(val), w_in=a(val))
    if kind == "IF":
        return nir.IF(r=a(pos), v_threshold=a(pos), v_reset=a(val))
    return nir.LI(tau=a(pos), r=a(pos), v_leak=a(val))


@st.composite
def chains(draw: st.DrawFn) -> tuple[nir.NIRGraph, dict[str, str]]:
    """Conv2d → neuron → SumPool2d → Flatten → (Affine|Linear → neuron)+ with random params."""
    c_in, c_out, hw = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.sampled_from([4, 6]))
    k, pad = draw(st.sampled_from([1, 3])), draw(st.integers(0, 1))
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([c_in, hw, hw])})}
    nodes["conv"] = nir.Conv2d(input_shape=(hw, hw), weight=_arr(draw, val, (c_out, c_in, k, k)), stride=1,
                               padding=pad, dilation=1, groups=1, bias=_arr(draw, val, (c_out,)))
    side = hw + 2 * pad - k + 1
    kinds = st.sampled_from(["LIF", "CubaLIF", "IF", "LI"])
    nodes["n0"] = _neuron(draw, draw(kinds), (c_out, side, side))
    nodes["pool"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([c_out, side // 2, side // 2])}, start_dim=0)
    width = c_out * (side // 2) ** 2
    resets = {}
    for i in range(draw(st.integers(1, 3))):
        out = draw(st.integers(1, 4))
        w = _arr(draw, val, (out, width))
        if draw(st.booleans()):
            nodes[f"fc{i}"] = nir.Affine(weight=w, bias=_arr(draw, val, (out,)))
        else:
            nodes[f"fc{i}"] = nir.Linear(weight=w)
        kind = draw(kinds)
        nodes[f"n{i + 1}"] = _neuron(draw, kind, (out,))
        if kind in ("LIF", "CubaLIF", "IF") and draw(st.booleans()):
            resets[f"n{i + 1}"] = "subtract"
        width = out
    nodes["output"] = nir.Output(output_type={"output": np.array([width])})
    names = list(nodes)
    meta = {"neurocc.reset": resets} if resets else {}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata=meta, type_check=False), resets


@st.composite
def recurrent(draw: st.DrawFn) -> nir.NIRGraph:
    """Input → Affine → neuron ⇄ (Linear|Affine) recurrent loop(s) → Linear → Output."""
    n_in, n = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([n_in])}),
                                     "w_in": nir.Affine(weight=_arr(draw, val, (n, n_in)), bias=_arr(draw, val, (n,))),
                                     "cell": _neuron(draw, draw(st.sampled_from(["LIF", "CubaLIF"])), (n,)),
                                     "w_rec": nir.Linear(weight=_arr(draw, val, (n, n)))}
    edges = [("input", "w_in"), ("w_in", "cell"), ("cell", "w_rec"), ("w_rec", "cell")]
    if draw(st.booleans()):  # a second, longer loop through another neuron layer
        nodes["fb"] = _neuron(draw, "IF", (n,))
        nodes["w_fb"] = nir.Affine(weight=_arr(draw, val, (n, n)), bias=_arr(draw, val, (n,)))
        edges += [("cell", "fb"), ("fb", "w_fb"), ("w_fb", "cell")]
    nodes["readout"] = nir.Linear(weight=_arr(draw, val, (2, n)))
    nodes["output"] = nir.Output(output_type={"output": np.array([2])})
    edges += [("cell", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(chains())
def test_generated_chain_roundtrip(case: tuple[nir.NIRGraph, dict[str, str]]) -> None:
    graph, resets = case
    first = read_nir(graph)
    for name, node in graph.nodes.items():
        for key, value in first.nodes[name].arrays().items():
            np.testing.assert_array_equal(value, np.asarray(getattr(node, key)))
        if name in resets:
            assert first.nodes[name].reset.value == "subtract"
    shuffled = nir.NIRGraph(nodes=dict(reversed(list(graph.nodes.items()))), edges=graph.edges[::-1],
                            metadata=graph.metadata, type_check=False)
    _assert_same(first, read_nir(shuffled))  # the listing order in the file does not matter
    with tempfile.TemporaryDirectory() as d:
        second = _roundtrip(first, Path(d) / "g.nir")
        _assert_same(first, second)
        _assert_same(second, _roundtrip(second, Path(d) / "h.nir"))


@SETTINGS
@given(recurrent())
def test_generated_recurrent_roundtrip(graph: nir.NIRGraph) -> None:
    first = read_nir(graph)
    delayed = {(e.src, e.dst) for e in first.edges if e.delay}
    assert delayed == ({("w_rec", "cell")} | ({("w_fb", "cell")} if "fb" in graph.nodes else set()))
    shuffled = nir.NIRGraph(nodes=dict(reversed(list(graph.nodes.items()))), edges=graph.edges[::-1],
                            metadata=graph.metadata, type_check=False)
    _assert_same(first, read_nir(shuffled))  # the listing order in the file does not matter
    with tempfile.TemporaryDirectory() as d:
        second = _roundtrip(first, Path(d) / "g.nir")
        _assert_same(first, second)
