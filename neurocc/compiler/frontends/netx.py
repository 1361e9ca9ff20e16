"""Lava-DL netx HDF5 (``network.net``) → a quantized ``loihi`` :class:`Graph`, with h5py only.

A netx file already holds Loihi integers, so the graph this reader returns is quantized
(``numerics='loihi'``) and runs in the emulator exactly as lava-dl 0.6's
``lava.lib.dl.netx.hdf5.Network`` runs in Lava 0.10 (``fixed_pt``). Lava is never imported.

=================================  ===========================================================
netx layer (``/layer/<i>``)        neurocc nodes (names: ``layer<i>``, ``layer<i>_synapse``)
=================================  ===========================================================
``input`` without ``neuron``       ``Input`` ``input`` of the file's (C, H, W) / (N,) shape
``input`` with CUBA/LOIHI neuron   ``Input`` →(0) ``QLIF`` ``layer<i>`` (bias 0: drive ``a_in``)
``input`` with SDNN neuron         ``Input`` →(0) ``QSigmaDelta`` mode ``delta``
``conv``                           ``QConv2d`` →(1) neuron (weights truncated, untouched)
``pool`` (slayer's sum pool)       depthwise ``QConv2d`` (weight·ones) →(1) neuron
``flatten``                        ``Flatten`` (netx's transpose+flatten is torch's C order)
``average`` (SLAYER read-out)       ``QDense`` of ones →(0) output: the sum of each of k equal
                                   groups of neurons per step (SLAYER's mean times n/k); netx
                                   cannot load it
``dense`` / ``dense_rec``          ``QDense`` (netx's ``optimize_weight_bits`` result:
                                   weights, num_weight_bits, weight_exp) →(1) [``Delay``] →
                                   neuron; ``dense_rec`` adds neuron →(0) ``QDense`` →(1) neuron
CUBA / LOIHI neuron                ``QLIF``: du = iDecay − 1, dv = vDecay, vth = vThMant,
                                   bias_mant = bias, bias_exp = 6
dense without ``neuron``           ``QLI`` (du = −1, dv = 4096) when last (output v), else a
                                   ``QLIF`` with vth = 2**17 (never fires, as netx's default)
SDNN neuron                        ``QSigmaDelta`` (vth, bias · 2**12; ``sigma_output``: mode
                                   ``sigma``); graded synapses after it
=================================  ===========================================================

Per-neuron (axonal) delays ``delay`` of shape (out,) become a ``Delay`` node after the synapse;
(in,) a ``Delay`` before it; values are truncated and clamped to 0..62 as netx does.
``refDelay``, ``theta``, ``tauRho``, ``scaleRho``, ``wgtExp``, ``gradedSpike`` and the input
layer's ``weight``/``bias`` (lava-dl's data-loader ``transform``) do not change what netx runs
and are ignored, as netx ignores them.

Step alignment with Lava (documented in docs/frontends.md): neurocc step k is Lava step k + 1
(a RingBuffer sends column k at Lava step k + 1; a sink stores Lava step t at column t − 1), so
``run``'s output array is index for index the sink array a Lava user records. Latency is in
the graph: every conv/dense synapse adds one step (edge delay 1) and an axonal delay d adds d.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.compiler.frontends.netx_hdf5 import read_layers
from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Delay, Flatten, Input, Node, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense
from neurocc.ir.qnodes_sdn import QSigmaDelta

DT = 1e-3                      # one netx step (simulation/Ts = 1) per millisecond
NEVER_FIRES = 1 << 17          # netx's vThMant for a dense layer without a neuron group
MAX_DELAY = 62                 # netx clamps delays to 0..62
SDNN_EXP = 12                  # spike_exp + state_exp = 6 + 6 (netx's defaults)
STATE_EXP = 6
LIF_TYPES = ("CUBA", "LOIHI")
SUPPORTED = ("input", "dense", "dense_rec", "conv", "pool", "flatten", "average")
REFUSED = {"concat": "netx cannot load it", "convT": "netx cannot load it",
           "unpool": "netx cannot load it", "dense_comp": "complex dense (lava-dl 0.6 cannot load it)"}


@dataclass
class _State:
    """What the walk carries from one layer to the next."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    src: str | None = None
    shape: tuple[int, ...] = ()
    graded: bool = False
    problems: list[str] = field(default_factory=list)
    reset_interval: int = 0
    reset_offset: int = 1          # netx: Lava time starts at 1; one more per block
    reset_schedule: str = "lava"   # lava | chip (numerics.reset.periodic_due)

    def add(self, name: str, node: Node, delay: int = 0) -> str:
        self.nodes[name] = node
        if self.src is not None:
            self.edges.append(Edge(self.src, name, delay))
        self.src = name
        return name


def read_netx(path: str | Path, *, num_layers: int | None = None, skip_layers: int = 0,
              reset_interval: int | None = None, reset_offset: int = 0, variant: str = "lava-0.10",
              reset_schedule: str = "lava") -> Graph:
    """Read a netx file into a verified quantized graph (ModelLoadError listing every problem).

    ``num_layers``, ``skip_layers``, ``reset_interval`` and ``reset_offset`` mean what they mean
    for ``netx.hdf5.Network`` (read only the first layers; drop the first layers so that the
    graph input feeds the next synapse; zero u and v of block j at Lava steps t
    with t mod interval = (reset_offset + 1 + j) mod interval); ``reset_schedule="chip"`` keeps
    each block's first reset there and spaces the later ones interval + 1 steps apart, as the
    Loihi 2 chip that recorded lava-dl's PilotNet-LIF did (docs/frontends.md); ``variant``
    selects the sigma-delta numerics rule (``lava-0.10`` or ``lava-pr875``).
    """
    path = Path(path)
    _check_options(path, reset_interval, reset_offset, variant, reset_schedule)
    layers = read_layers(path, num_layers)
    st = _State(reset_interval=int(reset_interval or 0), reset_offset=int(reset_offset) + 1,
                reset_schedule=reset_schedule)
    for i, lay in enumerate(layers):
        _layer(st, i, lay, last=i == len(layers) - 1, variant=variant)
    if not st.problems and st.src is None:
        st.problems.append("the file has no layers")
    if st.problems:
        raise ModelLoadError(f"cannot import this netx file ({len(st.problems)} problem(s))", where=str(path),
                             problems=st.problems,
                             fix="neurocc reads input, dense, dense_rec, conv, pool and flatten layers with "
                                 "CUBA/LOIHI or SDNN neurons; remove or replace the layers listed (or pass "
                                 "num_layers= to import the layers before them)")
    st.nodes["output"] = Output()
    st.edges.append(Edge(st.src, "output"))
    graph = Graph(st.nodes, tuple(st.edges), dt=DT, numerics="loihi", name=path.stem)
    if skip_layers:
        graph = _skip(graph, path, int(skip_layers))
    return _verified(graph, path)


def _check_options(path: Path, reset_interval: int | None, reset_offset: int, variant: str,
                   reset_schedule: str = "lava") -> None:
    from neurocc.ir.numerics.reset import RESET_SCHEDULES
    from neurocc.ir.numerics.sigma_delta import VARIANTS

    problems = []
    if reset_offset and not reset_interval:
        problems.append(f"reset_offset={reset_offset} without reset_interval: there is no periodic reset to shift")
    if reset_schedule not in RESET_SCHEDULES:
        problems.append(f"reset_schedule={reset_schedule!r} is not one of {', '.join(RESET_SCHEDULES)}")
    elif reset_schedule != "lava" and not reset_interval:
        problems.append(f"reset_schedule={reset_schedule!r} without reset_interval: there is no periodic reset "
                        "to schedule")
    if variant not in VARIANTS:
        problems.append(f"variant={variant!r} is not a sigma-delta numerics rule ({', '.join(VARIANTS)})")
    if problems:
        raise ModelLoadError("the netx reading options do not fit together", where=str(path), problems=problems,
                             fix="pass reset_interval (CLI --reset-interval) with reset_offset or "
                                 "reset_schedule (CLI --reset-schedule lava|chip), and variant "
                                 "lava-0.10 or lava-pr875 (CLI --sigma-delta)")


def _skip(graph: Graph, path: Path, k: int) -> Graph:
    """netx's ``skip_layers``: drop layers 0..k−1; a new ``input`` (the last dropped layer's
    output shape) feeds what that layer fed."""
    last = f"layer{k - 1}"
    if last not in graph.nodes:
        raise ModelLoadError(f"skip_layers={k}: layer {k - 1} is not a block with a neuron", where=str(path),
                             fix="skip whole blocks (e.g. skip_layers=1 drops the input layer)")
    keep, stack = set(), ["output"]
    while stack:  # everything downstream of the skipped layer, walking back from the output
        n = stack.pop()
        if n in keep or n == last:
            continue
        keep.add(n)
        stack.extend(graph.predecessors(n))
    shape = graph.shapes()[last]
    nodes = {"input": Input(shape=shape), **{n: v for n, v in graph.nodes.items() if n in keep and n != "input"}}
    edges = [Edge("input" if e.src == last else e.src, e.dst, e.delay) for e in graph.edges
             if e.dst in keep and (e.src in keep or e.src == last)]
    return graph.replace(nodes=nodes, edges=tuple(edges))


def _verified(graph: Graph, path: Path) -> Graph:
    from neurocc.errors import GraphError
    from neurocc.ir.verify import infer_shapes

    shapes, problems = infer_shapes(graph)
    if problems:
        raise ModelLoadError("the layers' shapes do not fit together", where=str(path), problems=problems,
                             fix="check each layer's 'shape', weight shapes, stride and padding")
    graph = graph.replace(nodes={n: (node.replace(shape=shapes[n]) if isinstance(node, Output) else node)
                                 for n, node in graph.nodes.items()})
    try:
        return graph.verify()
    except GraphError as err:
        raise ModelLoadError(err.what, where=str(path), problems=err.problems,
                             fix="the file's layers do not form a valid network") from None


# ----- one layer -----------------------------------------------------------------------------------
def _layer(st: _State, i: int, lay: dict[str, Any], *, last: bool, variant: str) -> None:
    kind = lay.get("type")
    where = f"layer {i} ({kind})"
    if kind is None:
        st.problems.append(f"layer {i}: missing dataset 'type'")
        return
    if kind in REFUSED:
        st.problems.append(f"{where}: block type '{kind}' is not supported: {REFUSED[kind]}")
        return
    if kind not in SUPPORTED:
        st.problems.append(f"{where}: unknown block type '{kind}' (netx writes {', '.join(SUPPORTED)})")
        return
    need = {"input": ("shape",), "flatten": (), "average": ("shape",), "conv": ("weight", "neuron"), "pool": ("weight", "neuron"),
            "dense": ("weight",), "dense_rec": ("weight", "weight_rec")}[kind]
    missing = [k for k in need if k not in lay]
    if "weight/real" in lay or (isinstance(lay.get("weight"), dict)):
        st.problems.append(f"{where}: attribute 'weight' is complex (real/imag): not supported")
        return
    if missing:
        st.problems.append(f"{where}: missing dataset(s) {', '.join(repr(k) for k in missing)}")
        return
    if kind != "input" and st.src is None:
        st.problems.append(f"{where}: the first layer must be an 'input' layer giving the input shape")
        return
    if kind == "input":
        _input(st, i, lay, variant)
    elif kind == "flatten":
        st.add(f"layer{i}", Flatten(start_dim=0, end_dim=-1))
        st.shape = (int(np.prod(st.shape)),)
    elif kind == "average":
        _average(st, i, lay)
    elif kind in ("conv", "pool"):
        _conv(st, i, lay, variant, pool=kind == "pool")
    else:
        _dense(st, i, lay, last=last, variant=variant)


def _input(st: _State, i: int, lay: dict[str, Any], variant: str) -> None:
    shape = tuple(int(s) for s in np.atleast_1d(lay["shape"]))
    if i != 0 or st.src is not None:
        st.problems.append(f"layer {i} (input): an input layer must be layer 0")
        return
    st.add("input", Input(shape=shape))
    st.shape = shape
    neuron = lay.get("neuron")
    if neuron is None:
        return
    node = _neuron(st, i, "input", neuron, None, shape, variant, last=False, input_layer=True)
    if node is not None:
        st.add(f"layer{i}", node, 0)


def _average(st: _State, i: int, lay: dict[str, Any]) -> None:
    """SLAYER's ``Average`` read-out: the mean of k equal groups of consecutive neurons per step.
    neurocc keeps it integer: a binary ``QDense`` of ones gives the group **sums** (mean · n/k)."""
    n, k = int(np.prod(st.shape)), int(np.prod(np.atleast_1d(lay["shape"])))
    if len(st.shape) != 1 or k < 1 or n % k:
        st.problems.append(f"layer {i} (average): {n} inputs of shape {st.shape} do not split into {k} groups")
        return
    w = np.kron(np.eye(k, dtype=np.int32), np.ones((1, n // k), np.int32))
    st.add(f"layer{i}", QDense(weight=w, graded=st.graded), 0)
    st.shape = (k,)


def _conv(st: _State, i: int, lay: dict[str, Any], variant: str, pool: bool) -> None:
    where = f"layer {i} ({'pool' if pool else 'conv'})"
    if len(st.shape) != 3:
        st.problems.append(f"{where}: needs a (C, H, W) input, got {st.shape}")
        return
    w = np.trunc(np.asarray(lay["weight"], np.float64)).astype(np.int64)
    if w.ndim == 5:
        w = w[..., 0]
    pair = lambda k, d: tuple(int(v) for v in np.broadcast_to(np.atleast_1d(lay.get(k, d)), (2,)))  # noqa: E731
    groups = int(lay.get("groups", 1))
    if pool:
        kern = w.reshape(w.shape[-2:]) if w.size > 1 else np.full(pair("kernelSize", 1), int(w.reshape(-1)[0]))
        c = st.shape[0]
        w, groups = np.broadcast_to(kern, (c, 1, *kern.shape)).copy(), c
        stride = pair("stride", kern.shape[0])
    else:
        stride = pair("stride", 1)
    if w.ndim != 4:
        st.problems.append(f"{where}: attribute 'weight' has shape {w.shape}; expected (out, in/groups, kH, kW)")
        return
    syn = QConv2d(weight=w.astype(np.int32), bias=np.zeros(w.shape[0]), stride=stride, padding=pair("padding", 0),
                  dilation=pair("dilation", 1), groups=groups, input_shape=tuple(st.shape[1:]), graded=st.graded)
    try:
        out = syn.out_shape(st.shape)
    except ValueError as err:
        st.problems.append(f"{where}: {err}")
        return
    file_shape = tuple(int(s) for s in np.atleast_1d(lay.get("shape", out)))
    if file_shape != out:
        st.problems.append(f"{where}: attribute 'shape' {file_shape} differs from the conv output {out}")
        return
    st.add(f"layer{i}_synapse", syn)
    node = _neuron(st, i, "pool" if pool else "conv", lay["neuron"], lay.get("bias"), out, variant, last=False)
    if node is not None:
        st.add(f"layer{i}", node, 1)
        st.shape = out


def _dense(st: _State, i: int, lay: dict[str, Any], *, last: bool, variant: str) -> None:
    from neurocc.backends.loihi.netx_weights import netx_weight_bits

    kind = lay["type"]
    where = f"layer {i} ({kind})"
    n_in = int(np.prod(st.shape))
    w = np.trunc(np.asarray(lay["weight"], np.float64)).astype(np.int64)
    n_out = int(np.prod(np.atleast_1d(lay.get("shape", w.shape[0]))))
    w = w.reshape(n_out, -1) if w.ndim == 1 else w.reshape(w.shape[0], -1)
    if len(st.shape) != 1:
        st.problems.append(f"{where}: input has shape {st.shape}; netx needs a 'flatten' layer before a dense layer")
        return
    if w.shape != (n_out, n_in):
        st.problems.append(f"{where}: attribute 'weight' has shape {w.shape}; expected ({n_out}, {n_in})")
        return
    rec = None
    if kind == "dense_rec":
        rec = np.trunc(np.asarray(lay["weight_rec"], np.float64)).astype(np.int64).reshape(n_out, -1)
    both = w if rec is None else np.hstack([w, rec])
    opt = netx_weight_bits(both)
    shifted, nwb, exp = opt if opt is not None else (np.zeros_like(both), 8, 0)
    syn = QDense(weight=shifted[:, :n_in].astype(np.int32), weight_exp=exp, num_weight_bits=nwb, graded=st.graded)
    delay_in, delay_out = _delays(st, where, lay.get("delay"), n_in, n_out)
    if delay_in is not None:
        st.add(f"layer{i}_delay_in", Delay(delay=delay_in * DT))
    st.add(f"layer{i}_synapse", syn)
    extra = 0
    if delay_out is not None and np.ptp(delay_out) == 0:
        extra = int(delay_out.reshape(-1)[0])
    elif delay_out is not None:
        st.add(f"layer{i}_delay", Delay(delay=delay_out * DT), 1)
    node = _neuron(st, i, kind, lay.get("neuron"), lay.get("bias"), (n_out,), variant, last=last)
    if node is None:
        return
    name = st.add(f"layer{i}", node, 1 + extra if st.src == f"layer{i}_synapse" else 0)
    st.shape = (n_out,)
    if rec is not None:
        st.nodes[f"layer{i}_recurrent"] = QDense(weight=shifted[:, n_in:].astype(np.int32), weight_exp=exp,
                                                 num_weight_bits=nwb, graded=syn.graded)
        st.edges += [Edge(name, f"layer{i}_recurrent", 0), Edge(f"layer{i}_recurrent", name, 1)]


def _delays(st: _State, where: str, delay: Any, n_in: int, n_out: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """netx's rule: (out,) per output row (checked first), (in,) per input column; trunc, clamp."""
    if delay is None:
        return None, None
    d = np.clip(np.trunc(np.asarray(delay, np.float64)), 0, MAX_DELAY)
    if d.ndim == 0:
        return None, np.full(n_out, d)
    if d.ndim == 1 and d.size == n_out:
        return None, d
    if d.ndim == 1 and d.size == n_in:
        return d, None
    st.problems.append(f"{where}: attribute 'delay' of shape {d.shape} (per-synapse delays) is not supported; "
                       f"netx files carry axonal delays of shape ({n_out},)")
    return None, None


def _neuron(st: _State, i: int, kind: str, neuron: dict[str, Any] | None, bias: Any, shape: tuple[int, ...],
            variant: str, *, last: bool, input_layer: bool = False) -> Node | None:
    """The block's neuron node (None after recording a problem); counts the block for resets."""
    node = _neuron_node(st, i, kind, neuron, bias, shape, variant, last=last, input_layer=input_layer)
    if node is not None and st.reset_interval and isinstance(node, (QLIF, QLI)):
        node = node.replace(reset_interval=st.reset_interval, reset_offset=st.reset_offset,
                            reset_schedule=st.reset_schedule)
    st.reset_offset += 1
    return node


def _neuron_node(st: _State, i: int, kind: str, neuron: dict[str, Any] | None, bias: Any,
                 shape: tuple[int, ...], variant: str, *, last: bool, input_layer: bool) -> Node | None:
    where = f"layer {i} ({kind})"
    if neuron is None:  # netx's default: iDecay 0, vDecay 4096, vThMant 1 << 17 (never fires)
        b = _bias(st, where, bias, shape, 1)
        if b is None:
            return None
        z = np.zeros(shape, np.int32)
        if last:
            return QLI(du=z - 1, dv=z + 4096, bias_mant=b, bias_exp=z + 6)
        return QLIF(du=z - 1, dv=z + 4096, vth=z + NEVER_FIRES, bias_mant=b, bias_exp=z + 6)
    ntype = str(neuron.get("type", ""))
    st.graded = int(neuron.get("messageBits", 16 if ntype == "SDNN" else 0)) > 0
    if ntype in LIF_TYPES:
        missing = [k for k in ("iDecay", "vDecay", "vThMant") if k not in neuron]
        if missing:
            st.problems.append(f"{where}: neuron is missing {', '.join(repr(k) for k in missing)}")
            return None
        b = np.zeros(shape, np.int32) if input_layer else _bias(st, where, bias, shape, 1)
        if b is None:
            return None
        z = np.zeros(shape, np.int32)
        return QLIF(du=z + int(neuron["iDecay"]) - 1, dv=z + int(neuron["vDecay"]), vth=z + int(neuron["vThMant"]),
                    bias_mant=b, bias_exp=z + 6)
    if ntype == "SDNN":
        z = np.zeros(shape, np.int64)
        if "sigma_output" in neuron:
            return QSigmaDelta(vth=z, bias=z, mode="sigma", variant=variant)
        if "vThMant" not in neuron:
            st.problems.append(f"{where}: SDNN neuron is missing 'vThMant'")
            return None
        vth = z + (int(neuron["vThMant"]) << SDNN_EXP)
        if input_layer:
            return QSigmaDelta(vth=vth, bias=z, state_exp=STATE_EXP, input_shift=SDNN_EXP, mode="delta",
                               variant=variant)
        b = _bias(st, where, bias, shape, 1 << SDNN_EXP, limit=False)
        return None if b is None else QSigmaDelta(vth=vth, bias=b.astype(np.int64), state_exp=STATE_EXP,
                                                  variant=variant)
    st.problems.append(f"{where}: unknown neuron type {ntype!r} in attribute 'neuron/type' (supported: CUBA, "
                       "LOIHI, SDNN)")
    return None


def _bias(st: _State, where: str, bias: Any, shape: tuple[int, ...], scale: int, limit: bool = True) -> np.ndarray | None:
    """The file's bias (truncated; scalar, per channel or per neuron) broadcast to ``shape``."""
    if bias is None:
        return np.zeros(shape, np.int64)
    b = np.trunc(np.asarray(bias, np.float64)).astype(np.int64)
    if b.size == 1:
        b = np.full(shape, int(b.reshape(-1)[0]))
    elif len(shape) == 3 and b.size == shape[0]:
        b = np.broadcast_to(b.reshape(-1, 1, 1), shape).copy()
    elif b.shape == tuple(shape[::-1]) and len(shape) == 3:   # netx's per-neuron layout is (W, H, C)
        b = b.transpose(2, 1, 0)
    elif b.size == int(np.prod(shape)):
        b = b.reshape(shape)
    else:
        st.problems.append(f"{where}: attribute 'bias' has {b.size} values; expected 1, one per channel or one "
                           f"per neuron of {shape}")
        return None
    if limit and (b.min() < -4096 or b.max() > 4095):
        st.problems.append(f"{where}: attribute 'bias' spans [{b.min()}, {b.max()}], outside Loihi's 13-bit "
                           "bias mantissa [-4096, 4095]")
        return None
    return b * scale


__all__ = ["read_netx"]
