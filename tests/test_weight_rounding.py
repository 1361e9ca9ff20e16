"""Calibrated weight rounding (neurocc/compiler/passes/qround.py): integer weights of least
input-current error ``Σ_rows (q − w)ᵀ H (q − w)`` on the calibration inputs' Gram matrix ``H``.

The judge of the rounding is that objective itself (computed here from its definition, and by
brute force on a tiny case), the Gram matrices are checked against a direct numpy/torch
computation of ``Σ x xᵀ``, and the zoo-level effect is measured in benchmarks/zoo_fidelity.py
(docs/quantization.md)."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from neurocc.compiler.passes.qround import round_weights
from neurocc.errors import CompileError


def _error(q: np.ndarray, w: np.ndarray, x: np.ndarray) -> float:
    """Σ over samples of ‖(q − w) x‖²: the current error the rounding is meant to minimise."""
    return float(np.sum(((q - w) @ x.T) ** 2))


def _correlated(n: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Spike-like correlated inputs (samples, n) and float weights (rows, n) in mantissa units."""
    rng = np.random.default_rng(seed)
    drive = rng.random((400, 3))
    x = (rng.random((400, n)) < drive @ rng.random((3, n)) / 3).astype(np.float64)
    return x, rng.normal(0, 20, (rows, n))


def test_uncorrelated_inputs_round_to_nearest() -> None:
    """H = c·I: no column can cancel another's error, so the rounding is the nearest one."""
    w = np.random.default_rng(0).normal(0, 30, (5, 7))
    assert np.array_equal(round_weights(w, 4.0 * np.eye(7), -127, 127), np.rint(w))


@pytest.mark.parametrize("seed", range(4))
def test_correlated_inputs_lower_the_current_error(seed: int) -> None:
    x, w = _correlated(24, 16, seed)
    near, cal = np.clip(np.rint(w), -127, 127), round_weights(w, x.T @ x, -127, 127)
    assert np.all(cal == np.rint(cal)) and cal.min() >= -127 and cal.max() <= 127
    assert _error(cal, w, x) < _error(near, w, x), (_error(cal, w, x), _error(near, w, x))


def test_tiny_case_against_brute_force() -> None:
    """Within floor/ceil of each weight, the best rounding (brute force) <= calibrated <= nearest."""
    x, w = _correlated(6, 1, 7)
    h = x.T @ x
    best = min(_error(np.array([q]), w, x) for q in itertools.product(*[(np.floor(v), np.ceil(v)) for v in w[0]]))
    cal = _error(round_weights(w, h, -127, 127), w, x)
    assert best - 1e-9 <= cal <= _error(np.rint(w), w, x)


def test_zeros_stay_zero_and_the_range_holds() -> None:
    x, w = _correlated(20, 8, 3)
    w[:, ::3] = 0.0                      # pruned / structural zeros
    w = np.abs(w)                        # a single-sign (unsigned) layer: range [0, 255]
    q = round_weights(w, x.T @ x, 0, 255)
    assert np.all(q[:, ::3] == 0) and q.min() >= 0 and q.max() <= 255


def _spiking_dense(tmp_path: Path, rounding: str):
    import torch

    import neurocc
    from neurocc.ir.artifact import load_artifact

    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 16), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(16, 4), snn.Leaky(beta=0.9, init_hidden=True))
    x = (np.random.default_rng(0).random((20, 32, 12)) < 0.4).astype(np.float32)
    d = neurocc.compile(net, "edge-cpu", tmp_path / rounding, calibration={"x": x}, weight_rounding=rounding)
    return load_artifact(d), x


def test_compile_records_the_rounding_and_runs_exactly(tmp_path: Path) -> None:
    """``weight_rounding='calibrated'`` changes only the integers chosen: the report says so per
    synapse, and the int8 network on ONNX Runtime still equals the emulator bit for bit."""
    from neurocc.backends import edge_cpu
    from neurocc.backends.emulator import simulate

    art, x = _spiking_dense(tmp_path, "calibrated")
    near, _ = _spiking_dense(tmp_path, "nearest")
    q = art.quantization
    assert q["weight_rounding"] == "calibrated" and q["layers"]["1"]["synapses"]["0"]["rounding"] == "calibrated"
    assert near.quantization["weight_rounding"] == "nearest"
    assert not np.array_equal(art.graph.nodes["0"].weight, near.graph.nodes["0"].weight)
    ref = simulate(art.graph, {"input": x}, record=True)
    got = edge_cpu.run(art.graph, {"input": x}, record=True)
    assert all(np.array_equal(v, got[k]) for k, v in {**ref.outputs, **ref.traces}.items() if k in got)


def test_gram_matrices_are_the_input_correlations() -> None:
    """input_grams: a Linear fed by the input gets Σ x xᵀ of that input; a Conv2d the same of its
    im2col patches (torch's unfold), summed over steps and samples."""
    import torch

    from neurocc.compiler.calibrate import read_calibration
    from neurocc.compiler.passes.qround import input_grams
    from neurocc.ir import nodes as N
    from neurocc.ir.graph import Edge, Graph

    rng = np.random.default_rng(1)
    conv = N.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), bias=np.zeros(3), stride=(2, 1), padding=(1, 0),
                    input_shape=(7, 6))
    g = Graph({"input": N.Input(shape=(2, 7, 6)), "c": conv,
               "n": N.IF(r=np.ones((3, 4, 4)), v_threshold=np.ones((3, 4, 4)), v_reset=np.zeros((3, 4, 4))),
               "f": N.Flatten(),
               "fc": N.Linear(weight=rng.normal(size=(5, 48))), "m": N.IF(r=np.ones(5), v_threshold=np.ones(5), v_reset=np.zeros(5)),
               "output": N.Output(shape=(5,))},
              [Edge("input", "c"), Edge("c", "n"), Edge("n", "f"), Edge("f", "fc"), Edge("fc", "m"), Edge("m", "output")],
              dt=1e-3, method="euler", name="g").verify()
    x = (rng.random((5, 6, 2, 7, 6)) < 0.5).astype(np.float32)
    grams = input_grams(g, read_calibration({"x": x}, g, static=False), None, 5)
    cols = torch.nn.functional.unfold(torch.as_tensor(x.reshape(-1, 2, 7, 6), dtype=torch.float64), (3, 3),
                                      padding=(1, 0), stride=(2, 1)).transpose(1, 2).reshape(-1, 18).numpy()
    assert np.allclose(grams["c"], cols.T @ cols)
    from neurocc.backends.emulator import simulate

    spikes = simulate(g, {"input": x.astype(np.float64)}, record=True).traces["n/out"].reshape(-1, 48)
    assert np.allclose(grams["fc"], spikes.T @ spikes) and grams["fc"].any()


def test_calibrated_rounding_needs_calibration_data(tmp_path: Path) -> None:
    import torch

    import neurocc

    snn = pytest.importorskip("snntorch")
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(CompileError) as err:
        neurocc.compile(net, "edge-cpu", tmp_path / "a", weight_rounding="calibrated")
    assert "calibration" in err.value.fix


def test_cli_refuses_calibrated_rounding_without_data(tmp_path: Path, nir_paper: Path, capsys) -> None:
    """``compile --weight-rounding calibrated`` without ``--calibration``: exit 1, one paragraph."""
    from neurocc import cli

    code = cli.main(["compile", str(nir_paper / "lif_norse.nir"), "--target", "edge-cpu", "--dt", "1e-4",
                     "--weight-rounding", "calibrated", "-o", str(tmp_path / "art")])
    err = capsys.readouterr().err
    assert code == 1 and "needs calibration data" in err and "Traceback" not in err, err
