"""The plain description of a Lava process graph that :mod:`.lower` produces and the worker builds.

Nothing here imports Lava. A :class:`LavaNet` lists Lava processes (:class:`LProc`), the port
connections between them (:class:`LConn`, with the virtual-port operations Lava applies on the
way: ``transpose``/``reshape``), how each source ``RingBuffer`` is filled from the graph inputs
(:class:`Feed`), what the worker records (:class:`Probe`) and how each recording becomes a
result array keyed like the emulator's (:class:`Readout`). It is saved as ``<stem>.json`` (every
scalar) plus ``<stem>.npz`` (every array, keyed ``"<proc>::<name>"``).

Layouts: neurocc shapes are PyTorch's (C, H, W); Lava's Conv works in (X, Y, C) = (W, H, C).
Every 3-D population therefore lives in Lava transposed (``lava_shape``); 1-D and 2-D ones are
kept as they are. Time is the **last** axis of RingBuffer data and sink buffers, and the first
axis of Monitor recordings; the worker returns every probe time-first.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

JOB_FORMAT = "neurocc-lava-job/1"  # the worker's job directory (see .worker)
LAVA_MISSING = 3                    # the worker's exit status when Lava cannot be imported
PortOp = tuple[str, tuple[int, ...]]  # ("transpose", axes) | ("reshape", shape)
KINDS = ("source", "dense", "sparse", "delay_dense", "conv", "lif", "learning_dense")


def lava_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The Lava layout of a neurocc shape: (C, H, W) → (W, H, C); other ranks unchanged."""
    return tuple(int(s) for s in (reversed(shape) if len(shape) == 3 else shape))


def to_lava(arr: np.ndarray, lead: int = 0) -> np.ndarray:
    """Move an array of neurocc layout (after ``lead`` leading axes) to the Lava layout."""
    if arr.ndim - lead != 3:
        return arr
    return arr.transpose(*range(lead), lead + 2, lead + 1, lead)


def from_lava(arr: np.ndarray, lead: int = 0) -> np.ndarray:
    """Inverse of :func:`to_lava` (the transpose (2, 1, 0) is its own inverse)."""
    return to_lava(arr, lead)


def port_ops(src_shape: Sequence[int], dst_shape: Sequence[int]) -> tuple[PortOp, ...]:
    """Virtual-port operations that turn a population of neurocc shape ``src_shape`` (held in
    Lava layout) into the C-order reshape ``dst_shape`` (delivered in Lava layout)."""
    src, dst = tuple(src_shape), tuple(dst_shape)
    if src == dst:
        return ()
    ops: list[PortOp] = []
    if len(src) == 3:
        ops.append(("transpose", (2, 1, 0)))
    ops.append(("reshape", dst))
    if len(dst) == 3:
        ops.append(("transpose", (2, 1, 0)))
    return tuple(ops)


@dataclass(frozen=True)
class LProc:
    """One Lava process. ``kind`` in :data:`KINDS`; ``params`` JSON scalars passed to the
    constructor; ``arrays`` numpy arrays passed to it (weights, per-neuron parameters)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    node: str = ""  # the graph node it implements (for messages)


@dataclass(frozen=True)
class LConn:
    """``src.src_port`` (after ``ops``) connects to ``dst.dst_port``."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    ops: tuple[PortOp, ...] = ()


@dataclass(frozen=True)
class Feed:
    """Fill RingBuffer ``proc``: column t = input ``input`` at step t − ``shift`` (0 before),
    reshaped (C order) to ``shape`` and moved to the Lava layout."""

    proc: str
    input: str
    shift: int
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Probe:
    """Record ``var`` of ``proc`` every step: ``s`` through a sink RingBuffer on ``s_out``,
    ``u``/``v`` through a Monitor (Lava reads Vars after the step, so after the reset)."""

    proc: str
    var: str


@dataclass(frozen=True)
class Readout:
    """Result ``key`` = probe (``proc``, ``var``) moved to neurocc layout, reshaped (C order) to
    ``shape`` and delayed by ``shift`` steps (zeros first)."""

    key: str
    proc: str
    var: str
    shape: tuple[int, ...]
    shift: int = 0


@dataclass(frozen=True)
class LavaNet:
    """A whole graph lowered for Lava (see the module docstring)."""

    name: str
    procs: tuple[LProc, ...]
    conns: tuple[LConn, ...]
    feeds: tuple[Feed, ...]
    probes: tuple[Probe, ...]
    readouts: tuple[Readout, ...]

    def proc(self, name: str) -> LProc:
        return next(p for p in self.procs if p.name == name)

    def components(self) -> list[list[str]]:
        """Process names grouped into connected parts that carry at least one probe.

        Lava compiles only what is connected to the process it is asked to run, so the worker
        runs each part on its own (parts share nothing, so this is exact).
        """
        parent = {p.name: p.name for p in self.procs}

        def root(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for c in self.conns:
            parent[root(c.src)] = root(c.dst)
        probed = {root(p.proc) for p in self.probes}
        groups: dict[str, list[str]] = {}
        for p in self.procs:
            groups.setdefault(root(p.name), []).append(p.name)
        return [g for r, g in groups.items() if r in probed]


def _ops_json(ops: tuple[PortOp, ...]) -> list[list[Any]]:
    return [[k, list(v)] for k, v in ops]


def save_net(net: LavaNet, folder: Path, stem: str) -> None:
    """Write ``folder/stem.json`` and ``folder/stem.npz``."""
    arrays: dict[str, np.ndarray] = {}
    procs = []
    for p in net.procs:
        for k, a in p.arrays.items():
            arrays[f"{p.name}::{k}"] = np.asarray(a)
        procs.append({"name": p.name, "kind": p.kind, "shape": list(p.shape), "params": dict(p.params),
                      "arrays": sorted(p.arrays), "node": p.node})
    doc = {
        "format": "neurocc-lava-net/1", "name": net.name, "procs": procs,
        "conns": [{"src": c.src, "src_port": c.src_port, "dst": c.dst, "dst_port": c.dst_port,
                   "ops": _ops_json(c.ops)} for c in net.conns],
        "feeds": [{"proc": f.proc, "input": f.input, "shift": f.shift, "shape": list(f.shape)} for f in net.feeds],
        "probes": [{"proc": p.proc, "var": p.var} for p in net.probes],
        "readouts": [{"key": r.key, "proc": r.proc, "var": r.var, "shape": list(r.shape), "shift": r.shift}
                     for r in net.readouts],
    }
    (folder / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    np.savez(folder / f"{stem}.npz", **arrays)


def load_net(folder: Path, stem: str) -> LavaNet:
    """Read what :func:`save_net` wrote."""
    doc = json.loads((folder / f"{stem}.json").read_text())
    with np.load(folder / f"{stem}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    procs = tuple(LProc(p["name"], p["kind"], tuple(p["shape"]), p["params"],
                        {k: arrays[f"{p['name']}::{k}"] for k in p["arrays"]}, p.get("node", ""))
                  for p in doc["procs"])
    conns = tuple(LConn(c["src"], c["src_port"], c["dst"], c["dst_port"],
                        tuple((k, tuple(v)) for k, v in c["ops"])) for c in doc["conns"])
    feeds = tuple(Feed(f["proc"], f["input"], f["shift"], tuple(f["shape"])) for f in doc["feeds"])
    probes = tuple(Probe(p["proc"], p["var"]) for p in doc["probes"])
    readouts = tuple(Readout(r["key"], r["proc"], r["var"], tuple(r["shape"]), r["shift"]) for r in doc["readouts"])
    return LavaNet(doc["name"], procs, conns, feeds, probes, readouts)
