"""Parent side of the Lava backend: check inputs, write a job directory, start the worker, read back.

Lava is never imported here (see :mod:`.shim`). One worker process runs every (network, connected
part, batch element) of a call, so Lava is imported and started once per call. Lava has no batch
axis: each batch element is its own run (the worker runs them side by side in lanes and back to
back in one Lava runtime, :func:`.worker.run_series`, :mod:`.lanes`) and the results are stacked
on axis 1.

Index mapping: neurocc step t (0-based, the emulator's index and the row of every array here) is
Lava step t + 1. A RingBuffer sends column t at Lava step t + 1; sinks and Monitors store Lava
step t + 1 in column/row t. So ``Input → QDense →(delay 1) QLIF`` sees input column t at step
t + 1 in both.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocc.backends.kept import KeptProcess, run_kept, session
from neurocc.backends.kept import stop_group as _stop_group
from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Graph

from .lower import lower
from .plan import JOB_FORMAT, LAVA_MISSING, LavaNet, from_lava, save_net, to_lava
from .plastic import assemble_weights
from .shim import INSTALL_HINT

LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class LavaJob:
    """One network to run: ``inputs`` time-major ``(steps, batch, *shape)`` per Input name."""

    graph: Graph
    inputs: Mapping[str, np.ndarray]
    steps: int | None = None
    record: bool = False


def _check_input(name: str, a: np.ndarray, want: tuple[int, ...]) -> str | None:
    """The problem with input array ``a`` for an Input of shape ``want``, or None."""
    if a.ndim != 2 + len(want) or tuple(a.shape[2:]) != want:
        return f"input '{name}' has shape {a.shape}, expected (steps, batch, {', '.join(map(str, want))})"
    if a.dtype.kind not in "biuf":
        return f"input '{name}' has dtype {a.dtype}; give integers (spikes 0/1 or integer values)"
    if a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.trunc(a))):
        return f"input '{name}' holds non-integer values; Lava's RingBuffer sends int32"
    if a.size and (a.min() < -2**31 or a.max() >= 2**31):
        return f"input '{name}' does not fit int32"
    return None


def prepare_inputs(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None
                   ) -> tuple[int, int, dict[str, np.ndarray]]:
    """Check names, shapes and values; return (steps, batch, int32 arrays of exactly ``steps`` rows).

    Lava's RingBuffer carries int32, so values must be integers (spikes 0/1 or integer graded
    values). ``steps`` beyond the input's length are fed zeros; fewer steps use the first rows.
    """
    names = graph.inputs
    missing = [n for n in names if n not in inputs]
    extra = [n for n in inputs if n not in names]
    if missing or extra:
        raise InputError("the inputs do not match the graph's Input nodes", where=f"graph '{graph.name}'",
                         problems=[f"missing input '{n}'" for n in missing] + [f"unknown input '{n}'" for n in extra],
                         fix=f"give exactly one array per Input: {', '.join(names)}")
    arrays = {n: np.asarray(inputs[n]) for n in names}
    found = [p for n, a in arrays.items() if (p := _check_input(n, a, tuple(graph.nodes[n].shape)))]
    lengths, batches = {a.shape[0] for a in arrays.values() if a.ndim >= 2}, {a.shape[1] for a in arrays.values() if a.ndim >= 2}
    if not found and (len(batches) > 1 or len(lengths) > 1):
        found.append(f"inputs disagree on steps {sorted(lengths)} or batch {sorted(batches)}")
    if found:
        raise InputError("bad inputs for the loihi backend", where=f"graph '{graph.name}'", problems=found,
                         fix="give integer time-major arrays (steps, batch, *shape) per Input")
    n_steps = int(steps) if steps is not None else (lengths.pop() if lengths else 0)
    if n_steps < 1:
        raise InputError(f"steps must be >= 1, got {n_steps}", where=f"graph '{graph.name}'",
                         fix="pass steps >= 1 or inputs with at least one step")
    out = {}
    for n, a in arrays.items():
        pad = max(0, n_steps - a.shape[0])
        out[n] = np.concatenate([a[:n_steps], np.zeros((pad, *a.shape[1:]), a.dtype)]).astype(np.int32)
    return n_steps, (batches.pop() if batches else 1), out


def _delay(a: np.ndarray, shift: int) -> np.ndarray:
    """Rows t ← rows t − shift, zeros first (time is axis 0)."""
    if shift == 0:
        return a
    out = np.zeros_like(a)
    if shift < a.shape[0]:
        out[shift:] = a[: a.shape[0] - shift]
    return out


def feed_data(net: LavaNet, arrays: Mapping[str, np.ndarray], b: int) -> dict[str, np.ndarray]:
    """RingBuffer data per source process for batch element ``b``: (*lava_shape, steps) int32."""
    out = {}
    for f in net.feeds:
        x = _delay(arrays[f.input][:, b], f.shift)
        x = to_lava(x.reshape(x.shape[0], *f.shape), lead=1)
        out[f.proc] = np.ascontiguousarray(np.moveaxis(x, 0, -1)).astype(np.int32)
    return out


def assemble(net: LavaNet, per_batch: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Result arrays (steps, batch, *shape) per readout key from the worker's per-element probes:
    spikes as uint8 0/1 (as the emulator), graded spikes (sigma-delta), u and v as int32."""
    result = {}
    for r in net.readouts:
        rows = []
        for probes in per_batch:
            a = from_lava(probes[f"{r.proc}/{r.var}"], lead=1)
            rows.append(_delay(a.reshape(a.shape[0], *r.shape), r.shift))
        arr = np.stack(rows, axis=1)
        binary = r.var == "s" and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 1))
        result[r.key] = arr.astype(np.uint8 if binary else np.int32)   # graded spikes stay int32
    return result


def default_timeout(runs: int, work: int) -> float:
    """Seconds allowed for a worker: start-up, ~5 s per run, and 2 µs per process-step-neuron."""
    return 120.0 + 5.0 * runs + 2e-6 * work


def run_jobs(jobs: Sequence[LavaJob], timeout_s: float | None = None,
             command: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Lower every job, run them all in one worker, return one result dict per job."""
    lowered = [lower(j.graph, j.record) for j in jobs]
    prepared = [prepare_inputs(j.graph, j.inputs, j.steps) for j in jobs]
    job_dir = Path(tempfile.mkdtemp(prefix="neurocc-lava-"))
    runs, work = [], 0
    for i, (net, (steps, batch, arrays)) in enumerate(zip(lowered, prepared)):
        save_net(net, job_dir, f"net{i}")
        size = sum(int(np.prod(p.shape)) for p in net.procs)
        for b in range(batch):
            data = feed_data(net, arrays, b)
            for k, names in enumerate(net.components()):
                rid = f"j{i}b{b}p{k}"
                np.savez(job_dir / f"{rid}_in.npz", **{n: d for n, d in data.items() if n in names})
                runs.append({"id": rid, "net": f"net{i}", "procs": names, "steps": steps, "data": f"{rid}_in.npz",
                             "job": i, "batch": b})
                work += steps * size
    (job_dir / "manifest.json").write_text(json.dumps({"format": JOB_FORMAT, "runs": runs}))
    invoke_worker(job_dir, timeout_s or default_timeout(len(runs), work), command)
    results = _collect(job_dir, runs, lowered, prepared)
    shutil.rmtree(job_dir, ignore_errors=True)
    return results


def _collect(job_dir: Path, runs: list[dict], lowered: list[LavaNet], prepared: list) -> list[dict[str, np.ndarray]]:
    per: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for r in runs:
        with np.load(job_dir / f"{r['id']}_out.npz", allow_pickle=False) as z:
            per.setdefault((r["job"], r["batch"]), {}).update({k: z[k] for k in z.files})
    out = []
    for i, net in enumerate(lowered):
        batch = prepared[i][1]
        per_batch = [per.get((i, b), {}) for b in range(batch)]
        out.append({**assemble(net, per_batch), **assemble_weights(net, per_batch)})
    return out


def _tail(path: Path) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ["(no worker log)"]
    return lines[-LOG_TAIL_LINES:] or ["(the worker wrote nothing)"]


class KeptWorker(KeptProcess):
    """One ``worker --serve`` subprocess (its own process group) running job directories in turn:
    Lava is imported once for all of them. Used inside :func:`keep_worker` (a Ray worker's life)."""

    def __init__(self) -> None:
        super().__init__([sys.executable, "-m", "neurocc.backends.loihi.worker", "--serve"], _worker_env(),
                         prefix="neurocc-lava-session-")


_KEPT: dict[str, KeptProcess | None] = {}   # present while keep_worker() is active in this process


def keep_worker() -> contextlib.AbstractContextManager[None]:
    """Within the block, Lava runs go to one kept ``worker --serve`` subprocess (started on the
    first run, restarted if it died), closed at the end of the block (:func:`.kept.session`)."""
    return session(_KEPT, "worker")


def _worker_env() -> dict[str, str]:
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _kept_run(job_dir: Path, timeout_s: float) -> int | None:
    rc, _KEPT["worker"] = run_kept(_KEPT.get("worker"), KeptWorker, str(job_dir), timeout_s)
    return rc


def invoke_worker(job_dir: Path, timeout_s: float, command: Sequence[str] | None = None) -> None:
    """Run the worker on ``job_dir`` in its own process group (or the kept worker inside
    :func:`keep_worker`); BackendError with the log tail when it fails, any run failed, or it
    outlives ``timeout_s`` (then the whole group is killed)."""
    log = job_dir / "worker.log"
    if command is None and "worker" in _KEPT:
        _check_status(_kept_run(job_dir, timeout_s), job_dir, timeout_s, log)
        return
    cmd = list(command) if command else [sys.executable, "-m", "neurocc.backends.loihi.worker", str(job_dir)]
    env = _worker_env()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=job_dir, env=env,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            rc = None
    _check_status(rc, job_dir, timeout_s, log)


def _check_status(rc: int | None, job_dir: Path, timeout_s: float, log: Path) -> None:
    """BackendError for a worker that timed out (``rc`` None), lacks Lava, or failed."""
    if rc is None:
        raise BackendError(f"the Lava worker did not finish within {timeout_s:.0f} s and was stopped",
                           where=f"job {job_dir}", problems=_tail(log),
                           fix="run fewer steps or smaller networks, or pass a larger timeout_s")
    if rc == LAVA_MISSING:
        raise BackendError(f"Lava is not installed for {sys.executable}", where="backend 'loihi'",
                           problems=_tail(log), fix=INSTALL_HINT)
    if rc != 0:
        raise BackendError(f"the Lava worker failed (exit status {rc}); its log ends with the lines below",
                           where=f"job {job_dir}", problems=_tail(log),
                           fix="if Lava is missing, install it as the log says; otherwise report this with the log")
