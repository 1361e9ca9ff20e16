"""The netx ``neuron/`` group of a :class:`~neurocc.ir.qnodes_sdn.QSigmaDelta` (an SDNN block).

What lava-dl 0.6 reads (``lava.lib.dl.netx.hdf5.Network.get_neuron_params``) for ``type = SDNN``:
``vThMant`` and ``messageBits`` (default 16, graded), ``sigma_output`` (present: a ``Sigma``
read-out); the input layer becomes a ``Delta``, every other layer a ``SigmaDelta``, both with
``spike_exp`` (a Network argument, default 6) and ``state_exp = 6``; the block's ``bias`` goes to
the neuron. So, in neurocc's state units (``vth``, ``bias`` = file value · 2**12)::

    sigma_delta  ->  {type: SDNN, activation: relu, vThMant: vth / 2**12}, bias / 2**12
    delta        ->  {type: SDNN, vThMant: vth / 2**12}           (input layer, input_shift 12)
    sigma        ->  {type: SDNN, sigma_output: True}              (no vth, no bias)

netx has no field for anything else, so a node is refused (with the reason) when it has
``relu=False`` (Lava's SigmaDelta default act_mode is ReLU; ``activation`` is informational),
``cum_error`` (never passed by netx), variant ``lava-pr875`` (netx builds Lava's SigmaDelta,
whose ``fixed_pt`` model is Lava 0.10's), ``state_exp`` ≠ 6, a delta ``input_shift`` ≠ 12,
per-neuron ``vth``, or ``vth``/``bias`` not multiples of 2**12.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir.qnodes_sdn import QSigmaDelta

SDNN_EXP = 12          # netx: spike_exp + state_exp = 6 + 6
STATE_EXP = 6
EXACT_F32 = 1 << 24    # integers a float32 dataset holds exactly
STATE = {"sigma_delta": ("sigma",), "sigma": ("sigma",), "delta": ("act",)}


def sdnn_group(node: QSigmaDelta, shape: tuple[int, ...], *, input_layer: bool
               ) -> tuple[dict[str, Any], np.ndarray | None, list[str]]:
    """(neuron group, bias in file units or None, problems) of one sigma-delta node."""
    probs: list[str] = []
    if node.variant != "lava-0.10":
        probs.append(f"variant {node.variant!r}: netx has no field for it (lava-dl 0.6 builds Lava's SigmaDelta, "
                     "whose fixed_pt model is lava-0.10's); compile it with the Lava-process path instead")
    if node.cum_error:
        probs.append("cum_error=True: netx has no field for it (get_neuron_params never passes cum_error)")
    if node.mode == "sigma":
        if np.any(node.vth) or np.any(node.bias):
            probs.append("a sigma read-out with vth or bias: netx's Sigma (sigma_output) has neither")
        return {"type": "SDNN", "sigma_output": True}, None, probs
    if node.state_exp != STATE_EXP:
        probs.append(f"state_exp={node.state_exp}: netx's SDNN neurons have state_exp {STATE_EXP}")
    if node.mode == "delta" and not input_layer:
        probs.append("a delta neuron after a synapse: netx builds Delta only for its input layer")
    if node.mode == "sigma_delta" and input_layer:
        probs.append("a sigma-delta input neuron: netx's SDNN input layer is a Delta")
    if node.mode == "delta" and node.input_shift != SDNN_EXP:
        probs.append(f"input_shift={node.input_shift}: netx's Delta input shifts by spike_exp + state_exp = {SDNN_EXP}")
    if node.mode == "sigma_delta" and not node.relu:
        probs.append("relu=False: netx's SigmaDelta always uses Lava's default act_mode ReLU")
    vth = np.broadcast_to(np.asarray(node.vth, np.int64), shape)
    v0 = int(vth.flat[0]) if vth.size else 0
    if np.any(vth != v0):
        probs.append("per-neuron vth values differ; netx holds one vThMant per layer")
    if v0 % (1 << SDNN_EXP) or v0 >> SDNN_EXP >= EXACT_F32:
        probs.append(f"vth={v0} is not a multiple of 2**{SDNN_EXP} below 2**36 (netx writes vThMant·2**{SDNN_EXP})")
    group: dict[str, Any] = {"type": "SDNN", "vThMant": v0 >> SDNN_EXP}
    if node.mode == "delta":
        if np.any(node.bias):
            probs.append("a delta input neuron with a bias: netx's Delta has none")
        return group, None, probs
    group = {"type": "SDNN", "activation": "relu", "vThMant": v0 >> SDNN_EXP}
    b = np.broadcast_to(np.asarray(node.bias, np.int64), shape)
    if np.any(b % (1 << SDNN_EXP)) or (b.size and np.abs(b >> SDNN_EXP).max() >= EXACT_F32):
        probs.append(f"bias is not a multiple of 2**{SDNN_EXP} within ±2**36: netx writes bias·2**{SDNN_EXP} "
                     "from a float32 dataset")
        return group, None, probs
    return group, b >> SDNN_EXP, probs
