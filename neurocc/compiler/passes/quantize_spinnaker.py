"""Quantize for the ``spinnaker`` numerics: the float graph → the integer network sPyNNaker runs.

The float graph is first lowered to the PyNN description the backend emits
(:func:`neurocc.backends.spinnaker.lower.lower`); this pass then applies exactly what
sPyNNaker 7.4.1 does to that description, so the emulator executes the emitted script:

* host: parameters → s16.15 (round half even); per population and receptor the ring-buffer
  shift ``s = ring_buffer_shift(max_expected_summed_weight)`` (the description sets that value:
  the largest Σ|w| of any neuron, so a ring-buffer entry can never saturate) and the weights
  ``w_int = rint(|w| · 2^(15 − s))`` (uint16, sign = receptor);
* chip, at load: R_m, exp_TC, T_refract, decay and init (:mod:`neurocc.ir.numerics.spinnaker`).

Graph: Inputs stay; each population becomes a :class:`~neurocc.ir.qnodes_spinnaker.QSpiNNakerLIF`
of the same name; each (source, target, IR delay) pair one
:class:`~neurocc.ir.qnodes_spinnaker.QSpiNNakerDense` named ``<target>.from.<source>`` whose
edge into the target carries the projection's delay (its ``lag`` makes the graph's latency
SpiNNaker's: one tick per projection). Output chains (Output, Flatten) are copied.
:func:`apply_readback` replaces weights and shifts by those sPyNNaker itself computed.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurocc.errors import CompileError, NeuroccError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Flatten
from neurocc.ir.numerics import spinnaker as S
from neurocc.ir.qnodes_spinnaker import QSpiNNakerDense, QSpiNNakerLIF
from neurocc.targets import Target


def layer_caps(graph: Graph, target: Target | None) -> dict[str, int]:
    """Neurons per core per layer from neurocc's partition for ``target`` (its neurons_per_core
    when the partition cannot be made)."""
    if target is None:
        return {}
    try:
        from neurocc.compiler.passes.partition import partition

        part = partition(graph, target)
        return {n: int(lp.max_neurons_per_core) for n, lp in part.layers.items()}
    except Exception:  # noqa: BLE001 - a partition failure must not stop quantization
        return {n: int(target.limits.neurons_per_core or 256) for n in graph.nodes}


def quantize_spinnaker(graph: Graph, target: Target | None, *, stats: Mapping[str, Any] | None = None
                       ) -> tuple[Graph, dict[str, Any]]:
    """(integer ``spinnaker`` graph, report) for the discretised float ``graph``."""
    from neurocc.backends.spinnaker.lower import lower

    if graph.dt is None:
        raise CompileError(f"graph '{graph.name}' has no dt", where="quantize", fix="run the discretize pass first")
    try:
        net = lower(graph, max_atoms=layer_caps(graph, target))
    except NeuroccError as err:
        raise CompileError(f"graph '{graph.name}' cannot be mapped to SpiNNaker: {err.what}", where=err.where,
                           problems=err.problems, fix=err.fix or "see each problem") from err
    return from_network(net, graph)


def shifts_of(net) -> dict[str, tuple[int, int]]:
    return {p.name: (S.ring_buffer_shift(p.max_summed_weight[0]), S.ring_buffer_shift(p.max_summed_weight[1]))
            for p in net.populations if p.kind != "source"}


def from_network(net, graph: Graph, shifts: Mapping[str, tuple[int, int]] | None = None,
                 weights: Mapping[str, np.ndarray] | None = None) -> tuple[Graph, dict[str, Any]]:
    """The integer graph of description ``net`` (``graph`` is its float source, for Inputs and the
    output chains). ``shifts``/``weights`` (per population / projection name, in w_int) override
    the computed ones, e.g. with sPyNNaker's own read back from the virtual board."""
    shifts = dict(shifts or shifts_of(net))
    nodes: dict[str, Any] = {n: graph.nodes[n] for n in graph.inputs}
    edges: list[Edge] = []
    report: dict[str, Any] = {"profile": "spinnaker", "layers": {}, "outputs": {}, "input_scales": {},
                              "registers": _registers(), "notes": list(net.notes)}
    for pop in net.populations:
        if pop.kind == "source":
            continue
        nodes[pop.name] = neuron_node(pop, net.dt_ms, shifts[pop.name])
        report["layers"][pop.name] = {"kind": graph.nodes[pop.name].kind, "v_scale_mV": pop.v_scale, "lag": pop.lag,
                                      "max_summed_weight_nA": list(pop.max_summed_weight),
                                      "ring_buffer_shift": list(shifts[pop.name]),
                                      "weight_lsb_nA": [2.0 ** (s - 15) for s in shifts[pop.name]],
                                      "max_atoms_per_core": pop.max_atoms_per_core, "synapses": {}}
    for (pre, post, d), projs in _pairs(net).items():
        name = f"{post}.from.{pre}" + (f"@{d}" if d else "")
        w = np.zeros((net.population(post).size, net.population(pre).size), np.int64)
        for j in projs:
            k = 0 if j.receptor == "excitatory" else 1
            q = (np.asarray(weights[j.name], np.int64) if weights and j.name in weights
                 else S.encode_weights(j.weight, shifts[post][k]))
            w[j.post_idx, j.pre_idx] += q if k == 0 else -q
            report["layers"][post]["synapses"][j.name] = {"n": j.n_synapses, "zero": int(np.count_nonzero(q == 0)),
                                                          "w_int_max": int(q.max(initial=0))}
        src = pre
        if len(net.population(pre).shape) > 1:  # the mapper reads a dense input as a flat vector
            src = f"{name}.flat"
            nodes[src] = Flatten(start_dim=0, end_dim=-1)
            edges.append(Edge(pre, src, 0))
        nodes[name] = QSpiNNakerDense(weight=w.astype(np.int32), in_shape=(net.population(pre).size,),
                                      post_shape=net.population(post).shape)
        edges += [Edge(src, name, 0), Edge(name, post, projs[0].delay)]
    _copy_outputs(graph, nodes, edges, report, net)
    out = Graph(nodes, tuple(edges), dt=graph.dt, method=graph.method, numerics="spinnaker", name=graph.name)
    return out, report


def neuron_node(pop, dt_ms: float, shift: tuple[int, int]) -> QSpiNNakerLIF:
    """The chip's integer constants of one population (host encoding + on-chip initialisation)."""
    p = {**pop.params, **pop.spinnaker}
    shape = pop.shape
    enc = lambda k: S.encode_s1615(p[k]).reshape(shape)
    r_m, exp_tc, t_ref = S.per_neuron(lambda a, b, c: S.lif_constants(a, b, c, dt_ms), p["tau_m"], p["cm"],
                                      p["tau_refrac"])
    de, ie = S.per_neuron(lambda t: S.synapse_constants(t, dt_ms), p["tau_syn_E"])
    di, ii = S.per_neuron(lambda t: S.synapse_constants(t, dt_ms), p["tau_syn_I"])
    rs = lambda a: np.asarray(a, np.int64).reshape(shape)
    return QSpiNNakerLIF(v_rest=enc("v_rest"), v_reset=enc("v_reset"), v_thresh=enc("v_thresh"),
                         i_offset=enc("i_offset"), r_m=rs(r_m), exp_tc=rs(exp_tc), t_refract=rs(t_ref),
                         decay_exc=rs(de), decay_inh=rs(di), init_exc=rs(ie), init_inh=rs(ii),
                         shift_exc=int(shift[0]), shift_inh=int(shift[1]), is_spiking=pop.spiking,
                         atoms_per_core=int(pop.max_atoms_per_core), start_tick=int(pop.lag))


def _pairs(net) -> dict[tuple[str, str, int], list]:
    out: dict[tuple[str, str, int], list] = {}
    for j in net.projections:
        out.setdefault((j.pre, j.post, j.ir_delay), []).append(j)
    return out


def _copy_outputs(graph: Graph, nodes: dict, edges: list, report: dict, net) -> None:
    for o in graph.outputs:
        chain, src = [o], graph.predecessors(o)[0]
        while isinstance(graph.nodes[src], Flatten):
            chain.append(src)
            src = graph.predecessors(src)[0]
        chain.append(src)
        for a, b in zip(chain[::-1], chain[::-1][1:]):
            nodes.setdefault(b, graph.nodes[b])
            edges.append(Edge(a, b, next(e.delay for e in graph.in_edges(b) if e.src == a)))
        pop = net.population(src)
        report["outputs"][o] = ({"values": "spikes"} if pop.spiking or pop.kind == "source" else
                                {"values": "state", "source": src, "float_per_lsb": 1.0 / (pop.v_scale * S.ONE)})


def _registers() -> dict[str, Any]:
    return {"v": {"format": "s16.15", "bits": 32, "overflow": "wrap"}, "isyn": {"format": "s16.15", "bits": 32},
            "decay": {"format": "u0.32"}, "init": {"format": "u0.32"},
            "weight": {"bits": 16, "signed": False, "rounding": "nearest_even"},
            "ring_buffer": {"bits": 16, "overflow": "saturate"}}


def apply_readback(graph: Graph, net, readback: Mapping[str, Any]) -> Graph:
    """The integer graph rebuilt with sPyNNaker's own ring-buffer shifts and weights
    (``readback`` from :func:`neurocc.backends.spinnaker.virtual_board.map_network`)."""
    shifts = {k: tuple(v) for k, v in readback["shifts"].items()}
    return from_network(net, graph, shifts, readback.get("w_int"))[0]
