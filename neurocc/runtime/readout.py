"""Class scores from a run's outputs: the ``--readout`` of ``neurocc evaluate``.

Every readout scores only the *window*: the last ``T`` steps of a run of ``T + L`` steps, where
``T`` is the sample's length and ``L`` the graph's pipeline latency (the run appends ``L`` steps
of zero input, or holds a static input ``L`` steps longer, so the last input step reaches the
output). The prediction is the argmax of the scores (batch, classes).

==========  ===================================================================================
readout     score of class ``k``
==========  ===================================================================================
count       spikes of output neuron ``k`` in the window (snnTorch's rate-coded loss); for a
            non-spiking output (an integrator readout) its growth over the window,
            ``v[-1] - v[-T-1]`` (:func:`neurocc.ir.encoding.decode`)
membrane    the largest membrane potential ``v`` of the output's neuron layer in the window,
            divided by the neuron's threshold (so per-channel integer scales compare); a
            non-spiking output is its own membrane: its value at the last step
first       first spike: ``-t_k + c_k / (T + 1)``, ``t_k`` the step of neuron ``k``'s first spike
            in the window (``T`` when it never fires) and ``c_k`` its spike count, so the earliest
            neuron wins and its count only breaks ties
==========  ===================================================================================
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from neurocc.errors import BackendError, InputError
from neurocc.ir.encoding import decode
from neurocc.ir.graph import Graph

Readout = Literal["count", "membrane", "first"]
READOUTS: tuple[str, ...] = ("count", "membrane", "first")


def check_readout(readout: str) -> str:
    if readout not in READOUTS:
        raise InputError(f"unknown readout '{readout}'", where="--readout",
                         fix=f"use one of: {', '.join(READOUTS)}")
    return readout


def readout_node(graph: Graph) -> tuple[str, bool]:
    """The node feeding the first output, and whether it spikes."""
    src = graph.predecessors(graph.outputs[0])[0]
    return src, bool(graph.nodes[src].spiking)


def needs_record(graph: Graph, readout: str) -> bool:
    """The membrane readout of a spiking output reads the recorded ``<node>/v``."""
    return readout == "membrane" and readout_node(graph)[1]


def scores(graph: Graph, outputs: dict[str, np.ndarray], readout: str, window: int, backend: str) -> np.ndarray:
    """Class scores (batch, classes) of one run; ``window`` = the scored last steps."""
    y = np.asarray(outputs[graph.outputs[0]], np.float64)
    y = y.reshape(y.shape[0], y.shape[1], -1)
    src, spiking = readout_node(graph)
    if graph.nodes[src].kind == "QSigmaDelta" and readout in ("count", "membrane"):
        return y[-1]    # a Sigma read-out holds the sum of every message it received: its value is the score
    if readout == "count" or (readout == "membrane" and not spiking):
        if readout == "membrane":
            return y[-1]
        return decode(y, spiking=spiking, timesteps=window)
    if readout == "first":
        if not spiking:
            raise InputError(f"the output '{graph.outputs[0]}' does not spike, so it has no first spike",
                             where="--readout first", fix="use --readout count or membrane")
        w = y[-window:] > 0
        first = np.where(w.any(0), w.argmax(0), window)
        return -first + w.sum(0) / (window + 1)
    key = f"{src}/v"
    if key not in outputs:
        raise BackendError(f"backend '{backend}' recorded no membrane '{key}'", where="--readout membrane",
                           fix="use --readout count, or evaluate on --backend emulator or reference")
    v = np.asarray(outputs[key], np.float64)[-window:]
    v = v.reshape(v.shape[0], v.shape[1], -1)
    return v.max(0) / _threshold(graph, src, v.shape[-1])


def _threshold(graph: Graph, node: str, n: int) -> np.ndarray:
    """The node's firing threshold per neuron in its own units (1 where it has none)."""
    nd = graph.nodes[node]
    for attr in ("v_threshold", "v_thresh", "vth"):
        th = getattr(nd, attr, None)
        if th is not None and np.size(th):
            th = np.broadcast_to(np.asarray(th, np.float64).reshape(-1), (n,)) if np.size(th) in (1, n) else None
            if th is not None:
                return np.where(th > 0, th, 1.0)
    return np.ones(n)


def confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Counts ``[true, predicted]`` over the classes 0..max(label, prediction)."""
    k = int(max(y.max(initial=0), pred.max(initial=0))) + 1
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def format_confusion(m: np.ndarray, top: int = 5) -> list[str]:
    """The matrix (up to 12 classes) or the ``top`` most frequent confusions."""
    k = len(m)
    off = [(int(m[i, j]), i, j) for i in range(k) for j in range(k) if i != j and m[i, j]]
    pairs = ", ".join(f"{i}->{j}: {c}" for c, i, j in sorted(off, key=lambda t: (-t[0], t[1], t[2]))[:top])
    lines = [f"most confused (true->predicted): {pairs or 'none'}"]
    if k <= 12:
        w = max(3, len(str(int(m.max(initial=0)))) + 1)
        lines.append("confusion (rows true, columns predicted):")
        lines.append("     " + "".join(f"{j:>{w}}" for j in range(k)))
        lines += [f"  {i:>2} " + "".join(f"{int(c):>{w}}" for c in row) for i, row in enumerate(m)]
    return lines
