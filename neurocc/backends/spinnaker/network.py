"""The plain description of a PyNN network that :mod:`.lower` produces and every runner reads.

Files (written by :func:`save_network`, read by :func:`load_network` and by the standalone
``pynn_template.py`` without neurocc)::

    network.json   {"format": "neurocc-pynn", "version": 1, "name", "dt_ms", "t0",
                    "populations": [{"name", "shape", "kind", "spiking", "record", "v_scale", "lag",
                                     "max_summed_weight": [exc, inh], "max_atoms_per_core"}],
                    "projections": [{"name", "pre", "post", "receptor", "delay", "ir_delay"}],
                    "outputs": {output node: {"population", "values"}}, "notes": [...]}
    network.npz    pop/<name>/<param>        per-neuron PyNN parameters (ms, mV, nF, nA)
                   spinnaker/<name>/<param>  overrides for pyNN.spiNNaker (tau_m, cm, v_rest)
                   float/<name>/psc_scale    per post neuron: nest/brian2 multiply incoming weights
                                             by it (their exact integration vs SpiNNaker's step)
                   proj/<name>/pre|post|weight   connection lists (weights in nA, PyNN signs:
                                             negative on the inhibitory receptor)

Times: input step ``t`` is a spike at ``(t + t0) · dt_ms``; a population's spikes at tick ``τ``
are step ``τ − t0`` of the SpiNNaker timeline, which trails the float reference by ``lag``
steps (one per projection hop; the quantized graph carries the same delays on its edges).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "neurocc-pynn"
JSON_FILE = "network.json"
NPZ_FILE = "network.npz"
PARAMS = ("cm", "tau_m", "v_rest", "v_reset", "v_thresh", "tau_syn_E", "tau_syn_I", "tau_refrac", "i_offset")


@dataclass(frozen=True, eq=False)
class Population:
    """One IR layer: ``kind`` ``source`` (SpikeSourceArray) or ``IF_curr_exp``; ``params`` maps
    :data:`PARAMS` to flat per-neuron arrays; ``spinnaker`` overrides some of them on SpiNNaker;
    ``v_scale`` is mV per IR membrane unit; ``lag`` steps behind the float reference."""

    name: str
    shape: tuple[int, ...]
    kind: str
    spiking: bool = True
    record: str = "spikes"
    params: dict[str, np.ndarray] = field(default_factory=dict)
    spinnaker: dict[str, np.ndarray] = field(default_factory=dict)
    psc_scale: np.ndarray | None = None
    v_scale: float = 1.0
    lag: int = 0
    max_summed_weight: tuple[float, float] = (0.0, 0.0)
    max_atoms_per_core: int = 256

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Projection:
    """``FromListConnector`` rows ``(pre[i], post[i], weight[i], delay · dt)`` on ``receptor``."""

    name: str
    pre: str
    post: str
    receptor: str
    pre_idx: np.ndarray
    post_idx: np.ndarray
    weight: np.ndarray
    delay: int
    ir_delay: int = 0

    @property
    def n_synapses(self) -> int:
        return int(self.pre_idx.size)


@dataclass(frozen=True, eq=False)
class Network:
    name: str
    dt_ms: float
    t0: int
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    outputs: dict[str, dict[str, str]]
    notes: tuple[str, ...] = ()

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def max_lag(self) -> int:
        return max((p.lag for p in self.populations), default=0)


def to_json(net: Network) -> dict[str, Any]:
    pops = [{"name": p.name, "shape": list(p.shape), "kind": p.kind, "spiking": p.spiking, "record": p.record,
             "v_scale": p.v_scale, "lag": p.lag, "max_summed_weight": list(p.max_summed_weight),
             "max_atoms_per_core": p.max_atoms_per_core} for p in net.populations]
    projs = [{"name": p.name, "pre": p.pre, "post": p.post, "receptor": p.receptor, "delay": p.delay,
              "ir_delay": p.ir_delay, "n_synapses": p.n_synapses} for p in net.projections]
    return {"format": FORMAT, "version": 1, "name": net.name, "dt_ms": net.dt_ms, "t0": net.t0,
            "populations": pops, "projections": projs, "outputs": net.outputs, "notes": list(net.notes)}


def to_arrays(net: Network) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for p in net.populations:
        out.update({f"pop/{p.name}/{k}": np.asarray(v, np.float64) for k, v in p.params.items()})
        out.update({f"spinnaker/{p.name}/{k}": np.asarray(v, np.float64) for k, v in p.spinnaker.items()})
        if p.psc_scale is not None:
            out[f"float/{p.name}/psc_scale"] = np.asarray(p.psc_scale, np.float64)
    for j in net.projections:
        out[f"proj/{j.name}/pre"] = np.asarray(j.pre_idx, np.int32)
        out[f"proj/{j.name}/post"] = np.asarray(j.post_idx, np.int32)
        out[f"proj/{j.name}/weight"] = np.asarray(j.weight, np.float64)
    return out


def save_network(net: Network, directory: str | Path) -> tuple[Path, Path]:
    """Write ``network.json`` and ``network.npz`` into ``directory`` (which the caller makes atomic)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / JSON_FILE).write_text(json.dumps(to_json(net), indent=1, sort_keys=True) + "\n")
    with open(d / NPZ_FILE, "wb") as f:
        np.savez(f, **to_arrays(net))
    return d / JSON_FILE, d / NPZ_FILE


def load_network(directory: str | Path) -> Network:
    d = Path(directory)
    meta = json.loads((d / JSON_FILE).read_text())
    with np.load(d / NPZ_FILE, allow_pickle=False) as z:
        arr = {k: z[k] for k in z.files}
    pops = tuple(Population(
        name=p["name"], shape=tuple(p["shape"]), kind=p["kind"], spiking=p["spiking"], record=p["record"],
        params=_under(arr, f"pop/{p['name']}/"), spinnaker=_under(arr, f"spinnaker/{p['name']}/"),
        psc_scale=arr.get(f"float/{p['name']}/psc_scale"),
        v_scale=p["v_scale"], lag=p["lag"], max_summed_weight=tuple(p["max_summed_weight"]),
        max_atoms_per_core=p["max_atoms_per_core"]) for p in meta["populations"])
    projs = tuple(Projection(j["name"], j["pre"], j["post"], j["receptor"], arr[f"proj/{j['name']}/pre"],
                             arr[f"proj/{j['name']}/post"], arr[f"proj/{j['name']}/weight"], j["delay"],
                             j.get("ir_delay", 0)) for j in meta["projections"])
    return Network(meta["name"], meta["dt_ms"], meta["t0"], pops, projs, meta["outputs"], tuple(meta["notes"]))


def _under(arr: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in arr.items() if k.startswith(prefix)}
