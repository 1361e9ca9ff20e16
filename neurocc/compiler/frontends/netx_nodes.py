"""Build the neuron node of one netx block from its ``neuron/`` group and ``bias``.

=============================  ================================================================
netx neuron                    neurocc node
=============================  ================================================================
none (a dense layer)           ``QLI`` (du = −1, dv = 4096) when last, else ``QLIF`` with
                               vth = 2**17 (never fires): netx's default
CUBA / LOIHI                   ``QLIF``: du = iDecay − 1, dv = vDecay, vth = vThMant,
                               bias_mant = bias (13-bit), bias_exp = 6; bias 0 in the input layer
SDNN                           ``QSigmaDelta``: vth = vThMant · 2**12, bias · 2**12; mode
                               ``delta`` in the input layer, ``sigma`` with ``sigma_output``
=============================  ================================================================

A block's neuron also takes the periodic reset of the reading options (``reset_interval``, the
block's offset, the schedule). Problems are recorded in the walk's state, never raised.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neurocc.ir.nodes import Node
from neurocc.ir.qnodes import QLI, QLIF
from neurocc.ir.qnodes_sdn import QSigmaDelta

if TYPE_CHECKING:
    from neurocc.compiler.frontends.netx_blocks import ReadState

NEVER_FIRES = 1 << 17          # netx's vThMant for a dense layer without a neuron group
SDNN_EXP = 12                  # spike_exp + state_exp = 6 + 6 (netx's defaults)
STATE_EXP = 6
LIF_TYPES = ("CUBA", "LOIHI")


def block_neuron(st: ReadState, i: int, kind: str, neuron: dict[str, Any] | None, bias: Any,
                 shape: tuple[int, ...], variant: str, *, last: bool, input_layer: bool = False) -> Node | None:
    """The block's neuron node (None after recording a problem); counts the block for resets."""
    node = _neuron_node(st, i, kind, neuron, bias, shape, variant, last=last, input_layer=input_layer)
    if node is not None and st.reset_interval and isinstance(node, (QLIF, QLI)):
        node = node.replace(reset_interval=st.reset_interval, reset_offset=st.reset_offset,
                            reset_schedule=st.reset_schedule)
    st.reset_offset += 1
    return node


def _neuron_node(st: ReadState, i: int, kind: str, neuron: dict[str, Any] | None, bias: Any,
                 shape: tuple[int, ...], variant: str, *, last: bool, input_layer: bool) -> Node | None:
    """The node for the block's ``neuron/`` group (or its absence); sets ``st.graded``."""
    where = f"layer {i} ({kind})"
    if neuron is None:  # netx's default: iDecay 0, vDecay 4096, vThMant 1 << 17 (never fires)
        b = _bias(st, where, bias, shape, 1)
        if b is None:
            return None
        z = np.zeros(shape, np.int32)
        if last:
            return QLI(du=z - 1, dv=z + 4096, bias_mant=b, bias_exp=z + 6)
        return QLIF(du=z - 1, dv=z + 4096, vth=z + NEVER_FIRES, bias_mant=b, bias_exp=z + 6)
    ntype = str(neuron.get("type", ""))
    st.graded = int(neuron.get("messageBits", 16 if ntype == "SDNN" else 0)) > 0
    if ntype in LIF_TYPES:
        return _lif_node(st, where, neuron, bias, shape, input_layer)
    if ntype == "SDNN":
        return _sdnn_node(st, where, neuron, bias, shape, variant, input_layer)
    st.problems.append(f"{where}: unknown neuron type {ntype!r} in attribute 'neuron/type' (supported: CUBA, "
                       "LOIHI, SDNN)")
    return None


def _lif_node(st: ReadState, where: str, neuron: dict[str, Any], bias: Any, shape: tuple[int, ...],
              input_layer: bool) -> QLIF | None:
    """A CUBA/LOIHI neuron group as a ``QLIF`` (the input layer's neuron has no bias)."""
    missing = [k for k in ("iDecay", "vDecay", "vThMant") if k not in neuron]
    if missing:
        st.problems.append(f"{where}: neuron is missing {', '.join(repr(k) for k in missing)}")
        return None
    b = np.zeros(shape, np.int32) if input_layer else _bias(st, where, bias, shape, 1)
    if b is None:
        return None
    z = np.zeros(shape, np.int32)
    return QLIF(du=z + int(neuron["iDecay"]) - 1, dv=z + int(neuron["vDecay"]), vth=z + int(neuron["vThMant"]),
                bias_mant=b, bias_exp=z + 6)


def _sdnn_node(st: ReadState, where: str, neuron: dict[str, Any], bias: Any, shape: tuple[int, ...],
               variant: str, input_layer: bool) -> QSigmaDelta | None:
    """An SDNN neuron group as a ``QSigmaDelta``: ``sigma`` (sigma_output), ``delta`` (the input
    layer) or ``sigma_delta``; vth and bias in state units (file value · 2**12)."""
    z = np.zeros(shape, np.int64)
    if "sigma_output" in neuron:
        return QSigmaDelta(vth=z, bias=z, mode="sigma", variant=variant)
    if "vThMant" not in neuron:
        st.problems.append(f"{where}: SDNN neuron is missing 'vThMant'")
        return None
    vth = z + (int(neuron["vThMant"]) << SDNN_EXP)
    if input_layer:
        return QSigmaDelta(vth=vth, bias=z, state_exp=STATE_EXP, input_shift=SDNN_EXP, mode="delta",
                           variant=variant)
    b = _bias(st, where, bias, shape, 1 << SDNN_EXP, limit=False)
    return None if b is None else QSigmaDelta(vth=vth, bias=b.astype(np.int64), state_exp=STATE_EXP,
                                              variant=variant)


def _bias(st: ReadState, where: str, bias: Any, shape: tuple[int, ...], scale: int, limit: bool = True) -> np.ndarray | None:
    """The file's bias (truncated; scalar, per channel or per neuron) broadcast to ``shape``."""
    if bias is None:
        return np.zeros(shape, np.int64)
    b = np.trunc(np.asarray(bias, np.float64)).astype(np.int64)
    if b.size == 1:
        b = np.full(shape, int(b.reshape(-1)[0]))
    elif len(shape) == 3 and b.size == shape[0]:
        b = np.broadcast_to(b.reshape(-1, 1, 1), shape).copy()
    elif b.shape == tuple(shape[::-1]) and len(shape) == 3:   # netx's per-neuron layout is (W, H, C)
        b = b.transpose(2, 1, 0)
    elif b.size == int(np.prod(shape)):
        b = b.reshape(shape)
    else:
        st.problems.append(f"{where}: attribute 'bias' has {b.size} values; expected 1, one per channel or one "
                           f"per neuron of {shape}")
        return None
    if limit and (b.min() < -4096 or b.max() > 4095):
        st.problems.append(f"{where}: attribute 'bias' spans [{b.min()}, {b.max()}], outside Loihi's 13-bit "
                           "bias mantissa [-4096, 4095]")
        return None
    return b * scale
