"""Run a lowered network on pyNN.nest or pyNN.brian2 in a subprocess.

Why a subprocess: NEST prints banners and keeps global kernel state for the life of the
process, brian2 compiles and caches code, and both are heavy imports; a fresh interpreter per
run keeps neurocc's process clean and the runs independent. The worker is the emitted script
itself (:mod:`.pynn_template`, run as a file), started from a temporary working directory
(brian2 and sPyNNaker write files into the cwd) with the network files and inputs written there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neurocc.errors import BackendError

from .network import Network, save_network

TEMPLATE = Path(__file__).with_name("pynn_template.py")
SIMULATORS = ("nest", "brian2")
DEFAULT_TIMEOUT_S = 900.0


def run_network(net: Network, inputs: Mapping[str, np.ndarray], simulator: str = "nest",
                steps: int | None = None, timeout_s: float | None = None) -> dict[str, np.ndarray]:
    """Outputs of ``net`` on ``simulator``: ``<population>/spikes`` (and ``/v``) plus one array per
    graph output, time-major ``(steps, batch, *shape)`` on the SpiNNaker timeline."""
    if simulator not in SIMULATORS:
        raise BackendError(f"unknown PyNN simulator {simulator!r}", where="NEUROCC_SPINNAKER_SIMULATOR",
                           fix=f"use one of: {', '.join(SIMULATORS)} (pyNN.spiNNaker needs a board: "
                               "run the emitted script there)")
    with tempfile.TemporaryDirectory(prefix="neurocc-pynn-") as tmp:
        job = Path(tmp)
        save_network(net, job)
        np.savez(job / "inputs.npz", **{k: np.asarray(v) for k, v in inputs.items()})
        cmd = [sys.executable, str(TEMPLATE), "--simulator", simulator, "--network", str(job),
               "--input", str(job / "inputs.npz"), "--output", str(job / "out.npz")]
        if steps is not None:
            cmd += ["--steps", str(int(steps))]
        env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"),
                   PYTHONWARNINGS="ignore")
        work = job / "cwd"
        work.mkdir()
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False,
                                  timeout=timeout_s or DEFAULT_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            raise BackendError(f"pyNN.{simulator} did not finish in {err.timeout:.0f} s", where=f"network '{net.name}'",
                               fix="run fewer steps or a smaller network (pyNN.brian2 builds synapses in "
                                   "O(n²): keep it under ~50k synapses)") from None
        if proc.returncode != 0 or not (job / "out.npz").exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise BackendError(f"pyNN.{simulator} failed (exit {proc.returncode})", where=f"network '{net.name}'",
                               problems=[tail], fix="see the simulator's message above")
        with np.load(job / "out.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


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
