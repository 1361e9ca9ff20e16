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

The parts: :mod:`.netx_blocks` reads the layers one by one, :mod:`.netx_nodes` builds each
block's neuron node, :mod:`.netx_options` checks the reading options and applies
``skip_layers``; the file itself is read by :mod:`.netx_hdf5`.
"""
from __future__ import annotations

from pathlib import Path

from neurocc.compiler.frontends.netx_blocks import (  # noqa: F401  (re-exported)
    DT,
    MAX_DELAY,
    REFUSED,
    SUPPORTED,
    ReadState,
    read_layer,
)
from neurocc.compiler.frontends.netx_hdf5 import read_layers
from neurocc.compiler.frontends.netx_nodes import (  # noqa: F401  (re-exported)
    LIF_TYPES,
    NEVER_FIRES,
    SDNN_EXP,
    STATE_EXP,
)
from neurocc.compiler.frontends.netx_options import check_options, drop_layers
from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Output


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
    check_options(path, reset_interval, reset_offset, variant, reset_schedule)
    layers = read_layers(path, num_layers)
    st = ReadState(reset_interval=int(reset_interval or 0), reset_offset=int(reset_offset) + 1,
                   reset_schedule=reset_schedule)
    for i, lay in enumerate(layers):
        read_layer(st, i, lay, last=i == len(layers) - 1, variant=variant)
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
        graph = drop_layers(graph, path, int(skip_layers))
    return _verified(graph, path)


def _verified(graph: Graph, path: Path) -> Graph:
    """Shapes inferred (Outputs take theirs) and the graph verified, as ModelLoadErrors."""
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


__all__ = ["read_netx"]
