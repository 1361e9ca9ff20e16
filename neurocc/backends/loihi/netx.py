"""Plan a lava-dl netx HDF5 network (``network.net``) for a quantized ``loihi`` graph.

Pure numpy, no Lava, no h5py (the file itself is written by :mod:`.netx_file`). netx (lava-dl
0.6 ``lava.lib.dl.netx.hdf5.Network``) describes a **chain** of blocks, each one synapse plus one
CUBA neuron population with one ``du``/``dv``/``vth`` per layer (research note lava-loihi.md §5.2):

==========================================  ====================================================
neurocc                                     netx layer
==========================================  ====================================================
Input                                       ``input`` with ``shape`` only (no block, no delay)
Input →(0) QLIF/QLI (bias 0)                ``input`` with a ``neuron`` group: driven at the
                                            neuron's ``a_in``
[Flatten →] QDense →(D) QLIF/QLI            ``dense`` (D − 1 in ``delay``, a DelayDense)
QConv2d →(1) QLIF/QLI                       ``conv``
QDense →(1) N with N → QDense_rec →(1) N    ``dense_rec`` (``weight_rec``)
Flatten (C, H, W) → (C·H·W,)                ``flatten`` (netx: ``transpose([2,1,0]).flatten()``)
QLI                                         neuron ``vThMant`` = 2**17 (never fires); no neuron
                                            group when du = −1, dv = 4096, no bias (netx's default)
QSigmaDelta (lava-0.10 numerics)            neuron ``type`` SDNN (:mod:`.netx_sdnn`): sigma_delta
                                            after a synapse, delta as the input neuron, sigma as
                                            ``sigma_output``; the synapses after it are graded
==========================================  ====================================================

Exactness (nothing is written that computes something else):

* **Dense weights**: netx re-quantizes them (``optimize_weight_bits``: pre-clip, scale by
  2**scale_bits, choose ``num_weight_bits`` and ``weight_exp = −scale_bits``) and Lava's Dense then
  clips and drops low bits by its own sign mode (§2.2, §5.3). :func:`.netx_weights.netx_dense_effect` restates
  both; a layer is written only when that chain gives, per synapse, exactly the graph's value
  ``W'·2**weight_exp`` (``W'``: the graph's weights after Lava's preprocessing). So a negative
  ``weight_exp`` needs ``W'`` divisible by 2**−weight_exp (mixed 8-bit weights are even, so
  ``weight_exp = −1`` works), all-zero matrices (netx crashes), |values| beyond 255 and the
  ≤ 0-with-a-zero case netx and Lava disagree on are refused per layer.
* **Neurons**: one ``du``, ``dv``, ``vth`` per layer; ``bias`` is ``bias_mant`` with
  ``bias_exp = 6``, so the graph's ``bias_mant << bias_exp`` must be a multiple of 64 with a 13-bit
  quotient; reset to zero and no refractory period.
* **Conv** weights go to Lava's Conv untouched (no re-quantization), so ``weight_exp`` must be 0
  and the conv has no bias of its own (as for the Lava-process path).

Timing: every netx Dense/Conv sends at Lava step k what it received at k − 1, which is exactly
the ``delay=1`` the loihi quantize pass writes on every synapse → neuron edge; the input is fed
to the first synapse's ``s_in`` (or to the input neuron's ``a_in``) from a RingBuffer as on the
Lava-process path. So netx results need no re-alignment: Lava step k is neurocc step k − 1.

The parts: :mod:`.netx_chain` walks the graph (:func:`plan_netx`), :mod:`.netx_exact` checks what
each layer's datasets and neuron group hold, :mod:`.netx_layers` is the plan as data (every public
name is importable from here as well).
"""
from __future__ import annotations

from .netx_chain import GRADED_BITS, NEURONS, plan_netx  # noqa: F401  (re-exported)
from .netx_exact import BIAS_BITS, BIAS_EXP, BIAS_START_PROBLEM, MAX_DELAY, NEVER_FIRES  # noqa: F401  (re-exported)
from .netx_layers import NetxLayer, NetxPlan, layer_table  # noqa: F401  (re-exported)
