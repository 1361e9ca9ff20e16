"""normalize: BatchNorm/Scale folding and identity removal.

Each rewrite is checked the torch.fx way: the change itself (by hand-computed numbers), idempotence,
no mutation of the input, and unchanged outputs (torch's eval-mode output as the independent
oracle, and the shared reference simulator before vs after on random inputs).
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.compiler.passes.normalize import normalize
from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (
    Add,
    Affine,
    BatchNorm,
    Conv2d,
    Input,
    Linear,
    Output,
    ReLU,
    Scale,
)

torch = pytest.importorskip("torch", reason="torch is the independent oracle for BatchNorm folding")


def _forward(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's output for static x (one step of the shared reference simulator)."""
    from neurocc.backends.emulator import simulate

    (out,) = graph.outputs
    return np.asarray(simulate(graph, {graph.inputs[0]: x[None]}, steps=1).outputs[out][0])


def _bn_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 6, bias=False), torch.nn.BatchNorm1d(6))
    gen = torch.Generator().manual_seed(seed)
    for m in model:
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen))
            m.running_var.copy_(torch.rand(n, generator=gen) * 3 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen))
    return model.eval()


@pytest.fixture(scope="module")
def bn_graph() -> tuple[Graph, torch.nn.Module]:
    from neurocc.compiler.frontends import load

    model = _bn_cnn()
    return load(model, input_shape=(2, 5, 5)), model


def test_batchnorm_folds_exactly_against_torch(bn_graph):
    graph, model = bn_graph
    out = normalize(graph)
    assert [n.kind for n in out.nodes.values()].count("BatchNorm") == 0
    assert sum(n.kind == "BatchNorm" for n in graph.nodes.values()) == 2
    x = np.random.default_rng(1).normal(size=(16, 2, 5, 5)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = _forward(out, x)
    # float32 weights folded in float64 then rounded once: agreement to float32 precision
    # (torch runs the graph before folding: the reference simulator refuses BatchNorm by design)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_normalize_is_idempotent_and_pure(bn_graph):
    graph, _ = bn_graph
    before = graph.text()
    once = normalize(graph)
    assert graph.text() == before  # the input graph is untouched
    assert normalize(once).digest() == once.digest()


def test_batchnorm_after_linear_by_hand():
    # W = [[1, 2]], no bias; BN: mean 1, var 3, eps 1, gamma 3, beta 0.5
    # s = 3 / sqrt(3 + 1) = 1.5;  W' = [[1.5, 3.0]];  b' = 1.5 * (0 - 1) + 0.5 = -1.0
    g = Graph.chain(("x", Input(shape=(2,))), ("fc", Linear(weight=np.array([[1.0, 2.0]]))),
                    ("bn", BatchNorm(mean=[1.0], var=[3.0], weight=[3.0], bias=[0.5], eps=1.0)),
                    ("y", Output(shape=(1,))))
    out = normalize(g)
    assert list(out.nodes) == ["x", "fc", "y"]
    assert isinstance(out.nodes["fc"], Affine)
    np.testing.assert_allclose(out.nodes["fc"].weight, [[1.5, 3.0]])
    np.testing.assert_allclose(out.nodes["fc"].bias, [-1.0])
    assert out.edges == (Edge("x", "fc"), Edge("fc", "y"))


def test_batchnorm_not_after_a_synapse_is_refused_with_every_node_named():
    g = Graph.chain(("x", Input(shape=(2,))), ("bn_in", BatchNorm(mean=[0, 0], var=[1, 1], weight=[1, 1], bias=[0, 0])),
                    ("fc", Affine(weight=np.eye(2), bias=np.zeros(2))), ("act", ReLU()),
                    ("bn_act", BatchNorm(mean=[0, 0], var=[1, 1], weight=[1, 1], bias=[0, 0])),
                    ("y", Output(shape=(2,))))
    with pytest.raises(CompileError) as err:
        normalize(g)
    msg = str(err.value)
    assert "'bn_in'" in msg and "'bn_act'" in msg and "'act' (ReLU)" in msg
    assert "directly after a Conv2d/Linear" in msg


def test_scale_folds_into_the_neighbouring_synapse_by_hand():
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = Graph.chain(("x", Input(shape=(2,))), ("pre", Scale(scale=[2.0, 10.0])),
                    ("fc", Affine(weight=w, bias=np.array([1.0, -1.0]))), ("post", Scale(scale=[0.5, 3.0])),
                    ("y", Output(shape=(2,))))
    out = normalize(g)
    assert list(out.nodes) == ["x", "fc", "y"]
    # post: rows scaled by (0.5, 3); pre: columns scaled by (2, 10)
    np.testing.assert_allclose(out.nodes["fc"].weight, [[1.0, 10.0], [18.0, 120.0]])
    np.testing.assert_allclose(out.nodes["fc"].bias, [0.5, -3.0])
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(_forward(out, x), _forward(g, x), rtol=1e-12)


def test_scale_that_varies_within_a_channel_is_kept_before_a_convolution():
    rng = np.random.default_rng(0)
    conv = Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), bias=np.zeros(3), padding=(1, 1))
    g = Graph.chain(("x", Input(shape=(2, 4, 4))), ("s", Scale(scale=rng.normal(size=(2, 4, 4)))),
                    ("conv", conv), ("y", Output(shape=(3, 4, 4))))
    out = normalize(g)
    assert "s" in out.nodes and out.nodes["conv"] is g.nodes["conv"]


def test_channel_scale_before_a_padded_convolution_folds_exactly():
    rng = np.random.default_rng(1)
    conv = Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), bias=rng.normal(size=3), padding=(1, 1))
    scale = np.broadcast_to(np.array([0.5, -2.0])[:, None, None], (2, 4, 4))
    g = Graph.chain(("x", Input(shape=(2, 4, 4))), ("s", Scale(scale=scale)), ("conv", conv),
                    ("y", Output(shape=(3, 4, 4))))
    out = normalize(g)
    assert "s" not in out.nodes
    x = rng.normal(size=(3, 2, 4, 4))
    np.testing.assert_allclose(_forward(out, x), _forward(g, x), rtol=1e-10, atol=1e-12)


def test_single_input_add_is_removed_and_multi_input_add_kept():
    g = Graph(
        {"x": Input(shape=(2,)), "a": Add(), "fc": Affine(weight=np.eye(2), bias=np.zeros(2)),
         "join": Add(), "y": Output(shape=(2,))},
        (Edge("x", "a"), Edge("a", "fc"), Edge("fc", "join"), Edge("x", "join"), Edge("join", "y")))
    out = normalize(g)
    assert "a" not in out.nodes and "join" in out.nodes
    assert Edge("x", "fc") in out.edges
