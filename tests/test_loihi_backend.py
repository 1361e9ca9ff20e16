"""The ``loihi`` backend as a user drives it: ``neurocc compile/run/validate`` subprocesses on a NIR
paper graph and a random network compiled for loihi2, the target's limits, what netx cannot
express, and the message when Lava is missing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocc.backends.loihi import NET_FILE, SIDECAR, check
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.qnodes import QLIF, QDense

nir = pytest.importorskip("nir")


def neurocc_cmd(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, OPENBLAS_NUM_THREADS="1", **env)
    return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=600, check=False)


def _lif(n: int, rng: np.random.Generator) -> nir.LIF:
    """One time constant per layer (netx holds one du/dv per layer)."""
    return nir.LIF(tau=np.full(n, rng.uniform(0.005, 0.05)), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, rng.uniform(0.05, 0.15)), v_reset=np.zeros(n))


def random_nir(path: Path, seed: int, branch: bool = False) -> Path:
    """Input → Affine → LIF → Affine → LIF → Output (``branch``: a second Affine → LIF off the input)."""
    rng = np.random.default_rng(seed)
    n0, n1, n2 = 12, int(rng.integers(10, 30)), 6
    nodes = {"input": nir.Input(input_type={"input": np.array([n0])}),
             "fc1": nir.Affine(weight=rng.normal(0.4, 0.6, (n1, n0)), bias=np.zeros(n1)), "lif1": _lif(n1, rng),
             "fc2": nir.Affine(weight=rng.normal(0.4, 0.6, (n2, n1)), bias=np.zeros(n2)), "lif2": _lif(n2, rng),
             "output": nir.Output(output_type={"output": np.array([n2])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    if branch:
        nodes.update({"fc3": nir.Affine(weight=rng.normal(0, 0.6, (4, n0)), bias=np.zeros(4)), "lif3": _lif(4, rng),
                      "out3": nir.Output(output_type={"output": np.array([4])})})
        edges += [("input", "fc3"), ("fc3", "lif3"), ("lif3", "out3")]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))
    return path


def _spikes(tmp: Path, shape: tuple[int, ...], steps: int, seed: int, rate: float = 0.25) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(tmp / "x.npz", input=(rng.random((steps, 1, *shape)) < rate).astype(np.float32))
    return tmp / "x.npz"


def _validated(art: Path, x: Path, cwd: Path) -> dict:
    r = neurocc_cmd("validate", str(art), "--backends", "emulator,loihi", "--input", str(x), cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((art / "validation.json").read_text())
    (res,) = [x for x in doc["results"] if x["backend"] == "loihi"]
    assert res["reference"] == "emulator" and res["exact"] and res["mismatches"] == 0 and res["compared"] > 0, res
    return res


@pytest.mark.lava
def test_cli_run_and_validate_the_nir_paper_cnn(lava_ok, tmp_path, nir_paper):
    """compile → run --backend loihi --record (same keys and arrays as the emulator) → validate
    emulator,loihi (exact, 0 mismatches); the artifact holds network.net and loihi.json."""
    import neurocc

    art = tmp_path / "cnn"
    r = neurocc_cmd("compile", str(nir_paper / "cnn_sinabs.nir"), "--target", "loihi2", "-o", str(art), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (art / NET_FILE).is_file() and "netx cannot express" not in r.stderr
    x = _spikes(tmp_path, (2, 34, 34), 10, seed=4)
    r = neurocc_cmd("run", str(art), "--backend", "loihi", "--input", str(x), "--output", str(tmp_path / "y.npz"),
                    "--record", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    with np.load(tmp_path / "y.npz") as z:
        got = {k: z[k] for k in z.files}
    with np.load(x) as z:
        emu = neurocc.run(art, "emulator", {"input": z["input"]}, record=True)
    assert "output" in got and got["output"].shape == emu["output"].shape == (10, 1, 10)
    for key, arr in got.items():
        assert np.array_equal(np.asarray(emu[key]), arr), key
    res = _validated(art, x, tmp_path)
    print(f"cnn_sinabs via CLI: run --record {sum(a.size for a in got.values())} elements identical; "
          f"validate compared {res['compared']}, mismatches {res['mismatches']}")


@pytest.mark.lava
def test_cli_validate_a_random_network(lava_ok, tmp_path):
    model = random_nir(tmp_path / "rand.nir", seed=21)
    art = tmp_path / "rand"
    r = neurocc_cmd("compile", str(model), "--target", "loihi2", "--dt", "0.001", "-o", str(art), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (art / NET_FILE).is_file()
    res = _validated(art, _spikes(tmp_path, (12,), 40, seed=5), tmp_path)
    assert any(max(rates) > 0 for rates in res["rate_per_layer"].values()), res["rate_per_layer"]  # it spikes
    print(f"random NIR net via CLI: validate compared {res['compared']}, mismatches {res['mismatches']}")


def test_cli_compile_says_what_netx_cannot_express(tmp_path):
    """A branching graph: no network.net; the compile output and loihi.json name the nodes."""
    model = random_nir(tmp_path / "branch.nir", seed=3, branch=True)
    art = tmp_path / "branch"
    r = neurocc_cmd("compile", str(model), "--target", "loihi2", "--dt", "0.001", "-o", str(art), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "network.net (lava-dl netx) not written" in r.stderr and "chain" in r.stderr, r.stderr
    assert not (art / NET_FILE).exists()
    doc = json.loads((art / SIDECAR).read_text())
    assert doc["netx"]["file"] is None and doc["netx"]["not_expressible"]
    assert doc["lava"]["problems"] == []  # the Lava-process path runs it
    manifest = json.loads((art / "manifest.json").read_text())
    assert SIDECAR in manifest["files"] and NET_FILE not in manifest["files"]


# ----- limits -----------------------------------------------------------------------------------------
def wide_graph(n_in: int = 5000) -> Graph:
    """10 neurons each reading 5000 inputs: Loihi 1 has 4096 input axons per core."""
    one = lambda v: np.full(10, v, np.int32)
    nodes = {"x": Input(shape=(n_in,)), "d": QDense(weight=np.ones((10, n_in), np.int32)),
             "l": QLIF(du=one(4095), dv=one(0), vth=one(100), bias_mant=one(0), bias_exp=one(0)), "o": Output()}
    return Graph(nodes, (Edge("x", "d"), Edge("d", "l", 1), Edge("l", "o")), numerics="loihi", name="wide").verify()


def test_runtime_refuses_an_artifact_beyond_the_targets_limits(tmp_path):
    """The fit is checked by the runtime (the mapping report) before any backend starts; the
    backend's own check is about what Lava can express."""
    from neurocc.errors import BackendError
    from neurocc.ir.artifact import load_artifact, write_artifact
    from neurocc.runtime.run import require_fit
    from neurocc.targets import get_target

    g = wide_graph()
    for name in ("loihi1", "loihi2"):
        write_artifact(tmp_path / name, graph=g, float_graph=g, target=get_target(name))
    with pytest.raises(BackendError) as err:
        require_fit(load_artifact(tmp_path / "loihi1"), "loihi")
    assert "does not fit target 'loihi1'" in str(err.value) and "fan_in" in str(err.value)
    require_fit(load_artifact(tmp_path / "loihi2"), "loihi")   # Loihi 2 publishes no fan-in limit
    require_fit(load_artifact(tmp_path / "loihi1"), "emulator")  # software backends have no limits
    assert check(wide_graph(), get_target("loihi1")) == [] and check(wide_graph(), None) == []


def test_run_refuses_a_graph_that_does_not_fit(tmp_path):
    """The CLI refuses before any Lava process starts, with the mapping report."""
    from neurocc.ir.artifact import write_artifact
    from neurocc.targets import get_target

    g = wide_graph()
    write_artifact(tmp_path / "wide", graph=g, float_graph=g, target=get_target("loihi1"))
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 1, 5000), np.float32))
    r = neurocc_cmd("run", str(tmp_path / "wide"), "--backend", "loihi", "--input", str(tmp_path / "x.npz"),
                    "--output", str(tmp_path / "y.npz"), cwd=tmp_path)
    assert r.returncode != 0
    assert "does not fit target 'loihi1'" in r.stderr and "fan_in" in r.stderr, r.stderr
    assert "worker" not in r.stderr and not (tmp_path / "y.npz").exists()


def test_missing_lava_gives_the_install_command(tmp_path, nir_paper):
    """A ``lava`` package that cannot be imported shadows the real one (PYTHONPATH): the CLI exits
    non-zero with the pip command."""
    blocker = tmp_path / "hide" / "lava"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'lava'\", name='lava')\n")
    art = tmp_path / "lif"
    r = neurocc_cmd("compile", str(nir_paper / "lif_norse.nir"), "--target", "loihi2", "--dt", "1e-4", "-o", str(art),
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    x = _spikes(tmp_path, (1,), 5, seed=1)
    r = neurocc_cmd("run", str(art), "--backend", "loihi", "--input", str(x), "--output", str(tmp_path / "y.npz"),
                    cwd=tmp_path, PYTHONPATH=str(tmp_path / "hide"))
    assert r.returncode != 0
    assert "Lava is not installed" in r.stderr and "pip install --no-deps --ignore-requires-python lava-nc" in r.stderr, r.stderr
