"""The ``spinnaker`` backend: the graph as a PyNN network (``IF_curr_exp``) for SpiNNaker 1.

* :mod:`.lower` — pure lowering of the float graph to a plain description (:mod:`.network`);
* :mod:`.pynn_run` — runs it on ``pyNN.nest`` (default) or ``pyNN.brian2`` in a subprocess;
* :mod:`.script` — the standalone ``pyNN.spiNNaker`` script + sidecar written into artifacts;
* :mod:`.plastic_net` — a ``loihi`` graph with pair-STDP synapses (``compile`` keeps its
  integers for spinnaker): ``IF_curr_delta`` populations and ``STDPMechanism`` projections;
* :mod:`.virtual_board` — sPyNNaker's mapping on a virtual board (placements, read-back of the
  quantized weights and ring-buffer shifts).

No SpiNNaker board is reachable here: ``run`` executes the emitted network on a float PyNN
simulator, and results come back on the SpiNNaker timeline (one tick per projection, as the
``spinnaker`` integer graph has it), so ``validate`` compares them with the float reference after
the known latency. Backend contract: :func:`check`, :func:`run`, and the compile hook
:func:`emit_files`. PyNN, NEST, brian2 and sPyNNaker are imported only in worker processes.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import BackendError, InputError
from neurocc.ir.graph import Graph

from .lower import lower, problems
from .network import Network, load_network
from .pynn_run import available, run_network
from .script import SUBDIR, emit_script

__all__ = ["check", "emit_files", "load_description", "lower", "run", "run_network"]

SIM_ENV = "NEUROCC_SPINNAKER_SIMULATOR"   # nest (default) or brian2, for `neurocc run/validate`


def check(graph: Graph, target: Any = None) -> list[str]:
    """Every reason this backend cannot run ``graph`` (float or ``spinnaker`` integer), all at once."""
    from .plastic_net import is_plastic
    from .plastic_net import problems as plastic_problems

    if is_plastic(graph):   # learns on chip: the STDPMechanism network lowered from the loihi integers
        return plastic_problems(graph)
    found = []
    numerics = getattr(target, "numerics", None)
    if target is not None and numerics != "spinnaker":
        found.append(f"target '{getattr(target, 'name', target)}' uses numerics {numerics!r}; the spinnaker "
                     "backend runs 'spinnaker' artifacts")
    if graph.numerics is None:
        return found + problems(graph)
    if graph.numerics != "spinnaker":
        found.append(f"graph '{graph.name}' is quantized for '{graph.numerics}', not 'spinnaker'")
    return found


def load_description(artifact: Any, caps: Mapping[str, int] | None = None) -> Network:
    """The PyNN description of an artifact (its emitted ``pynn/`` files when present, else a fresh
    lowering of its float graph), or of a float Graph."""
    if isinstance(artifact, Graph):
        if artifact.numerics is not None:
            raise BackendError(f"graph '{artifact.name}' is quantized; the PyNN run needs the float graph",
                               where="spinnaker run", fix="pass the artifact directory or its float graph")
        return lower(artifact, max_atoms=caps)
    if isinstance(artifact, (str, Path)):
        from neurocc.ir.artifact import load_artifact

        artifact = load_artifact(Path(artifact))
    path = getattr(artifact, "path", None)
    if path is not None and (Path(path) / SUBDIR / "network.json").is_file():
        return load_network(Path(path) / SUBDIR)
    fg = getattr(artifact, "float_graph", None)
    if not isinstance(fg, Graph):
        raise BackendError(f"cannot run {artifact!r} on PyNN: no float graph", where="spinnaker run",
                           fix="pass the directory written by `neurocc compile --target spinnaker`")
    return lower(fg, max_atoms=caps)


def run(artifact: Any, inputs: Mapping[str, np.ndarray], steps: int | None = None, record: bool = False,
        simulator: str | None = None, timeline: str = "spinnaker") -> dict[str, np.ndarray]:
    """Run on ``pyNN.nest`` (default; ``$NEUROCC_SPINNAKER_SIMULATOR``) or ``pyNN.brian2``.

    Returns one array per graph output, and with ``record`` ``<layer>/out`` (spikes, or the
    membrane in IR units for non-spiking readouts) and ``<layer>/v`` for readouts; time-major
    ``(steps, batch, *shape)``. ``timeline="spinnaker"`` keeps SpiNNaker's latency (what the
    ``spinnaker`` integer graph computes); ``"reference"`` removes each layer's lag (the tail
    steps it cannot see are zero)."""
    sim = simulator or os.environ.get(SIM_ENV, "nest")
    why = available(sim)
    if why:
        raise BackendError(f"pyNN.{sim} is not available: {why}", where="spinnaker run",
                           fix="install the requirements (pyNN, nest-simulator, brian2)")
    plastic = _plastic_graph(artifact)
    if plastic is not None:
        from .plastic_net import run_graph

        return run_graph(plastic, inputs, steps, record, sim)
    net = load_description(artifact)
    x = _spike_inputs(net, inputs)
    got = run_network(net, x, sim, steps)
    return _results(net, got, record, timeline)


def _plastic_graph(artifact: Any) -> Graph | None:
    """The artifact's graph when it learns on chip (:mod:`.plastic_net`), else None."""
    from .plastic_net import is_plastic

    if isinstance(artifact, (str, Path)):
        from neurocc.ir.artifact import load_artifact

        artifact = load_artifact(Path(artifact))
    graph = artifact if isinstance(artifact, Graph) else getattr(artifact, "graph", None)
    return graph if isinstance(graph, Graph) and is_plastic(graph) else None


def _spike_inputs(net: Network, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for p in net.populations:
        if p.kind != "source":
            continue
        if p.name not in inputs:
            raise InputError(f"missing input '{p.name}'", where="spinnaker run",
                             fix=f"give an array (steps, batch, {', '.join(map(str, p.shape))})")
        a = np.asarray(inputs[p.name])
        if not np.all((a == 0) | (a == 1)):
            raise InputError(f"input '{p.name}' is not 0/1 spikes: a SpikeSourceArray carries spikes only",
                             where="spinnaker run", fix="encode graded inputs as spikes (Poisson encoding)")
        out[p.name] = a.astype(np.uint8)
    return out


def _results(net: Network, got: dict[str, np.ndarray], record: bool, timeline: str) -> dict[str, np.ndarray]:
    lags = {p.name: p.lag for p in net.populations}

    def shift(a: np.ndarray, lag: int) -> np.ndarray:
        if timeline != "reference" or lag == 0:
            return a
        out = np.zeros_like(a)
        out[:len(a) - lag] = a[lag:]
        return out

    res = {}
    for o, spec in net.outputs.items():
        key = f"{spec['population']}/{'spikes' if spec['values'] == 'spikes' else 'v'}"
        if o in got:
            res[o] = shift(np.asarray(got[o], np.float64), lags[spec["population"]])
        elif key in got:
            res[o] = shift(np.asarray(got[key], np.float64), lags[spec["population"]])
    if record:
        for p in net.populations:
            if p.kind == "source":
                continue
            key = f"{p.name}/spikes" if p.spiking else f"{p.name}/v"
            res[f"{p.name}/out"] = shift(np.asarray(got[key], np.float64), p.lag)
            if not p.spiking:
                res[f"{p.name}/v"] = res[f"{p.name}/out"]
    return res


def emit_files(directory: Path, graph: Graph, float_graph: Graph, target: Any) -> None:
    """Compile hook: the standalone PyNN script and its sidecar in ``directory/pynn`` (neurons per
    core as the quantized graph's populations record them); for a graph that learns on chip, the
    plastic network's description (:func:`.plastic_net.emit`)."""
    from .plastic_net import emit, is_plastic

    if is_plastic(graph):
        emit(directory, graph, getattr(target, "name", "spinnaker"))
        return
    caps = {n: int(node.atoms_per_core) for n, node in graph.nodes.items() if node.kind == "QSpiNNakerLIF"}
    net = lower(float_graph, max_atoms=caps)
    emit_script(net, directory, getattr(target, "name", "spinnaker"))
