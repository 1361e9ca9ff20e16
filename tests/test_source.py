"""The source check: the trained model run in snnTorch/torch itself versus neurocc's float reference.

The models are written as snnTorch's tutorials write them (``nn.Sequential`` with
``init_hidden=True`` neurons; a class with explicit ``mem`` state). Mutations of the loaded
graph (a dropped recurrent edge, the reset order swapped, a misread decay) stand for frontend
bugs: the check must fail on each and name the node and the cause.
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

import neurocc  # noqa: E402
from neurocc.compiler.floatside import float_side  # noqa: E402
from neurocc.errors import CompileError  # noqa: E402
from neurocc.ir.graph import Graph  # noqa: E402
from neurocc.ir.types import ResetTiming  # noqa: E402
from neurocc.runtime.source import open_source, random_inputs, run_check  # noqa: E402
from neurocc.targets import get_target  # noqa: E402

nn = torch.nn


def _scaled(model: nn.Module, gain: float = 3.0) -> nn.Module:
    """Seeded weights scaled so that every layer fires within 50 steps of 20 % input spikes."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.out_features != m.in_features:
                m.weight.mul_(gain)
    return model


def _leaky(reset: str = "subtract") -> nn.Module:
    torch.manual_seed(0)
    return _scaled(nn.Sequential(nn.Linear(12, 20), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset),
                                 nn.Linear(20, 5), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset)))


def _rleaky() -> nn.Module:
    torch.manual_seed(1)  # the example model
    return _scaled(nn.Sequential(nn.Linear(12, 20), snn.RLeaky(beta=0.9, linear_features=20, init_hidden=True,
                                                                reset_mechanism="zero"),
                                 nn.Linear(20, 5), snn.Leaky(beta=0.9, init_hidden=True)))


def _float_graph(model: nn.Module) -> Graph:
    return float_side(neurocc.load(model), get_target("emulator"), None, "euler", None, None).float_graph


def _check(model: nn.Module, graph: Graph | None = None) -> object:
    graph = graph if graph is not None else _float_graph(model)
    return run_check(open_source(model), graph, random_inputs(graph))


@pytest.mark.parametrize("make", [lambda: _leaky("subtract"), lambda: _leaky("zero"), _rleaky],
                         ids=["leaky-subtract", "leaky-zero", "rleaky-zero"])
def test_source_check_agrees_on_snntorch_models(make) -> None:  # type: ignore[no-untyped-def]
    model = make()
    cmp = _check(model)
    spikes = sum(la.spikes_compared for la in cmp.layers)
    assert spikes > 0 and cmp.diverged == 0, cmp.first_divergence
    assert cmp.identical + cmp.ties == cmp.samples
    assert {la.node for la in cmp.layers} >= {"0", "1", "2", "3"}


def test_dropping_the_recurrent_edge_fails_the_check() -> None:
    model = _rleaky()
    graph = _float_graph(model)
    rec = graph.recurrent_edges()
    assert rec, "RLeaky must load with a recurrent edge"
    loop = {e.src for e in rec} | {e.dst for e in rec}   # the neuron and its recurrent weight node
    weight = next(n for n in loop if n != "1")
    mutated = Graph({k: v for k, v in graph.nodes.items() if k != weight},
                    tuple(e for e in graph.edges if weight not in (e.src, e.dst)), dt=graph.dt,
                    method=graph.method, name=graph.name)
    cmp = _check(model, mutated.verify())
    assert not cmp.passed and cmp.diverged > 0
    assert cmp.first_divergence["node"] == "1" and cmp.first_divergence["var"] in ("v", "out")
    assert f"submodule(s) {weight}" in cmp.cause and "recurrent" in cmp.cause


def test_swapping_the_reset_order_fails_the_check() -> None:
    model = _leaky("subtract")
    graph = _float_graph(model)
    node = graph.nodes["1"]
    assert node.reset_timing is ResetTiming.NEXT_STEP
    mutated = graph.with_node("1", replace(node, reset_timing=ResetTiming.AFTER_SPIKE))
    cmp = _check(model, mutated)
    assert not cmp.passed
    fd = cmp.first_divergence
    assert (fd["node"], fd["var"]) == ("1", "v"), fd
    assert "reset" in cmp.cause
    # the source's membrane at that element is not the reference's
    assert abs(fd["expected"] - fd["got"]) > 1e-3


def test_compile_fails_on_a_divergence_and_records_it_when_allowed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trained = _leaky("zero")
    misread = _leaky("zero")
    misread[3].beta = torch.tensor(0.8)   # what a frontend reading the wrong beta would build
    lines: list[str] = []
    with pytest.raises(CompileError) as info:
        neurocc.compile(misread, "emulator", tmp_path / "a", source=trained, echo=lines.append)
    msg = str(info.value)
    assert "node '3'" in msg and "Likely cause" in msg and "--allow-source-mismatch" in msg
    assert not (tmp_path / "a").exists()
    out = neurocc.compile(neurocc.load(misread), "emulator", tmp_path / "b", source=trained,
                          allow_source_mismatch=True, echo=lines.append)
    doc = json.loads((out / "manifest.json").read_text())["source"]
    assert doc["checked"] and not doc["result"]["passed"] and doc["allowed_mismatch"]
    assert doc["result"]["first_divergence"]["node"] == "3"
    assert doc["frameworks"]["snntorch"] == snn.__version__
    text = "\n".join(lines)
    assert "dt: 0.001 s, from the model" in text and "source check against" in text


def test_compile_records_source_file_digest_and_versions(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    model = _leaky("subtract")
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    (tmp_path / "zoo_factory.py").write_text(
        "import torch, snntorch as snn\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Linear(12, 20), snn.Leaky(beta=0.9, init_hidden=True),\n"
        "                               torch.nn.Linear(20, 5), snn.Leaky(beta=0.9, init_hidden=True))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    lines: list[str] = []
    out = neurocc.compile(str(path), "edge-cpu", tmp_path / "art", entry="zoo_factory:build", echo=lines.append)
    doc = json.loads((out / "manifest.json").read_text())["source"]
    assert doc["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(doc["frameworks"]) == {"torch", "snntorch"} and doc["frameworks"]["snntorch"] == snn.__version__
    assert torch.__version__.startswith(doc["frameworks"]["torch"])
    assert doc["checked"] and doc["result"]["passed"], doc.get("result")
    text = "\n".join(lines)
    assert "source check against" in text and "  1 " in text


def test_cli_compile_prints_the_check_and_validate_adds_a_source_row(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from neurocc.cli import main

    (tmp_path / "zoo_cli.py").write_text(
        "import torch, snntorch as snn\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    m = torch.nn.Sequential(torch.nn.Linear(12, 20), snn.Leaky(beta=0.9, init_hidden=True),\n"
        "                            torch.nn.Linear(20, 5), snn.Leaky(beta=0.9, init_hidden=True))\n"
        "    with torch.no_grad():\n"
        "        m[0].weight.mul_(3)\n"
        "    return m\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import zoo_cli

    weights = tmp_path / "w.pt"
    torch.save(zoo_cli.build().state_dict(), weights)
    art = tmp_path / "art"
    assert main(["compile", str(weights), "--entry", "zoo_cli:build", "--target", "edge-cpu", "-o", str(art)]) == 0
    out = capsys.readouterr().out
    assert "dt: 0.001 s, from the model" in out and "source check against" in out
    assert "  3              LIF       spikes 0/" in out
    assert main(["validate", str(art), "--backends", "edge-cpu", "--source", str(weights),
                 "--entry", "zoo_cli:build"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("source "))
    assert row.split()[-1] == "PASS" and "reference" in row
    doc = json.loads((art / "validation.json").read_text())
    src = next(r for r in doc["results"] if r["backend"] == "source")
    assert src["passed"] and src["compared"] > 0 and src["mismatches"] == 0
    assert src["source"]["sha256"] and src["source"]["frameworks"]["snntorch"] == snn.__version__
    assert main(["compile", str(weights), "--entry", "zoo_cli:build", "--target", "edge-cpu", "-o",
                 str(tmp_path / "art2"), "--no-source-check"]) == 0
    assert "source check" not in capsys.readouterr().out
    assert "source" not in json.loads((tmp_path / "art2" / "manifest.json").read_text())


def _ann_onnx(tmp_path) -> tuple[object, np.ndarray]:  # type: ignore[no-untyped-def]
    """A small CNN exported to ONNX as torch users do, and static calibration images."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(64, 10)).eval()
    path = tmp_path / "cnn.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), str(path), input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    x = np.random.default_rng(0).random((96, 1, 8, 8)).astype(np.float32)
    return path, x


def test_ann_source_check_runs_onnx_runtime_before_conversion(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    path, x = _ann_onnx(tmp_path)
    lines: list[str] = []
    out = neurocc.compile(str(path), "edge-cpu", tmp_path / "art", calibration={"x": x}, timesteps=8,
                          echo=lines.append)
    doc = json.loads((out / "manifest.json").read_text())["source"]
    assert doc["checked"] and doc["result"]["passed"] and "onnxruntime" in doc["frameworks"]
    assert len(doc["result"]["layers"]) >= 3   # per-layer outputs of ONNX Runtime, not only the output
    assert "the ANN run in its framework, before conversion" in "".join(lines)
    graph = neurocc.load(str(path))
    conv = next(n for n, v in graph.nodes.items() if v.kind == "Conv2d")
    bad = graph.with_node(conv, replace(graph.nodes[conv], bias=graph.nodes[conv].bias + 0.25))  # a misread bias
    with pytest.raises(CompileError) as info:
        neurocc.compile(bad, "edge-cpu", tmp_path / "bad", calibration={"x": x}, timesteps=8, source=str(path))
    assert f"node '{conv}'" in str(info.value)


NUM_STEPS = 30


class _Tutorial5(nn.Module):
    """snnTorch tutorial 5's layout: forward loops over time and stacks the records."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(12, 20), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(20, 5), snn.Leaky(beta=0.9)

    def forward(self, x):  # type: ignore[no-untyped-def]
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(NUM_STEPS):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def test_a_forward_that_loops_over_time_runs_as_one_sequence() -> None:
    from neurocc.runtime.source.torchrun import run_module

    torch.manual_seed(0)
    model = _scaled(_Tutorial5())
    graph = _float_graph(model)
    x = random_inputs(graph, steps=NUM_STEPS)
    rec = run_module(model, x, list(graph.nodes))
    assert rec["lif1/out"].shape == (NUM_STEPS, 16, 20) and rec["output"].shape == (NUM_STEPS, 16, 5)
    assert rec["lif1/out"].sum() > 0
    cmp = run_check(open_source(model), graph, x)
    assert cmp.diverged == 0 and {la.node for la in cmp.layers} == {"fc1", "lif1", "fc2", "lif2"}


def test_a_spike_decided_at_the_threshold_is_a_tie_and_any_other_fails() -> None:
    """Hand-made records of one LIF layer (threshold 1), two samples, three steps: sample 0's first
    difference is a spike where the non-spiking run's membrane is 1 + 1e-7 (float32 rounding at
    the threshold); sample 1's is a spike where the membrane is 0.5 away (a real divergence)."""
    from neurocc.ir import nodes as ir
    from neurocc.runtime.source.compare import compare_records

    lif = ir.LIF(tau=np.full(2, 0.01), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2),
                 v_reset=np.zeros(2))
    graph = Graph.chain(("input", ir.Input(shape=(2,))), ("lif", lif), ("output", ir.Output(shape=(2,))))
    v = np.zeros((3, 2, 2))
    v[1] = [[1.0 + 1e-7, 0.2], [0.2, 0.2]]
    v[2] = [[0.3, 0.3], [0.3, 0.3]]
    ref_out = np.zeros((3, 2, 2))
    src_out = ref_out.copy()
    src_out[1, 0, 0] = 1.0          # the source fired at the threshold; the reference (v = 1 + 1e-7 > 1?) did not
    src_out[2, 1, 1] = 1.0          # the source fired with v = 0.3: not a tie
    ref = {"lif/out": ref_out, "lif/v": v}
    src = {"lif/out": src_out, "lif/v": v.copy()}
    cmp = compare_records(graph, ref, src)
    assert (cmp.identical, cmp.ties, cmp.diverged) == (0, 1, 1)
    assert cmp.first_divergence == {"node": "lif", "step": 2, "index": [1, 1], "var": "out", "expected": 0.0,
                                    "got": 1.0}
    assert not cmp.passed and "threshold" in cmp.cause
    assert cmp.layers[0].spike_mismatches == 2 and cmp.layers[0].tie_samples == 1
