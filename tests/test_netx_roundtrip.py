"""netx import → export (neurocc's own netx writer) → import keeps every parameter; a loihi
compile of a float model with biases gets a network.net. (That neurocc-written files load in
lava-dl and run in Lava as the emulator is checked in test_netx_lava.py, in one worker call.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.backends.loihi.netx import plan_netx
from neurocc.backends.loihi.netx_file import write_net
from neurocc.compiler.frontends.netx import read_netx
from neurocc.ir.numerics.core import lava_dense_weights, shift

from test_frontend_netx import ROOT, needs_lava_dl

FILES = [("tiny.net", None), ("mnist.net", None), ("gts/pilotnet_lif/network.net", None),
         ("gts/ntidigits/ntidigits.net", 5)]


def _effective(node) -> dict[str, np.ndarray]:
    """What a node computes: dense values W'·2**exp per synapse, everything else as stored."""
    if node.kind == "QDense":
        return {"values": shift(lava_dense_weights(node.weight, node.num_weight_bits), node.weight_exp)}
    return {k: np.asarray(v) for k, v in node.params().items() if not isinstance(v, str)}


def _reexport(name: str, n: int | None, tmp: Path):
    g = read_netx(ROOT / name, num_layers=n)
    plan = plan_netx(g)
    assert plan.expressible, plan.problems
    out = write_net(plan, tmp / "re.net")
    return g, read_netx(out), out


@needs_lava_dl
@pytest.mark.parametrize("name,n", FILES)
def test_import_export_import_keeps_every_parameter(name: str, n: int | None, tmp_path: Path) -> None:
    g, g2, _ = _reexport(name, n, tmp_path)
    assert list(g.nodes) == list(g2.nodes) and g.edges == g2.edges
    for node_name, node in g.nodes.items():
        a, b = _effective(node), _effective(g2.nodes[node_name])
        assert a.keys() == b.keys(), node_name
        for k in a:
            assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), (node_name, k)


def _biased_model():
    from neurocc.ir.graph import Graph
    from neurocc.ir.nodes import Affine, Input, LIF, Output

    rng = np.random.default_rng(5)
    n_in, n_h, n_o = 12, 10, 4
    lif = lambda n: LIF(tau=np.full(n, 0.004), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                        v_threshold=np.ones(n), v_reset=np.zeros(n))
    return Graph.chain(("input", Input(shape=(n_in,))),
                       ("fc1", Affine(weight=rng.normal(0.4, 0.8, (n_h, n_in)), bias=rng.normal(0.3, 0.2, n_h))),
                       ("lif1", lif(n_h)),
                       ("fc2", Affine(weight=rng.normal(0.5, 0.8, (n_o, n_h)), bias=rng.normal(0.3, 0.2, n_o))),
                       ("lif2", lif(n_o)), ("output", Output(shape=(n_o,))), dt=1e-3).verify()


def test_loihi_compile_of_a_biased_model_writes_network_net(tmp_path: Path) -> None:
    """A float model whose layers have biases: the loihi2 artifact gets a network.net (biases on
    netx's grid), and reading that file back gives the artifact's own integer graph's outputs."""
    import json

    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact

    art = compile_model(_biased_model(), "loihi2", tmp_path / "art")
    doc = json.loads((art / "loihi.json").read_text())
    assert doc["netx"]["expressible"], doc["netx"]["not_expressible"]
    q = load_artifact(art).graph
    assert any(np.any(n.bias_mant) for n in q.nodes.values() if n.kind == "QLIF")
    back = read_netx(art / "network.net")
    x = (np.random.default_rng(0).random((60, 2, 12)) < 0.3).astype(np.int64)
    a = simulate(q, {"input": x}).outputs["output"]
    b = simulate(back, {"input": x}).outputs["output"]
    assert a.any() and np.array_equal(a, b)
