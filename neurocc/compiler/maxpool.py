"""Max-pooling of currents (snnTorch's Conv → MaxPool → Leaky) on integer targets: refused with a
measured alternative.

The float reference, the emulator's float graph and edge-cpu-f32 compute ``MaxPool2d`` of currents
exactly. The integer numerics (loihi, int8, spinnaker) have a weight layer in front of every neuron
and no max of accumulators, so compiling for them is refused; the error carries what the
AvgPool2d rewrite (same kernel, stride and padding; ``normalize`` then folds it into the conv)
gives on the calibration data, measured with the float reference: the share of samples whose
predicted class (the output layer's most active neuron over the run) is unchanged, and with labels
both accuracies. Without calibration data the figure is measured on seeded random spikes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import AvgPool2d, MaxPool2d

MEASURE_SAMPLES = 200
RANDOM_STEPS, RANDOM_SAMPLES, RANDOM_RATE = 50, 32, 0.3


def avgpool_rewrite(graph: Graph) -> Graph:
    """``graph`` with every MaxPool2d replaced by an AvgPool2d of the same window."""
    nodes = {n: (AvgPool2d(kernel_size=v.kernel_size, stride=v.stride, padding=v.padding)
                 if isinstance(v, MaxPool2d) else v) for n, v in graph.nodes.items()}
    return graph.replace(nodes=nodes)


def _inputs(graph: Graph, cal: Any) -> tuple[dict[str, np.ndarray], np.ndarray | None, str]:
    if cal is not None and not cal.static:
        n = min(cal.samples, MEASURE_SAMPLES)
        sub = cal.subset(n)
        return dict(sub.x), sub.y, f"the calibration data ({n} samples)"
    rng = np.random.default_rng(0)
    shapes = graph.shapes()
    x = {n: (rng.random((RANDOM_STEPS, RANDOM_SAMPLES, *shapes[n])) < RANDOM_RATE).astype(np.float32)
         for n in graph.inputs}
    return x, None, f"seeded random spikes ({RANDOM_SAMPLES} samples × {RANDOM_STEPS} steps, rate {RANDOM_RATE})"


def measure_avgpool_rewrite(graph: Graph, cal: Any) -> dict[str, Any]:
    """Float-reference figures of the AvgPool rewrite against the model (see the module docstring)."""
    from neurocc.backends.reference import simulate

    x, y, on = _inputs(graph, cal)
    out = graph.outputs[0]

    def predict(g: Graph) -> np.ndarray:
        z = simulate(g, x).outputs[out]
        return z.reshape(z.shape[0], z.shape[1], -1).sum(0).argmax(1)

    a, b = predict(graph), predict(avgpool_rewrite(graph))
    fig: dict[str, Any] = {"measured_on": on, "same_prediction": float(np.mean(a == b))}
    if y is not None:
        fig["accuracy_maxpool"] = float(np.mean(a == y))
        fig["accuracy_avgpool"] = float(np.mean(b == y))
    return fig


def refuse_integer_maxpool(graph: Graph, target: Any, cal: Any) -> None:
    """CompileError for a float spiking graph with MaxPool2d on an integer target; else nothing."""
    pools = [n for n, v in graph.nodes.items() if isinstance(v, MaxPool2d)]
    if not pools or target.numerics == "float32":
        return
    fig = measure_avgpool_rewrite(graph, cal)
    acc = (f"; accuracy {100 * fig['accuracy_maxpool']:.1f} % with MaxPool2d, {100 * fig['accuracy_avgpool']:.1f} % "
           "with AvgPool2d" if "accuracy_maxpool" in fig else "")
    raise CompileError(
        f"max-pooling of currents ({', '.join(pools)}) has no form in the {target.numerics} numerics of target "
        f"'{target.name}' (a weight layer must feed each neuron; there is no max of accumulators). Measured with "
        f"the float reference on {fig['measured_on']}: replacing every MaxPool2d by AvgPool2d keeps the predicted "
        f"class on {100 * fig['same_prediction']:.1f} % of samples{acc}",
        where=f"target '{target.name}'",
        fix="retrain with nn.AvgPool2d (folded into the convolution for every target), or compile for "
            "edge-cpu-f32, which computes the max-pool exactly")


def ann_maxpool_rewrite(graph: Graph, cal: Any) -> tuple[Graph, dict[str, Any] | None]:
    """A converted ANN (LeNet-style) with MaxPool2d: its spiking approximation.

    A max of spike trains is not the spikes of a max, so the conversion replaces every MaxPool2d by
    an AvgPool2d of the same window (then converted as usual: SumPool2d with the 1/k² in the unit).
    The figures (recorded in the artifact's conversion report and printed as a warning) are measured
    on the calibration data with the float ANN forward: the share of samples whose predicted class
    the rewrite keeps and, with labels, the ANN's accuracy with MaxPool2d and with AvgPool2d. The
    converted network's own accuracy is in the compile diagnostics as for any converted ANN.
    Returns (graph, None) when there is no MaxPool2d.
    """
    import warnings

    from neurocc.compiler.passes.convert import ann_forward
    from neurocc.compiler.passes.normalize import normalize

    pools = [n for n, v in graph.nodes.items() if isinstance(v, MaxPool2d)]
    if not pools:
        return graph, None
    avg = avgpool_rewrite(graph)
    (x,) = cal.x.values()
    x = x[:MEASURE_SAMPLES]
    y = None if cal.y is None else np.asarray(cal.y)[:MEASURE_SAMPLES]

    def predict(g: Graph) -> np.ndarray:
        norm = normalize(g)
        out = norm.outputs[0]
        return ann_forward(norm, x, [out])[out].reshape(len(x), -1).argmax(1)

    a, b = predict(graph), predict(avg)
    fig: dict[str, Any] = {"nodes": pools, "approximation": "AvgPool2d (same window)", "samples": int(len(x)),
                           "same_prediction": float(np.mean(a == b))}
    if y is not None:
        fig["ann_accuracy_maxpool"] = float(np.mean(a == y))
        fig["ann_accuracy_avgpool"] = float(np.mean(b == y))
    acc = (f"; ANN accuracy {100 * fig['ann_accuracy_maxpool']:.1f} % → {100 * fig['ann_accuracy_avgpool']:.1f} %"
           if y is not None else "")
    warnings.warn(f"MaxPool2d ({', '.join(pools)}) converted as AvgPool2d (a max of spike trains has no exact "
                  f"spiking form): the ANN keeps its predicted class on {100 * fig['same_prediction']:.1f} % of "
                  f"{len(x)} calibration samples{acc}. Retrain with AvgPool2d to remove the difference.",
                  stacklevel=2)
    return avg, fig
