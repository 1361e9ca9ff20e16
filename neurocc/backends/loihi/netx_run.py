"""Run netx HDF5 files in Lava (parent side): the proof that a written ``network.net`` loads with
``lava.lib.dl.netx.hdf5.Network`` and computes what the emulator computes.

Same protocol as :mod:`.runner` (job directory, one worker for every file and batch element,
results keyed and laid out like the emulator's), with ``"kind": "netx"`` runs (see :mod:`.worker`).
Readouts: one array per Output node (a QLIF's spikes, a QLI's voltage) and with ``record`` the
``"<node>/u"``, ``"<node>/v"`` traces of every neuron population the file holds.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError
from neurocc.ir.graph import Graph

from .netx import NetxPlan, plan_netx
from .netx_file import NET_FILE, SIDECAR, write_net
from .plan import JOB_FORMAT, Feed, Readout
from .runner import assemble, default_timeout, feed_data, invoke_worker, prepare_inputs


@dataclass(frozen=True)
class NetxJob:
    """One netx run: ``graph`` gives the plan (inputs, readouts); ``net_file`` is the file to load
    (None: written from the plan into the job directory). ``plan`` overrides ``plan_netx(graph)``
    as given, problems and all (tests use it to show what netx does to a refused layer)."""

    graph: Graph
    inputs: Mapping[str, np.ndarray]
    steps: int | None = None
    record: bool = False
    net_file: Path | None = None
    plan: NetxPlan | None = None
    num_layers: int | None = None       # netx's Network(num_layers=...): read only the first layers
    reset_interval: int | None = None   # netx's Network(reset_interval=..., reset_offset=...): LIFReset
    reset_offset: int = 0


@dataclass(frozen=True)
class _View:
    feeds: tuple[Feed, ...]
    readouts: tuple[Readout, ...]


def _plan_for(job: NetxJob) -> NetxPlan:
    if job.plan is not None:
        return job.plan
    plan = plan_netx(job.graph)
    if not plan.expressible:
        raise BackendError(f"netx cannot express graph '{job.graph.name}' ({len(plan.problems)} problem(s))",
                           where="backend 'loihi' (netx)", problems=list(plan.problems),
                           fix="run it on the Lava-process path (neurocc run --backend loihi), which runs these layers")
    return plan


def run_netx_many(jobs: Sequence[NetxJob], *, timeout_s: float | None = None) -> list[dict[str, np.ndarray]]:
    """Load and run every job's netx file in one worker; one result dict per job, in order."""
    plans = [_plan_for(j) for j in jobs]
    prepared = [prepare_inputs(j.graph, j.inputs, j.steps) for j in jobs]
    job_dir = Path(tempfile.mkdtemp(prefix="neurocc-netx-"))
    views, runs, work = [], [], 0
    try:
        for i, (job, plan, (steps, batch, arrays)) in enumerate(zip(jobs, plans, prepared)):
            name = f"netx{i}.net"
            if job.net_file is not None:
                shutil.copyfile(job.net_file, job_dir / name)
            else:
                write_net(plan, job_dir / name, steps, force=job.plan is not None)
            view = _View(plan.feeds, tuple(r for r in plan.readouts if job.record or "/" not in r.key))
            views.append(view)
            probes = sorted({(int(r.proc), r.var) for r in view.readouts})
            for b in range(batch):
                rid = f"x{i}b{b}"
                np.savez(job_dir / f"{rid}_in.npz", **feed_data(view, arrays, b))  # type: ignore[arg-type]
                runs.append({"id": rid, "kind": "netx", "file": name, "steps": steps, "data": f"{rid}_in.npz",
                             "feed": plan.feed_port, "input_message_bits": plan.input_message_bits,
                             "probes": [list(p) for p in probes], "job": i, "batch": b,
                             "num_layers": job.num_layers, "reset_interval": job.reset_interval,
                             "reset_offset": job.reset_offset})
                work += steps * sum(int(np.prod(lay.shape)) for lay in plan.layers)
        (job_dir / "manifest.json").write_text(json.dumps({"format": JOB_FORMAT, "runs": runs}))
        invoke_worker(job_dir, timeout_s or default_timeout(len(runs), work))
        per: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        for r in runs:
            with np.load(job_dir / f"{r['id']}_out.npz", allow_pickle=False) as z:
                per[(r["job"], r["batch"])] = {k: z[k] for k in z.files}
        return [assemble(view, [per[(i, b)] for b in range(prep[1])])  # type: ignore[arg-type]
                for i, (view, prep) in enumerate(zip(views, prepared))]
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)


def artifact_net(directory: Path, graph: Graph) -> Path:
    """The artifact's ``network.net``, checked against ``loihi.json`` (same graph digest)."""
    side = directory / SIDECAR
    net = directory / NET_FILE
    if not side.is_file():
        raise BackendError("the artifact has no loihi.json", where=str(directory),
                           fix="compile it for a loihi target (neurocc compile ... --target loihi2)")
    doc: dict[str, Any] = json.loads(side.read_text())
    if doc.get("graph_digest") != graph.digest():
        raise BackendError("loihi.json was not made from this artifact's graph", where=str(side),
                           fix="recompile the artifact")
    if not net.is_file():
        problems = doc.get("netx", {}).get("not_expressible", []) or ["(no reason recorded)"]
        raise BackendError("the artifact has no network.net: netx cannot express this graph", where=str(directory),
                           problems=problems, fix="run it on the Lava-process path (neurocc run --backend loihi)")
    return net
