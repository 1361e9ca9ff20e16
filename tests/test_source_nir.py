"""NIR written by others: snnTorch, Sinabs, Norse and Rockpool export a small model with their own
exporter; neurocc loads the NIR, compiles it, and its float reference is compared with the
exporting framework's own run of the original module (:mod:`neurocc.runtime.source`, layer by
layer where the node names are the module names; Rockpool's own per-layer record otherwise).

NIR carries no dt: each exporter maps its discrete decay to a time constant at its own dt
(snnTorch: 1e-4 s; Norse: ``tau = dt / tau_mem_inv`` with dt 1e-3 s, i.e. 1e-5 s for the default
cell, which matches Norse's steps at dt = 1e-6 s). ``compile`` prints the dt it uses and, when
the time constants span fewer than 5 steps of the target's default, the dt they suggest.
Models are seeded; the snnTorch one is trained for a few iterations on rate-coded digits.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

import neurocc  # noqa: E402
from neurocc.compiler.floatside import dt_line, float_side  # noqa: E402
from neurocc.runtime.source import open_source, run_check  # noqa: E402
from neurocc.targets import get_target  # noqa: E402

STEPS, BATCH = 40, 8


def _spikes(n: int = 12, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((STEPS, BATCH, n)) < 0.3).astype(np.float32)


def _scale(model: object, k: float) -> None:
    with torch.no_grad():
        for p in torch.nn.Module.parameters(model):
            if p.ndim == 2:
                p.mul_(k)


def _float_graph(graph: object, dt: float | None, method: str = "euler") -> object:
    return float_side(graph, get_target("edge-cpu"), dt, method, None, None).float_graph


def _compile(graph: object, dt: float | None, tmp_path: object) -> list[str]:
    lines: list[str] = []
    neurocc.compile(graph, "edge-cpu", tmp_path / "art", dt=dt, echo=lines.append)
    return lines


def test_snntorch_export_to_nir_matches_snntorch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("sklearn")
    from snntorch.export_nir import export_to_nir

    from neurocc import source_zoo

    def build() -> torch.nn.Module:   # per-neuron beta/threshold: snnTorch 1.0's exporter needs shaped params
        return torch.nn.Sequential(
            torch.nn.Linear(64, 32), snn.Leaky(beta=torch.full((32,), 0.9), threshold=torch.ones(32),
                                               init_hidden=True, reset_mechanism="zero"),
            torch.nn.Linear(32, 10), snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.ones(10),
                                               init_hidden=True, reset_mechanism="zero"))

    model = source_zoo.train(source_zoo.ZooModel("nir-snn", "snnTorch", "dense", "zero", build), iters=60)
    path = tmp_path / "snn.nir"
    nir.write(path, export_to_nir(model, torch.zeros(64)))
    graph = neurocc.load(path)
    hint = dt_line(graph, get_target("edge-cpu"), None)
    assert "target 'edge-cpu' default" in hint and "dt <= 0.0001 s" in hint, hint
    cmp = run_check(open_source(model), _float_graph(graph, 1e-4), {"input": _spikes(64)})
    assert cmp.diverged == 0 and sum(la.spikes_compared for la in cmp.layers) > 0, (cmp.first_divergence, cmp.cause)
    assert any("dt: 0.0001 s, from --dt" in line for line in _compile(graph, 1e-4, tmp_path))


def _sinabs_pair(batch: int, reset: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the module exported, the same weights for a run of ``batch`` samples): IAFSqueeze fixes its batch."""
    sinabs = pytest.importorskip("sinabs")
    import sinabs.activation as sa
    import sinabs.layers as sl

    def build(b: int) -> torch.nn.Module:
        kw = {"spike_fn": sa.SingleSpike, "reset_fn": sa.MembraneReset() if reset == "zero" else sa.MembraneSubtract()}
        return torch.nn.Sequential(torch.nn.Linear(12, 20), sl.IAFSqueeze(batch_size=b, **kw), torch.nn.Linear(20, 5),
                                   sl.IAFSqueeze(batch_size=b, **kw))

    torch.manual_seed(0)
    exported = build(1)
    _scale(exported, 3.0)
    exported(torch.zeros(1, 12))  # Sinabs' exporter reads each layer's shape from its state
    run = build(batch)
    run.load_state_dict({k: v for k, v in exported.state_dict().items() if "v_mem" not in k}, strict=False)
    assert sinabs.__version__
    return exported, run


def test_sinabs_to_nir_matches_sinabs_with_reset_to_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sinabs

    exported, run = _sinabs_pair(BATCH, "zero")
    path = tmp_path / "sinabs.nir"
    nir.write(path, sinabs.to_nir(exported, torch.zeros(1, 12)))
    graph = neurocc.load(path)
    assert {graph.nodes[n].kind for n in ("1", "3")} == {"IF"}
    cmp = run_check(open_source(run), _float_graph(graph, None), {"input": _spikes()})
    assert cmp.diverged == 0 and sum(la.spikes_compared for la in cmp.layers) > 0, (cmp.first_divergence, cmp.cause)
    text = "".join(_compile(graph, None, tmp_path))   # IF has no time constant: the target's dt, no hint
    assert "dt: 0.001 s, from target 'edge-cpu' default" in text and "looks made for" not in text


def test_sinabs_default_subtract_reset_is_lost_in_nir_and_the_check_says_so() -> None:
    import sinabs

    exported, run = _sinabs_pair(BATCH, "subtract")
    graph = neurocc.load(sinabs.to_nir(exported, torch.zeros(1, 12)))   # NIR IF: reset to v_reset only
    cmp = run_check(open_source(run), _float_graph(graph, None), {"input": _spikes()})
    assert not cmp.passed
    assert cmp.first_divergence["var"] == "v" and "reset" in cmp.cause


def test_norse_to_nir_matches_norse_at_its_dt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    nt = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    model = nt.SequentialState(torch.nn.Linear(12, 20), nt.LIFBoxCell(), torch.nn.Linear(20, 5), nt.LIFBoxCell())
    _scale(model, 30.0)
    exported = nt.to_nir(model, torch.zeros(1, 12))
    with pytest.raises(TypeError, match="Scalar datasets"):   # nir 1.0.8 cannot write Norse's scalar params
        nir.write(tmp_path / "norse.nir", exported)
    graph = neurocc.load(exported)     # the Input's (1, 12) sample batch is dropped by the reader
    hint = dt_line(graph, get_target("edge-cpu"), None)
    assert "dt <= 1e-06 s" in hint, hint
    cmp = run_check(open_source(model), _float_graph(graph, 1e-6), {"input": _spikes()})
    assert cmp.diverged == 0 and sum(la.spikes_compared for la in cmp.layers) > 0, (cmp.first_divergence, cmp.cause)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="measured, a Rockpool export limitation: its LIFTorch "
                   "(u <- beta*(u + x), v <- alpha*v + u + bias, v >= theta, subtract reset, up to max_spikes_per_dt "
                   "spikes per step) is not what its NIR export (CubaLIF with r, w_in, reset to v_reset; bias and "
                   "max_spikes_per_dt not written) describes: 2234 of 3200 spike elements of layer 1 differ at dt 1e-3, "
                   "exact method (2218 with Euler). Rockpool's own from_nir of the file does not reproduce this model "
                   "either (2564 of 3200 differ); neurocc reads the file as Norse does (test_source_nir_readback.py, "
                   "docs/source-check.md)")
def test_rockpool_to_nir_matches_rockpool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(0)
    model = Sequential(LinearTorch((12, 20)), LIFTorch(20, max_spikes_per_dt=1), LinearTorch((20, 5)),
                       LIFTorch(5, max_spikes_per_dt=1))
    _scale(model, 3.0)
    path = tmp_path / "rockpool.nir"
    nir.write(path, to_nir(model))
    graph = neurocc.load(path)
    _compile(graph, 1e-3, tmp_path)      # loads and compiles
    x = _spikes()
    _, _, rec = model(torch.as_tensor(x).transpose(0, 1), record=True)
    fg = _float_graph(graph, 1e-3, "exact")
    from neurocc.backends.reference import simulate

    ref = simulate(fg, {"input": x.astype(np.float64)}, record=True).traces
    theirs = rec["1_LIFTorch_output"].detach().numpy().transpose(1, 0, 2)
    assert int((ref["1_LIFTorch/out"] != theirs).sum()) == 0


def test_compile_says_the_nir_paper_graph_looks_made_for_1e_4(nir_paper, tmp_path) -> None:  # type: ignore[no-untyped-def]
    graph = neurocc.load(nir_paper / "lif_norse.nir")
    assert graph.dt is None      # NIR carries no dt
    line = dt_line(graph, get_target("loihi2"), None)
    assert line.startswith("dt: 0.001 s, from target 'loihi2' default") and "--dt 0.0001" in line, line
    assert dt_line(graph, get_target("loihi2"), 1e-4) == "dt: 0.0001 s, from --dt"
