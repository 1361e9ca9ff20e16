"""The source check of an ANN (a model neurocc converts): the ANN run in its own runtime against
neurocc's reading of it *before* conversion, on the static calibration samples.

* ONNX files run in ONNX Runtime, with every node's first output added to the graph outputs (IR
  node names are the ONNX node names with ``/`` → ``.``);
* ``.pt2`` archives run as ``torch.export.load(path).module()`` (the model's output only);
* an ``nn.Module`` runs in torch with forward hooks on the modules named as graph nodes.

neurocc's side is :func:`neurocc.compiler.passes.convert.ann_forward` on the normalized graph
(BatchNorm folded into the layer before it, so a folded BatchNorm's layer is compared after the
fold on both sides only where names agree: a torch ``conv`` hook sees the unfolded convolution and
is skipped when a BatchNorm follows it). Values agree within the tolerance of
:mod:`.compare` (float32 source, float64 reference). ANN values are graded: there are no spikes,
so no ties.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph
from neurocc.runtime.source.compare import TOL_REL

ANN_SAMPLES = 64


def run_onnx(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's first output (keyed by the IR node name) and ``output``, in ONNX Runtime."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    have = {o.name for o in model.graph.output}
    names = {}
    for node in model.graph.node:
        if node.output and node.output[0] not in have and node.name:
            model.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
            names[node.output[0]] = node.name.replace("/", ".").strip(".")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
    result = {}
    for meta, value in zip(sess.get_outputs(), outs):
        result[names.get(meta.name, "output")] = np.asarray(value, np.float64)
    return result


def run_torch_ann(module: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The module's output and the outputs of its modules named as graph nodes, in torch."""
    import torch

    mods = dict(module.named_modules())
    rec: dict[str, Any] = {}
    hooks = [mods[n].register_forward_hook(lambda m, a, o, n=n: rec.__setitem__(n, o)) for n in names if n and n in mods]
    try:
        module.eval()
    except NotImplementedError:   # torch.export's module(): already an inference graph
        pass
    try:
        with torch.no_grad():
            out = module(torch.as_tensor(x, dtype=torch.float32))
    finally:
        for h in hooks:
            h.remove()
    rec["output"] = out[0] if isinstance(out, (tuple, list)) else out
    return {k: v.detach().double().numpy() for k, v in rec.items() if hasattr(v, "detach")}


def compare_ann(graph: Graph, src: Mapping[str, np.ndarray], x: np.ndarray) -> dict[str, Any]:
    """Per node (present on both sides with one shape): max |error| and its tolerance; ``passed``."""
    from neurocc.compiler.passes.convert import ann_forward

    probes = [n for n in graph.order() if n in src and n not in graph.inputs]
    out_node = graph.outputs[0]
    mine = ann_forward(graph, x, probes + ([out_node] if out_node not in probes else []))
    layers, first = [], None
    pairs = [(n, n) for n in probes] + ([(out_node, "output")] if out_node not in probes else [])
    for node, key in pairs:
        e, g = mine[node], src.get(key)
        if g is None or g.shape != e.shape:
            continue
        tol = TOL_REL * max(1.0, float(np.max(np.abs(g))) if g.size else 0.0)
        err = float(np.max(np.abs(e - g))) if e.size else 0.0
        layers.append({"node": node, "kind": graph.nodes[node].kind, "max_abs_error": err, "tol": tol,
                       "passed": err <= tol})
        if err > tol and first is None:
            i = int(np.argmax(np.abs(e - g)))
            idx = np.unravel_index(i, e.shape)
            first = {"node": node, "step": 0, "index": [int(v) for v in idx], "var": "out",
                     "expected": float(e[idx]), "got": float(g[idx])}
    cause = None if first is None else (
        f"the output of '{first['node']}' ({graph.nodes[first['node']].kind}) differs from the ANN's: its weights, "
        "bias or operation (padding, stride, pooling, flattening order, a folded BatchNorm) are read differently")
    return {"passed": first is None and bool(layers), "samples": int(len(x)), "layers": layers,
            "first_divergence": first, "likely_cause": cause, "tol_rel": TOL_REL}


def format_ann(doc: Mapping[str, Any], where: str) -> str:
    lines = [f"source check against {where} (the ANN run in its framework, before conversion): {doc['samples']} "
             f"samples, {'agrees' if doc['passed'] else 'DIFFERS'} within float32 tolerance"]
    lines += [f"  {la['node']:<14} {la['kind']:<9} max |error| {la['max_abs_error']:.3g} (tol {la['tol']:.3g})  "
              f"{'ok' if la['passed'] else 'FAIL'}" for la in doc["layers"]]
    if doc["first_divergence"]:
        fd = doc["first_divergence"]
        lines.append(f"  first divergence: node '{fd['node']}' index {fd['index']}: neurocc {fd['expected']:.6g}, "
                     f"source {fd['got']:.6g}")
        lines.append(f"  likely cause: {doc['likely_cause']}")
    return "\n".join(lines)
