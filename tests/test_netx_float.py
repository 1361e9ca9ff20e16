"""The float form of an imported netx model (dequantize): NIR export with axonal delays as NIR
Delay nodes, what NIR cannot carry listed, and SpiNNaker judged against the float reference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx
from neurocc.compiler.passes.dequantize import dequantize
from neurocc.errors import CompileError

from test_frontend_netx import ROOT, needs_lava_dl

NT = ("gts", "ntidigits", "ntidigits.net")


def _nt_input(steps: int) -> np.ndarray:
    inp = np.load(ROOT / "gts" / "ntidigits" / "input.npy")[:, :steps]
    return inp.T.reshape(steps, 1, 1, 1, 64).astype(np.int64)


@needs_lava_dl
def test_float_form_tracks_the_integer_model() -> None:
    """NTIDIGITS: the float reference's spike counts per output neuron vs the exact integer
    emulator's over 400 steps: cosine >= 0.999 (the float form drops Loihi's truncations and
    the one-step synapse latency, so per-step equality is not expected)."""
    g = read_netx(ROOT.joinpath(*NT), num_layers=5)
    f = dequantize(g)
    assert f.numerics is None and [n.kind for n in f.nodes.values()].count("Delay") == 2
    x = _nt_input(400)
    a = simulate(g, {"input": x}).outputs["output"].sum(0).ravel().astype(float)
    b = simulate(f, {"input": x.astype(float)}).outputs["output"].sum(0).ravel()
    assert a.sum() > 100
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.999


@needs_lava_dl
def test_export_nir_writes_delays_and_lists_what_it_cannot(tmp_path: Path) -> None:
    import nir

    import neurocc

    out = neurocc.export_nir(str(ROOT.joinpath(*NT)), tmp_path / "nt.nir")
    g = nir.read(str(out))
    kinds = sorted(type(n).__name__ for n in g.nodes.values())
    assert kinds.count("Delay") == 2 and kinds.count("CubaLIF") == 3
    back = neurocc.load(str(out))
    assert [n.kind for n in back.nodes.values()].count("Delay") == 2
    with pytest.raises(CompileError) as e:
        neurocc.export_nir(str(ROOT / "gts" / "pilotnet_sdnn" / "network.net"), tmp_path / "sd.nir")
    assert "QSigmaDelta" in str(e.value) and "layer9" in str(e.value)
    assert not (tmp_path / "sd.nir").exists()
    with pytest.raises(CompileError) as e:
        neurocc.export_nir(str(ROOT / "mnist.net"), tmp_path / "m.nir")
    assert "no finite time constant" in str(e.value)


@needs_lava_dl
def test_spinnaker_lowering_of_ntidigits_has_per_neuron_delays(tmp_path: Path) -> None:
    from neurocc.backends.spinnaker.lower import lower
    from neurocc.compiler.pipeline import compile_graph

    c = compile_graph(read_netx(ROOT.joinpath(*NT), num_layers=5), "spinnaker")
    net = lower(c.float_graph)
    delays = {p.delay for p in net.projections if p.post == "layer2"}
    assert len(delays) > 10          # one projection per distinct axonal delay value


@pytest.mark.long
@needs_lava_dl
def test_ntidigits_on_spinnaker_nest_cosine(tmp_path: Path) -> None:
    """compile for spinnaker, validate with PyNN/NEST against the float reference: cosine >= 0.99
    (the target's rule), 300 steps of the recorded input."""
    import neurocc
    from neurocc.compiler.pipeline import compile_model

    compile_model(read_netx(ROOT.joinpath(*NT), num_layers=5), "spinnaker", tmp_path / "art")
    np.savez(tmp_path / "x.npz", input=_nt_input(300))
    r = neurocc.validate(str(tmp_path / "art"), backends=["spinnaker"], inputs=str(tmp_path / "x.npz"))
    (res,) = r["results"]
    assert res["passed"] and res["cosine"] >= 0.99, res
