"""Read a netx file's ``/layer/<i>`` blocks, one by one, into neurocc nodes and edges.

:func:`read_layer` checks a layer's type and datasets and dispatches: ``input`` (an ``Input``,
perhaps with an input neuron), ``flatten``, ``average`` (SLAYER's read-out as a ``QDense`` of
ones), ``conv``/``pool`` (``QConv2d``), ``dense``/``dense_rec`` (``QDense`` as netx's
``optimize_weight_bits`` makes it, axonal ``Delay`` nodes, a recurrent ``QDense``). Each block's
neuron is built by :mod:`.netx_nodes`. :class:`ReadState` carries the nodes, edges, current
source and shape from one layer to the next and collects every problem (nothing is raised here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocc.compiler.frontends.netx_nodes import block_neuron
from neurocc.ir.graph import Edge
from neurocc.ir.nodes import Delay, Flatten, Input, Node
from neurocc.ir.qnodes import QConv2d, QDense

DT = 1e-3                      # one netx step (simulation/Ts = 1) per millisecond
MAX_DELAY = 62                 # netx clamps delays to 0..62
SUPPORTED = ("input", "dense", "dense_rec", "conv", "pool", "flatten", "average")
REFUSED = {"concat": "netx cannot load it", "convT": "netx cannot load it",
           "unpool": "netx cannot load it", "dense_comp": "complex dense (lava-dl 0.6 cannot load it)"}


@dataclass
class ReadState:
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


def read_layer(st: ReadState, i: int, lay: dict[str, Any], *, last: bool, variant: str) -> None:
    """Add layer ``i`` to ``st``, or record why it cannot be read."""
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


def _input(st: ReadState, i: int, lay: dict[str, Any], variant: str) -> None:
    shape = tuple(int(s) for s in np.atleast_1d(lay["shape"]))
    if i != 0 or st.src is not None:
        st.problems.append(f"layer {i} (input): an input layer must be layer 0")
        return
    st.add("input", Input(shape=shape))
    st.shape = shape
    neuron = lay.get("neuron")
    if neuron is None:
        return
    node = block_neuron(st, i, "input", neuron, None, shape, variant, last=False, input_layer=True)
    if node is not None:
        st.add(f"layer{i}", node, 0)


def _average(st: ReadState, i: int, lay: dict[str, Any]) -> None:
    """SLAYER's ``Average`` read-out: the mean of k equal groups of consecutive neurons per step.
    neurocc keeps it integer: a binary ``QDense`` of ones gives the group **sums** (mean · n/k)."""
    n, k = int(np.prod(st.shape)), int(np.prod(np.atleast_1d(lay["shape"])))
    if len(st.shape) != 1 or k < 1 or n % k:
        st.problems.append(f"layer {i} (average): {n} inputs of shape {st.shape} do not split into {k} groups")
        return
    w = np.kron(np.eye(k, dtype=np.int32), np.ones((1, n // k), np.int32))
    st.add(f"layer{i}", QDense(weight=w, graded=st.graded), 0)
    st.shape = (k,)


def _conv(st: ReadState, i: int, lay: dict[str, Any], variant: str, pool: bool) -> None:
    where = f"layer {i} ({'pool' if pool else 'conv'})"
    if len(st.shape) != 3:
        st.problems.append(f"{where}: needs a (C, H, W) input, got {st.shape}")
        return
    w = np.trunc(np.asarray(lay["weight"], np.float64)).astype(np.int64)
    if w.ndim == 5:
        w = w[..., 0]
    groups = int(lay.get("groups", 1))
    if pool:
        kern = w.reshape(w.shape[-2:]) if w.size > 1 else np.full(_pair(lay, "kernelSize", 1), int(w.reshape(-1)[0]))
        c = st.shape[0]
        w, groups = np.broadcast_to(kern, (c, 1, *kern.shape)).copy(), c
        stride = _pair(lay, "stride", kern.shape[0])
    else:
        stride = _pair(lay, "stride", 1)
    if w.ndim != 4:
        st.problems.append(f"{where}: attribute 'weight' has shape {w.shape}; expected (out, in/groups, kH, kW)")
        return
    syn = QConv2d(weight=w.astype(np.int32), bias=np.zeros(w.shape[0]), stride=stride, padding=_pair(lay, "padding", 0),
                  dilation=_pair(lay, "dilation", 1), groups=groups, input_shape=tuple(st.shape[1:]), graded=st.graded)
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
    node = block_neuron(st, i, "pool" if pool else "conv", lay["neuron"], lay.get("bias"), out, variant, last=False)
    if node is not None:
        st.add(f"layer{i}", node, 1)
        st.shape = out


def _dense(st: ReadState, i: int, lay: dict[str, Any], *, last: bool, variant: str) -> None:
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
    node = block_neuron(st, i, kind, lay.get("neuron"), lay.get("bias"), (n_out,), variant, last=last)
    if node is None:
        return
    name = st.add(f"layer{i}", node, 1 + extra if st.src == f"layer{i}_synapse" else 0)
    st.shape = (n_out,)
    if rec is not None:
        st.nodes[f"layer{i}_recurrent"] = QDense(weight=shifted[:, n_in:].astype(np.int32), weight_exp=exp,
                                                 num_weight_bits=nwb, graded=syn.graded)
        st.edges += [Edge(name, f"layer{i}_recurrent", 0), Edge(f"layer{i}_recurrent", name, 1)]


def _pair(lay: dict[str, Any], key: str, default: Any) -> tuple[int, int]:
    """A (y, x) attribute of a conv/pool layer: one value for both, or two."""
    return tuple(int(v) for v in np.broadcast_to(np.atleast_1d(lay.get(key, default)), (2,)))


def _delays(st: ReadState, where: str, delay: Any, n_in: int, n_out: int) -> tuple[np.ndarray | None, np.ndarray | None]:
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

