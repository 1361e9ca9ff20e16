"""What the Lava worker reuses from one sample to the next (worker only; nothing here imports Lava,
the objects it handles are Lava's): the process model Lava chose for each process class
(:func:`model_map`), and one runtime for many samples (:func:`serial`, :func:`restart`; used by
:func:`.worker.run_series`).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from neurocc.backends.loihi.plan import LavaNet, LProc

_CHOSEN: dict[type, type] = {}
"""Process class → the process model Lava's compiler chose for it under ``fixed_pt`` (this worker's
one run configuration), learned from the runs so far; see :func:`model_map`."""


def model_map(L: SimpleNamespace, procs: list[Any]) -> dict[Any, type]:
    """``exception_proc_model_map`` for a run of ``procs``: neurocc's models by process class (as
    Lava documents it) plus, keyed by process *instance*, the model already known for each
    process: neurocc's (:data:`.lava_models.MODEL_MAP`) or the one Lava chose for its class in an
    earlier run of this worker.

    Why instances: Lava 0.10's compiler (``ProcGroupDiGraphs._map_proc_to_model``) skips its model
    search only for a process found *itself* in that map; for any other it runs
    ``_find_proc_models``, which executes afresh every module of the process's package directory
    and of its parent package's sub-packages. For ``NeuroccLIF`` that is all of neurocc's
    backends, ~0.5 s per neuron process per run (the cause of loihi2's 2.4x slower digits); for
    Lava's own processes ~20 ms each. The models are the ones Lava selects, so the run is the same."""
    known = {**_CHOSEN, **L.MODEL_MAP}
    found: dict[Any, type] = dict(L.MODEL_MAP)
    found.update({p: known[type(p)] for p in procs if type(p) in known})
    return found


def learn_models(procs: list[Any]) -> None:
    """Remember the model Lava chose for each process's class (after its compile)."""
    for p in procs:
        model = getattr(p, "model_class", None)
        if model is not None:
            _CHOSEN.setdefault(type(p), model)


STATE_VARS = {"lif": ("u", "v"), "dense": ("a_buff",), "sparse": ("a_buff",), "conv": ("a_buf",)}
"""The Vars that carry a process's state from one step to the next in Lava 0.10's fixed_pt models
(the other Vars are parameters; a source sends data column ``(t - 1) mod length`` and keeps none)."""
SERIES_MAX_STATE = 4096
"""Samples run back to back in one runtime only while the state to restore between them has at
most this many values: Lava sets a Var one value per message (the quickstart's 318 values took
18 ms, shared machine at load 7), so 4096 cost about what a fresh runtime does (~0.3 s)."""


def serial(net: LavaNet, names: list[str]) -> bool:
    """Whether samples of these processes can run back to back in one runtime (:func:`.worker.run_series`):
    only sources and processes whose state :data:`STATE_VARS` names (no plastic or multi-step
    delayed synapse, no periodic reset, no learning neuron), with at most :data:`SERIES_MAX_STATE` state values."""
    procs = [p for p in net.procs if p.name in set(names)]
    if any(p.kind not in STATE_VARS and p.kind != "source" for p in procs):
        return False
    if any(p.params.get("reset_interval") or p.params.get("learning") for p in procs):
        return False      # LIFReset counts Lava's global time step; a learning neuron keeps traces
    return sum(_state_size(p) for p in procs) <= SERIES_MAX_STATE


def _state_size(p: LProc) -> int:
    """Values in ``p``'s state Vars: u and v per neuron, a synapse's buffer per output."""
    n = int(np.prod(p.shape))
    return {"lif": 2 * n, "dense": p.shape[0], "sparse": p.shape[0], "conv": n}.get(p.kind, 0)


def restart(net: LavaNet, objs: dict[str, Any]) -> None:
    """Put every state Var back to its initial value (the runtime is paused between samples)."""
    for p in net.procs:
        for name in STATE_VARS.get(p.kind, ()) if p.name in objs else ():
            var = getattr(objs[p.name], name)
            var.set(np.broadcast_to(np.asarray(var.init), var.shape).astype(np.int32))
