"""Edge CPU backend: the graph as ONNX (opset 17), run by ONNX Runtime on the CPU.

Two numerics modes, chosen by the graph:

* **integer** (target ``edge-cpu``, profile ``int8``; also ``loihi`` artifacts): the op sequences
  of :mod:`.intops` and :mod:`.neurons` encode :mod:`neurocc.ir.numerics` and reproduce the
  emulator bit for bit (MatMulInteger/ConvInteger with int32 accumulation, int64 Mul + Div for
  decays, Where/Clip/Mod for wrap and saturation, edge delays as explicit state; the window
  graph's feed-forward int8 neurons use the exact float64 form of :mod:`.fastint`);
* **float32** (target ``edge-cpu-f32``, a float graph): the float reference's discretisation in
  float32 (same spikes on ordinary networks; membranes within float32 rounding).

Two execution forms (:mod:`.assemble`): the streaming **step** graph (state as explicit inputs and
``.next`` outputs named after the IR state variables) and the **window** graph (layer-major
MatMul/Conv over all steps, Scan over each neuron recurrence, Scan over whole recurrent blocks).

Backend contract: :func:`check`, :func:`run`; plus :func:`emit`, :func:`save` and the compile
hook :func:`emit_files` (writes ``model.onnx``, ``model_step.onnx`` and ``edge_cpu.json`` into
the artifact). onnx and onnxruntime are imported only inside functions.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neurocc._files import write_bytes_atomic
from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Graph

MODEL_FILE = "model.onnx"        # the window graph (what `deploy` ships)
STEP_FILE = "model_step.onnx"    # the streaming step graph
SIDECAR = "edge_cpu.json"        # names, shapes, dtypes and state spec of both models
DIGEST_KEY = "neurocc.graph_digest"

FLOAT_KINDS = frozenset({"Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
                         "AvgPool2d", "MaxPool2d", "Flatten", "Delay", "Add", "Threshold", "I", "IF", "LI", "LIF",
                         "CubaLI", "CubaLIF"})
INT_KINDS = frozenset({"Input", "Output", "Flatten", "Delay", "Add", "QDense", "QConv2d", "QSumPool2d",
                       "QLIF", "QLI", "QSigmaDelta"})
PROFILES = ("int8", "loihi")

Mode = Literal["step", "window"]


# --------------------------------------------------------------------------------------------
def check(graph: Graph, target: Any = None) -> list[str]:
    """Every reason this backend cannot run ``graph`` (for ``target``), all at once."""
    from neurocc.ir.verify import problems as verify_problems

    found = list(verify_problems(graph))
    if found:
        return found
    if target is not None:
        want = None if target.numerics == "float32" else target.numerics
        if graph.numerics != want:
            found.append(f"graph '{graph.name}' has numerics {graph.numerics or 'float'} but target "
                         f"'{target.name}' uses {target.numerics}; compile it for this target")
    if graph.numerics is None:
        found += _float_problems(graph)
    elif graph.numerics not in PROFILES:
        found.append(f"graph '{graph.name}' uses the '{graph.numerics}' numerics, which the edge-cpu backend "
                     f"does not implement (it runs {', '.join(PROFILES)} and float graphs)")
    else:
        found += _int_problems(graph)
    return found


def _float_problems(graph: Graph) -> list[str]:
    found = []
    for name, node in graph.nodes.items():
        if getattr(node, "multi_spike", False) and node.reset_timing.value != "after_spike":
            found.append(f"node '{name}' ({node.kind}): several spikes per step (MultiSpike) with the reset timing "
                         f"'{node.reset_timing.value}' have no edge-cpu lowering; fix: reset right after the spike")
        if node.kind not in FLOAT_KINDS:
            found.append(f"node '{name}' ({node.kind}) has no float ONNX lowering"
                         + (" (quantize the graph for int8 or loihi)" if node.quantized else
                            " (run the normalize pass: it folds or rejects ANN-only kinds)"))
        needs_dt = any(hasattr(node, k) for k in ("tau", "tau_mem", "tau_syn")) or node.kind == "Delay"
        if needs_dt and not graph.dt:
            found.append(f"node '{name}' ({node.kind}) needs the graph's dt: run the discretize pass (compile)")
    return found


def _int_problems(graph: Graph) -> list[str]:
    from neurocc.backends.emulator.checks import graph_problems

    from .intops import conv_problems

    found = [p for p in graph_problems(graph)]  # the emulator's rules of the profile: one definition
    for name, node in graph.nodes.items():
        if getattr(node, "plastic", False):
            found.append(f"node '{name}' ({node.kind}) learns on chip; the edge-cpu backend runs frozen "
                         "networks only: freeze the learned weights first (neurocc.ir.qnodes_plastic.freeze"
                         "(graph, weights) with the weights of `neurocc run DIR --save-weights W.npz`) and "
                         "compile that graph")
        elif node.kind not in INT_KINDS:
            found.append(f"node '{name}' ({node.kind}) has no integer ONNX lowering")
        if node.kind == "QConv2d":
            found += [f"node '{name}' (QConv2d): {p}" for p in conv_problems(node)]
        if node.kind == "Delay" and not graph.dt:
            found.append(f"node '{name}' (Delay) needs the graph's dt to turn seconds into steps")
        if getattr(node, "cum_error", False):
            found.append(f"node '{name}' (QSigmaDelta): cum_error has no ONNX lowering")
    return list(dict.fromkeys(found))


def _require(graph: Graph, target: Any = None) -> None:
    found = check(graph, target)
    if found:
        raise BackendError(f"the edge-cpu backend cannot run graph '{graph.name}' ({len(found)} problem(s))",
                           where=f"graph '{graph.name}'", problems=found,
                           fix="compile the model for target edge-cpu (int8) or edge-cpu-f32 (float)")


# --------------------------------------------------------------------------------------------
def emit(graph: Graph, mode: Mode = "window", record: bool = False) -> Any:
    """The ONNX model (``onnx.ModelProto``, opset 17, checked) of ``graph`` in ``mode``.

    ``record`` (step mode only) adds an output ``<node>/out`` per node.
    """
    import onnx
    from onnx import helper

    from .assemble import emit_step_model, emit_window_model
    from .lower import Ctx

    _require(graph)
    if mode not in ("step", "window"):
        raise BackendError(f"unknown emission mode {mode!r}", where="edge-cpu emit", fix="use 'step' or 'window'")
    ctx = Ctx(graph)
    model = emit_step_model(ctx, record) if mode == "step" else emit_window_model(ctx)
    helper.set_model_props(model, {DIGEST_KEY: graph.digest(), "neurocc.mode": mode,
                                   "neurocc.numerics": graph.numerics or "float32"})
    onnx.checker.check_model(model, full_check=True)
    return model


def describe(graph: Graph) -> dict[str, Any]:
    """The sidecar document: numerics, dt, input/output/state names with dtypes and shapes."""
    from .lower import Ctx, body_state_specs

    ctx = Ctx(graph)
    io = lambda names: [{"name": n, "dtype": ctx.dtype_of(n).name, "shape": list(ctx.shapes[n])}  # noqa: E731
                        for n in names]
    states = body_state_specs(ctx, graph.order())
    return {"format": "neurocc-edge-cpu", "version": 1, "graph_digest": graph.digest(),
            "numerics": graph.numerics or "float32", "dt": graph.dt, "opset": 17,
            "models": {"window": MODEL_FILE, "step": STEP_FILE},
            "inputs": io(graph.inputs), "outputs": io(graph.outputs),
            "states": [{"name": k, "next": k + ".next", "dtype": dt.name, "shape": list(s)}
                       for k, (dt, s) in states.items()]}


def save(graph: Graph, directory: str | Path, target: Any = None) -> list[Path]:
    """Write ``model.onnx`` (window), ``model_step.onnx`` (step) and ``edge_cpu.json`` into
    ``directory`` (each file atomically); returns their paths."""
    _require(graph, target)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = {MODEL_FILE: emit(graph, "window").SerializeToString(),
             STEP_FILE: emit(graph, "step").SerializeToString(),
             SIDECAR: (json.dumps(describe(graph), indent=1, sort_keys=True) + "\n").encode()}
    for name, data in files.items():
        write_bytes_atomic(d / name, data)
    return [d / n for n in files]


def emit_files(directory: Path, graph: Graph, float_graph: Graph, target: Any) -> None:
    """Compile hook (``compile_model``): the backend's files inside the artifact directory."""
    save(graph, directory, target)


# --------------------------------------------------------------------------------------------
def _graph_and_dir(artifact: Any) -> tuple[Graph, Path | None]:
    if isinstance(artifact, Graph):
        return artifact, None
    if isinstance(artifact, (str, Path)):
        from neurocc.ir.artifact import load_artifact

        artifact = load_artifact(artifact)
    graph = getattr(artifact, "graph", None)
    if not isinstance(graph, Graph):
        raise BackendError(f"not an artifact: {type(artifact).__name__}", where="edge-cpu run",
                           fix="pass an artifact directory, an Artifact or a Graph")
    path = getattr(artifact, "path", None)
    return graph, Path(path) if path is not None else None


def _stored_model(graph: Graph, directory: Path | None, name: str, mode: Mode) -> Any:
    """The artifact's own model file when present (its digest must match), else a fresh one."""
    if directory is None or not (directory / name).is_file():
        return emit(graph, mode)
    import onnx

    model = onnx.load(str(directory / name))
    props = {p.key: p.value for p in model.metadata_props}
    if props.get(DIGEST_KEY) != graph.digest():
        raise BackendError(f"{name} was not made from this artifact's graph", where=str(directory / name),
                           fix="recompile the artifact (neurocc compile ... --target edge-cpu)")
    return model.SerializeToString()


def prepare_inputs(graph: Graph, inputs: Mapping[str, np.ndarray], steps: int | None) -> dict[str, np.ndarray]:
    """Inputs checked by the emulator's rules, cut/padded to ``steps``, as the model's dtypes
    (int32 for integer graphs: InputError for values outside int32, float32 otherwise)."""
    from neurocc.backends.emulator.checks import check_inputs

    arrays, _, _ = check_inputs(graph, inputs, steps, graph.shapes())
    if graph.numerics is None:
        return {k: v.astype(np.float32) for k, v in arrays.items()}
    out = {}
    for k, v in arrays.items():
        if v.size and (v.min() < np.iinfo(np.int32).min or v.max() > np.iinfo(np.int32).max):
            raise InputError(f"input '{k}' holds values outside int32 ([{v.min()}, {v.max()}])",
                             where="edge-cpu run", fix="pass spikes (0/1) or graded integers within int32")
        out[k] = v.astype(np.int32)
    return out


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None,
        record: bool = False, threads: int = 1) -> dict[str, np.ndarray]:
    """Backend contract: outputs ``(steps, batch, *shape)`` per Output node from the window graph;
    with ``record`` also, from the step graph, ``<node>/out`` for every node and
    ``<node>/<var>`` for every state variable (after the step, post-reset)."""
    from .session import StepRunner, WindowRunner

    graph, directory = _graph_and_dir(artifact)
    _require(graph)
    x = prepare_inputs(graph, inputs, steps)
    out = WindowRunner(_stored_model(graph, directory, MODEL_FILE, "window"), threads).run(x)
    if record:
        res = StepRunner(emit(graph, "step", record=True), threads).run(x)
        for n, node in graph.nodes.items():
            out[f"{n}/out"] = res[f"{n}/out"]
            for var in (*node.state_vars, "ref"):
                if f"{n}/{var}" in res and var != "buffer":
                    out[f"{n}/{var}"] = res[f"{n}/{var}"]
    return out


__all__ = ["MODEL_FILE", "STEP_FILE", "SIDECAR", "check", "describe", "emit", "emit_files", "prepare_inputs",
           "run", "save"]
