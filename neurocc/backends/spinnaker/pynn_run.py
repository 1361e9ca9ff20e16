"""Run a lowered network on pyNN.nest or pyNN.brian2 in a subprocess.

Why a subprocess: NEST prints banners and keeps global kernel state for the life of the
process, brian2 compiles and caches code, and both are heavy imports (pyNN.nest: ~1-3 s); a
separate interpreter keeps neurocc's process clean. The worker is the emitted script itself
(:mod:`.pynn_template`, run as a file) with the network files and inputs written to a temporary
folder. One call (a CLI command): a fresh interpreter per run, from a temporary working
directory (brian2 and sPyNNaker write files into the cwd). Inside :func:`keep_session` (a Ray
worker's life, :func:`neurocc.backends.sessions`): pyNN.nest runs go to one kept
``pynn_template.py --serve`` process, which imports PyNN once and resets the NEST kernel per run
(``sim.setup``), so a run gives what a fresh process gives (tests/test_spinnaker_session.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neurocc.backends.kept import KeptProcess, run_kept, session
from neurocc.errors import BackendError

from .network import Network, save_network

TEMPLATE = Path(__file__).with_name("pynn_template.py")
SIMULATORS = ("nest", "brian2")
DEFAULT_TIMEOUT_S = 900.0


def run_network(net: Network, inputs: Mapping[str, np.ndarray], simulator: str = "nest",
                steps: int | None = None, timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """Outputs of ``net`` on ``simulator``: ``<population>/spikes`` (and ``/v``) plus one array per
    graph output, time-major ``(steps, batch, *shape)`` on the SpiNNaker timeline. Inside
    :func:`keep_session` NEST runs go to the kept worker, elsewhere to a fresh process."""
    if simulator not in SIMULATORS:
        raise BackendError(f"unknown PyNN simulator {simulator!r}", where="NEUROCC_SPINNAKER_SIMULATOR",
                           fix=f"use one of: {', '.join(SIMULATORS)} (pyNN.spiNNaker needs a board: "
                               "run the emitted script there)")
    timeout = timeout_s or DEFAULT_TIMEOUT_S
    with tempfile.TemporaryDirectory(prefix="neurocc-pynn-") as tmp:
        job = Path(tmp)
        save_network(net, job)
        np.savez(job / "inputs.npz", **{k: np.asarray(v) for k, v in inputs.items()})
        args = ["--simulator", simulator, "--network", str(job), "--input", str(job / "inputs.npz"),
                "--output", str(job / "out.npz")] + ([] if steps is None else ["--steps", str(int(steps))])
        if simulator == "nest" and "nest" in _KEPT:
            rc, log = _kept_run(args, timeout), _read(job / "out.npz.log")
        else:
            rc, log = _fresh_run(args, job, timeout)
        if rc is None:
            raise BackendError(f"pyNN.{simulator} did not finish in {timeout:.0f} s", where=f"network '{net.name}'",
                               fix="run fewer steps or a smaller network (pyNN.brian2 builds synapses in "
                                   "O(n²): keep it under ~50k synapses)")
        if rc != 0 or not (job / "out.npz").exists():
            tail = "\n".join(log.strip().splitlines()[-15:]) or "(no message)"
            raise BackendError(f"pyNN.{simulator} failed (exit {rc})", where=f"network '{net.name}'",
                               problems=[tail], fix="see the simulator's message above")
        with np.load(job / "out.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _read(path: Path) -> str:
    """What the kept worker wrote for this job (its messages), or nothing."""
    return path.read_text(errors="replace") if path.exists() else ""


def _env() -> dict[str, str]:
    return dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"),
                PYTHONWARNINGS="ignore")


def _fresh_run(args: list[str], job: Path, timeout_s: float) -> tuple[int | None, str]:
    """(exit status or None on timeout, its messages): the script in a new interpreter, in
    ``job/cwd`` (brian2 and sPyNNaker write files into the cwd)."""
    work = job / "cwd"
    work.mkdir()
    try:
        proc = subprocess.run([sys.executable, str(TEMPLATE), *args], cwd=work, env=_env(), capture_output=True,
                              text=True, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, ""
    return proc.returncode, proc.stderr or proc.stdout


_KEPT: dict[str, KeptProcess | None] = {}   # "nest" present while keep_session() is active here


def keep_session() -> contextlib.AbstractContextManager[None]:
    """Within the block, pyNN.nest runs go to one kept ``pynn_template.py --serve`` process
    (started on the first run, restarted after it died), closed at the end of the block
    (:func:`.kept.session`): PyNN and NEST are imported once instead of once per call."""
    return session(_KEPT, "nest")


def _kept_run(args: list[str], timeout_s: float) -> int | None:
    """The job's exit status on the kept worker (None: it timed out and was stopped). A worker
    that died, on this job or before, is replaced by a fresh one for the next job."""
    rc, _KEPT["nest"] = run_kept(_KEPT.get("nest"), _start_kept, json.dumps(args), timeout_s)
    return rc


def _start_kept() -> KeptProcess:
    return KeptProcess([sys.executable, str(TEMPLATE), "--serve"], _env(), prefix="neurocc-nest-session-")


def available(simulator: str) -> str | None:
    """None when ``pyNN.<simulator>`` can be imported here, else the reason (for skips)."""
    import importlib.util

    mods = {"nest": ("pyNN", "nest"), "brian2": ("pyNN", "brian2"), "spiNNaker": ("pyNN", "spynnaker")}
    for m in mods.get(simulator, ("pyNN",)):
        if importlib.util.find_spec(m) is None:
            return f"python package '{m}' is not installed (needed for pyNN.{simulator})"
    return None


def copy_template(directory: str | Path, name: str = "pynn_network.py") -> Path:
    """Copy the standalone script verbatim into ``directory``."""
    dst = Path(directory) / name
    shutil.copyfile(TEMPLATE, dst)
    return dst
