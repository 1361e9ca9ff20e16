"""netx import → export (neurocc's own netx writer) → import keeps every parameter, and the
re-exported file loads in lava-dl and runs in Lava exactly as the emulator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurocc.backends.emulator import simulate
from neurocc.backends.loihi.netx import plan_netx
from neurocc.backends.loihi.netx_file import write_net
from neurocc.compiler.frontends.netx import read_netx
from neurocc.ir.numerics.core import lava_dense_weights, shift

from test_frontend_netx import ROOT, needs_lava_dl

FILES = [("tiny.net", None), ("mnist.net", None), ("gts/pilotnet_lif/network.net", None),
         ("gts/ntidigits/ntidigits.net", 5)]


def _effective(node) -> dict[str, np.ndarray]:
    """What a node computes: dense values W'·2**exp per synapse, everything else as stored."""
    if node.kind == "QDense":
        return {"values": shift(lava_dense_weights(node.weight, node.num_weight_bits), node.weight_exp)}
    return {k: np.asarray(v) for k, v in node.params().items() if not isinstance(v, str)}


def _reexport(name: str, n: int | None, tmp: Path):
    g = read_netx(ROOT / name, num_layers=n)
    plan = plan_netx(g)
    assert plan.expressible, plan.problems
    out = write_net(plan, tmp / "re.net")
    return g, read_netx(out), out


@needs_lava_dl
@pytest.mark.parametrize("name,n", FILES)
def test_import_export_import_keeps_every_parameter(name: str, n: int | None, tmp_path: Path) -> None:
    g, g2, _ = _reexport(name, n, tmp_path)
    assert list(g.nodes) == list(g2.nodes) and g.edges == g2.edges
    for node_name, node in g.nodes.items():
        a, b = _effective(node), _effective(g2.nodes[node_name])
        assert a.keys() == b.keys(), node_name
        for k in a:
            assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), (node_name, k)


@needs_lava_dl
def test_reexported_ntidigits_runs_in_lava_as_the_emulator(lava_ok, tmp_path: Path) -> None:
    """neurocc's own netx file (axonal delays written back as `delay`) loaded by lava-dl netx."""
    from neurocc.backends.loihi import NetxJob, run_netx_many

    g, g2, out = _reexport("gts/ntidigits/ntidigits.net", 5, tmp_path)
    x = np.load(ROOT / "gts" / "ntidigits" / "input.npy")[:, :50].T.reshape(50, 1, 1, 1, 64).astype(np.int64)
    (lava,) = run_netx_many([NetxJob(g2, {"input": x}, None, False, out)])
    ref = simulate(g, {"input": x}).outputs["output"]
    assert ref.any() and np.array_equal(lava["output"].astype(np.int64), ref.astype(np.int64))
