"""pyNN.nest, fast and kept: the emitted script with its batch in parts (``--max-batch``, a fresh
NEST kernel each) and spikes read from PyNN's spike arrays gives exactly the spikes and
membranes of the whole batch in one session read per neo SpikeTrain (what it did before); a kept
``--serve`` worker (inside :func:`neurocc.backends.sessions`) gives what fresh processes give,
and a worker that dies or hangs is reported and replaced."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_numerics_spinnaker import (  # tests/ is on sys.path (rootdir conftest)
    ff_graph,
    spikes,
)

from neurocc.backends import sessions
from neurocc.backends.spinnaker import lower, pynn_run
from neurocc.backends.spinnaker.network import Network, Projection, save_network
from neurocc.errors import BackendError

pytestmark = pytest.mark.pynn


@pytest.fixture(scope="module", autouse=True)
def nest_ok() -> None:
    reason = pynn_run.available("nest")
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def net() -> Network:
    """The lowered LIF net (dense signed weights on both receptors, one tick per hop) plus what
    the lowering makes for recurrent graphs and Delay nodes: a recurrent projection on ``l0``
    (delay 2, ``ir_delay`` 1), a 3-step projection ``in -> l1``, and explicit zero weights."""
    base = lower(ff_graph("LIF", seed=11))
    rng = np.random.default_rng(12)
    n0, n1 = base.population("l0").size, base.population("l1").size
    pre, post = np.nonzero(rng.random((n0, n0)) < 0.2)
    w = rng.uniform(0.0, 3.0, pre.size)
    w[::5] = 0.0                                                    # zero weights stay synapses
    rec = Projection("l0->l0:exc", "l0", "l0", "excitatory", pre.astype(np.int32), post.astype(np.int32), w, 2, 1)
    pre, post = np.nonzero(rng.random((20, n1)) < 0.3)
    far = Projection("in->l1@2:inh", "in", "l1", "inhibitory", pre.astype(np.int32), post.astype(np.int32),
                     -rng.uniform(0.0, 2.0, pre.size), 3, 2)
    assert any(p.receptor == "inhibitory" for p in base.projections)
    return dataclasses.replace(base, projections=base.projections + (rec, far))


def _script(job: Path, x: np.ndarray, tag: str, *extra: str) -> dict[str, np.ndarray]:
    np.savez(job / "x.npz", **{"in": x})
    r = subprocess.run([sys.executable, str(pynn_run.TEMPLATE), "--simulator", "nest", "--network", str(job),
                        "--input", str(job / "x.npz"), "--output", str(job / f"{tag}.npz"), *extra],
                       cwd=job, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(job / f"{tag}.npz") as z:
        return {k: z[k] for k in z.files}


# one pyNN.nest session of the whole batch, read back twice: PyNN's spike arrays and neo SpikeTrains
READ_BOTH = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("T", sys.argv[1])
T = importlib.util.module_from_spec(spec)
spec.loader.exec_module(T)
meta, arrays = T.load_network(sys.argv[2])
with np.load(sys.argv[3]) as z:
    x = {k: z[k] for k in z.files}
steps, batch = x["in"].shape[:2]
sim = T.import_simulator("nest")
T.setup(sim, "nest", meta["dt_ms"], max_delay=10 * meta["dt_ms"])
pops, _ = T.build(sim, "nest", meta, arrays, x, batch)
T.gated_run(sim, pops, meta, arrays, "nest", batch, T.run_steps(meta, "nest", steps))
a, b = T.collect(pops, meta, "nest", steps, batch), T.collect(pops, meta, "nest", steps, batch, trains=True)
np.savez(sys.argv[4], **{f"arrays:{k}": v for k, v in a.items()}, **{f"trains:{k}": v for k, v in b.items()})
"""


def test_batch_parts_and_spike_arrays_give_the_whole_batch_results(net, tmp_path):
    """The batch in parts of 2 items (a fresh NEST kernel each) == all 5 items in one session,
    and spikes read from PyNN's arrays == spikes read per neo SpikeTrain: every population's
    spikes and the readout membrane, bit for bit."""
    save_network(net, tmp_path)
    x = spikes((60, 5, 20), rate=0.15, seed=13)
    whole = _script(tmp_path, x, "whole")
    parts = _script(tmp_path, x, "parts", "--max-batch", "2")
    assert sorted(whole) == sorted(parts)
    for k in whole:
        np.testing.assert_array_equal(parts[k], whole[k], err_msg=k)
    r = subprocess.run([sys.executable, "-c", READ_BOTH, str(pynn_run.TEMPLATE), str(tmp_path), str(tmp_path / "x.npz"),
                        str(tmp_path / "both.npz")], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    with np.load(tmp_path / "both.npz") as z:
        both = {k: z[k] for k in z.files}
    for k, v in both.items():
        if k.startswith("arrays:"):
            np.testing.assert_array_equal(v, both["trains:" + k[7:]], err_msg=k)
            np.testing.assert_array_equal(v, whole[k[7:]], err_msg=k)
    counts = {k: int(v.sum()) for k, v in whole.items() if k.endswith("/spikes")}
    print("spikes per population:", counts)
    assert all(n > 20 for n in counts.values())              # every layer is active


def test_kept_worker_equals_fresh_processes(net):
    xa, xb = spikes((40, 3, 20), rate=0.15, seed=14), spikes((40, 2, 20), rate=0.2, seed=15)
    fresh = [pynn_run.run_network(net, {"in": x}, "nest") for x in (xa, xb)]
    with sessions():
        kept = [pynn_run.run_network(net, {"in": x}, "nest") for x in (xa, xb, xa)]
        worker = pynn_run._KEPT["nest"]
        assert worker is not None and worker.alive()
    assert not worker.alive() and "nest" not in pynn_run._KEPT     # closed with the session
    for got, want in zip(kept, fresh + fresh[:1]):
        assert sorted(got) == sorted(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_kept_worker_that_dies_or_hangs_is_reported_and_replaced(net):
    x = spikes((40, 2, 20), rate=0.15, seed=16)
    big = spikes((40, 64, 20), rate=0.15, seed=17)
    with sessions():
        first = pynn_run._KEPT.get("nest")
        want = pynn_run.run_network(net, {"in": x}, "nest")      # == a fresh process (test above)
        worker = pynn_run._KEPT["nest"]
        assert first is None and worker is not None
        os.kill(worker.proc.pid, signal.SIGKILL)                   # dies between jobs: replaced
        worker.proc.wait()
        got = pynn_run.run_network(net, {"in": x}, "nest")
        assert pynn_run._KEPT["nest"] is not worker and not worker.home.exists()   # its folder removed
        np.testing.assert_array_equal(got["out"], want["out"])
        worker = pynn_run._KEPT["nest"]                            # dies during a job: reported
        killer = threading.Timer(1.0, os.kill, (worker.proc.pid, signal.SIGKILL))
        killer.start()
        with pytest.raises(BackendError, match=r"pyNN.nest failed \(exit -9\)"):
            pynn_run.run_network(net, {"in": big}, "nest")
        killer.join()
        assert pynn_run._KEPT["nest"] is None and not worker.home.exists()
        with pytest.raises(BackendError, match="did not finish in 1 s"):   # hangs: stopped
            pynn_run.run_network(net, {"in": big}, "nest", timeout_s=1.0)
        assert pynn_run._KEPT["nest"] is None
        got = pynn_run.run_network(net, {"in": x}, "nest")        # a fresh worker for the next job
        np.testing.assert_array_equal(got["out"], want["out"])
