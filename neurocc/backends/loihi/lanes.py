"""Lanes: k samples of a batch side by side in one Lava runtime (worker only; nothing here imports
Lava). Lava has no batch axis and spends most of a step passing messages between its processes
(one message per port per step whatever the population's size), so the worker widens every
process k-fold and the per-step messaging is shared by k samples:

* a population of n neurons (source or LIF) becomes k·n neurons; lane j holds neurons
  ``j·n .. (j+1)·n − 1``; per-neuron parameter arrays are tiled k times, scalars stay scalars;
* a synapse's (out, in) weights become the (k·out, k·in) block-diagonal matrix
  ``diag(W, …, W)`` in Lava's ``Sparse`` process (CSR: memory and work linear in k);
* the sources carry the k samples' data stacked on the neuron axis, and every probe's recording
  (time, k·n) is cut back into the k samples' (time, n).

No term crosses lanes (block-diagonal weights, element-wise neurons), so each lane computes exactly
what a run of its sample alone computes: the same integers. ``Sparse`` and ``Dense`` apply the
same bit-accurate rule (clip to 8 bits, truncate to ``num_weight_bits`` by sign mode, accumulate,
shift by ``weight_exp``; Lava 0.10 ``proc/sparse/models.py``, ``proc/dense/models.py``), and the
zeros added off the diagonal leave the sign mode and every sum unchanged. Groups of k lanes run
back to back in one runtime (:func:`.worker.run_series`, the state restored between groups; a
last group short of k lanes is padded with silent lanes whose results are dropped); neurocc's
``NeuroccLIF`` counts ``bias_start`` per group (``period``), the same step for every lane.

Where: :func:`lanes_ok` (dense/sparse/LIF/source processes of one-axis populations, no port
operations, and :func:`.reuse.serial`); everything else runs one sample per lane as before.
How many: :func:`lane_count`. ``NEUROCC_LAVA_LANES=1`` in the environment turns lanes off.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from neurocc.backends.loihi.plan import LavaNet, LProc
from neurocc.backends.loihi.reuse import serial

LANE_KINDS = ("source", "dense", "sparse", "lif")
MAX_LANES = 256
"""The most lanes (``evaluate``'s default batch of 256 runs as one group: no state restore)."""
MAX_LANE_NEURONS = 1 << 16
"""The most neurons (sources and LIFs) of a widened part."""
MAX_LANE_WEIGHTS = 1 << 22
"""The most non-zero weights of a widened part (4 Mi: ~34 MB of CSR arrays in the Lava processes)."""
ENV = "NEUROCC_LAVA_LANES"
"""Environment variable of the worker: the most lanes to use (``1`` turns lanes off)."""


def lanes_ok(net: LavaNet, names: Sequence[str]) -> bool:
    """Whether the processes ``names`` of ``net`` can run in lanes: only sources, dense/sparse
    synapses and LIF neurons (no conv, delayed or plastic synapse, no learning neuron, no periodic
    reset: :func:`.reuse.serial`), every population on one axis, no transpose/reshape on a
    connection."""
    wanted = set(names)
    procs = [p for p in net.procs if p.name in wanted]
    if not serial(net, list(names)) or any(p.kind not in LANE_KINDS for p in procs):
        return False
    if any(len(p.shape) != (2 if p.kind in ("dense", "sparse") else 1) for p in procs):
        return False
    return not any(c.ops for c in net.conns if c.src in wanted)


def lane_count(net: LavaNet, names: Sequence[str], samples: int) -> int:
    """Lanes for ``samples`` samples: 1 when :func:`lanes_ok` fails, else the most lanes within
    :data:`MAX_LANES`, :data:`MAX_LANE_NEURONS`, :data:`MAX_LANE_WEIGHTS` and ``NEUROCC_LAVA_LANES``,
    spread evenly over the groups the samples then need (450 samples, at most 256 lanes: 2 groups
    of 225).

    Why as many as fit (docs/benchmarks.md, the quickstart's digits): a step of 450 lanes costs
    10 ms where a step of one costs 4–6 ms, while each group after the first restores every state
    value one Lava message at a time (the per-sample cost of a restore does not shrink with k)."""
    if samples < 2 or not lanes_ok(net, names):
        return 1
    procs = [p for p in net.procs if p.name in set(names)]
    neurons = sum(p.shape[0] for p in procs if p.kind in ("source", "lif"))
    weights = sum(int(np.count_nonzero(p.arrays["weights"])) for p in procs if p.kind in ("dense", "sparse"))
    most = min(MAX_LANES, _env_max(), samples, MAX_LANE_NEURONS // max(1, neurons), MAX_LANE_WEIGHTS // max(1, weights))
    if most < 2:
        return 1
    groups = -(-samples // most)
    return -(-samples // groups)


def _env_max() -> int:
    try:
        return max(1, int(os.environ.get(ENV, MAX_LANES)))
    except ValueError:
        return MAX_LANES


def widen(net: LavaNet, names: Sequence[str], k: int) -> LavaNet:
    """``net`` with the processes ``names`` widened to ``k`` lanes (module docstring); the
    connections, feeds and probes are unchanged (same process names)."""
    wanted = set(names)
    return replace(net, procs=tuple(_widen(p, k) if p.name in wanted else p for p in net.procs))


def _widen(p: LProc, k: int) -> LProc:
    if p.kind in ("dense", "sparse"):
        from scipy.sparse import block_diag, csr_matrix

        w = csr_matrix(np.asarray(p.arrays["weights"], np.int32))
        wide = block_diag([w] * k, format="csr", dtype=np.int32)
        wide.eliminate_zeros()
        return replace(p, kind="sparse", shape=(k * p.shape[0], k * p.shape[1]), arrays={"weights": wide})
    arrays = {key: np.tile(np.asarray(a), k) for key, a in p.arrays.items()}
    return replace(p, shape=(k * p.shape[0],), arrays=arrays)


def stack(datas: Sequence[dict[str, np.ndarray]], k: int) -> list[dict[str, np.ndarray]]:
    """The samples' source data in groups of ``k`` lanes: each source's (n, steps) arrays stacked
    to (k·n, steps); the last group filled up with zero (silent) lanes."""
    groups = []
    for start in range(0, len(datas), k):
        part = list(datas[start:start + k])
        pad = {key: np.zeros_like(a) for key, a in part[0].items()}
        part += [pad] * (k - len(part))
        groups.append({key: np.concatenate([d[key] for d in part], axis=0) for key in part[0]})
    return groups


def split(net: LavaNet, outs: Sequence[dict[str, np.ndarray]], k: int, samples: int
          ) -> list[dict[str, np.ndarray]]:
    """Each group's recordings ``"<proc>/<var>"`` (time, k·n) cut into its lanes' (time, n), in
    sample order; the padding lanes are dropped."""
    result = []
    for out in outs:
        width = {key: net.proc(key.rsplit("/", 1)[0]).shape[0] for key in out}   # one lane's neurons
        for j in range(k):
            result.append({key: np.ascontiguousarray(arr[:, j * width[key]:(j + 1) * width[key]])
                           for key, arr in out.items()})
    return result[:samples]
