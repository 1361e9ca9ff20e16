"""convert: turn a ReLU network (ANN) into an integrate-and-fire network (SNN) of the same function.

Data-based normalisation (Diehl et al. 2015; Rueckauer et al. 2017). On the calibration inputs
the ANN is run once (the shared reference simulator, one step) and, for every ReLU ``l``, a
robust maximum ``λ_l`` is taken: the ``percentile``-th percentile (default 99.9) of its
**positive** activations, per layer (or per channel: axis 0, with ``per_channel=True``), times
``threshold_scale``. Every ReLU becomes ``IF(r=1, v_threshold=1, v_reset=0, reset)``: with a
constant input current ``I`` per step the IF fires at rate ``≈ clip(I, 0, 1)`` (exactly
``floor(T·I)/T`` over T steps with ``reset=subtract``), so a spike of layer ``l`` stands for
``λ_l`` in ANN units. Synapses are rescaled so each IF receives its ANN pre-activation / λ_l::

    W'[o, i] = W[o, i] · λ_in[i] / λ_out[o]          b'[o] = b[o] / λ_out[o]

where ``λ_in`` is the unit of the synapse's input (``1/encoding.scale`` for the graph Input,
``λ`` of the IF it comes from, divided by k² per AvgPool on the way) and ``λ_out`` the unit its
consumer needs. ``AvgPool2d`` becomes ``SumPool2d`` (the 1/k² goes into the unit, hence into the
next weights). ``Add`` (residual join) is dissolved: its inputs are wired into its consumers,
which sum them; a branch whose unit differs from the join's gets a one-to-one scaling synapse
(``Linear`` diagonal, or a 1×1 ``Conv2d`` for (C, H, W) tensors). ``MaxPool2d`` has no faithful
spiking equivalent here and is refused.

Readout (the layer before each Output that is not a ReLU): ``readout="integrator"`` (default) is a
non-spiking integrator ``I(r=1)`` whose membrane accumulates the logits / λ every step; the class
is ``argmax`` of ``v`` at the last step. ``readout="spikes"`` makes it an IF whose spike counts are
the scores (ties and negative logits make it less accurate at short T; see docs/conversion.md).

Reset to zero (Loihi): a neuron loses its overshoot ``v − 1 ∈ (0, I]`` at every spike, so its rate
is ``1/(floor(1/I) + 1) ≈ I/(1 + I/2)`` instead of ``I``: a bias that grows with the per-step
current. Raising the thresholds by ``s = threshold_scale`` caps the current at ``1/s`` (bias
``∝ 1/s``) but lowers every rate by ``s``, so the count resolution over T steps worsens (``∝ s/T``);
the sum is smallest for ``s ∝ √T``. The default for ``reset="zero"`` is therefore
``s = clip(√(T/16), 1, 3)`` (1 at T ≤ 16, 2 at T = 64, 3 from T = 144), fitted on digits
(docs/conversion.md has the measured table); ``subtract`` has no such bias and uses ``s = 1``.

The parts: :mod:`.convert_units` (units and rescaling), :mod:`.convert_measure` (the ANN
forward pass, ``λ``, the accuracy/latency table), :mod:`.convert_report` (the report); their
public names are re-exported here.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from neurocc.compiler.passes.convert_measure import (
    SWEEP,
    ann_forward,
    measure_tradeoff,
    robust_max,
)
from neurocc.compiler.passes.convert_report import (
    ConversionReport,
    LayerScale,
    TradeoffRow,
)
from neurocc.compiler.passes.convert_units import (
    SYNAPSES,
    TRANSPARENT,
    full,
    rescale,
    scaler,
    units,
)
from neurocc.compiler.passes.normalize import normalize
from neurocc.errors import CompileError, InputError
from neurocc.ir.encoding import Encoding
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (
    IF,
    Add,
    AvgPool2d,
    I,
    Input,
    MaxPool2d,
    Output,
    ReLU,
    SumPool2d,
)
from neurocc.ir.types import ResetMode

Readout = Literal["integrator", "spikes"]

__all__ = ["SWEEP", "SYNAPSES", "TRANSPARENT", "ConversionReport", "LayerScale", "Readout", "TradeoffRow",
           "ann_forward", "convert", "default_threshold_scale", "measure_tradeoff", "reset_for_target", "robust_max"]


def reset_for_target(target: Any) -> ResetMode:
    """``subtract`` where the target implements it (soft reset is the accurate one), else ``zero``.
    The loihi numerics keep ``zero`` for converted ANNs: Lava's own LIF and a netx ``network.net``
    (their subtract runs through neurocc's Lava process model, for models that ask for it)."""
    if getattr(target, "numerics", None) == "loihi":
        return ResetMode.ZERO
    return ResetMode.SUBTRACT if "subtract" in tuple(target.reset_modes) else ResetMode.ZERO


def default_threshold_scale(reset: ResetMode | str, timesteps: int) -> float:
    """1 for ``subtract``; ``clip(√(T/16), 1, 3)`` for ``zero`` (see the module docstring)."""
    if ResetMode(reset) is ResetMode.SUBTRACT:
        return 1.0
    return float(np.clip(np.sqrt(timesteps / 16.0), 1.0, 3.0))


# ----- checks and calibration ------------------------------------------------------------------
def _check_ann(graph: Graph) -> None:
    problems = []
    for name, node in graph.nodes.items():
        if isinstance(node, MaxPool2d):
            problems.append(f"MaxPool2d '{name}' has no faithful spiking equivalent: use AvgPool2d")
        elif not isinstance(node, (Input, Output, ReLU, *SYNAPSES, *TRANSPARENT)):
            problems.append(f"node '{name}' ({node.kind}) cannot be converted (only ReLU networks of "
                            "Linear/Conv2d/AvgPool2d/Flatten/Add layers can)")
    problems += [f"edge {e.src} -> {e.dst} has delay {e.delay} (recurrent ANNs are not converted)"
                 for e in graph.edges if e.delay]
    if len(graph.inputs) != 1:
        problems.append(f"the graph has {len(graph.inputs)} inputs; conversion handles one")
    if not problems and not any(isinstance(n, ReLU) for n in graph.nodes.values()):
        problems.append("the graph has no ReLU: it is not an ANN to convert")
    if problems:
        raise CompileError("the ANN cannot be converted to a spiking network", where=f"graph '{graph.name}'",
                           problems=problems, fix="replace MaxPool2d by AvgPool2d (same kernel and stride) "
                           "and retrain; compile spiking models without conversion")


# ----- the pass --------------------------------------------------------------------------------
def _with_readouts(g: Graph) -> tuple[Graph, dict[str, str]]:
    """Insert a placeholder before each Output not fed by ReLUs only; {readout: output}."""
    nodes, edges, readouts = dict(g.nodes), list(g.edges), {}
    for o in g.outputs:
        if all(isinstance(g.nodes[p], ReLU) for p in g.predecessors(o)):
            continue
        r = f"{o}_readout"
        nodes[r] = Add()  # placeholder: becomes I or IF
        edges = [Edge(e.src, r) if e.dst == o else e for e in edges] + [Edge(r, o)]
        readouts[r] = o
    return g.replace(nodes=nodes, edges=tuple(edges)), readouts


def _calibrate(g: Graph, readouts: dict[str, str], x: np.ndarray, percentile: float, per_channel: bool,
               scale: float, readout: Readout) -> tuple[dict[str, np.ndarray], list[LayerScale]]:
    relus = [n for n, v in g.nodes.items() if isinstance(v, ReLU)]
    acts = ann_forward(g, x, relus + list(readouts))
    shapes, lam, layers = g.shapes(), {}, []
    for n in relus + list(readouts):
        is_out = n in readouts
        raw = robust_max(acts[n], percentile, per_channel and not is_out, absolute=is_out and readout == "integrator")
        if not (is_out and readout == "integrator"):
            raw = raw * scale
        lam[n] = full(raw, shapes[n])
        kind = ("I" if readout == "integrator" else "IF") if is_out else "IF"
        layers.append(LayerScale(n, kind, [float(v) for v in raw], float(np.max(np.abs(acts[n])))))
    return lam, layers


def _build(g: Graph, lam: dict[str, np.ndarray], readouts: dict[str, str], in_unit_scale: float,
           reset: ResetMode, readout: Readout) -> Graph:
    unit, in_unit = units(g, lam, in_unit_scale)
    shapes, nodes, edges = g.shapes(), {}, []
    for n, node in g.nodes.items():
        ones, zeros = np.ones(shapes[n], np.float32), np.zeros(shapes[n], np.float32)
        if isinstance(node, ReLU) or (n in readouts and readout == "spikes"):
            nodes[n] = IF(r=ones, v_threshold=ones, v_reset=zeros, reset=reset)
        elif n in readouts:
            nodes[n] = I(r=ones)
        elif isinstance(node, SYNAPSES):
            nodes[n] = rescale(node, n, in_unit[n], unit[n])  # type: ignore[arg-type]
        elif isinstance(node, AvgPool2d):
            nodes[n] = SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
        else:
            nodes[n] = node
    for e in g.edges:
        need = in_unit.get(e.dst)
        if need is None or np.allclose(unit[e.src], need, rtol=1e-9, atol=0):
            edges.append(e)
            continue
        s = f"{e.src}__to__{e.dst}"
        nodes[s] = scaler(unit[e.src] / need, s)
        edges += [Edge(e.src, s), Edge(s, e.dst)]
    return _dissolve_adds(g.replace(nodes=nodes, edges=tuple(edges)))


def _dissolve_adds(g: Graph) -> Graph:
    """Wire each Add's inputs straight into its consumers (every node sums its inputs)."""
    for n in [n for n, v in g.nodes.items() if isinstance(v, Add)]:
        ins, outs = g.in_edges(n), g.out_edges(n)
        rest = [e for e in g.edges if n not in (e.src, e.dst)]
        new = [Edge(a.src, b.dst, a.delay + b.delay) for a in ins for b in outs]
        if len(set(rest + new)) != len(rest + new):
            continue  # a parallel edge would lose a term: keep this Add
        g = g.replace(nodes={k: v for k, v in g.nodes.items() if k != n}, edges=tuple(rest + new))
    return g


def convert(graph: Graph, calibration_x: np.ndarray, *, timesteps: int = 64,
            reset: ResetMode | str = ResetMode.SUBTRACT, percentile: float = 99.9, per_channel: bool = False,
            encoding: Encoding | None = None, readout: Readout = "integrator",
            threshold_scale: float | None = None, calibration_y: np.ndarray | None = None,
            sweep: tuple[int, ...] = SWEEP, sweep_samples: int | None = 1000) -> tuple[Graph, ConversionReport]:
    """Convert the ReLU network ``graph`` into an IF network (see the module docstring).

    ``calibration_x`` (samples, *input shape) in the model's input scale sets λ; the converted
    float SNN is then simulated at each of ``sweep`` (and ``timesteps``) steps on up to
    ``sweep_samples`` calibration samples, giving the report's accuracy/latency table (agreement
    with the ANN's argmax; accuracy too when ``calibration_y`` is given). ``threshold_scale``
    defaults to :func:`default_threshold_scale`. Returns (SNN graph, report).
    """
    reset = ResetMode(reset)
    enc = encoding or Encoding("constant", timesteps=timesteps)
    if enc.timesteps != timesteps:
        enc = Encoding(enc.kind, timesteps, enc.scale, enc.seed)
    scale = threshold_scale if threshold_scale is not None else default_threshold_scale(reset, timesteps)
    if readout not in ("integrator", "spikes") or not 0 < percentile <= 100 or scale <= 0:
        raise CompileError(f"bad conversion option (readout={readout!r}, percentile={percentile}, "
                           f"threshold_scale={scale})", where="convert",
                           fix="readout 'integrator' or 'spikes', 0 < percentile <= 100, threshold_scale > 0")
    g = normalize(graph)
    _check_ann(g)
    x = _check_calibration(g, calibration_x)
    g, readouts = _with_readouts(g)
    lam, layers = _calibrate(g, readouts, x, percentile, per_channel, scale, readout)
    snn = _build(g, lam, readouts, enc.input_unit, reset, readout).verify()
    n = len(x) if sweep_samples is None else min(len(x), sweep_samples)
    y = None if calibration_y is None else np.asarray(calibration_y)[:n]
    rows, ann_acc = measure_tradeoff(snn, x[:n], encoding=enc, steps=(*sweep, timesteps), y=y, ann=graph)
    report = ConversionReport(reset.value, readout, float(percentile), bool(per_channel), float(scale),
                              int(timesteps), enc.to_dict(), tuple(layers), n, ann_acc, rows)
    return snn, report


def _check_calibration(g: Graph, calibration_x: np.ndarray) -> np.ndarray:
    (inp,) = g.inputs
    shape = g.shapes()[inp]
    x = np.asarray(calibration_x, np.float64)
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
        raise InputError(f"calibration data has shape {x.shape}; expected (samples, {', '.join(map(str, shape))})",
                         where="calibration 'x'", fix=f"give static inputs of the model's input shape {shape}")
    return x

