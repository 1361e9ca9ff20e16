"""NIR frontend: the paper fixtures, nesting, recurrence, defaults, writing, and bad input."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from neurocc.compiler.frontends import load
from neurocc.compiler.frontends.nir import read_nir, write_nir
from neurocc.errors import GraphError, ModelLoadError
from neurocc.ir import Graph, ResetMode
from neurocc.ir import nodes as ir


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def test_cnn_sinabs_structure(nir_paper: Path) -> None:
    g = load(nir_paper / "cnn_sinabs.nir")
    raw = nir.read(nir_paper / "cnn_sinabs.nir", type_check=False)
    chain = ["input", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "output"]
    assert [g.nodes[n].kind for n in chain] == [
        "Input", "Conv2d", "IF", "Conv2d", "IF", "SumPool2d", "Conv2d", "IF", "SumPool2d", "Flatten",
        "Affine", "IF", "Affine", "IF", "Output"]
    assert g.order() == chain
    assert all(e.delay == 0 for e in g.edges)
    c0, c2, c5 = g.nodes["0"], g.nodes["2"], g.nodes["5"]
    assert (c0.weight.shape, c0.stride, c0.padding) == ((16, 2, 5, 5), (2, 2), (1, 1))
    assert (c2.weight.shape, c2.padding) == ((16, 16, 3, 3), (1, 1))
    assert c5.weight.shape == (8, 16, 3, 3)
    s1 = _conv_out(34, 5, 2, 1)
    shapes = g.shapes()
    assert shapes["input"] == (2, 34, 34)
    assert shapes["0"] == (16, s1, s1) == (16, 16, 16)
    assert shapes["7"] == (8, 4, 4)
    assert shapes["8"] == (128,)  # NIR's Flatten(start_dim=0) counts dims without the batch
    assert g.nodes["9"].weight.shape == (256, 128)
    assert shapes["output"] == (10,)
    for name in ("0", "2", "5", "9", "11"):
        np.testing.assert_array_equal(g.nodes[name].weight, raw.nodes[name].weight)
        np.testing.assert_array_equal(g.nodes[name].bias, raw.nodes[name].bias)
    for name in ("1", "3", "6", "10", "12"):
        assert np.all(g.nodes[name].r == 1) and np.all(g.nodes[name].v_threshold == 1)
        assert g.nodes[name].reset is ResetMode.ZERO
    stats = g.stats()
    assert sum(r["neurons"] for r in stats.values()) == 4096 + 4096 + 512 + 256 + 10
    assert stats["0"]["synapses"] == 16 * 16 * 16 * 2 * 5 * 5
    assert stats["9"]["synapses"] == 256 * 128


def test_lif_norse_and_rockpool(nir_paper: Path) -> None:
    norse = load(nir_paper / "lif_norse.nir")
    lif = norse.nodes["1"]
    assert lif.kind == "LIF"
    assert lif.tau.tolist() == [np.float32(0.0025)] and lif.v_threshold.tolist() == [np.float32(0.1)]
    assert norse.nodes["0"].kind == "Affine" and norse.nodes["0"].weight.tolist() == [[1.0]]
    rock = load(nir_paper / "lif_rockpool.nir")  # fails NIR's own type check; neurocc reads it
    with pytest.raises(Exception):
        nir.read(nir_paper / "lif_rockpool.nir")
    assert [rock.nodes[n].kind for n in rock.order()] == ["Input", "Linear", "LIF", "Output"]
    assert rock.nodes["output"].shape == (1,)  # the file declares (1, 1, 1): same size, taken from the graph
    assert rock.nodes["1_LIFNeuronTorch"].r.tolist() == [pytest.approx(24.019737)]
    two = load(nir_paper / "two_lif_neurons.nir")
    assert [two.nodes[n].kind for n in two.order()] == ["Input", "Linear", "LIF", "Linear", "LIF", "Output"]
    assert two.nodes["lif1"].v_leak.tolist() == [1.2]


def _lif(n: int, **kw: object) -> nir.LIF:
    p = dict(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    p.update(kw)  # type: ignore[arg-type]
    return nir.LIF(**p)


def test_nested_graph_is_flattened_and_recurrence_gets_delay() -> None:
    rec = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}), "lif": _lif(3),
                              "w_rec": nir.Linear(weight=np.eye(3) * 0.5),
                              "output": nir.Output(output_type={"output": np.array([3])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    outer = nir.NIRGraph(nodes={"x": nir.Input(input_type={"input": np.array([2])}),
                                "fc": nir.Affine(weight=np.ones((3, 2)), bias=np.zeros(3)), "rlif": rec,
                                "y": nir.Output(output_type={"output": np.array([3])})},
                         edges=[("x", "fc"), ("fc", "rlif"), ("rlif", "y")], type_check=False)
    g = read_nir(outer)
    assert set(g.nodes) == {"x", "fc", "rlif.lif", "rlif.w_rec", "y"}
    delays = {(e.src, e.dst): e.delay for e in g.edges}
    assert delays == {("x", "fc"): 0, ("fc", "rlif.lif"): 0, ("rlif.lif", "rlif.w_rec"): 0,
                      ("rlif.w_rec", "rlif.lif"): 1, ("rlif.lif", "y"): 0}
    assert g.order() == ["x", "fc", "rlif.lif", "rlif.w_rec", "y"]


def test_scalar_params_broadcast_same_padding_and_missing_v_reset(tmp_path: Path) -> None:
    conv = nir.Conv2d(input_shape=None, weight=np.ones((2, 1, 3, 3), np.float32), stride=1, padding="same",
                      dilation=1, groups=1, bias=np.zeros(2, np.float32))
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([1, 5, 5])}), "conv": conv,
                            "if": nir.IF(r=np.array(2.0), v_threshold=np.array(0.5)),
                            "out": nir.Output(output_type={"output": np.array([2, 5, 5])})},
                     edges=[("in", "conv"), ("conv", "if"), ("if", "out")], type_check=False)
    graph = read_nir(g)
    assert graph.nodes["conv"].padding == (1, 1)
    assert graph.nodes["conv"].input_shape == (5, 5)
    node = graph.nodes["if"]
    assert node.r.shape == node.v_threshold.shape == node.v_reset.shape == (2, 5, 5)
    assert np.all(node.r == 2.0) and np.all(node.v_threshold == 0.5) and np.all(node.v_reset == 0)
    # a file written without v_reset (old NIR versions) reads as zeros
    path = tmp_path / "lif.nir"
    nir.write(path, nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
                                           _lif(2, v_reset=np.full(2, 0.3))))
    with h5py.File(path, "a") as f:
        lif_group = next(f["node/nodes"][k] for k in f["node/nodes"] if f[f"node/nodes/{k}/type"][()] == b"LIF")
        del lif_group["v_reset"]
    lif = next(n for n in read_nir(path).nodes.values() if n.kind == "LIF")
    assert lif.v_reset.tolist() == [0.0, 0.0]


def test_write_refuses_ann_and_quantized_nodes(tmp_path: Path) -> None:
    g = Graph.chain(("in", ir.Input(shape=(2,))), ("fc", ir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2))),
                    ("act", ir.ReLU()), ("bn", ir.BatchNorm(mean=np.zeros(2), var=np.ones(2), weight=np.ones(2),
                                                            bias=np.zeros(2))), ("out", ir.Output(shape=(2,))))
    with pytest.raises(GraphError) as info:
        write_nir(g, tmp_path / "x.nir")
    assert "'act' (ReLU)" in str(info.value) and "'bn' (BatchNorm)" in str(info.value)
    assert not (tmp_path / "x.nir").exists()
    with pytest.raises(GraphError, match="quantized"):
        write_nir(g.replace(nodes={"in": g.nodes["in"], "out": g.nodes["out"]}, edges=(("in", "out"),),
                            numerics="loihi"), tmp_path / "q.nir")


def test_write_drops_add_and_keeps_subtract_reset(tmp_path: Path) -> None:
    lif = ir.LIF(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
                 v_reset=np.zeros(3), reset="subtract")
    g = Graph({"input": ir.Input(shape=(2,)), "a": ir.Linear(weight=np.ones((3, 2))),
               "b": ir.Linear(weight=np.full((3, 2), 2.0)), "sum": ir.Add(), "lif": lif,
               "output": ir.Output(shape=(3,))},
              (("input", "a"), ("input", "b"), ("a", "sum"), ("b", "sum"), ("sum", "lif"), ("lif", "output")),
              dt=1e-3, method="euler").verify()
    path = tmp_path / "net.nir"
    write_nir(g, path)
    raw = nir.read(path)  # NIR's own type check accepts the file
    assert "sum" not in raw.nodes and {("a", "lif"), ("b", "lif")} <= set(raw.edges)
    assert raw.metadata["neurocc.reset"] == {"lif": "subtract"}
    back = read_nir(path)
    assert back.nodes["lif"].reset is ResetMode.SUBTRACT
    assert back.dt == 1e-3 and back.method.value == "euler"


def test_missing_and_truncated_files(tmp_path: Path, nir_paper: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found") as info:
        load(tmp_path / "nope.nir")
    assert "nope.nir" in str(info.value)
    bad = tmp_path / "cut.nir"
    shutil.copy(nir_paper / "cnn_sinabs.nir", bad)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(ModelLoadError) as info:
        load(bad)
    assert "cut.nir" in str(info.value) and "truncated" in str(info.value) and "Fix:" in str(info.value)


def test_shape_mismatch_names_the_node() -> None:
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([5])}),
                            "fc": nir.Affine(weight=np.ones((4, 3)), bias=np.zeros(4)),
                            "out": nir.Output(output_type={"output": np.array([4])})},
                     edges=[("in", "fc"), ("fc", "out")], type_check=False)
    with pytest.raises(GraphError) as info:
        read_nir(g)
    assert "'fc'" in str(info.value) and "(3,)" in str(info.value) and "(5,)" in str(info.value)
