"""What the loihi/int8 quantizer cannot map: every unsupported node or edge, all at once.

Each problem names its node, what is wrong and the fix (the quantize pass raises one
CompileError listing them).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from neurocc.ir.discrete import NEURON_TYPES
from neurocc.ir.numerics.reset import semantics_problems
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import (
    Affine,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    Node,
    Output,
    SumPool2d,
)
from neurocc.ir.numerics.profiles import Profile
from neurocc.ir.types import ResetMode
from neurocc.targets import Target

SYNAPSES = (Affine, Linear, Conv2d)


def structure_problems(graph: Graph, target: Target, profile: Profile) -> list[str]:
    """Every node or edge the quantizer cannot map for ``profile``, all at once."""
    found = []
    for name, node in graph.nodes.items():
        where = f"node '{name}' ({node.kind})"
        succ = [graph.nodes[s] for s in graph.successors(name)]
        if isinstance(node, Conv1d):
            found.append(f"{where}: 1-D convolutions are not supported by the loihi numerics; fix: reshape "
                         "to Conv2d with a kernel of height 1")
        elif isinstance(node, SYNAPSES):
            if len(succ) != 1 or not isinstance(succ[0], NEURON_TYPES):
                found.append(f"{where}: a weight layer must feed exactly one neuron node, it feeds "
                             f"{[s.kind for s in succ]}; fix: add a neuron layer (LI for a readout) after it")
        elif isinstance(node, NEURON_TYPES):
            found.extend(_neuron_problems(graph, name, node, target, profile))
        elif not isinstance(node, (Input, Output, Flatten, SumPool2d, AvgPool2d)):
            found.append(f"{where}: not supported by the loihi quantizer; fix: "
                         + ("run the normalize/convert passes (ANN op)" if node.ann_only else
                            "fold it into a neighbouring weight layer (Scale) or remove it (Delay)"))
    return found


def _neuron_problems(graph: Graph, name: str, node: Node, target: Target, profile: Profile) -> list[str]:
    where, found = f"node '{name}' ({node.kind})", []
    for src in graph.predecessors(name):
        if not isinstance(graph.nodes[src], SYNAPSES) or isinstance(graph.nodes[src], Conv1d):
            found.append(f"{where}: input from '{src}' ({graph.nodes[src].kind}) has no weight layer; "
                         "fix: put an Affine/Linear/Conv2d (identity weights if needed) in front")
    view = target_semantics(target, profile)
    found += semantics_problems(node, where, target.name, view)
    reset = getattr(node, "reset", None)
    modes = view.reset_modes
    if reset is not None and reset.value not in modes:
        found.append(f"{where}: reset '{reset.value}' is not available on target '{target.name}' (it resets "
                     f"{'/'.join(modes)}); fix: use the edge-cpu or loihi2 target or retrain with reset zero")
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and v_reset.size and np.any(v_reset != 0) and reset is ResetMode.ZERO:
        found.append(f"{where}: v_reset = {float(np.max(np.abs(v_reset))):.4g} but {profile.name} resets v to 0; fix: "
                     "retrain with v_reset 0 or shift v_leak and v_threshold by -v_reset")
    theta = getattr(node, "v_threshold", getattr(node, "threshold", None))
    if theta is not None and np.any(theta < 0):
        found.append(f"{where}: negative threshold {float(np.min(theta)):.4g} is not representable "
                     "(17-bit unsigned mantissa); fix: retrain with thresholds >= 0")
    return found



def target_semantics(target: Target, profile: Profile) -> SimpleNamespace:
    """The spike/reset semantics ``target`` runs with ``profile``: the target's reset modes, and
    snnTorch's timings and ``v >= θ`` only where its neurons are programmable, i.e. where its
    ``reset_modes`` list more than ``zero`` (loihi2 via neurocc's Lava process model, edge-cpu);
    a zero-only target (loihi1, spinnaker) has fixed-function neurons. Spike counts (Sinabs
    ``MultiSpike``) need programmable neurons and graded spikes: the int8 profile's integers, or
    a loihi target whose ``limits.message_bits`` carries payloads (loihi2, not loihi1)."""
    modes = tuple(m for m in target.reset_modes if m in profile.reset_modes)
    fixed = modes == ("zero",)
    graded = profile.name != "loihi" or bool(target.limits.message_bits)
    return SimpleNamespace(name=profile.name, reset_modes=modes,
                           reset_timings=("after_spike",) if fixed else profile.reset_timings,
                           fire_at_threshold=profile.fire_at_threshold and not fixed,
                           v_min=profile.v_min and not fixed, multi_spike=graded and not fixed)
