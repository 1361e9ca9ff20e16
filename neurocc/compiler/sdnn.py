"""ANN → sigma-delta network (SDNN) conversion for Loihi 2 (``--encoding sigma-delta``).

Every ReLU becomes a sigma-delta neuron (:class:`~neurocc.ir.qnodes_sdn.QSigmaDelta`, Lava's
``SigmaDelta``): the neuron accumulates its graded input (sigma), applies ReLU and the bias, and
sends the **change** of its activation since it last sent (delta) when that change reaches its
threshold; the synapse after it is graded. The input is delta-encoded by a ``Delta`` neuron; the
logits layer is a sigma-delta neuron whose bias is raised by a constant ``C`` (so ReLU is the
identity on the calibration data's logits and argmax is unchanged), read out by a ``Sigma``
through a one-to-one synapse. The layout is netx's SDNN (state_exp 6, the input shifted by
spike_exp + state_exp = 12, vth and bias on the 2**12 grid), so ``network.net`` carries it and
lava-dl netx builds it from Lava's SigmaDelta processes::

    Input →(0) Delta →(0) [Flatten →] Dense/Conv →(1) SigmaDelta → ... → Dense →(1) SigmaDelta(logits + C)
          →(0) Dense(identity) →(1) Sigma →(0) Output

Scales (state units per float unit; ``A_0 = 2**12 · S_in`` for the input fed as ``rint(x · S_in)``).
A graded message is ``act >> 6``, so a layer with integer weights ``w = rint(W · c_l)`` has
``A_l = A_{l-1} · c_l / 64``. Per layer, in order: ``c_l`` is the full weight range
(``254 / max|W|`` dense, even values as netx stores them; ``127 / max|W|`` conv) unless that
makes ``A_l · zmax_l`` exceed the layer's register budget (``zmax_l``: the largest |pre-activation|
on the calibration data; budget 2**28 for dense (int32 sigma, payload within the target's
message bits), 2**21 for conv (Lava's Conv wraps its output to 24 bits)), in which case ``A_l``
is that budget / zmax_l. ``S_in`` is the power of two giving the input 2**7 levels.

**Threshold rule** (one fraction ``θ`` for the network, ``--delta-threshold``): each layer's
``vth = θ · A_l · λ_l`` rounded to the 2**12 grid, ``λ_l`` the 99.9th percentile of the layer's
positive activations on the calibration data (input: of |x|). A neuron sends when its
activation has moved by ``θ·λ_l`` since its last message; the error it holds back is below that.

AvgPool2d is folded into the next synapse (exactly: pool-then-conv is one conv with the kernel
repeated k×k over k², stride and padding ×k; pool-flatten-dense is one dense matrix).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocc.errors import CompileError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import (
    Affine,
    AvgPool2d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    Output,
    ReLU,
)
from neurocc.ir.qnodes import QConv2d, QDense
from neurocc.ir.qnodes_sdn import QSigmaDelta

GRID = 1 << 12           # netx: vth and bias are vThMant·2**12, bias·2**12
STATE_EXP = 6            # netx's SDNN state_exp: a message is act >> 6
INPUT_SHIFT = 12         # netx's Delta: x << (spike_exp + state_exp)
INPUT_LEVELS = 1 << 7    # input resolution: rint(x · S_in) spans 2**7 levels
DENSE_BUDGET = float(1 << 28)   # A_l · zmax_l for a dense layer (int32 sigma, 24-bit payload)
CONV_BUDGET = float(1 << 21)    # A_l · zmax_l for a conv layer (Lava's Conv wraps to 24 bits)
PERCENTILE = 99.9
VARIANTS = ("lava-0.10", "lava-pr875")


@dataclass(frozen=True)
class Stage:
    """One synapse layer of the ANN: the synapse, the ops folded into it, its ReLU (None: logits)."""

    synapse: str
    pre: tuple[str, ...]        # AvgPool2d / Flatten nodes between the previous ReLU and the synapse
    relu: str | None


def stages(norm: Graph) -> tuple[str, list[Stage]]:
    """(input name, the chain's stages) of a normalized ReLU network; CompileError lists every
    node the conversion cannot take."""
    problems: list[str] = []
    if len(norm.inputs) != 1 or len(norm.outputs) != 1:
        problems.append(f"the graph has {len(norm.inputs)} inputs and {len(norm.outputs)} outputs; "
                        "sigma-delta conversion takes one of each")
    out: list[Stage] = []
    pre: list[str] = []
    syn: str | None = None
    for name in norm.order():
        node = norm.nodes[name]
        if len(norm.successors(name)) > 1 or len(norm.predecessors(name)) > 1:
            problems.append(f"node '{name}' ({node.kind}) branches: sigma-delta conversion takes a chain")
        if isinstance(node, (Input, Output)):
            continue
        if isinstance(node, (AvgPool2d, Flatten)) and syn is None:
            pre.append(name)
        elif isinstance(node, (Affine, Linear, Conv2d)) and syn is None:
            syn = name
        elif isinstance(node, ReLU) and syn is not None:
            out.append(Stage(syn, tuple(pre), name))
            pre, syn = [], None
        else:
            problems.append(f"node '{name}' ({node.kind}) has no sigma-delta mapping here (supported: "
                            "Linear/Conv2d, ReLU, AvgPool2d and Flatten before a synapse)")
    if syn is not None:
        out.append(Stage(syn, tuple(pre), None))
    if not out or out[-1].relu is not None:
        problems.append("the last layer must be a Linear/Conv2d read-out (the logits) without ReLU")
    if problems:
        raise CompileError("the ANN cannot be converted to sigma-delta neurons", where=f"graph '{norm.name}'",
                           problems=problems, fix="convert a feed-forward ReLU network (or use --encoding constant)")
    return norm.inputs[0], out


def _pool_matrix(shape: tuple[int, ...], pools: list[AvgPool2d]) -> np.ndarray:
    """The (out, in) matrix of ``pools`` followed by a C-order flatten, on inputs of ``shape``."""
    n = int(np.prod(shape))
    x = np.eye(n).reshape(n, *shape)
    for p in pools:
        (kh, kw), (sh, sw) = p.kernel_size, p.stride
        if tuple(p.padding) != (0, 0):
            raise ValueError("padded AvgPool2d")
        c, h, w = x.shape[1:]
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        y = np.empty((n, c, ho, wo))
        for i in range(ho):
            for j in range(wo):
                y[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].mean((2, 3))
        x = y
    return x.reshape(n, -1).T


def fold(norm: Graph, st: Stage, in_shape: tuple[int, ...]) -> tuple[Any, np.ndarray, bool]:
    """(float synapse on the previous layer's output, its bias, whether a Flatten precedes it)."""
    node = norm.nodes[st.synapse]
    pools = [norm.nodes[p] for p in st.pre if isinstance(norm.nodes[p], AvgPool2d)]
    flat = any(isinstance(norm.nodes[p], Flatten) for p in st.pre)
    bias = np.asarray(getattr(node, "bias", np.zeros(0)), np.float64)
    if isinstance(node, Conv2d):
        w = np.asarray(node.weight, np.float64)
        bias = bias if bias.size else np.zeros(w.shape[0])
        stride, pad = tuple(node.stride), tuple(node.padding)
        for p in pools:
            k = tuple(p.kernel_size)
            if tuple(p.stride) != k or tuple(p.padding) != (0, 0) or tuple(node.dilation) != (1, 1) \
                    or any(n % kk for n, kk in zip(in_shape[1:], k)):
                raise CompileError(f"AvgPool2d '{st.pre[0]}' before conv '{st.synapse}' cannot be folded",
                                   where=f"graph '{norm.name}'", fix="use non-overlapping pools that divide "
                                   "the map, unpadded, and undilated convs")
            w = np.kron(w, np.ones((1, 1, *k))) / (k[0] * k[1])
            stride, pad = (stride[0] * k[0], stride[1] * k[1]), (pad[0] * k[0], pad[1] * k[1])
        return Conv2d(weight=w, bias=bias, stride=stride, padding=pad, dilation=(1, 1),
                      groups=node.groups), bias, False
    w = np.asarray(node.weight, np.float64)
    if pools:
        w = w @ _pool_matrix(in_shape, pools)
    return Linear(weight=w), (bias if bias.size else np.zeros(w.shape[0])), flat or len(in_shape) > 1


def _grid(x: np.ndarray | float) -> np.ndarray:
    return (np.rint(np.asarray(x, np.float64) / GRID) * GRID).astype(np.int64)


def int_synapse(syn: Any, c: float) -> tuple[Any, np.ndarray]:
    """(integer graded synapse, the integer per-synapse values it computes) for ``rint(W · c)``."""
    from neurocc.backends.loihi.netx_weights import graph_dense_values, netx_weight_bits

    if isinstance(syn, Conv2d):
        w = np.clip(np.rint(syn.weight * c), -127, 127).astype(np.int32)
        return QConv2d(weight=w, bias=np.zeros(0), stride=syn.stride, padding=syn.padding, dilation=syn.dilation,
                       groups=syn.groups, graded=True), w.astype(np.int64)
    w = np.clip(2 * np.rint(syn.weight * c / 2), -254, 254).astype(np.int64)
    opt = netx_weight_bits(w)
    if opt is None:
        raise CompileError("a layer's weights all round to zero", where="sigma-delta conversion",
                           fix="lower --delta-threshold or check the model's weights")
    shifted, nwb, exp = opt
    q = QDense(weight=shifted.astype(np.int32), weight_exp=exp, num_weight_bits=nwb, graded=True)
    got, _ = graph_dense_values(q)
    if got is None or not np.array_equal(got, w):
        raise AssertionError("netx weight re-quantization does not reproduce the converted weights")
    return q, w


def weight_range(syn: Any) -> float:
    return 127.0 if isinstance(syn, Conv2d) else 254.0


def _neuron(shape: tuple[int, ...], vth: int, bias: np.ndarray, variant: str, mode: str = "sigma_delta"
            ) -> QSigmaDelta:
    b = np.broadcast_to(bias.reshape(-1, *([1] * (len(shape) - 1))) if bias.size > 1 else bias, shape)
    return QSigmaDelta(vth=np.full(shape, vth, np.int64), bias=np.ascontiguousarray(b, np.int64),
                       state_exp=STATE_EXP, input_shift=INPUT_SHIFT if mode == "delta" else 0, mode=mode,
                       variant=variant)


class _Builder:
    """The SDNN graph under construction: nodes, edges, report rows, and the chain's tail (node,
    shape, state scale)."""

    def __init__(self, threshold: float, variant: str, dense_budget: float) -> None:
        self.theta, self.variant, self.dense_budget = threshold, variant, dense_budget
        self.nodes: dict[str, Any] = {}
        self.edges: list[Edge] = []
        self.rows: list[dict[str, Any]] = []
        self.prev, self.shape, self.scale, self.offset = "", (), 1.0, 0.0

    def input(self, inp: str, shape: tuple[int, ...], x: np.ndarray) -> float:
        """Input → Delta; returns the input scale S_in (x is fed as rint(x · S_in))."""
        from neurocc.compiler.passes.convert import robust_max

        s_in = float(2.0 ** np.floor(np.log2(INPUT_LEVELS / (float(np.abs(x).max()) or 1.0))))
        self.scale, self.shape = GRID * s_in, shape
        lam = float(robust_max(x, PERCENTILE, False, absolute=True)[0])
        vth = int(_grid(self.theta * self.scale * lam))
        self.nodes[inp] = Input(shape=shape)
        self.nodes["delta_in"] = _neuron(shape, vth, np.zeros(1, np.int64), self.variant, "delta")
        self.edges.append(Edge(inp, "delta_in", 0))
        self.rows.append({"layer": "delta_in", "kind": "Delta (input)", "scale": self.scale, "lambda": lam,
                          "vth": vth, "threshold": self.theta * lam, "weight_max": None})
        self.prev = "delta_in"
        return s_in

    def stage(self, norm: Graph, st: Stage, z: np.ndarray) -> None:
        """[Flatten →] integer synapse →(1) SigmaDelta for one ANN layer (pre-activations ``z``)."""
        from neurocc.compiler.passes.convert import robust_max

        syn, bias, flat = fold(norm, st, self.shape)
        if flat:
            self._add(f"{st.synapse}_flatten", Flatten(), 0)
            self.shape = (int(np.prod(self.shape)),)
        if st.relu is None:                 # logits: ReLU(z + C) is z + C on the calibration data
            self.offset = max(0.0, -float(z.min()))
            z, bias = z + self.offset, bias + self.offset
        zmax = float(np.abs(z).max()) or 1.0
        budget = CONV_BUDGET if isinstance(syn, Conv2d) else self.dense_budget
        scale = min(self.scale * weight_range(syn) / float(np.abs(syn.weight).max() or 1.0) / 64, budget / zmax)
        q, w = int_synapse(syn, 64 * scale / self.scale)
        lam = float(robust_max(z, PERCENTILE, False)[0])
        vth = int(_grid(self.theta * scale * lam))
        name = st.relu or f"{st.synapse}_logits"
        self._add(st.synapse, q, 0)
        self._add(name, _neuron(tuple(z.shape[1:]), vth, _grid(bias * scale), self.variant), 1)
        self.rows.append({"layer": name, "kind": f"SigmaDelta ({'logits + C' if st.relu is None else 'ReLU'})",
                          "synapse": st.synapse, "scale": scale, "lambda": lam, "vth": vth,
                          "threshold": self.theta * lam, "weight_max": int(np.abs(w).max()),
                          "zmax_state": scale * zmax})
        self.shape, self.scale = tuple(z.shape[1:]), scale

    def readout(self, out: str) -> None:
        """→ one-to-one synapse (weight 2) →(1) Sigma → Output: the read-out's unit is scale / 32."""
        q, _ = int_synapse(Linear(weight=np.eye(int(np.prod(self.shape)))), 2.0)
        self._add("readout_synapse", q, 0)
        self._add("readout", _neuron(self.shape, 0, np.zeros(1, np.int64), self.variant, "sigma"), 1)
        self._add(out, Output(shape=self.shape), 0)

    def _add(self, name: str, node: Any, delay: int) -> None:
        self.nodes[name] = node
        self.edges.append(Edge(self.prev, name, delay))
        self.prev = name


def convert_sdnn(graph: Graph, x: np.ndarray, *, threshold: float, variant: str = "lava-0.10",
                 message_bits: int = 24) -> tuple[Graph, dict[str, Any]]:
    """(the integer SDNN graph under ``loihi`` numerics, its quantization report with the
    conversion under ``sigma_delta``) of the ReLU network ``graph`` with static calibration
    inputs ``x`` (samples, *shape); see the module docstring."""
    from neurocc.compiler.passes.convert import ann_forward
    from neurocc.compiler.passes.normalize import normalize

    if variant not in VARIANTS:
        raise CompileError(f"unknown sigma-delta variant {variant!r}", where="sigma-delta conversion",
                           fix=f"use one of {', '.join(VARIANTS)}")
    norm = normalize(graph)
    inp, sts = stages(norm)
    z_all = ann_forward(norm, x, [s.synapse for s in sts])
    b = _Builder(threshold, variant, min(DENSE_BUDGET, float(1 << (message_bits - 1)) * 16))
    s_in = b.input(inp, tuple(norm.shapes()[inp]), x)
    for st in sts:
        b.stage(norm, st, np.asarray(z_all[st.synapse], np.float64))
    out = norm.outputs[0]
    b.readout(out)
    g = Graph(b.nodes, tuple(b.edges), dt=graph.dt, numerics="loihi", name=norm.name).verify()
    report = {"encoding": "sigma-delta", "threshold_fraction": threshold, "variant": variant,
              "rule": f"vth = fraction · scale · λ (λ: {PERCENTILE}th percentile of the positive activations; "
                      "input: of |x|), on the 2**12 grid", "input_scale": s_in, "logit_offset": b.offset,
              "layers": b.rows}
    quant = {"profile": "loihi", "input_scales": {inp: s_in},
             "outputs": {out: {"values": "state", "source": "readout", "float_per_lsb": 32.0 / b.scale}},
             "sigma_delta": report}
    return g, quant
