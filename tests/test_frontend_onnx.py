"""ONNX frontend: models exported by torch.onnx.export and hand-built with onnx.helper, checked
against onnxruntime with an independent numpy evaluation of the imported graph."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from neurocc.compiler.frontends import load
from neurocc.errors import GraphError, ModelLoadError
from neurocc.ir import Graph

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def _numpy_eval(g: Graph, x: np.ndarray) -> np.ndarray:
    """Float64 evaluation of a dense ANN graph (Affine/Linear/ReLU/BatchNorm/Flatten/Add), batch first."""
    val: dict[str, np.ndarray] = {}
    for n in g.order():
        node = g.nodes[n]
        inp = x.astype(np.float64) if node.kind == "Input" else sum(val[p] for p in g.predecessors(n))
        if node.kind in ("Affine", "Linear"):
            out = inp @ node.weight.T.astype(np.float64)
            val[n] = out + node.bias if node.kind == "Affine" else out
        elif node.kind == "ReLU":
            val[n] = np.maximum(inp, 0)
        elif node.kind == "BatchNorm":
            val[n] = (inp - node.mean) / np.sqrt(node.var + node.eps) * node.weight + node.bias
        elif node.kind == "Flatten":
            val[n] = inp.reshape(inp.shape[0], -1)
        else:
            val[n] = inp
    return val[g.outputs[0]]


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _model(nodes: list, inits: dict[str, np.ndarray], in_shape: list, out_shape: list,
           name: str = "x") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    x, y = torch.randn(64, 2, 6, 6), torch.randint(0, 3, (64,))
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):  # train a few steps so the weights are not the initial ones
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("onnx") / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x[:1],), str(path), input_names=["input"], dynamo=True, verbose=False)
    return path, model


def test_torch_exported_cnn(exported: tuple[Path, object]) -> None:
    path, model = exported
    g = load(path)
    assert g.inputs == ["input"] and g.shapes()["input"] == (2, 6, 6)
    kinds = [g.nodes[n].kind for n in g.order()]
    assert kinds == ["Input", "Conv2d", "ReLU", "AvgPool2d", "Flatten", "Affine", "ReLU", "Affine", "Output"]
    convs = [g.nodes[n] for n in g.order() if g.nodes[n].kind == "Conv2d"]
    affines = [g.nodes[n] for n in g.order() if g.nodes[n].kind == "Affine"]
    np.testing.assert_array_equal(convs[0].weight, model[0].weight.detach().numpy())
    np.testing.assert_array_equal(convs[0].bias, model[0].bias.detach().numpy())
    np.testing.assert_array_equal(affines[1].weight, model[6].weight.detach().numpy())
    assert convs[0].padding == (1, 1)
    assert sum(r["synapses"] for r in g.stats().values()) == 4 * 6 * 6 * 2 * 9 + 4 * 3 * 3 * 4 + 36 * 8 + 8 * 3


def test_gemm_attributes_matmul_add_batchnorm(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    b_t = rng.standard_normal((4, 5))   # transB=0: B is (in, out)
    inits = {"B": b_t, "C": rng.standard_normal(5), "W2": rng.standard_normal((5, 3)), "b2": rng.standard_normal(3),
             "s": rng.random(3) + 0.5, "bb": rng.standard_normal(3), "m": rng.standard_normal(3),
             "v": rng.random(3) + 0.1}
    nodes = [helper.make_node("Gemm", ["x", "B", "C"], ["h"], name="fc1", alpha=0.5, beta=2.0, transB=0),
             helper.make_node("Relu", ["h"], ["r"], name="act"),
             helper.make_node("Dropout", ["r"], ["d"], name="drop"),
             helper.make_node("MatMul", ["d", "W2"], ["mm"], name="fc2"),
             helper.make_node("Add", ["mm", "b2"], ["a"], name="bias2"),
             helper.make_node("Identity", ["a"], ["i"], name="id"),
             helper.make_node("BatchNormalization", ["i", "s", "bb", "m", "v"], ["y"], name="bn", epsilon=1e-3)]
    path = _save(_model(nodes, inits, ["N", 4], ["N", 3]), tmp_path / "dense.onnx")
    g = load(path)
    assert [g.nodes[n].kind for n in g.order()] == ["Input", "Affine", "ReLU", "Affine", "BatchNorm", "Output"]
    assert g.inputs == ["x"]  # the model names its input
    np.testing.assert_array_equal(g.nodes["fc1"].weight, (b_t.T * 0.5).astype(np.float32))
    assert g.nodes["bn"].eps == pytest.approx(1e-3)
    x = rng.standard_normal((7, 4)).astype(np.float32)
    np.testing.assert_allclose(_numpy_eval(g, x), _ort(path, x), rtol=1e-5, atol=1e-5)


def test_conv_flatten_reshape_and_residual_add(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    inits = {"K": rng.standard_normal((3, 1, 3, 3)), "kb": rng.standard_normal((3, 1, 1)),
             "shape": np.array([1, -1]), "W": rng.standard_normal((27, 27))}
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Add", ["c", "kb"], ["cb"], name="conv_bias"),
             helper.make_node("MaxPool", ["cb"], ["p"], name="pool", kernel_shape=[1, 1]),
             helper.make_node("Reshape", ["p", "shape"], ["f"], name="reshape"),
             helper.make_node("MatMul", ["f", "W"], ["h"], name="fc"),
             helper.make_node("Add", ["h", "f"], ["y"], name="res")]
    inits["shape"] = inits["shape"].astype(np.int64)
    model = _model(nodes, {k: v for k, v in inits.items() if k != "shape"}, [1, 1, 5, 5], [1, 27])
    model.graph.initializer.append(numpy_helper.from_array(inits["shape"], "shape"))
    g = load(_save(model, tmp_path / "conv.onnx"))
    assert "conv.Conv" in g.nodes  # "/" is replaced: NIR stores node names as HDF5 groups
    np.testing.assert_array_equal(g.nodes["conv.Conv"].bias, inits["kb"].reshape(3).astype(np.float32))
    assert g.shapes()["reshape"] == (27,) and g.nodes["res"].kind == "Add"
    assert {e.src for e in g.in_edges("res")} == {"fc", "reshape"}


def test_unsupported_ops_reported_at_once(tmp_path: Path) -> None:
    nodes = [helper.make_node("Sigmoid", ["x"], ["a"], name="sig"),
             helper.make_node("Softmax", ["a"], ["y"], name="soft")]
    path = _save(_model(nodes, {}, ["N", 4], ["N", 4]), tmp_path / "odd.onnx")
    with pytest.raises(ModelLoadError) as info:
        load(path)
    msg = str(info.value)
    assert "odd.onnx" in msg and "sig (Sigmoid)" in msg and "soft (Softmax)" in msg and "Fix:" in msg


def test_reshape_size_mismatch_is_a_graph_error(tmp_path: Path) -> None:
    model = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="flat")], {}, [1, 2, 3], [1, 5])
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 5], np.int64), "shape"))
    path = _save(model, tmp_path / "bad.onnx")
    with pytest.raises(GraphError) as info:
        load(path)
    assert "'flat'" in str(info.value) and "5" in str(info.value)


def test_missing_and_truncated_onnx(tmp_path: Path, exported: tuple[Path, object]) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load(tmp_path / "none.onnx")
    cut = tmp_path / "cut.onnx"
    data = exported[0].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError) as info:
        load(cut)
    assert "cut.onnx" in str(info.value) and "truncated" in str(info.value)
