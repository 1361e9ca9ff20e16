"""sPyNNaker's own mapping on a virtual SpiNNaker machine (no board): does the network fit, where
does it go, and which weights and ring-buffer shifts would the chips get.

:func:`map_network` runs the emitted script's ``build`` with ``pyNN.spiNNaker`` in a worker
process (``python -m neurocc.backends.spinnaker.virtual_board JOB``) whose ``HOME`` is a
temporary folder holding ``.spynnaker.cfg`` (``virtual_board = True``, a fixed machine size)
and whose cwd is temporary too (sPyNNaker writes ``reports/`` there). ``sim.run`` then does
everything short of loading a board: partitioning, placement, routing, key allocation, routing
tables, data specs. Read back (spinnaker.md §2): application placements (chip x, y, core p),
per population ``get_ring_buffer_shifts()``, and per projection ``Projection.get("weight")`` —
the weights as the chips store them, ``w_int · 2^(s − 15)`` nA.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError

from .network import Network, save_network

CFG = """[Machine]
virtual_board = True
version = {version}
{size}
[Mode]
mode = Production

[Reports]
write_energy_report = False
"""


def machine_cfg(chips: int) -> tuple[str, dict[str, Any]]:
    """(.spynnaker.cfg text, extra sim.setup kwargs) for a machine of ``chips`` SpiNNaker-1 chips:
    4 = SpiNN-3 (version 3, 2×2), 48 = one SpiNN-5 board (version 5, 8×8), else whole SpiNN-5 boards."""
    if chips <= 4:
        return CFG.format(version=3, size="width = 2\nheight = 2"), {}
    if chips <= 48:
        return CFG.format(version=5, size="width = 8\nheight = 8"), {}
    return CFG.format(version=5, size=""), {"n_boards_required": math.ceil(chips / 48)}


def map_network(net: Network, chips: int = 48, timeout_s: float = 600.0) -> dict[str, Any]:
    """Map ``net`` on a virtual machine of ``chips`` chips. Returns ``{"fits", "error", "placements":
    [[label, x, y, p]], "chips", "cores", "cores_per_population", "shifts": {pop: [exc, inh]},
    "w_int": {projection: int array in the projection's connection order}}``."""
    with tempfile.TemporaryDirectory(prefix="neurocc-vboard-") as tmp:
        job = Path(tmp)
        save_network(net, job)
        cfg, setup_kw = machine_cfg(chips)
        home = job / "home"
        home.mkdir()
        (home / ".spynnaker.cfg").write_text(cfg)
        (job / "setup.json").write_text(json.dumps(setup_kw))
        work = job / "cwd"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME",)}
        env.update(HOME=str(home), OPENBLAS_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        cmd = [sys.executable, "-m", "neurocc.backends.spinnaker.virtual_board", str(job)]
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise BackendError(f"sPyNNaker's mapping did not finish in {timeout_s:.0f} s", where=f"network '{net.name}'",
                               fix="map a smaller network (data-spec writing grows with the synapse count)") from None
        if not (job / "result.json").exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise BackendError(f"the sPyNNaker virtual-board worker failed (exit {proc.returncode})",
                               where=f"network '{net.name}'", problems=[tail], fix="see the message above")
        res = json.loads((job / "result.json").read_text())
        if (job / "weights.npz").exists():
            with np.load(job / "weights.npz", allow_pickle=False) as z:
                res["w_int"] = {k: z[k] for k in z.files}
        return res


def _worker(job: Path) -> None:
    """Inside the worker: build with pyNN.spiNNaker, run on the virtual board, read back."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pynn_template as T

    meta, arrays = T.load_network(job)
    setup_kw = json.loads((job / "setup.json").read_text())
    # one spike per source (sPyNNaker 7.4.1 fails its density check on all-empty spike lists)
    inputs = {p["name"]: np.ones((1, 1, *p["shape"]), np.uint8) for p in meta["populations"] if p["kind"] == "source"}
    sim = T.import_simulator("spiNNaker")
    T.setup(sim, "spiNNaker", meta["dt_ms"], **setup_kw)
    pops, projs = T.build(sim, "spiNNaker", meta, arrays, inputs, 1)
    res: dict[str, Any] = {"fits": True, "error": None}
    try:
        sim.run(2 * meta["dt_ms"])
    except Exception as err:  # noqa: BLE001 - PacmanPlaceException, DelayExtensionException, ...
        res.update(fits=False, error=f"{type(err).__name__}: {err}"[:2000])
        (job / "result.json").write_text(json.dumps(res))
        return
    from spinn_front_end_common.data import FecDataView

    pl = [[p.vertex.label, p.x, p.y, p.p] for p in FecDataView.iterate_placemements()
          if "SYSTEM" not in str(p.vertex.label) and p.vertex.app_vertex is not None]
    res["placements"] = pl
    res["chips"] = len({(x, y) for _, x, y, _ in pl})
    res["cores"] = len(pl)
    per_pop: dict[str, int] = {}
    for v in FecDataView.iterate_vertices():
        per_pop[str(v.label)] = len(list(v.machine_vertices))
    res["cores_per_population"] = per_pop
    res["shifts"] = {name: [int(s) for s in pop._vertex.get_ring_buffer_shifts()]
                     for name, pop in pops.items() if hasattr(pop._vertex, "get_ring_buffer_shifts")}
    weights = {}
    for mj in meta["projections"]:
        got = projs[mj["name"]].get(["weight"], format="list", with_address=True)
        rows = np.asarray([tuple(r) for r in got], np.float64).reshape(-1, 3)
        s = res["shifts"][mj["post"]][0 if mj["receptor"] == "excitatory" else 1]
        w = np.zeros(arrays[f"proj/{mj['name']}/pre"].shape, np.int64)
        order = {(int(i), int(j)): n for n, (i, j) in enumerate(zip(arrays[f"proj/{mj['name']}/pre"],
                                                                     arrays[f"proj/{mj['name']}/post"]))}
        for i, j, val in rows:
            w[order[(int(i), int(j))]] = int(np.rint(abs(val) * 2.0 ** (15 - s)))
        weights[mj["name"]] = w
    np.savez(job / "weights.npz", **weights)
    (job / "result.json").write_text(json.dumps(res))
    sim.end()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
