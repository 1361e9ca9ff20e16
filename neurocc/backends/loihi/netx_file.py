"""Write a :class:`.netx.NetxPlan` as a lava-dl netx HDF5 file (h5py only), and the ``loihi.json``
sidecar that says what was written and what netx cannot express.

File layout (research note lava-loihi.md §5.2; what ``lava.lib.dl.netx.hdf5.Network`` reads)::

    /layer/<i>/type        S10, shape (1,): input | dense | dense_rec | conv | flatten
    /layer/<i>/shape       int, PyTorch order: (N,) dense, (C, H, W) conv and 3-D input
    /layer/<i>/weight      float32 holding integers: dense (out, in), conv (out, in/groups, kH, kW)
    /layer/<i>/weight_rec  float32 (out, out), dense_rec only
    /layer/<i>/bias        float32 integers: bias_mant of the neuron with bias_exp 6 (SDNN: bias / 2**12); (out,) dense,
                           (C,) per channel or (W, H, C) per neuron for conv
    /layer/<i>/delay       dense only: (out,) extra steps per output row (DelayDense, 0..62)
    /layer/<i>/stride, padding, dilation   (y, x); groups: int         conv only
    /layer/<i>/neuron/     type 'CUBA', iDecay (= du + 1), vDecay (= dv), vThMant, refDelay, gradedSpike
                           or type 'SDNN' with vThMant (= vth / 2**12) and activation 'relu', or
                           sigma_output (1) for a Sigma read-out (:mod:`.netx_sdnn`)
    /simulation/Ts, tSample                 informational (netx ignores them)

Scalars are written 0-d (netx's ``int(dataset)`` on shape-(1,) arrays fails under numpy 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import atomic_path, write_bytes_atomic
from neurocc.ir.graph import Graph

from .netx import NetxPlan, layer_table

NET_FILE = "network.net"
SIDECAR = "loihi.json"
SIDECAR_FORMAT = "neurocc-loihi/1"
TIMING = ("netx delivers each Dense/Conv output one Lava step later, which is the delay=1 of every "
          "synapse -> neuron edge of a loihi graph; the input drives the first synapse's s_in (or the "
          "input neuron's a_in) from a RingBuffer, so Lava step k of the netx run is neurocc step k-1 "
          "and the results need no re-alignment")


def write_net(plan: NetxPlan, path: Path, steps: int | None = None, *, force: bool = False) -> Path:
    """Write ``plan`` (which must be expressible unless ``force``) to ``path`` atomically."""
    import h5py

    if not plan.expressible and not force:
        raise ValueError(f"netx cannot express graph '{plan.name}': {plan.problems[0]}")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        sim = f.create_group("simulation")
        sim.create_dataset("Ts", data=1.0)
        sim.create_dataset("tSample", data=int(steps or 0))
        group = f.create_group("layer")
        for lay in plan.layers:
            _write_layer(group.create_group(str(lay.index)), lay)
    return path


def _write_layer(g: Any, lay: Any) -> None:
    g.create_dataset("type", data=np.array([lay.type.encode()], dtype="S10"))
    g.create_dataset("shape", data=np.asarray(lay.shape, np.int64))
    for key, value in lay.data.items():
        if key in ("weight", "weight_rec", "bias"):
            g.create_dataset(key, data=np.asarray(value, np.float32))
        elif key == "groups":
            g.create_dataset(key, data=int(value))
        else:
            g.create_dataset(key, data=np.asarray(value, np.int64))
    if lay.neuron is not None:
        n = g.create_group("neuron")
        for key, value in lay.neuron.items():
            n.create_dataset(key, data=value.encode() if isinstance(value, str) else int(value))


def sidecar(graph: Graph, plan: NetxPlan, written: bool, lava_problems: list[str],
            placement: dict[str, Any] | None) -> dict[str, Any]:
    """The ``loihi.json`` document (see docs/backends/loihi.md)."""
    exact_nodes = {n for lay in plan.layers for n in lay.nodes}
    bad = {p.split("'")[1] for p in plan.problems if p.startswith("node '")}
    return {
        "format": SIDECAR_FORMAT,
        "graph": graph.name,
        "graph_digest": graph.digest(),
        "netx": {
            "file": NET_FILE if written else None,
            "expressible": plan.expressible,
            "not_expressible": list(plan.problems),
            "nodes": {n: ("not expressible" if n in bad else "written" if n in exact_nodes and written
                          else "expressible" if n in exact_nodes else "not on the chain")
                      for n, node in graph.nodes.items() if node.kind != "Output"},
            "layers": layer_table(plan),
            "input": {"node": plan.feeds[0].input if plan.feeds else None,
                      "port": ("Network.layers[0].neuron.a_in" if plan.feed_port == "neuron"
                               else "Network.layers[0].synapse.s_in (Network.inp)"),
                      "shape": list(plan.feeds[0].shape) if plan.feeds else None,
                      "input_message_bits": plan.input_message_bits},
            "load": ("lava.lib.dl.netx.hdf5.Network(net_config='network.net', "
                     f"input_message_bits={plan.input_message_bits}); run with "
                     "Loihi2SimCfg(select_tag='fixed_pt', select_sub_proc_model=True) on the CPU"),
            "timing": TIMING,
        },
        "lava": {"problems": lava_problems,
                 "processes": ("the CPU simulation runs one Lava process per synapse and neuron "
                               "population (plus RingBuffer sources and sinks); the placement below "
                               "is the hardware grouping (per chip, core-ordered layer slices)")},
        "placement": placement,
    }


def write_json(path: Path, doc: Any) -> Path:
    """Atomic JSON write."""
    return write_bytes_atomic(path, (json.dumps(doc, indent=1, sort_keys=True, default=_plain) + "\n").encode())


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
