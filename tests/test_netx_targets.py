"""Imported netx models on other targets: the edge-cpu integer ONNX lowering equals the emulator
bit for bit (sigma-delta, axonal delays and the input neuron included); what cannot go elsewhere
is refused with the reason."""
from __future__ import annotations

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx

from test_frontend_netx import ROOT, needs_lava_dl

pytest.importorskip("onnxruntime")


@needs_lava_dl
@pytest.mark.parametrize("name,steps", [("gts/pilotnet_sdnn/network.net", 6), ("tiny.net", 12),
                                        ("gts/ntidigits/ntidigits.net", 150)])
def test_edge_cpu_equals_emulator(name: str, steps: int) -> None:
    from neurocc.backends import edge_cpu

    g = read_netx(ROOT / name, num_layers=5 if "ntidigits" in name else None)
    assert edge_cpu.check(g) == []
    rng = np.random.default_rng(3)
    shape = g.shapes()["input"]
    if "ntidigits" in name:
        x = (rng.random((steps, 2, *shape)) < 0.1).astype(np.int64)
    else:
        x = rng.integers(-40, 60, size=(steps, 2, *shape))
    onnx_out = edge_cpu.run(g, {"input": x})["output"].astype(np.int64)
    ref = simulate(g, {"input": x}).outputs["output"].astype(np.int64)
    assert np.abs(ref).sum() > 0
    assert int(np.count_nonzero(onnx_out != ref)) == 0


@needs_lava_dl
def test_refusals_name_the_reason() -> None:
    from neurocc.backends import edge_cpu
    from neurocc.backends.loihi import check as loihi_check
    from neurocc.compiler.pipeline import compile_graph
    from neurocc.errors import CompileError

    reset = read_netx(ROOT / "tiny.net", reset_interval=17)
    assert any("reset_interval" in p for p in edge_cpu.check(reset))
    assert any("LIFReset" in p for p in loihi_check(reset))
    sdnn = read_netx(ROOT / "gts" / "pilotnet_sdnn" / "network.net")
    assert loihi_check(sdnn) == []     # runs as netx builds it: Lava's Delta/SigmaDelta/Sigma processes
    bad = sdnn.with_node("layer1", sdnn.nodes["layer1"].replace(relu=False))
    assert any("relu=False" in p for p in loihi_check(bad))
    with pytest.raises(CompileError) as e:
        compile_graph(sdnn, "spinnaker")
    assert "layer9" in str(e.value) and "no SpiNNaker model" in str(e.value)
    with pytest.raises(CompileError) as e:
        compile_graph(sdnn, "edge-cpu")            # int8 numerics: the loihi artifact is the exact one
    assert "already quantized" in str(e.value) and "--backend edge-cpu" in str(e.value)
