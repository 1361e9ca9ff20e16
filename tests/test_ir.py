"""The IR core: node invariants, graph verification, shapes, order, text dump and serialization."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocc.errors import GraphError, ModelLoadError
from neurocc.ir import Edge, Graph, load_graph, save_graph
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.types import ResetMode


def lif(n: int, **kw: float) -> N.LIF:
    return N.LIF(tau=np.full(n, kw.get("tau", 0.01)), r=np.ones(n), v_leak=np.zeros(n),
                 v_threshold=np.full(n, kw.get("th", 1.0)), v_reset=np.zeros(n))


def recurrent_graph() -> Graph:
    return Graph(
        {"in": N.Input(shape=(3,)), "fc": N.Affine(weight=np.ones((4, 3)), bias=np.zeros(4)),
         "lif": lif(4), "rec": N.Linear(weight=np.eye(4)), "out": N.Output(shape=(4,))},
        [("in", "fc"), ("fc", "lif"), ("lif", "rec"), Edge("rec", "lif", 1), ("lif", "out")], dt=1e-3)


def test_nodes_are_immutable_and_arrays_read_only() -> None:
    w = np.ones((2, 3))
    node = N.Affine(weight=w, bias=np.zeros(2))
    w[0, 0] = 5.0  # the caller's array is copied, not aliased
    assert node.weight[0, 0] == 1.0
    with pytest.raises(ValueError):
        node.weight[0, 0] = 2.0
    with pytest.raises(AttributeError):
        node.weight = np.zeros((2, 3))  # type: ignore[misc]


def test_fields_are_coerced_to_declared_types() -> None:
    conv = N.Conv2d(weight=np.ones((4, 2, 3, 3)), bias=np.zeros(4), stride=[2, 2], padding=np.array([1, 1]))
    assert conv.stride == (2, 2) and conv.padding == (1, 1)
    node = N.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2), reset="subtract")
    assert node.reset is ResetMode.SUBTRACT


def test_recurrent_graph_verifies_and_reports_recurrence() -> None:
    g = recurrent_graph().verify()
    assert g.order() == ["in", "fc", "lif", "rec", "out"]
    assert g.recurrent_edges() == [Edge("rec", "lif", 1)]
    stats = g.stats()
    assert stats["fc"]["synapses"] == 12 and stats["lif"]["neurons"] == 4 and stats["rec"]["synapses"] == 16


def test_cycle_without_delay_is_reported() -> None:
    g = recurrent_graph()
    edges = tuple(Edge(e.src, e.dst, 0) for e in g.edges)
    with pytest.raises(GraphError) as err:
        g.replace(edges=edges).verify()
    assert "delay" in str(err.value) and "lif" in str(err.value)


def test_cycle_without_stateful_node_is_reported() -> None:
    g = Graph({"in": N.Input(shape=(2,)), "a": N.Linear(weight=np.eye(2)), "b": N.Linear(weight=np.eye(2)),
               "out": N.Output(shape=(2,))},
              [("in", "a"), ("a", "b"), Edge("b", "a", 1), ("b", "out")])
    with pytest.raises(GraphError, match="no stateful node"):
        g.verify()


def test_verify_lists_every_problem_at_once() -> None:
    g = Graph({"in": N.Input(shape=(3,)), "fc": N.Affine(weight=np.ones((4, 3)), bias=np.zeros(5)),
               "lif": N.LIF(tau=-np.ones(4), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4),
                            v_reset=np.zeros(3)),
               "lonely": N.Linear(weight=np.eye(2)), "out": N.Output(shape=(4,))},
              [("in", "fc"), ("fc", "lif"), ("lif", "out"), ("out", "ghost")])
    with pytest.raises(GraphError) as err:
        g.verify()
    msg = str(err.value)
    for needle in ("bias shape", "one shape", "'lonely'", "ghost", "Output node 'out' has outgoing"):
        assert needle in msg, needle


def test_shape_mismatch_names_both_nodes() -> None:
    g = Graph.chain(("in", N.Input(shape=(3,))), ("fc", N.Affine(weight=np.ones((4, 2)), bias=np.zeros(4))),
                    ("out", N.Output(shape=(4,))))
    with pytest.raises(GraphError) as err:
        g.verify()
    assert "'fc'" in str(err.value) and "'in'" in str(err.value) and "(2,)" in str(err.value)


def test_conv_pool_flatten_shapes() -> None:
    g = Graph.chain(
        ("in", N.Input(shape=(2, 34, 34))),
        ("c1", N.Conv2d(weight=np.ones((16, 2, 5, 5)), bias=np.zeros(16), stride=(2, 2), padding=(1, 1))),
        ("p", N.SumPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))),
        ("f", N.Flatten(start_dim=0)),
        ("out", N.Output(shape=(16 * 8 * 8,))),
    )
    shapes = g.verify().shapes()
    assert shapes["c1"] == (16, 16, 16) and shapes["p"] == (16, 8, 8) and shapes["f"] == (1024,)
    assert g.stats()["c1"]["synapses"] == 16 * 16 * 16 * 2 * 5 * 5


def test_text_and_digest_are_stable_and_sensitive() -> None:
    a, b = recurrent_graph(), recurrent_graph()
    assert a.text() == b.text() and a.digest() == b.digest()
    w = np.eye(4)
    w[1, 2] = 1e-9
    c = a.with_node("rec", N.Linear(weight=w))
    assert c.digest() != a.digest()


def test_save_load_round_trip_float_and_quantized(tmp_path) -> None:
    g = recurrent_graph()
    save_graph(g, tmp_path / "f")
    assert load_graph(tmp_path / "f" / "graph.json").digest() == g.digest()
    q = Graph.chain(("in", N.Input(shape=(3,))),
                    ("d", Q.QDense(weight=np.array([[1, -2, 3]] * 2, np.int32), weight_exp=-1)),
                    ("n", Q.QLIF(du=np.array([0, 4095], np.int32), dv=np.zeros(2, np.int32),
                                 vth=np.array([10, 20], np.int32), bias_mant=np.zeros(2, np.int32),
                                 bias_exp=np.zeros(2, np.int32))),
                    ("out", N.Output(shape=(2,))), numerics="loihi")
    save_graph(q, tmp_path / "q")
    back = load_graph(tmp_path / "q")
    assert back.digest() == q.digest()
    assert back.nodes["d"].weight.dtype == np.int32


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_graph(tmp_path / "nope.json")
    save_graph(recurrent_graph(), tmp_path)
    (tmp_path / "graph.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelLoadError, match="corrupt arrays"):
        load_graph(tmp_path / "graph.json")
    doc = json.loads((tmp_path / "graph.json").read_text())
    doc["version"] = 99
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(ModelLoadError, match="version 99"):
        load_graph(tmp_path / "graph.json")


@st.composite
def chains(draw: st.DrawFn) -> Graph:
    n_layers = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    sizes = [draw(st.integers(1, 6)) for _ in range(n_layers + 1)]
    nodes: dict[str, N.Node] = {"in": N.Input(shape=(sizes[0],))}
    edges = [Edge("in", "fc0")]
    for i in range(n_layers):
        nodes[f"fc{i}"] = N.Affine(weight=rng.normal(size=(sizes[i + 1], sizes[i])), bias=rng.normal(size=sizes[i + 1]))
        nodes[f"n{i}"] = lif(sizes[i + 1], tau=float(rng.uniform(1e-3, 1e-1)))
        edges.append(Edge(f"fc{i}", f"n{i}"))
        if draw(st.booleans()):
            nodes[f"r{i}"] = N.Linear(weight=rng.normal(size=(sizes[i + 1], sizes[i + 1])))
            edges += [Edge(f"n{i}", f"r{i}"), Edge(f"r{i}", f"n{i}", 1)]
        edges.append(Edge(f"n{i}", f"fc{i + 1}" if i + 1 < n_layers else "out"))
    nodes["out"] = N.Output(shape=(sizes[-1],))
    return Graph(nodes, tuple(edges), dt=1e-3)


@settings(max_examples=25, deadline=None)
@given(chains())
def test_generated_graphs_verify_and_round_trip(tmp_path_factory, g: Graph) -> None:
    g.verify()
    d = tmp_path_factory.mktemp("g")
    save_graph(g, d)
    back = load_graph(d)
    assert back.text() == g.text()
    for name, node in g.nodes.items():
        for k, arr in node.arrays().items():
            np.testing.assert_array_equal(back.nodes[name].arrays()[k], arr)
