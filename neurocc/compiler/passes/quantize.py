"""Quantize: a discretised float SNN graph → the integer graph of a numerics profile.

Profile ``loihi`` (Lava's bit-accurate models; units in :mod:`neurocc.ir.qnodes`). A *layer* is
one neuron node together with every synapse node (Affine/Linear → QDense, Conv2d → QConv2d)
that feeds it; all of them share one scale ``s`` = threshold-mantissa LSBs (= weight LSBs) per
float unit of membrane, so the state registers hold ``64 · s`` LSBs per float unit. With the
per-step coefficients of :func:`~neurocc.ir.discrete.decay_factors` and the layer
gain ``g = g_v`` (``g_u · g_v`` for Cuba kinds, 1 for Threshold):

    effective weight   W_eff = q · 2^e ≈ s · g · f_in · W       q: the integer mantissa
    threshold          vth   = rint(s · θ)                      17-bit, 1..131071 (0 iff θ = 0)
    current decay      du    = rint(4096 · (1 − α_u)) − 1       Lava decays u by du + 1;
                                                                4095 = no memory (LIF, IF, LI, I)
    voltage decay      dv    = rint(4096 · (1 − α_v))           0 = no leak (IF, I); 4096 = no
                                                                memory (Threshold, as netx writes it)
    bias (state LSBs)  bias_mant << bias_exp ≈ 64 · s · (b_v + g · b_affine)
                       13-bit signed mantissa, exponent 0..7 chosen per neuron
    current bias       CubaLIF: bias_u = rint(64 · s · g · b_affine) on u (as snnTorch adds the
                       Linear bias to the current; loihi2: neurocc's Lava process model); CubaLI
                       and fixed-function neurons (loihi1: no bias_u): b_affine goes to the
                       membrane at u's steady state g · b_affine / (1 − α_u)
    bias start         loihi2: bias_start = the neuron's input latency added by the Dense delays
                       (shortest Input → node delay, integer graph minus float graph), so a
                       layer's bias starts at the step its first input arrives, as in the float
                       model (no bias-only burst before the input); loihi1 (fixed-function
                       neurons) has none: its biases act from step 0

``f_in`` is the float value of one integer unit of the synapse's input (1 for spikes and sum
pools, 1/(kH·kW) after an average pool, 1/(64 · s_prev) after a leaky-integrator layer).
Default scaling (no calibration): ``s`` maps the largest |g · f_in · W| of the layer to the
largest mantissa (127 for mixed-sign 8-bit weights, 255 for single-sign; 127 for Conv); then
the shared exponent ``e`` is lowered below 0 if the largest threshold would exceed 131071, or
raised (dense layers only, up to 7) until the smallest positive threshold has at least
``VTH_MIN`` = 16 LSBs of resolution. Conv layers keep ``e = 0`` (Lava's Conv ignores
``weight_exp``). Optional per-layer statistics (``stats``, from calibration) can fix ``s``.

Emission so that Lava's Dense preprocessing (clip, then drop the low ``8 − b + mixed`` bits) is
the identity: ``weight = q << (8 − b + mixed)``, ``weight_exp = e − (8 − b + mixed)``,
``num_weight_bits = b`` (netx's convention: int8 mixed weights become ``2q`` with exponent −1).
Every synapse → neuron edge carries Lava's one-step Dense delay (a recurrent edge that already
delays one step hands its delay to the Dense, so a loop still takes one step). Parameters are
rounded half to even (``rint``), weights too unless a synapse's calibration Gram matrix is given
(``grams``: the rounding of least input-current error, :mod:`.qround`); the chip arithmetic
itself lives in ``neurocc.ir.numerics``.

This module is the entry point (profile checks, the pass itself); the register limits and
:class:`LayerStats` live in :mod:`.qlimits`, the walk over the layers and the synapses in
:mod:`.qlayers`, the integer neuron of a layer in :mod:`.qneuron`, the scale rules in
:mod:`.qscale` (all re-exported names stay importable from here).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from neurocc.compiler.passes.qlayers import SYNAPSES, Quantizer
from neurocc.compiler.passes.qlimits import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    DECAY_ONE,
    EXP_MAX,
    HEADROOM,
    NETX_BIAS_EXP,
    STATE_SHIFT,
    U_LIMIT,
    V_LIMIT,
    VTH_MAX,
    VTH_MIN,
    LayerStats,
)
from neurocc.compiler.passes.quantize_checks import structure_problems
from neurocc.errors import CompileError
from neurocc.ir.discrete import NEURON_TYPES
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import Linear, Scale
from neurocc.ir.numerics.profiles import get_profile
from neurocc.targets import Target

PROFILES = ("loihi", "int8")

__all__ = ["BIAS_EXP_MAX", "BIAS_MANT_MAX", "DECAY_ONE", "EXP_MAX", "HEADROOM", "NETX_BIAS_EXP", "PROFILES",
           "STATE_SHIFT", "SYNAPSES", "U_LIMIT", "VTH_MAX", "VTH_MIN", "V_LIMIT", "LayerStats", "bias_from_step_zero",
           "quantize", "quantize_with_report", "scales_to_diagonal"]


def quantize(graph: Graph, profile: str, target: Target, *,
             stats: Mapping[str, LayerStats] | None = None, per_channel: bool = False,
             grams: Mapping[str, np.ndarray] | None = None) -> Graph:
    """The integer graph of ``graph`` for ``profile`` (see the module docstring)."""
    return quantize_with_report(graph, profile, target, stats=stats, per_channel=per_channel, grams=grams)[0]


def quantize_with_report(graph: Graph, profile: str, target: Target, *,
                         stats: Mapping[str, LayerStats] | None = None,
                         per_channel: bool = False,
                         grams: Mapping[str, np.ndarray] | None = None) -> tuple[Graph, dict[str, Any]]:
    """(integer graph, quantization report). The report is a JSON-ready dict, see
    docs/artifact-format.md ("quantization.json").

    ``per_channel``: every spiking layer gets one scale per output neuron row (Dense) or output
    channel (Conv2d), so each row's largest weight uses the full mantissa; its thresholds and
    biases follow per neuron (both profiles store ``vth`` per neuron). Non-spiking readouts
    keep one scale (their membrane is read as one float unit).

    ``grams``: ``{synapse: input Gram matrix}`` measured on calibration data
    (:func:`neurocc.compiler.passes.qround.input_grams`); those synapses' weights are rounded to
    minimise the layer's input-current error (:func:`~neurocc.compiler.passes.qround.round_weights`)
    instead of each to its nearest integer."""
    if profile == "spinnaker":  # its own pass: the PyNN lowering + sPyNNaker's arithmetic
        from neurocc.compiler.passes.quantize_spinnaker import quantize_spinnaker

        return quantize_spinnaker(graph, target, stats=stats)
    if profile not in PROFILES:
        raise CompileError(f"numerics profile '{profile}' cannot be compiled yet", where=f"target '{target.name}'",
                           fix=f"use a target with numerics {', '.join(PROFILES)} (e.g. emulator, loihi2)")
    if graph.dt is None or graph.method is None:
        raise CompileError(f"graph '{graph.name}' has no dt/method", where="quantize",
                           fix="run the discretize pass first (compile does this)")
    prof = get_profile(profile)
    graph = scales_to_diagonal(graph)
    problems = structure_problems(graph, target, prof)
    if problems:
        raise CompileError(f"graph '{graph.name}' cannot be quantized for target '{target.name}'",
                           where="quantize", problems=problems,
                           fix="see each problem; every one names its node and what to change")
    return Quantizer(graph, target, prof, dict(stats or {}), per_channel, dict(grams or {})).run()


def bias_from_step_zero(graph: Graph) -> Graph:
    """``graph`` with every ``bias_start`` set to 0: each bias acts from the run's first step,
    before the layer's Dense-delayed input arrives (Lava's own LIF and netx files do this; the
    first ``bias_start`` steps then differ from the float model)."""
    nodes = {n: replace(q, bias_start=0) if getattr(q, "bias_start", 0) else q for n, q in graph.nodes.items()}
    return graph.replace(nodes=nodes)


def scales_to_diagonal(graph: Graph) -> Graph:
    """Every 1-D ``Scale`` that feeds exactly one neuron node (snnTorch's one-to-one recurrent
    ``RLeaky``/``RSynaptic(all_to_all=False)``: ``V ⊙ spk`` on the recurrent edge) as the
    diagonal weight layer ``Linear(diag(s))``: the same float map ``y = s ⊙ x``, which the
    integer targets quantize like any Dense (one mantissa per neuron, the layer's scale)."""
    nodes = dict(graph.nodes)
    for name, node in graph.nodes.items():
        succ = graph.successors(name)
        if (isinstance(node, Scale) and np.ndim(node.scale) == 1 and len(succ) == 1
                and isinstance(graph.nodes[succ[0]], NEURON_TYPES)):
            nodes[name] = Linear(weight=np.diag(np.asarray(node.scale, np.float64)))
    return graph.replace(nodes=nodes)

