"""What the emulator refuses, all problems at once: graphs it cannot run and bad inputs."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neurocc.errors import InputError, TargetsError
from neurocc.ir.graph import Graph

FLOAT_KINDS = frozenset({"Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
                         "AvgPool2d", "MaxPool2d", "Flatten", "Delay", "Add", "ReLU", "Threshold", "I", "IF", "LI", "LIF",
                         "CubaLI", "CubaLIF", "PlasticDense"})
QLIF_RANGES = {"du": (-1, 4095), "dv": (0, 4096), "vth": (0, 1 << 17), "bias_mant": (-4096, 4095),
               "bias_exp": (-7, 7)}


def graph_problems(graph: Graph) -> list[str]:
    """Every reason the emulator cannot run ``graph`` (empty when it can)."""
    from neurocc.ir.verify import problems

    found = list(problems(graph))
    if found:
        return found
    if graph.numerics is None:
        for name, node in graph.nodes.items():
            if node.kind not in FLOAT_KINDS:
                hint = ("it is an integer kind: set the graph's numerics profile (quantize it)" if node.quantized
                        else "run the normalize pass first (it folds or rejects ANN-only kinds)")
                found.append(f"node '{name}' ({node.kind}) cannot run in a float graph: {hint}")
        from neurocc.backends.emulator.plastic import plastic_problems

        return found + plastic_problems(graph)
    from neurocc.ir.numerics import get_profile

    try:
        profile = get_profile(graph.numerics)
    except TargetsError as err:
        return [f"graph '{graph.name}': {err.what}"]
    for name, node in graph.nodes.items():
        found.extend(f"node '{name}' ({node.kind}): {p}" for p in _node_problems(node, profile))
        if getattr(node, "multi_spike", False):
            found.extend(f"node '{s}' ({graph.nodes[s].kind}) reads the spike counts of '{name}' (multi_spike) as "
                         "binary spikes; set graded=True" for s in _synapses_after(graph, name)
                         if not graph.nodes[s].graded)
    from neurocc.backends.emulator.plastic import plastic_problems

    return found + plastic_problems(graph)


def _node_problems(node, profile) -> list[str]:
    if node.kind not in profile.node_kinds:
        return [f"not a kind of the '{profile.name}' numerics (allowed: {', '.join(sorted(profile.node_kinds))}); "
                "the graph is not quantized for this profile"]
    out: list[str] = []
    if node.kind in ("QDense", "QConv2d"):
        out += profile.weight_problems(node.weight, conv=node.kind == "QConv2d")
        if node.kind == "QConv2d" and profile.name == "loihi" and node.weight_exp != 0:
            out.append(f"weight_exp = {node.weight_exp}: Lava's Conv ignores weight_exp, so loihi needs 0 "
                       "(fold the scale into the weights and the threshold)")
    if node.kind in ("QLIF", "QLI"):
        for key, (lo, hi) in QLIF_RANGES.items():
            a = np.asarray(getattr(node, key, 0))
            if a.size and (a.min() < lo or a.max() > hi):
                out.append(f"{key} spans [{int(a.min())}, {int(a.max())}], outside [{lo}, {hi}]")
    if node.kind == "QLIF":
        if node.reset.value not in profile.reset_modes:
            out.append(f"reset = {node.reset.value} is not available in '{profile.name}' "
                       f"(it has: {', '.join(profile.reset_modes)})")
        if node.refractory and not profile.refractory:
            out.append(f"refractory = {node.refractory}: '{profile.name}' has no refractory period "
                       "(Lava has no bit-accurate one); use 0")
        if node.multi_spike and (np.min(node.vth, initial=1) < 1 or node.refractory
                                 or node.reset_timing.value != "after_spike"):
            out.append("multi_spike (spike counts) needs vth >= 1, no refractory period and the after_spike "
                       "reset timing")
        if node.refractory < 0:
            out.append(f"refractory = {node.refractory} must be >= 0")
        if node.bias_u is not None and np.abs(np.asarray(node.bias_u, np.int64)).max(initial=0) >= 1 << 23:
            out.append("bias_u must lie within the 24-bit current register (|bias_u| < 2**23)")
    return out


def _synapses_after(graph: Graph, name: str) -> list[str]:
    """The QDense/QConv2d nodes that read ``name``'s output (through Flatten/Delay/pooling)."""
    out, todo, seen = [], list(graph.successors(name)), set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if graph.nodes[n].kind in ("QDense", "QConv2d"):
            out.append(n)
        elif not graph.nodes[n].spiking and graph.nodes[n].kind not in ("QLI", "Output"):
            todo.extend(graph.successors(n))
    return out


def target_problems(graph: Graph, target) -> list[str]:
    """Mismatch between a graph's numerics and ``target.numerics`` (float32 = a float graph)."""
    want = None if target.numerics == "float32" else target.numerics
    if graph.numerics != want:
        return [f"graph '{graph.name}' has numerics {graph.numerics or 'float'} but target '{target.name}' "
                f"uses {target.numerics}; compile it for this target"]
    return []


def check_inputs(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None,
                 shapes: Mapping[str, tuple], float_dtype: type = np.float64
                 ) -> tuple[dict[str, np.ndarray], int, int]:
    """Validate ``inputs`` against the graph's Input nodes; return (arrays, steps, batch).

    Arrays are time-major ``(T, batch, *shape)``; integer graphs need integer values (spikes 0/1
    or graded integers), float graphs finite numbers. ``steps`` beyond the input length pads
    zeros; fewer steps uses the first ``steps``. Arrays come back int64 (integer graphs) or
    ``float_dtype`` (float graphs: float32 on the float32 batched path).
    """
    if steps is not None and (not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps <= 0):
        raise InputError(f"steps must be a positive integer, got {steps!r}", where="steps",
                         fix="pass steps >= 1, or None to use the input length")
    names = set(graph.inputs)
    missing, extra = sorted(names - set(inputs)), sorted(set(inputs) - names)
    probs = [f"missing input '{n}' (shape (steps, batch, {', '.join(map(str, shapes[n]))}))" for n in missing]
    probs += [f"unknown input '{n}': the graph's inputs are {sorted(names)}" for n in extra]
    arrays: dict[str, np.ndarray] = {}
    for n in sorted(names & set(inputs)):
        a = np.asarray(inputs[n])
        want = tuple(shapes[n])
        if a.dtype.kind not in "biuf":
            probs.append(f"input '{n}' has dtype {a.dtype}; use bool, integer or float")
        elif a.ndim != 2 + len(want) or tuple(a.shape[2:]) != want:
            probs.append(f"input '{n}' has shape {a.shape}; expected (steps, batch, {', '.join(map(str, want))})"
                         " (time-major, batch second)")
        elif a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            probs.append(f"input '{n}' contains NaN or infinite values")
        elif graph.numerics is not None and a.dtype.kind == "f" and np.any(a != np.trunc(a)):
            probs.append(f"input '{n}' has non-integer values, but graph '{graph.name}' is quantized "
                         f"('{graph.numerics}'): pass spikes (0/1) or integer payloads")
        else:
            arrays[n] = a
    lens = {a.shape[0] for a in arrays.values()}
    batches = {a.shape[1] for a in arrays.values()}
    if len(lens) > 1 or len(batches) > 1:
        probs.append("inputs disagree on steps or batch: " + ", ".join(f"'{k}' {a.shape[:2]}" for k, a in arrays.items()))
    if arrays and min(a.shape[1] for a in arrays.values()) == 0:
        probs.append("batch size is 0")
    if probs:
        raise InputError("the inputs do not fit the graph", where=f"graph '{graph.name}'", problems=probs,
                         fix="pass one array per graph Input, shaped (steps, batch, *shape)")
    T = lens.pop() if lens else (steps or 1)
    B = batches.pop() if batches else 1
    steps = int(steps or T)
    if steps == 0:
        raise InputError("the inputs have 0 steps", where=f"graph '{graph.name}'", fix="pass at least one step")
    out = {}
    for n, a in arrays.items():
        a = a[:steps]
        if a.shape[0] < steps:
            a = np.concatenate([a, np.zeros((steps - a.shape[0], *a.shape[1:]), a.dtype)])
        out[n] = a.astype(np.int64 if graph.numerics else float_dtype, copy=False)
    return out, steps, B
