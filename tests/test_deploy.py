"""Deployment bundles (`neurocc deploy`): the bundle's own run.py reproduces the emulator on the
golden vectors (int8 and loihi exactly, float32 spikes exactly), runs user inputs and streams
step by step like the emulator, needs only numpy + onnxruntime (a fresh venv, marked slow), names
a tampered file, and bad artifacts and output paths are refused with clear errors."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from neurocc.compiler.pipeline import compile_model
from neurocc.errors import NeuroccError
from neurocc.ir import nodes as N
from neurocc.ir.graph import Edge, Graph
from neurocc.runtime import bundle_runner
from neurocc.runtime.deploy import DeployError, deploy_artifact, format_deploy
from neurocc.runtime.run import run_artifact

BUNDLE_FILES = {"manifest.json", "model.onnx", "model_step.onnx", "run.py", "golden.npz", "README.md",
                "requirements.txt"}


# ---- networks ----------------------------------------------------------------------------------
def cuba(n: int, thr: float = 0.3) -> N.CubaLIF:
    return N.CubaLIF(tau_syn=np.full(n, 1e-2), tau_mem=np.full(n, 2e-2), r=np.ones(n), v_leak=np.zeros(n),
                     v_threshold=np.full(n, thr), v_reset=np.zeros(n), w_in=np.ones(n))


def dense_graph(seed: int = 0) -> Graph:
    """x(12) → fc1 → lif1 ⟲ rec (delay 1) → fc2 → lif2 → spikes; lif1 → fc3 → li → potential."""
    rng = np.random.default_rng(seed)
    li = N.CubaLI(tau_syn=np.full(3, 5e-3), tau_mem=np.full(3, 2e-2), r=np.ones(3), v_leak=np.zeros(3), w_in=np.ones(3))
    nodes = {"x": N.Input(shape=(12,)), "fc1": N.Linear(weight=rng.normal(0.5, 1, (16, 12))), "lif1": cuba(16),
             "rec": N.Linear(weight=rng.normal(0, 0.5, (16, 16))), "fc2": N.Linear(weight=rng.normal(0.8, 1, (5, 16))),
             "lif2": cuba(5), "fc3": N.Linear(weight=rng.normal(0, 1, (3, 16))), "li": li,
             "spikes": N.Output(shape=(5,)), "potential": N.Output(shape=(3,))}
    edges = [Edge("x", "fc1"), Edge("fc1", "lif1"), Edge("lif1", "rec"), Edge("rec", "lif1", 1), Edge("lif1", "fc2"),
             Edge("fc2", "lif2"), Edge("lif2", "spikes"), Edge("lif1", "fc3"), Edge("fc3", "li"), Edge("li", "potential")]
    return Graph(nodes, edges, name="dense_rec").verify()


def cuba_shaped(shape: tuple[int, ...]) -> N.CubaLIF:
    c = cuba(int(np.prod(shape)))
    return N.CubaLIF(**{f: np.asarray(getattr(c, f)).reshape(shape)
                        for f in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")})


def conv_graph(seed: int = 1) -> Graph:
    """x(2,8,8) → conv 3x3 → lif → sumpool 2 → conv 3x3 → lif → flatten → fc → lif → y."""
    rng = np.random.default_rng(seed)
    nodes = {"x": N.Input(shape=(2, 8, 8)),
             "conv1": N.Conv2d(weight=rng.normal(0.3, 1, (4, 2, 3, 3)), bias=np.zeros(4), padding=(1, 1),
                               input_shape=(8, 8)),
             "lif1": cuba_shaped((4, 8, 8)), "pool": N.SumPool2d(kernel_size=(2, 2), stride=(2, 2)),
             "conv2": N.Conv2d(weight=rng.normal(0.2, 1, (4, 4, 3, 3)), bias=np.zeros(4), padding=(1, 1),
                               input_shape=(4, 4)),
             "lif2": cuba_shaped((4, 4, 4)), "flat": N.Flatten(), "fc": N.Linear(weight=rng.normal(0.2, 1, (5, 64))),
             "lif3": cuba(5), "y": N.Output(shape=(5,))}
    edges = [("x", "conv1"), ("conv1", "lif1"), ("lif1", "pool"), ("pool", "conv2"), ("conv2", "lif2"),
             ("lif2", "flat"), ("flat", "fc"), ("fc", "lif3"), ("lif3", "y")]
    return Graph(nodes, edges, name="conv_net").verify()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, nir_paper: Path) -> dict[str, Path]:
    """Compiled artifacts and their bundles, made once for this module."""
    from neurocc.compiler.frontends.nir import read_nir

    root = tmp_path_factory.mktemp("deploy")
    cases = {"dense-int8": (dense_graph(), "edge-cpu", None), "conv-int8": (conv_graph(), "edge-cpu", None),
             "dense-f32": (dense_graph(), "edge-cpu-f32", None),
             "paper-cnn-loihi2": (read_nir(nir_paper / "cnn_sinabs.nir"), "loihi2", 1e-3)}
    out = {}
    for name, (graph, target, dt) in cases.items():
        art = compile_model(graph, target, root / f"{name}.art", dt=dt)
        out[name] = art
        out[f"{name}.bundle"] = deploy_artifact(art, root / f"{name}.bundle")
    return out


def run_py(bundle: Path, *args: str, python: str = sys.executable, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([python, str(bundle / "run.py"), *args], capture_output=True, text=True, env=env,
                          cwd=cwd or bundle, timeout=300)


def load_run_module(bundle: Path) -> ModuleType:
    """The bundle's run.py imported as a module (its Runner finds the bundle beside the file)."""
    spec = importlib.util.spec_from_file_location(f"run_{bundle.name.replace('-', '_').replace('.', '_')}",
                                                  bundle / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def spikes(seed: int, shape: tuple[int, ...], rate: float = 0.2) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


# ---- the bundle reproduces the emulator ---------------------------------------------------------
@pytest.mark.parametrize("case", ["dense-int8", "conv-int8", "dense-f32", "paper-cnn-loihi2"])
def test_selftest_passes_in_a_subprocess(built: dict[str, Path], case: str) -> None:
    bundle = built[f"{case}.bundle"]
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES
    res = run_py(bundle, "--selftest", cwd=bundle.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout and "FAIL" not in res.stdout
    assert res.stdout.count("ok   window graph") == res.stdout.count("ok   step graph") >= 1
    doc = json.loads((bundle / "manifest.json").read_text())
    assert set(doc["files"]) == BUNDLE_FILES - {"manifest.json"}
    # the golden outputs are not silent: the comparison is between active networks
    assert all(n > 0 for n in doc["golden"]["output_nonzero"].values()), doc["golden"]
    assert (bundle / "run.py").read_bytes() == Path(bundle_runner.__file__).read_bytes()  # verbatim copy


def test_manifest_states_numerics_and_rule(built: dict[str, Path]) -> None:
    loihi = json.loads((built["paper-cnn-loihi2.bundle"] / "manifest.json").read_text())
    assert loihi["numerics"] == "loihi" and loihi["source"]["target"] == "loihi2"
    assert "Loihi" in loihi["numerics_note"] and loihi["comparison"]["rule"] == "exact"
    assert loihi["latency_steps"] > 0  # Loihi's one-step synapse delays are part of the graph
    assert {s["name"] for s in loihi["states"]} and loihi["models"] == {"window": "model.onnx",
                                                                           "step": "model_step.onnx", "opset": 17}
    f32 = json.loads((built["dense-f32.bundle"] / "manifest.json").read_text())
    rule = f32["comparison"]
    assert f32["numerics"] == "float32" and rule["rule"] == "float32" and rule["spikes"] == "exact"
    assert 0 <= rule["measured_rel"]["potential"] <= rule["atol_rel"] and "2^-24" in rule["why"]
    int8 = json.loads((built["dense-int8.bundle"] / "manifest.json").read_text())
    assert int8["inputs"] == [{"name": "x", "shape": [12], "dtype": "int32", "values": "spikes", "int_per_float": None}]
    assert {o["name"]: o["values"] for o in int8["outputs"]} == {"spikes": "spikes", "potential": "state"}
    from neurocc import __version__

    assert int8["neurocc_version"] in (__version__, "unknown") and len(int8["graph"]["digest"]) == 64
    req = [ln for ln in (built["dense-int8.bundle"] / "requirements.txt").read_text().splitlines()
           if ln and not ln.startswith("#")]
    from importlib.metadata import version

    from neurocc.runtime.deploy import MIN_VERSIONS

    assert req == [f"numpy>={MIN_VERSIONS['numpy']}", f"onnxruntime>={MIN_VERSIONS['onnxruntime']}"]  # ranges
    assert int8["requires"]["built_with"] == {"numpy": version("numpy"), "onnxruntime": version("onnxruntime")}


@pytest.mark.parametrize("case", ["dense-int8", "paper-cnn-loihi2", "dense-f32"])
@pytest.mark.parametrize("graph", ["window", "step"])
def test_run_py_on_new_inputs_matches_the_emulator(built: dict[str, Path], tmp_path: Path, case: str,
                                                   graph: str) -> None:
    bundle, art = built[f"{case}.bundle"], built[case]
    shape = tuple(json.loads((bundle / "manifest.json").read_text())["inputs"][0]["shape"])
    name = json.loads((bundle / "manifest.json").read_text())["inputs"][0]["name"]
    x = {name: spikes(42, (40, 3, *shape))}  # not the golden inputs
    np.savez(tmp_path / "x.npz", **x)
    res = run_py(bundle, "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npz"), "--graph", graph)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "y.npz") as y:
        got = {k: y[k] for k in y.files}
    want = run_artifact(art, "emulator", x)
    doc = json.loads((bundle / "manifest.json").read_text())
    for o in doc["outputs"]:
        if doc["numerics"] != "float32" or o["values"] == "spikes":
            np.testing.assert_array_equal(got[o["name"]], want[o["name"]])
        else:
            np.testing.assert_allclose(got[o["name"]], want[o["name"]], rtol=0,
                                       atol=doc["comparison"]["atol_rel"] * max(1, np.abs(want[o["name"]]).max()))
    assert sum(np.count_nonzero(v) for v in got.values()) > 0


def test_streaming_runner_keeps_state_between_steps(built: dict[str, Path]) -> None:
    bundle, art = built["dense-int8.bundle"], built["dense-int8"]
    run = load_run_module(bundle)
    x = spikes(7, (30, 2, 12))
    want = run_artifact(art, "emulator", {"x": x})
    runner = run.Runner()  # finds the bundle beside run.py
    for _ in range(2):  # reset() starts again from zero state
        got = [runner.step(x[t]) for t in range(len(x))]
        for k in ("spikes", "potential"):
            np.testing.assert_array_equal(np.stack([g[k] for g in got]), want[k])
        runner.reset()
    runner.step({"x": x[0]})
    with pytest.raises(run.BundleError, match="batch changed"):
        runner.step(x[0, :1])
    with pytest.raises(run.BundleError, match="values other than 0 and 1"):
        run.Runner().step(np.full((1, 12), 0.5))


# ---- encoded inputs (converted networks) --------------------------------------------------------
def encoded_artifact(out: Path, kind: str) -> Path:
    """An artifact that records an input encoding, as the ANN conversion writes it: constant
    current (graded input, int_per_float) or Poisson spikes."""
    from neurocc.backends import edge_cpu
    from neurocc.compiler.passes.quantize import LayerStats
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.ir.artifact import write_artifact
    from neurocc.ir.encoding import Encoding
    from neurocc.targets import get_target

    tgt = get_target("edge-cpu")
    stats = {"x": LayerStats(scale=40.0)} if kind == "constant" else {}
    c = compile_graph(dense_graph(3), tgt, stats=stats)
    enc = Encoding(kind, timesteps=25, scale=2.0 if kind == "constant" else 0.8, seed=5)
    write_artifact(out, graph=c.graph, float_graph=c.float_graph, target=tgt, quantization=c.quantization,
                   extra={"encoding": enc.to_dict(), "timesteps": enc.timesteps},
                   emit=lambda d: edge_cpu.emit_files(d, c.graph, c.float_graph, tgt))
    return out


@pytest.mark.parametrize("kind", ["constant", "poisson"])
def test_encoded_artifact_bundle_encodes_static_inputs(tmp_path: Path, kind: str) -> None:
    from neurocc.ir.encoding import Encoding, encode

    art = encoded_artifact(tmp_path / "art", kind)
    bundle = deploy_artifact(art, tmp_path / "bundle")
    doc = json.loads((bundle / "manifest.json").read_text())
    assert doc["encoding"]["kind"] == kind and doc["steps"] == 25 + doc["latency_steps"]
    if kind == "constant":
        assert doc["inputs"][0]["values"] == "graded" and doc["inputs"][0]["int_per_float"] == 40.0
    res = run_py(bundle, "--selftest")
    assert res.returncode == 0 and "ok   encoding of input 'x'" in res.stdout, res.stdout
    xs = np.random.default_rng(11).random((3, 12))
    enc = Encoding.from_dict(doc["encoding"])
    np.testing.assert_array_equal(bundle_runner.encode(xs, doc["encoding"], doc["steps"]), encode(xs, enc, doc["steps"]))
    np.savez(tmp_path / "x.npz", x=xs)  # static (batch, *shape): run.py encodes it
    assert run_py(bundle, "--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npz")).returncode == 0
    want = run_artifact(art, "emulator", {"x": encode(xs, enc, doc["steps"])})
    with np.load(tmp_path / "y.npz") as y:
        for k in ("spikes", "potential"):
            np.testing.assert_array_equal(y[k], want[k])
        assert np.count_nonzero(y["potential"]) > 0


# ---- tampering and refusals ---------------------------------------------------------------------
@pytest.mark.parametrize("victim", ["model_step.onnx", "golden.npz", "run.py"])
def test_tampered_file_fails_the_selftest_naming_it(built: dict[str, Path], tmp_path: Path, victim: str) -> None:
    bundle = Path(shutil.copytree(built["dense-int8.bundle"], tmp_path / "b"))
    data = bytearray((bundle / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / victim).write_bytes(bytes(data))
    # run the pristine runner on the tampered bundle, so that tampering with run.py is reported too
    res = subprocess.run([sys.executable, str(built["dense-int8.bundle"] / "run.py"), "--selftest", "--bundle",
                          str(bundle)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout
    assert f"FAIL file {victim}: sha256 differs" in res.stdout and res.stdout.rstrip().splitlines()[-1].startswith("FAIL")


def _rewrite_golden(bundle: Path, key: str, change: float) -> None:
    """Change one golden output element and re-sign the manifest (a consistent but wrong bundle)."""
    with np.load(bundle / "golden.npz") as g:
        arrays = {k: g[k] for k in g.files}
    a = arrays[key].astype(np.float64)
    a.flat[int(np.argmax(np.abs(a)))] += change
    arrays[key] = a.astype(arrays[key].dtype)
    np.savez(bundle / "golden.npz", **arrays)
    doc = json.loads((bundle / "manifest.json").read_text())
    doc["files"]["golden.npz"]["sha256"] = bundle_runner.sha256_file(bundle / "golden.npz")
    (bundle / "manifest.json").write_text(json.dumps(doc))


def test_selftest_compares_for_real(built: dict[str, Path], tmp_path: Path) -> None:
    b = Path(shutil.copytree(built["dense-int8.bundle"], tmp_path / "int8"))
    _rewrite_golden(b, "output/potential", 1)  # one integer LSB
    ok, lines = bundle_runner.selftest(b)
    assert not ok and any("FAIL window graph, output 'potential': 1 of" in ln for ln in lines), lines
    f = Path(shutil.copytree(built["dense-f32.bundle"], tmp_path / "f32"))
    doc = json.loads((f / "manifest.json").read_text())
    with np.load(f / "golden.npz") as g:
        scale = max(1.0, float(np.abs(g["output/potential"]).max()))
    _rewrite_golden(f, "output/potential", 0.5 * doc["comparison"]["atol_rel"] * scale)  # within tolerance
    assert bundle_runner.selftest(f)[0]
    _rewrite_golden(f, "output/potential", 3 * doc["comparison"]["atol_rel"] * scale)    # beyond it
    ok, lines = bundle_runner.selftest(f)
    assert not ok and any("exceeds the tolerance" in ln for ln in lines), lines


def test_bad_artifact_dirs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NeuroccError, match="artifact directory not found"):
        deploy_artifact(tmp_path / "nope", tmp_path / "b")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuroccError, match="manifest.json is missing"):
        deploy_artifact(tmp_path / "empty", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_graph_the_backend_cannot_express_is_refused_with_every_problem(tmp_path: Path) -> None:
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.ir.artifact import write_artifact
    from neurocc.targets import get_target

    c = compile_graph(dense_graph(), "edge-cpu")
    art = write_artifact(tmp_path / "art", graph=c.graph.replace(numerics="spinnaker"), float_graph=c.float_graph,
                         target=get_target("spinnaker"), quantization=c.quantization).path
    with pytest.raises(DeployError, match="cannot express") as err:
        deploy_artifact(art, tmp_path / "b")
    assert any("spinnaker" in p for p in err.value.problems) and "edge-cpu" in str(err.value.fix)
    assert not (tmp_path / "b").exists()


def test_output_dir_rules_and_determinism(built: dict[str, Path], tmp_path: Path) -> None:
    art = built["dense-int8"]
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(DeployError, match="not a neurocc bundle"):
        deploy_artifact(art, keep)
    assert [p.name for p in keep.iterdir()] == ["notes.txt"]
    with pytest.raises(DeployError, match="not a neurocc bundle"):
        deploy_artifact(art, art)  # an artifact is not a bundle either
    out = deploy_artifact(art, tmp_path / "b")   # a fresh path
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    deploy_artifact(art, out)                    # an existing bundle is replaced
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # same artifact, same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "mine"]  # no temporary leftovers


def test_cli_and_format(built: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from neurocc.cli import main

    assert main(["deploy", str(built["conv-int8"]), "-o", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "run.py").is_file()
    text = format_deploy(tmp_path / "b")
    for name in BUNDLE_FILES:
        assert name in text
    assert "python run.py --selftest" in text and "x (steps, batch, 2, 8, 8) spikes" in text
    assert main(["deploy", str(tmp_path / "missing"), "-o", str(tmp_path / "c")]) != 0
    assert "artifact directory not found" in capsys.readouterr().err


def test_runner_imports_only_numpy_onnxruntime_and_the_standard_library() -> None:
    tree = ast.parse(Path(bundle_runner.__file__).read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    third_party = {r for r in roots if r not in sys.stdlib_module_names and r != "__future__"}
    assert third_party == {"numpy", "onnxruntime"}
    ast.parse(Path(bundle_runner.__file__).read_text(), feature_version=(3, 8))  # devices with older Pythons


def test_given_golden_inputs_are_used(built: dict[str, Path], tmp_path: Path) -> None:
    x = {"x": spikes(3, (12, 2, 12), rate=0.5)}
    out = deploy_artifact(built["dense-int8"], tmp_path / "b", golden_inputs=x)
    with np.load(out / "golden.npz") as g:
        np.testing.assert_array_equal(g["input/x"], x["x"])
        np.testing.assert_array_equal(g["output/potential"], run_artifact(built["dense-int8"], "emulator", x)["potential"])
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["golden"]["seed"] is None and (doc["golden"]["samples"], doc["golden"]["steps"]) == (2, 12)
    with pytest.raises(NeuroccError, match="missing"):
        deploy_artifact(built["dense-int8"], tmp_path / "c", golden_inputs={"y": x["x"]})


# ---- a fresh virtual environment with only numpy + onnxruntime ----------------------------------
@pytest.mark.slow
def test_selftest_in_a_fresh_venv_with_only_numpy_and_onnxruntime(built: dict[str, Path], tmp_path: Path) -> None:
    python = shutil.which("python3.11") or sys.executable
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    vpy = str(tmp_path / "venv" / "bin" / "python")
    bundle = Path(shutil.copytree(built["paper-cnn-loihi2.bundle"], tmp_path / "device" / "bundle"))
    pip = subprocess.run([vpy, "-m", "pip", "install", "-q", "-r", str(bundle / "requirements.txt")],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert subprocess.run([vpy, "-c", "import neurocc"], capture_output=True, cwd=tmp_path).returncode != 0
    assert subprocess.run([vpy, "-c", "import torch"], capture_output=True, cwd=tmp_path).returncode != 0
    res = run_py(bundle, "--selftest", python=vpy, cwd=tmp_path / "device")
    print(f"fresh venv + pip install + self-test: {time.perf_counter() - t0:.1f} s")
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr
