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
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from neurocc.compiler.passes.normalize import normalize
from neurocc.errors import CompileError, InputError
from neurocc.ir.encoding import Encoding, encode
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (IF, Add, Affine, AvgPool2d, Conv2d, Flatten, I, Input, Linear, MaxPool2d, Node,
                              Output, ReLU, Scale, SumPool2d)
from neurocc.ir.types import ResetMode

Readout = Literal["integrator", "spikes"]
SWEEP = (8, 16, 32, 64, 128)
TRANSPARENT = (Flatten, AvgPool2d, SumPool2d, Add, Scale)
SYNAPSES = (Affine, Linear, Conv2d)


@dataclass(frozen=True)
class LayerScale:
    """The normalisation of one converted layer: ``lam`` (one value, or one per channel)."""

    node: str
    kind: str                 # "IF" (was a ReLU) or the readout kind
    lam: list[float]
    max_activation: float
    v_threshold: float = 1.0


@dataclass(frozen=True)
class TradeoffRow:
    """Converted float SNN at ``timesteps``: agreement with the ANN's class, accuracy if labelled."""

    timesteps: int
    agreement: float | None
    accuracy: float | None


@dataclass(frozen=True)
class ConversionReport:
    """What ``convert`` chose and measured; ``to_dict()`` is JSON-able."""

    reset: str
    readout: str
    percentile: float
    per_channel: bool
    threshold_scale: float
    timesteps: int
    encoding: dict[str, Any]
    layers: tuple[LayerScale, ...]
    n_calibration: int
    ann_accuracy: float | None
    tradeoff: tuple[TradeoffRow, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def text(self) -> str:
        lines = [(f"ANN→SNN conversion: reset={self.reset}, readout={self.readout}, "
                  f"p{self.percentile:g} per {'channel' if self.per_channel else 'layer'}, "
                  f"threshold scale {self.threshold_scale:g}, T={self.timesteps}")]
        for lay in self.layers:
            lam = f"{lay.lam[0]:.4g}" if len(lay.lam) == 1 else f"{min(lay.lam):.4g}..{max(lay.lam):.4g}"
            lines.append(f"  {lay.node:<24} {lay.kind:<10} λ={lam} (max {lay.max_activation:.4g})")
        acc = f", ANN accuracy {self.ann_accuracy:.4f}" if self.ann_accuracy is not None else ""
        lines.append(f"  timesteps  agreement-with-ANN  accuracy   ({self.n_calibration} samples{acc})")
        for row in self.tradeoff:
            a = f"{row.accuracy:.4f}" if row.accuracy is not None else "-"
            g = f"{row.agreement:.4f}" if row.agreement is not None else "-"
            lines.append(f"  {row.timesteps:>9}  {g:>18}  {a:>8}")
        return "\n".join(lines)


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


def ann_forward(graph: Graph, x: np.ndarray, probes: list[str], batch_size: int = 256) -> dict[str, np.ndarray]:
    """The ANN's output at each node in ``probes`` (batch, *shape), via the shared reference
    simulator (one step with static input is the ANN forward pass)."""
    from neurocc.backends.emulator import simulate

    nodes, edges = dict(graph.nodes), list(graph.edges)
    shapes = graph.shapes()
    for p in probes:
        if not isinstance(graph.nodes[p], Output):
            nodes[f"__probe__{p}"] = Output(shape=shapes[p])
            edges.append(Edge(p, f"__probe__{p}"))
    probe_graph = graph.replace(nodes=nodes, edges=tuple(edges))
    (inp,) = graph.inputs
    parts: dict[str, list[np.ndarray]] = {p: [] for p in probes}
    for i in range(0, len(x), batch_size):
        out = simulate(probe_graph, {inp: x[None, i:i + batch_size]}, steps=1).outputs
        for p in probes:
            parts[p].append(np.asarray(out[p if p in graph.outputs else f"__probe__{p}"][0]))
    return {p: np.concatenate(v) for p, v in parts.items()}


def robust_max(act: np.ndarray, percentile: float, per_channel: bool, absolute: bool = False) -> np.ndarray:
    """λ: the ``percentile`` of the positive (or, with ``absolute``, non-zero |·|) activations in
    ``act`` (batch, C, ...); shape (C,) per channel, else (1,). 1.0 where nothing is positive."""
    a = np.abs(act) if absolute else act
    cols = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1) if per_channel else a.reshape(1, -1)
    lam = np.ones(cols.shape[0])
    for c, col in enumerate(cols):
        pos = col[col > 0]
        if pos.size:
            lam[c] = max(float(np.percentile(pos, percentile)), 1e-12)
    return lam


# ----- units: what one SNN signal unit stands for in ANN units, per element ---------------------
def _full(lam: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    lam = np.asarray(lam, np.float64).reshape(-1)
    if lam.size == 1:
        return np.full(shape, float(lam[0]))
    return np.broadcast_to(lam.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()


def _channels(u: np.ndarray, name: str) -> np.ndarray:
    flat = u.reshape(u.shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-12, atol=0):
        raise CompileError("scales differ across positions of one channel", where=f"node '{name}'",
                           fix="use per_channel=False, or keep Flatten after the last convolution")
    return flat[:, 0]


def _pool_factor(node: Node) -> float:
    return float(np.prod(node.kernel_size)) if isinstance(node, AvgPool2d) else 1.0  # type: ignore[attr-defined]


def _backmap(node: Node, name: str, u_out: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """The unit a transparent node needs on its input to give ``u_out`` on its output."""
    if isinstance(node, Flatten):
        return u_out.reshape(in_shape)
    if isinstance(node, (AvgPool2d, SumPool2d)):
        return _full(_channels(u_out, name) * _pool_factor(node), in_shape)
    return u_out


def _forward(node: Node, name: str, u_in: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(node, Flatten):
        return u_in.reshape(out_shape)
    if isinstance(node, (AvgPool2d, SumPool2d)):
        return _full(_channels(u_in, name) / _pool_factor(node), out_shape)
    return u_in


def _units(g: Graph, lam: dict[str, np.ndarray], in_scale: float
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray | None]]:
    """(unit of each node's output, unit each node expects on its input)."""
    shapes, req = g.shapes(), {}
    for n in reversed(g.order()):
        wants = [lam[c] if c in lam else _backmap(g.nodes[c], c, req[c], shapes[n])
                 for c in g.successors(n) if c in lam or (isinstance(g.nodes[c], TRANSPARENT) and c in req)]
        if isinstance(g.nodes[n], (*SYNAPSES, *TRANSPARENT)) and n not in lam and wants:
            if any(not np.allclose(w, wants[0], rtol=1e-9) for w in wants[1:]):
                raise CompileError("one layer feeds spiking layers with different scales", where=f"node '{n}'",
                                   fix="give each ReLU its own Conv2d/Linear layer")
            req[n] = wants[0]
    unit: dict[str, np.ndarray] = {}
    in_unit: dict[str, np.ndarray | None] = {}
    for n in g.order():
        node, preds = g.nodes[n], g.predecessors(n)
        if isinstance(node, Input):
            in_unit[n], unit[n] = None, np.full(shapes[n], in_scale)
        elif n in lam:
            in_unit[n] = unit[n] = lam[n]
        elif isinstance(node, Output):
            in_unit[n], unit[n] = None, unit[preds[0]]
        elif isinstance(node, SYNAPSES):
            in_unit[n] = unit[preds[0]]
            unit[n] = req.get(n, np.ones(shapes[n]))
        else:
            u_in = _backmap(node, n, req[n], g.in_shape(n)) if n in req else unit[preds[0]]
            in_unit[n], unit[n] = u_in, _forward(node, n, u_in, shapes[n])
    return unit, in_unit


def _rescale(node: Node, name: str, u_in: np.ndarray, u_out: np.ndarray) -> Node:
    """``W' = W · u_in / u_out`` (per input / output element), ``b' = b / u_out``."""
    w = np.asarray(node.weight, np.float64)  # type: ignore[attr-defined]
    dtype = node.weight.dtype  # type: ignore[attr-defined]
    if isinstance(node, Conv2d):
        ci, co = _channels(u_in, name), _channels(u_out, name)
        cout_g, cin_g = w.shape[0] // node.groups, w.shape[1]
        idx = (np.arange(w.shape[0])[:, None] // cout_g) * cin_g + np.arange(cin_g)[None, :]
        w2 = w * (ci[idx] / co[:, None]).reshape(w.shape[:2] + (1,) * (w.ndim - 2))
        return node.replace(weight=w2.astype(dtype), bias=(node.bias / co).astype(dtype))
    ui, uo = u_in.reshape(-1), u_out.reshape(-1)
    w2 = (w * ui[None, :] / uo[:, None]).astype(dtype)
    if isinstance(node, Affine):
        return node.replace(weight=w2, bias=(node.bias / uo).astype(dtype))
    return node.replace(weight=w2)


def _scaler(factor: np.ndarray, name: str) -> Node:
    """A one-to-one synapse multiplying by ``factor`` (shape of the signal)."""
    if factor.ndim == 1:
        return Linear(weight=np.diag(factor).astype(np.float32))
    if factor.ndim == 3:
        c = _channels(factor, name)
        return Conv2d(weight=np.diag(c)[:, :, None, None].astype(np.float32), bias=np.zeros(len(c), np.float32),
                      input_shape=factor.shape[1:])
    return Scale(scale=factor.astype(np.float32))


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
        lam[n] = _full(raw, shapes[n])
        kind = ("I" if readout == "integrator" else "IF") if is_out else "IF"
        layers.append(LayerScale(n, kind, [float(v) for v in raw], float(np.max(np.abs(acts[n])))))
    return lam, layers


def _build(g: Graph, lam: dict[str, np.ndarray], readouts: dict[str, str], in_unit_scale: float,
           reset: ResetMode, readout: Readout) -> Graph:
    unit, in_unit = _units(g, lam, in_unit_scale)
    shapes, nodes, edges = g.shapes(), {}, []
    for n, node in g.nodes.items():
        ones, zeros = np.ones(shapes[n], np.float32), np.zeros(shapes[n], np.float32)
        if isinstance(node, ReLU) or (n in readouts and readout == "spikes"):
            nodes[n] = IF(r=ones, v_threshold=ones, v_reset=zeros, reset=reset)
        elif n in readouts:
            nodes[n] = I(r=ones)
        elif isinstance(node, SYNAPSES):
            nodes[n] = _rescale(node, n, in_unit[n], unit[n])  # type: ignore[arg-type]
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
        nodes[s] = _scaler(unit[e.src] / need, s)
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


def measure_tradeoff(snn: Graph, x: np.ndarray, *, encoding: Encoding, steps: tuple[int, ...] = SWEEP,
                     y: np.ndarray | None = None, ann: Graph | None = None
                     ) -> tuple[tuple[TradeoffRow, ...], float | None]:
    """Accuracy of the float SNN ``snn`` at each of ``steps`` on static inputs ``x``.

    One reference simulation of max(steps) steps; each shorter T is read from the same run
    (constant inputs, and Poisson draws fill time first, so a prefix is the T-step run).
    ``agreement`` is the fraction of samples classified as the ANN ``ann`` classifies them (None
    without ``ann``); ``accuracy`` needs labels ``y``. Returns (rows, ANN accuracy or None).
    """
    from neurocc.backends.emulator import simulate
    from neurocc.ir.encoding import decode

    steps = tuple(sorted({int(t) for t in steps}))
    out = snn.outputs[0]
    ann_pred = None
    if ann is not None:
        g = normalize(ann)
        ann_pred = ann_forward(g, x, [g.outputs[0]])[g.outputs[0]].reshape(len(x), -1).argmax(1)
    spiking = any(snn.nodes[p].spiking for p in snn.predecessors(out))
    (inp,) = snn.inputs
    preds: dict[int, list[np.ndarray]] = {t: [] for t in steps}
    for i in range(0, len(x), 256):
        xs = encode(x[i:i + 256], encoding, steps[-1], first_index=i)
        ys = np.asarray(simulate(snn, {inp: xs}, steps=steps[-1]).outputs[out])
        for t in steps:
            preds[t].append(decode(ys[:t], spiking=spiking, timesteps=t).argmax(1))
    rows = []
    for t in steps:
        p = np.concatenate(preds[t])
        agree = float(np.mean(p == ann_pred)) if ann_pred is not None else None
        rows.append(TradeoffRow(t, agree, None if y is None else float(np.mean(p == np.asarray(y)))))
    ann_acc = None if (y is None or ann_pred is None) else float(np.mean(ann_pred == np.asarray(y)))
    return tuple(rows), ann_acc
