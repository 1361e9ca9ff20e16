"""What one netx layer can hold exactly: its synapse datasets and ``neuron/`` group, and every
reason it cannot (the rules are listed in :mod:`.netx`'s docstring, "Exactness").

Each function takes a ``problem(node, text)`` callback and records every problem it finds, so
the planner (:mod:`.netx_chain`) reports all of them at once:

* a **conv** goes to Lava's Conv untouched: ``weight_exp`` 0, no bias of its own, delay 1,
  weights below 2**24 (exact in the file's float32);
* a **dense** (and ``dense_rec``) is written only when netx's re-quantization followed by Lava's
  Dense preprocessing (:func:`.netx_weights.netx_dense_effect`) gives back every synapse's value;
  delays 1..63 (DelayDense 0..62);
* a **neuron** has one ``du``, ``dv``, ``vth`` per layer (CUBA: ``iDecay = du + 1``,
  ``vDecay = dv``, ``vThMant = vth``, 17-bit threshold), resets to zero with no refractory
  period, and a bias ``bias_mant << bias_exp`` that is a multiple of 2**6 with a 13-bit quotient.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.ir.numerics.core import bias_value
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense
from neurocc.ir.qnodes_sdn import QSigmaDelta
from neurocc.ir.types import ResetMode

from .netx_sdnn import sdnn_group
from .netx_weights import graph_dense_values, netx_dense_effect, same_values

NEVER_FIRES = 1 << 17   # vThMant of netx's neuron-less dense layer (``1 << 18 - 1`` in netx)
BIAS_EXP = 6            # netx's fixed bias exponent for CUBA neurons
BIAS_START_PROBLEM = "its bias starts at step"   # the problem text compile's warning recognises
BIAS_BITS = 13          # Loihi's signed bias mantissa
MAX_DELAY = 62          # netx clamps delays to 0..62 (DelayDense max_delay=62)

Problem = Callable[[str, str], None]   # (node name, text): record one problem


def edge_delay(g: Graph, src: str, dst: str) -> int:
    """The delay of the edge ``src`` → ``dst``."""
    return next(e.delay for e in g.edges if e.src == src and e.dst == dst)


def conv_data(g: Graph, shapes: Mapping[str, Any], syn: str, node: QConv2d, delay: int,
              problem: Problem) -> dict[str, Any]:
    """The ``conv`` layer's datasets (weights untouched)."""
    if delay != 1:
        problem(syn, f"delay {delay} to its neuron; netx convolutions have no delay (only 1 step)")
    if node.weight_exp != 0:
        problem(syn, f"weight_exp={node.weight_exp}: Lava's Conv ignores weight_exp")
    if node.bias.size and np.any(node.bias != 0):
        problem(syn, "has a bias; move it to the neuron (netx conv bias is the neuron's bias_mant)")
    if len(shapes[g.predecessors(syn)[0]]) != 3:
        problem(syn, "netx convolutions read a (C, H, W) layer")
    w = np.asarray(node.weight, np.int64)
    if w.size and np.abs(w).max() >= 1 << 24:
        problem(syn, "weights beyond 2**24 are not exact in the file's float32")
    return {"weight": w, "stride": np.asarray(node.stride, np.int64),
            "padding": np.asarray(node.padding, np.int64), "dilation": np.asarray(node.dilation, np.int64),
            "groups": int(node.groups)}


def dense_data(g: Graph, syn: str, node: QDense, delay: int, rec: str | None, neuron: str,
               problem: Problem) -> tuple[dict[str, Any], str]:
    """The ``dense`` (``dense_rec`` with the recurrent ``rec``) layer's datasets and its type; a
    ``_info`` entry carries the weight notes of :func:`check_weights`."""
    want, why = graph_dense_values(node)
    if want is None:
        problem(syn, why)
    data: dict[str, Any] = {"weight": want if want is not None else np.asarray(node.weight, np.int64)}
    want_rec = None
    if rec is not None:
        rnode = g.nodes[rec]
        want_rec, why = graph_dense_values(rnode)
        if want_rec is None:
            problem(rec, why)
        else:
            data["weight_rec"] = want_rec
        if delay != 1 or edge_delay(g, rec, neuron) != 1 or edge_delay(g, neuron, rec) != 0:
            problem(rec, "netx's dense_rec needs delay 1 on both synapses (its delayed variant "
                         "drops the weight exponent)")
    if not 1 <= delay <= MAX_DELAY + 1:
        problem(syn, f"delay {delay}: netx holds delays 1..{MAX_DELAY + 1} (DelayDense 0..{MAX_DELAY})")
    elif delay > 1:
        data["delay"] = np.full(node.weight.shape[0], delay - 1, np.int64)
    if want is not None and (rec is None or want_rec is not None):
        data["_info"] = check_weights(syn, rec, want, want_rec, problem)
    return data, "dense" if rec is None else "dense_rec"


def check_weights(syn: str, rec: str | None, want: np.ndarray, want_rec: np.ndarray | None,
                  problem: Problem) -> dict[str, Any]:
    """Problems where netx + Lava would change a weight; the layer's weight notes."""
    effect = netx_dense_effect(want, want_rec)
    if effect is None:
        problem(syn, "all weights are zero: netx's optimize_weight_bits divides by the largest "
                     "weight and crashes")
        return {}
    eff, eff_rec, exp = effect
    for name, e, w in ((syn, eff, want), (rec, eff_rec, want_rec)):
        if name is not None and not same_values(e, exp, w):
            bad = int(np.count_nonzero((e.astype(np.int64) << max(exp, 0)) != (w.astype(np.int64) << max(-exp, 0))))
            problem(name, f"{bad} of {w.size} weights would change: netx re-quantizes values in "
                          f"[{w.min()}, {w.max()}] to something else (safe: mixed signs within "
                          "[-256, 254], all >= 0 up to 255, all < 0 down to -255)")
    both = want if want_rec is None else np.hstack([want, want_rec])
    return {"netx_weight_exp": exp, "weight_range": [int(both.min()), int(both.max())]}


def neuron_group(name: str, node: QLIF | QLI | QSigmaDelta, shape: tuple[int, ...], input_layer: bool,
                 problem: Problem) -> tuple[dict[str, Any], np.ndarray | None]:
    """The ``neuron/`` group of ``name`` and its bias in weight units (None: not exact)."""
    if isinstance(node, QSigmaDelta):
        group, bias, probs = sdnn_group(node, shape, input_layer=input_layer)
        for p in probs:
            problem(name, p)
        return group, bias
    one = {}
    keys = {"du": node.du, "dv": node.dv, **({"vth": node.vth} if isinstance(node, QLIF) else {})}
    for key, arr in keys.items():
        a = np.broadcast_to(np.asarray(arr, np.int64), shape)
        if a.size and np.any(a != a.flat[0]):
            problem(name, f"per-neuron {key} values differ; netx holds one {key} per layer")
        one[key] = int(a.flat[0]) if a.size else 0
    vth = one.get("vth", NEVER_FIRES)
    _cuba_problems(name, node, vth, one, problem)
    group = {"type": "CUBA", "iDecay": one["du"] + 1, "vDecay": one["dv"], "vThMant": vth,
             "refDelay": 1, "gradedSpike": 0}
    return group, neuron_bias(name, node, shape, problem)


def _cuba_problems(name: str, node: QLIF | QLI, vth: int, one: Mapping[str, int], problem: Problem) -> None:
    """What netx's CUBA neuron cannot do: reset modes, refractory periods, wide thresholds or
    decays, periodic resets, current biases and late-starting biases."""
    if isinstance(node, QLIF):
        if (node.reset != ResetMode.ZERO or node.refractory or node.reset_timing.value != "after_spike"
                or node.fire_at_threshold):
            problem(name, "netx's CUBA neuron resets v to 0 right after v > vth and has no refractory "
                          "period")
        if node.multi_spike:
            problem(name, "multi_spike (Sinabs MultiSpike): netx's CUBA neuron sends one binary spike, "
                          "not a spike count")
        if not 0 <= vth <= NEVER_FIRES:
            problem(name, f"vth={vth} is outside Loihi's 17-bit threshold mantissa")
    if node.reset_interval:
        problem(name, "reset_interval is a netx Network argument, not part of the file")
    if getattr(node, "bias_u", None) is not None:
        problem(name, "bias_u (a bias on the current, snnTorch Synaptic): netx's CUBA neuron biases v "
                      "only (--bias-from-step-zero does not change this)")
    if node.bias_start:
        problem(name, f"{BIAS_START_PROBLEM} {node.bias_start}, with its Dense-delayed input; "
                      "netx's CUBA neuron adds the bias from step 0 (--bias-from-step-zero)")
    if not (-1 <= one["du"] <= 4095 and 0 <= one["dv"] <= 4096):
        problem(name, f"du={one['du']}, dv={one['dv']} outside netx's iDecay/vDecay 0..4096")


def neuron_bias(name: str, node: QLIF | QLI, shape: tuple[int, ...], problem: Problem) -> np.ndarray | None:
    """``bias_mant << bias_exp`` in netx's units (÷ 2**:data:`BIAS_EXP`); None when not exact."""
    b = bias_value(np.broadcast_to(node.bias_mant, shape), np.broadcast_to(node.bias_exp, shape))
    b = np.asarray(b, np.int64)
    if np.any(b % (1 << BIAS_EXP)):
        problem(name, f"bias (bias_mant << bias_exp) is not a multiple of {1 << BIAS_EXP}: netx "
                      f"writes bias_mant with bias_exp={BIAS_EXP}")
        return None
    q = b >> BIAS_EXP
    lo, hi = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1
    if q.size and (q.min() < lo or q.max() > hi):
        problem(name, f"bias / 64 in [{q.min()}, {q.max()}] exceeds Loihi's {BIAS_BITS}-bit mantissa")
        return None
    return q


def layer_bias(q: np.ndarray, kind: str) -> np.ndarray:
    """Dense: (out,). Conv: (C,) when uniform per channel, else the whole (W, H, C) array."""
    if kind != "conv":
        return q.reshape(-1)
    per_channel = q.reshape(q.shape[0], -1)
    if np.all(per_channel == per_channel[:, :1]):
        return per_channel[:, 0].copy()
    return np.ascontiguousarray(q.transpose(2, 1, 0))


def default_li(group: Mapping[str, Any]) -> bool:
    """netx's neuron-less dense layer: iDecay 0 (du = −1), vDecay 4096, vThMant 2**17."""
    return group["iDecay"] == 0 and group["vDecay"] == 4096 and group["vThMant"] == NEVER_FIRES
