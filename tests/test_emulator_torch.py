"""The emulator's batched torch path (``device``) against the numpy reference: bit-identical
outputs, traces and event counts on integer networks (on the CPU here; on CUDA where a GPU is
present, else skipped saying so), float networks within float64 summation-order rounding."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_emulator import int8_neuron, loihi_wrap_net, rec_net, spikes  # tests/ is on sys.path
from test_emulator_accel import conv_net, random_layers
from test_emulator_loihi import build_graph, one_neuron, random_net
from test_numerics_spinnaker import ff_graph

from neurocc.backends.emulator import prepare, simulate
from neurocc.errors import BackendError
from neurocc.ir.types import ResetMode

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available()
# (device, kernels): "numpy" kernels make the CPU torch path run its own torch neuron code too
SETUPS = [("cpu", "numpy"), ("cpu", "auto"),
          pytest.param("cuda", "auto", marks=pytest.mark.skipif(not CUDA, reason="no CUDA GPU on this machine: "
                                                                "run benchmarks/gpu_check.sh where there is one"))]


def identical(g, inputs, device, kernels):
    ref = simulate(g, inputs, record=True, kernels="numpy")
    prog = prepare(g, kernels=kernels, device=device)
    got = simulate(g, inputs, record=True, program=prog)
    assert prog.compiled
    for what in ("outputs", "traces"):
        a, b = getattr(ref, what), getattr(got, what)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"{what} {k}"
    assert ref.events == got.events
    return prog


@pytest.mark.parametrize("device,kernels", SETUPS)
def test_integer_networks(device, kernels):
    for numerics in ("loihi", "int8"):
        identical(rec_net(1, numerics), {"input": spikes(1, 30, 33)}, device, kernels)
    for we in (0, 6, 9):
        identical(loihi_wrap_net(we), {"input": spikes(11, 60, 32, n=60, p=0.5)}, device, kernels)
        identical(loihi_wrap_net(we, "QLI"), {"input": spikes(11, 60, 3, n=60, p=0.5)}, device, kernels)
    identical(int8_neuron(du=100, dv=300, vth=1, refractory=3, reset=ResetMode.SUBTRACT),
              {"input": np.ones((12, 4, 1), np.int64)}, device, kernels)
    for seed in (1, 2):
        layers, x = random_net(seed, edge=True)
        identical(build_graph(layers, x.shape[1]), {"input": np.repeat(x[:, None], 3, axis=1)}, device, kernels)
    for w in (128, -128):        # u = +2**23 kept, −2**23 → +2**23 (Lava's off-by-one wrap)
        identical(one_neuron(np.full((1, 8), w), weight_exp=7, du=4095), {"input": np.ones((3, 2, 8), np.uint8)},
                  device, kernels)
    identical(conv_net("int8", 0), {"input": spikes(2, 9, 3, n=84).reshape(9, 3, 2, 7, 6)}, device, kernels)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_layers())
def test_random_integer_networks_on_cpu(net):
    g, x = net
    identical(g, {"input": x}, "cpu", "numpy")


def close(g, ref, got) -> None:
    """Spikes equal; every other float64 trace within 1e-12: a GEMM sums the <= 40 products
    of a row (|w·s| < 3 here) in another order than numpy, which moves a sum by at most
    40 · 3 · 2**-52 < 3e-14, and the neuron updates are the same float64 operations."""
    assert ref.traces.keys() == got.traces.keys() and ref.outputs.keys() == got.outputs.keys()
    for k, a in {**ref.traces, **ref.outputs}.items():
        b = got.traces.get(k, got.outputs.get(k))
        node = g.nodes.get(k.split("/")[0])
        if k.endswith("/out") and getattr(node, "spiking", False) or k in ref.outputs:
            assert np.array_equal(a, b), k
        else:
            assert np.allclose(a, b, rtol=0, atol=1e-12), k


@pytest.mark.parametrize("device,kernels", SETUPS)
def test_float_networks(device, kernels):
    cases = [(rec_net(2, None), {"input": spikes(2, 40, 8)})]
    for kind in ("LIF", "CubaLIF", "IF"):
        cases.append((ff_graph(kind), {"in": (np.random.default_rng(1).random((100, 4, 20)) < 0.2) * 1.0}))
    for g, inputs in cases:
        ref = simulate(g, inputs, record=True, kernels="numpy")
        prog = prepare(g, kernels=kernels, device=device)
        got = simulate(g, inputs, record=True, program=prog)
        assert prog.compiled      # float on a CPU with numba: the compiled float path (floatpath.py)
        close(g, ref, got)
    g, inputs = cases[0]
    from neurocc.backends import reference

    out = reference.run(g, inputs, device=device)
    assert np.array_equal(out["output"], simulate(g, inputs, kernels="numpy").outputs["output"])


def test_device_errors():
    g = rec_net(0, "int8")
    with pytest.raises(BackendError, match="unknown device"):
        prepare(g, device="tpu")
    if not CUDA:
        with pytest.raises(BackendError, match="no CUDA GPU"):
            prepare(g, device="cuda")


def test_cli_device_flag(tmp_path, nir_paper):
    """`neurocc run --device cpu` equals the default emulator run; --device on a backend without
    a torch path is a one-paragraph error (exit 1)."""
    import subprocess
    import sys

    def cmd(*args):
        return subprocess.run([sys.executable, "-m", "neurocc", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)

    art = tmp_path / "art"
    assert cmd("compile", str(nir_paper / "lif_norse.nir"), "--target", "emulator", "--dt", "1e-4",
               "-o", str(art)).returncode == 0
    x = (np.random.default_rng(0).random((50, 3, 1)) < 0.3).astype(np.uint8)
    name = __import__("json").loads((art / "manifest.json").read_text())["inputs"][0]["name"]
    np.savez(tmp_path / "x.npz", **{name: x})
    outs = []
    for extra in ([], ["--device", "cpu"]):
        r = cmd("run", str(art), "--backend", "emulator", "--input", "x.npz", "--output", "y.npz", "--record", *extra)
        assert r.returncode == 0, r.stderr
        with np.load(tmp_path / "y.npz") as z:
            outs.append({k: z[k] for k in z.files})
    assert outs[0].keys() == outs[1].keys() and all(np.array_equal(outs[0][k], outs[1][k]) for k in outs[0])
    r = cmd("run", str(art), "--backend", "loihi", "--input", "x.npz", "--output", "y.npz", "--device", "cpu")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "--device" in r.stderr
    # --float-dtype: float32 runs the float graph (reference) on the batched path; bad values and
    # float32 without --device are one-paragraph errors (exit 1)
    run = ("run", str(art), "--backend", "reference", "--input", "x.npz", "--output", "y.npz", "--record")
    r = cmd(*run, "--device", "cpu", "--float-dtype", "float32")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "y.npz") as z:
        assert z.files and all(z[k].dtype == np.float32 for k in z.files)     # outputs and every trace
    for extra, says in ((["--device", "cpu", "--float-dtype", "float16"], "unknown float dtype 'float16'"),
                        (["--float-dtype", "float32"], "add --device cpu")):
        r = cmd(*run, *extra)
        assert r.returncode == 1 and "Traceback" not in r.stderr and says in r.stderr, r.stderr
