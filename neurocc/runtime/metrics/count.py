"""Counting rules of :mod:`neurocc.runtime.metrics`, on a graph and the per-step node outputs of one run.

Pure functions of (graph, traces): nothing here runs a network. ``traces`` maps ``"<node>/out"``
to that node's outputs ``(steps, batch, *shape)``, as ``simulate(..., record=True)`` returns them.

Synaptic operations (NeuroBench ``SynapticOperations``, per synapse node and step)::

    x_t     = Σ over in-edges e of out[src(e)][t − delay(e)]      (what the synapse reads at step t)
    eff_t   = Σ_j [x_t[j] ≠ 0] · fan[j]        fan[j]   = #{i : W'[i, j] ≠ 0}  (nonzero synapses of j)
    dense_t = Σ_j full[j]                      full[j]  = #{i : i reads j}   (every synapse, all weights)

``W'`` is the weight the chip multiplies with (``Profile.dense_weights``: Loihi drops the LSB of
mixed-sign 8-bit weights, so a ±1 weight can be a zero synapse); for a convolution ``i`` ranges
over output positions and the fan-outs are counted once by convolving unit inputs. Biases are not
synaptic operations (NeuroBench's default). An effective operation is an accumulate (AC) when the
synapse reads binary spikes and a multiply-accumulate (MAC) when it reads graded values: in an
integer graph the synapse's ``graded`` flag decides (it is how the chip executes it); in a float
graph NeuroBench's rule (every input of the step in {−1, 0, 1} → AC). Pooling, Flatten and Add
nodes are not synaptic operations (NeuroBench counts Linear and Conv layers only).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from neurocc.ir.graph import Graph

SYNAPSE_KINDS = frozenset({"QDense", "QSpiNNakerDense", "QConv2d", "Affine", "Linear", "Conv1d", "Conv2d"})
# nodes whose outputs are events sent to synapses: spiking nodes (``node.spiking``: LIF, IF,
# CubaLIF, Threshold, QLIF, a spiking QSpiNNakerLIF) and graded ones; readouts (LI, CubaLI, QLI, a
# sigma read-out, a non-spiking QSpiNNakerLIF) output a membrane value and send nothing
GRADED_KINDS = frozenset({"QSigmaDelta", "ReLU"})
NEURON_KINDS = frozenset({"QLIF", "QLI", "QSigmaDelta", "QSpiNNakerLIF", "LIF", "IF", "LI", "CubaLIF", "CubaLI",
                          "I"})
WORD_BITS = 32           # SpiNNaker's s16.15 / u0.32 words; any other integer register neurocc does not size
FLOAT_BITS = 32          # a float graph's parameters as torch stores them (float32), as NeuroBench counts
BASIS_BLOCK = 1024       # unit inputs convolved at once when counting a convolution's fan-outs


@dataclass(frozen=True)
class Synapse:
    """One synapse node's static counts: ``fan``/``full`` per input element (see the module
    docstring), weights (kernel elements for a convolution), zero weights, bits per weight."""

    name: str
    kind: str
    fan: np.ndarray
    full: np.ndarray
    weights: int
    zero_weights: int
    weight_bits: int
    graded: bool | None    # integer graph: the synapse's mode; None: decide from the values (float)


def deployed_weight(graph: Graph, name: str) -> np.ndarray:
    """The weights the network multiplies with: the profile's preprocessed dense weights of an
    integer graph, the stored weights otherwise."""
    node = graph.nodes[name]
    if node.kind == "QDense":
        from neurocc.ir.numerics import get_profile

        return get_profile(graph.numerics).dense_weights(node.weight, node.num_weight_bits)
    return np.asarray(node.weight)


def _conv_fans(node, in_shape: tuple[int, ...], nonzero: np.ndarray) -> np.ndarray:
    """Per input element, how many (output position, weight) pairs read it, for weights ``nonzero``."""
    from neurocc.backends.emulator.convpool import conv

    n_in = int(np.prod(in_shape))
    out = np.empty(n_in, np.int64)
    for j0 in range(0, n_in, BASIS_BLOCK):
        j1 = min(n_in, j0 + BASIS_BLOCK)
        basis = np.zeros((j1 - j0, n_in))
        basis[np.arange(j1 - j0), np.arange(j0, j1)] = 1.0
        y = conv(basis.reshape(j1 - j0, *in_shape), nonzero.astype(np.float64), node.stride, node.padding,
                 node.dilation, node.groups, integer=False)
        out[j0:j1] = np.rint(y.reshape(j1 - j0, -1).sum(1)).astype(np.int64)
    return out


def synapse(graph: Graph, name: str, shapes: Mapping[str, tuple[int, ...]]) -> Synapse:
    """Static counts of synapse node ``name`` (QDense, QConv2d, Affine, Linear, Conv1d/2d)."""
    node = graph.nodes[name]
    w = deployed_weight(graph, name)
    nz = w != 0
    if node.kind in ("QDense", "QSpiNNakerDense", "Affine", "Linear"):
        fan, full = nz.sum(0).astype(np.int64), np.full(w.shape[1], w.shape[0], np.int64)
    else:
        in_shape = tuple(shapes[graph.predecessors(name)[0]])
        fan, full = _conv_fans(node, in_shape, nz), _conv_fans(node, in_shape, np.ones_like(nz))
    if graph.numerics is None:
        bits, graded = FLOAT_BITS, None
    elif hasattr(node, "num_weight_bits"):     # QDense, QSpiNNakerDense (16-bit magnitudes)
        bits, graded = int(node.num_weight_bits), bool(node.graded)
    else:
        from neurocc.ir.numerics import get_profile

        bits, graded = int(get_profile(graph.numerics).weight.bits), bool(node.graded)
    return Synapse(name, node.kind, fan, full, int(w.size), int(w.size - nz.sum()), bits, graded)


def synapse_input(graph: Graph, traces: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """What synapse ``name`` reads at every step: Σ over in-edges of the source's output delayed
    by the edge's delay (zero before the run starts), flattened to ``(steps, batch, n_in)``."""
    acc = None
    for e in graph.in_edges(name):
        src = traces[f"{e.src}/out"]
        part = np.zeros_like(src)
        if e.delay < src.shape[0]:
            part[e.delay:] = src[:src.shape[0] - e.delay]
        acc = part if acc is None else acc + part
    if acc is None:
        from neurocc.errors import GraphError

        raise GraphError(f"synapse node '{name}' has no input edge", where=f"graph '{graph.name}'",
                         fix="connect the synapse to its source (the graph does not verify)")
    return acc.reshape(acc.shape[0], acc.shape[1], -1)


def ops(syn: Synapse, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step totals over the batch of synapse ``syn`` reading ``x`` (steps, batch, n_in):
    ``effective``, ``dense``, ``silent`` (skipped: the input was zero), ``zero_weight`` (skipped:
    the input was non-zero but the synapse's weight is zero), and ``mac`` (bool per step: the
    effective operations were multiply-accumulates)."""
    active = x != 0
    nact = active.sum(1)                                     # (steps, n_in): samples with input j active
    eff = nact @ syn.fan
    steps, batch = x.shape[:2]
    dense = np.full(steps, batch * int(syn.full.sum()), np.int64)
    silent = (batch - nact) @ syn.full
    if syn.graded is None:     # NeuroBench: a step whose inputs are all in {-1, 0, 1} is spiking
        mac = ~np.all((x == 0) | (x == 1) | (x == -1), axis=(1, 2))
    else:
        mac = np.full(steps, syn.graded)
    return {"effective": eff, "dense": dense, "silent": silent, "zero_weight": dense - silent - eff, "mac": mac}


def activation_layers(graph: Graph) -> list[str]:
    """Nodes whose outputs are events (spikes or graded messages), in step order."""
    out = []
    for n in graph.order():
        node = graph.nodes[n]
        if getattr(node, "spiking", False) or (node.kind in GRADED_KINDS and getattr(node, "mode", "") != "sigma"):
            out.append(n)
    return out


def is_graded(graph: Graph, name: str) -> bool:
    return graph.nodes[name].kind in GRADED_KINDS


STATE_BITS_SDN = 32      # Lava's sigma-delta registers are int32 (neurocc.ir.numerics.sigma_delta)
QLIF_PARAM_BITS = {"vth": 17, "bias_mant": 13, "bias_exp": 3, "du": 12, "dv": 12}   # qnodes.QLIF fields


def neuron_bits(graph: Graph, name: str) -> tuple[int, int]:
    """(state bits, parameter bits) of neuron node ``name`` at its deployed widths: QLIF/QLI: u and
    v at the profile's current/voltage widths, per-neuron parameters at their field widths;
    QSigmaDelta: int32 registers (sigma, act, residue as the mode has them), vth and bias int32;
    QSpiNNakerLIF: 32-bit words per state variable and parameter element; float neurons: float32
    per state variable and per-neuron parameter array."""
    node = graph.nodes[name]
    n = int(np.prod(graph.shapes()[name]))
    if graph.numerics is None:
        params = sum(int(np.size(a)) for a in node.arrays().values())
        return n * len(node.state_vars) * FLOAT_BITS, params * FLOAT_BITS
    if node.kind == "QSigmaDelta":
        from neurocc.ir.numerics.sigma_delta import STATE_VARS

        regs = len(STATE_VARS[node.mode]) + (1 if node.cum_error else 0)
        return n * regs * STATE_BITS_SDN, (int(np.size(node.vth)) + int(np.size(node.bias))) * STATE_BITS_SDN
    if node.kind not in ("QLIF", "QLI"):
        params = sum(int(np.size(a)) for a in node.arrays().values())
        return n * len(node.state_vars) * WORD_BITS, params * WORD_BITS
    from neurocc.ir.numerics import get_profile

    p = get_profile(graph.numerics)
    params = sum(int(np.size(a)) * QLIF_PARAM_BITS.get(k, 32) for k, a in node.arrays().items())
    return n * (p.current.bits + p.voltage.bits), params


def bias_bits(graph: Graph, name: str) -> int:
    """Bits of a float synapse's bias (Affine/Conv bias: float32 per element); 0 for integer synapses,
    whose bias lives in the neuron (counted with its parameters)."""
    node = graph.nodes[name]
    b = getattr(node, "bias", None)
    return 0 if graph.numerics is not None or b is None else int(np.size(b)) * FLOAT_BITS
