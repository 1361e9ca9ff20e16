"""netx import → export (neurocc's own netx writer) → import keeps every parameter; a loihi
compile of a float model with biases writes no network.net (its biases wait for the delayed input),
the same graph with biases from step 0 does. (That neurocc-written files load in
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


def test_loihi_compile_of_a_biased_model_and_network_net(tmp_path: Path, monkeypatch) -> None:
    """A float model whose layers have biases: the loihi2 artifact starts each layer's bias with
    its Dense-delayed input (bias_start), which netx cannot say, so compile writes no network.net,
    loihi.json names the layers and the warning names the option; the same graph with its biases
    from step 0 (bias_from_step_zero) is expressible, and reading its netx file back gives that
    graph's outputs."""
    import json

    from neurocc.backends.loihi import emit as emit_mod
    from neurocc.compiler.passes.quantize import bias_from_step_zero
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact

    monkeypatch.setattr(emit_mod, "_WARNED", set())   # warned once per graph name and process
    with pytest.warns(UserWarning, match="network.net .* not written .*--bias-from-step-zero"):
        art = compile_model(_biased_model(), "loihi2", tmp_path / "art")
    doc = json.loads((art / "loihi.json").read_text())
    assert not doc["netx"]["expressible"] and not (art / "network.net").exists()
    assert any("node 'lif1' (QLIF): its bias starts at step 1" in p for p in doc["netx"]["not_expressible"])
    q = load_artifact(art).graph
    assert [q.nodes[n].bias_start for n in ("lif1", "lif2")] == [1, 2]
    g = bias_from_step_zero(q)
    assert any(np.any(n.bias_mant) for n in g.nodes.values() if n.kind == "QLIF")
    back = read_netx(write_net(plan_netx(g), tmp_path / "b.net"))
    x = (np.random.default_rng(0).random((60, 2, 12)) < 0.3).astype(np.int64)
    a = simulate(g, {"input": x}).outputs["output"]
    b = simulate(back, {"input": x}).outputs["output"]
    assert a.any() and np.array_equal(a, b)
    # the bias start is what separates the two in the first steps: layer 1 stays silent at step 0
    rq = simulate(q, {"input": x}, record=True).traces
    assert not rq["lif1/v"][0].any() and simulate(g, {"input": x}, record=True).traces["lif1/v"][0].any()


def test_compile_bias_from_step_zero_writes_network_net(tmp_path: Path, capsys, monkeypatch) -> None:
    """compile(bias_from_step_zero=True): the artifact's graph has no bias start, network.net is
    written and reads back to that graph's outputs; quantization.json and the manifest record the
    choice (the dropped starts per layer and, with calibration data, the measured change), and
    compile prints the line saying so. (Lava running this file: test_netx_lava.py.)"""
    import json

    import neurocc
    from neurocc.backends.loihi import emit as emit_mod
    from neurocc.compiler.passes.quantize import bias_from_step_zero
    from neurocc.ir.artifact import load_artifact

    x = (np.random.default_rng(1).random((40, 8, 12)) < 0.3).astype(np.float64)
    art = neurocc.compile(_biased_model(), "loihi2", tmp_path / "art", calibration={"x": x},
                          bias_from_step_zero=True, echo=print)
    g = load_artifact(art).graph
    assert (art / "network.net").exists()
    assert all(n.bias_start == 0 for n in g.nodes.values() if n.kind == "QLIF")
    doc = json.loads((art / "quantization.json").read_text())["bias_from_step_zero"]
    assert doc["enabled"] and doc["dropped_bias_start"] == {"lif1": 1, "lif2": 2}
    m = doc["measured"]
    # what it changes, measured here independently: the bias-start graph against the artifact's
    monkeypatch.setattr(emit_mod, "_WARNED", set())
    with pytest.warns(UserWarning, match="--bias-from-step-zero"):   # without the option: no network.net
        q = neurocc.compile(_biased_model(), "loihi2", tmp_path / "q", calibration={"x": x})
    assert not (q / "network.net").exists()
    a = simulate(load_artifact(q).graph, {"input": x}).outputs["output"]
    b = simulate(g, {"input": x}).outputs["output"]
    assert m["differ"] == int(np.count_nonzero(a != b)) > 0 and m["output_values"] == a.size
    assert np.array_equal(b, simulate(bias_from_step_zero(load_artifact(q).graph), {"input": x}).outputs["output"])
    assert json.loads((art / "manifest.json").read_text())["bias_from_step_zero"] is True
    assert "bias from step zero: the biases of lif1 (1 step), lif2 (2 steps)" in capsys.readouterr().out
    back = read_netx(art / "network.net")
    xs = (np.random.default_rng(2).random((50, 2, 12)) < 0.3).astype(np.int64)
    assert np.array_equal(simulate(back, {"input": xs}).outputs["output"], simulate(g, {"input": xs}).outputs["output"])


SDNN = ["gts/pilotnet_sdnn/network.net", "gts/pilotnet_sdnn/square_network.net"]


def _sdnn_input(g, steps: int) -> np.ndarray:
    """PilotNet's recorded frame (cropped to the graph's input), held for ``steps`` steps."""
    frame = np.load(ROOT / "gts" / "pilotnet_sdnn" / "input.npy")[..., 0].astype(np.int64).transpose(2, 1, 0)
    c, h, w = g.nodes["input"].shape
    return np.broadcast_to(frame[:c, :h, :w], (steps, 1, c, h, w)).copy()


@needs_lava_dl
@pytest.mark.parametrize("name", SDNN)
def test_sdnn_import_export_import_keeps_every_parameter(name: str, tmp_path: Path) -> None:
    """SDNN blocks (Delta input, SigmaDelta conv/dense, Sigma read-out): every parameter of every
    node (arrays, mode, variant, relu, cum_error, shifts) and the emulator's outputs and states."""
    g, g2, _ = _reexport(name, None, tmp_path)
    assert list(g.nodes) == list(g2.nodes) and g.edges == g2.edges
    assert any(n.kind == "QSigmaDelta" for n in g.nodes.values())
    for node_name, node in g.nodes.items():
        a, b = node.params(), g2.nodes[node_name].params()
        assert a.keys() == b.keys(), node_name
        for k in a:
            assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), (node_name, k)
    x = _sdnn_input(g, 5)
    r1, r2 = simulate(g, {"input": x}, record=True), simulate(g2, {"input": x}, record=True)
    assert r1.outputs["output"].any()
    for k in (*r1.outputs, *r1.traces):
        got = r2.outputs.get(k, r2.traces.get(k))
        want = r1.outputs.get(k, r1.traces.get(k))
        assert np.array_equal(want, got), k


@needs_lava_dl
def test_sdnn_export_refuses_what_netx_cannot_say(tmp_path: Path) -> None:
    """The PR #875 variant, cum_error, relu=False, per-neuron vth and off-grid bias are refused
    per node with the reason; nothing is written."""
    g = read_netx(ROOT / SDNN[1], variant="lava-pr875")
    probs = plan_netx(g).problems
    assert len(probs) == 5 and all("variant 'lava-pr875'" in p for p in probs), probs
    g = read_netx(ROOT / SDNN[1])
    l1, l2, l3 = (g.nodes[f"layer{i}"] for i in (1, 2, 3))
    vth = np.asarray(l3.vth).copy()
    vth.flat[0] += 4096
    bad = g.replace(nodes={**g.nodes, "layer1": l1.replace(cum_error=True), "layer2": l2.replace(relu=False),
                           "layer3": l3.replace(vth=vth, bias=np.asarray(l3.bias) + 1)})
    plan = plan_netx(bad)
    assert not plan.expressible
    text = "\n".join(plan.problems)
    for want in ("node 'layer1' (QSigmaDelta): cum_error=True", "node 'layer2' (QSigmaDelta): relu=False",
                 "node 'layer3' (QSigmaDelta): per-neuron vth", "node 'layer3' (QSigmaDelta): bias is not"):
        assert want in text, text
    with pytest.raises(ValueError):
        write_net(plan, tmp_path / "no.net")
    assert not (tmp_path / "no.net").exists()


def test_cli_compile_bias_from_step_zero(tmp_path: Path, capsys) -> None:
    """`neurocc compile MODEL.nir --target loihi2 --bias-from-step-zero`: network.net is written
    and compile prints the line naming the layers whose bias now starts at step 0."""
    import neurocc
    from neurocc.cli import main

    model = neurocc.export_nir(_biased_model(), tmp_path / "m.nir")
    assert main(["compile", str(model), "--target", "loihi2", "--dt", "0.001", "-o", str(tmp_path / "art"),
                 "--bias-from-step-zero"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "art" / "network.net").exists()
    assert "bias from step zero: the biases of lif1 (1 step), lif2 (2 steps)" in out and "not measured" in out
