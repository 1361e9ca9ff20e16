"""Calibration data: reading it, presenting it to the float network, and the statistics the
quantize pass scales with.

Layout of a calibration file (``neurocc compile --calibration FILE.npz``), the TEST.npz layout:

* an **ANN** (the model has ReLU/BatchNorm/... and is converted): ``x`` (samples, *input shape),
  static, in the model's own input scale; optional ``y`` (samples,) integer labels. The artifact's
  encoding (constant current for T steps by default) turns each sample into T steps.
* a **spiking** model: ``x`` time-major (steps, samples, *input shape), 0/1 spikes or graded
  values (or one array per graph input name, for models with several inputs); optional ``y``
  (samples,) labels. Graded values make the input graded (integers ``rint(x · S)``, ``S`` chosen
  below); 0/1 values stay spikes.

Statistics (:func:`layer_stats`): the float reference (the discretised float graph on the
emulator's float path) runs on the calibration inputs and, per neuron layer, records the largest
|synaptic input per step| (``u_absmax``; ``g_v · u`` for current-based kinds), the largest
|membrane| (``v_absmax``), the most negative membrane (``v_negmax`` = max(−v, 0)) and the mean
spike rate, all in float membrane units: the quantize pass keeps ``64 · s · u_absmax``, for
non-spiking layers ``64 · s · v_absmax`` and for spiking layers ``64 · s · v_negmax`` within half
of the 24-bit registers (:mod:`neurocc.compiler.passes.qscale`). A spiking layer's positive side
is bounded by its threshold; its negative side is not: a converted IF neuron held below zero by
a negative input integrates it every step with no floor (Lava's LIF has none, and the chip's
register saturates at −(2^23 − 1)), so ``v_negmax`` grows with T and must be sized for.

Input scale (:func:`choose_input_scale`): a graded input is fed as ``rint(x · S)``. Every layer
reading it has scale ``s = c · S`` (``c`` measured by quantizing once at ``S = 1``), so ``S``
is the largest power of two (at most 2^12) for which each such layer keeps its thresholds in 17
bits, its biases in ``4095 << 7`` and its calibrated activity in half of the registers; a larger
``S`` only refines the input's resolution.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import InputError
from neurocc.ir.discrete import NEURON_TYPES, decay_factors
from neurocc.ir.graph import Graph
from neurocc.ir.nodes import CubaLI, CubaLIF

MAX_INPUT_EXP = 12          # largest input scale 2^12
MIN_INPUT_EXP = -12
STATS_BYTES = 64 << 20      # recorded float traces per chunk of samples


@dataclass(frozen=True)
class Calibration:
    """Checked calibration data. ``x`` maps graph input names to arrays: static
    (samples, *shape) for an ANN, time-major (steps, samples, *shape) for a spiking model."""

    x: dict[str, np.ndarray]
    y: np.ndarray | None
    static: bool
    source: str | None

    @property
    def samples(self) -> int:
        a = next(iter(self.x.values()))
        return int(a.shape[0] if self.static else a.shape[1])

    @property
    def steps(self) -> int | None:
        return None if self.static else int(next(iter(self.x.values())).shape[0])

    def subset(self, n: int | None) -> Calibration:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= self.samples:
            return self
        x = {k: (v[:n] if self.static else v[:, :n]) for k, v in self.x.items()}
        return Calibration(x, None if self.y is None else self.y[:n], self.static, self.source)

    def summary(self) -> dict[str, Any]:
        return {"file": self.source, "samples": self.samples, "labels": self.y is not None,
                "layout": "static (samples, *shape)" if self.static else "time-major (steps, samples, *shape)",
                "steps": self.steps}


@dataclass(frozen=True)
class CalibrationFile:
    """An .npz calibration file read into memory (:func:`preload`): its arrays and its path."""

    arrays: dict[str, Any]
    path: str


def preload(data: Any) -> Any:
    """``data`` with a calibration file read into a :class:`CalibrationFile` (read like the path
    itself, and reported as that file), so that it can be sent to workers without a shared file
    system; other forms unchanged."""
    if isinstance(data, (str, Path)):
        arrays, where = _read(data)
        return CalibrationFile(arrays, where)
    return data


def _read(data: Any) -> tuple[dict[str, Any], str]:
    if isinstance(data, CalibrationFile):
        return dict(data.arrays), data.path
    if isinstance(data, (str, Path)):
        from neurocc._files import read_npz

        return dict(read_npz(Path(data), "--calibration")), str(data)
    if isinstance(data, tuple):
        return dict(zip(("x", "y"), data)), "calibration data"
    if isinstance(data, Mapping):
        return dict(data), "calibration data"
    return {"x": data}, "calibration data"


def read_calibration(data: Any, graph: Graph, *, static: bool) -> Calibration:
    """Check ``data`` (a path to an .npz, a mapping with ``x``/``y``, an (x, y) pair, or the x
    array) against ``graph``'s inputs; InputError naming the key, the shape found and the one
    expected (see the module docstring for the layouts)."""
    arrays, where = _read(data)
    shapes = graph.shapes()
    names = list(graph.inputs)
    keys = {names[0]: "x" if "x" in arrays or names[0] not in arrays else names[0]} if len(names) == 1 else \
        {n: n for n in names}
    lead = "samples" if static else "steps, samples"
    problems, x = [], {}
    for n, key in keys.items():
        want = f"({lead}, {', '.join(map(str, shapes[n]))})"
        if key not in arrays:
            problems.append(f"key '{key}' is missing: expected {want}")
            continue
        a = np.asarray(arrays[key])
        nd = len(shapes[n]) + (1 if static else 2)
        if a.dtype.kind not in "biuf":
            problems.append(f"key '{key}' has dtype {a.dtype}; expected numbers")
        elif a.ndim != nd or tuple(a.shape[nd - len(shapes[n]):]) != tuple(shapes[n]):
            problems.append(f"key '{key}' has shape {tuple(a.shape)}; expected {want}"
                            + (" (static inputs, one per sample)" if static else " (time-major spikes)"))
        elif a.size == 0:
            problems.append(f"key '{key}' holds no samples: shape {tuple(a.shape)}")
        elif not np.all(np.isfinite(a)):
            problems.append(f"key '{key}' contains NaN or infinite values")
        else:
            x[n] = a.astype(np.float64)
    y = _labels(arrays.get("y"), x, static, problems)
    if problems:
        raise InputError("the calibration data does not fit the model", where=where, problems=problems,
                         fix=("save x (samples, *input shape) in the model's input scale, and optionally integer "
                              "labels y: numpy.savez('cal.npz', x=x, y=y)") if static else
                             ("save time-major inputs x (steps, samples, *input shape), and optionally labels y "
                              "(samples,): numpy.savez('cal.npz', x=x, y=y)"))
    return Calibration(x, y, static, where if isinstance(data, (str, Path, CalibrationFile)) else None)


def _labels(y: Any, x: dict[str, np.ndarray], static: bool, problems: list[str]) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    n = {int(a.shape[0] if static else a.shape[1]) for a in x.values()}
    if y.ndim != 1 or y.dtype.kind not in "biu":
        problems.append(f"key 'y' has shape {tuple(y.shape)} and dtype {y.dtype}; expected integer labels (samples,)")
    elif n and len(y) not in n:
        problems.append(f"key 'y' has {len(y)} labels but 'x' has {n.pop()} samples")
    return y.astype(np.int64)


def float_inputs(cal: Calibration, encoding: Any | None, steps: int, first: int = 0,
                 count: int | None = None) -> dict[str, np.ndarray]:
    """Time-major float inputs (steps, batch, *shape) for samples ``first .. first + count``:
    static data through ``encoding``; time-major data padded with zeros (or cut) to ``steps``."""
    from neurocc.ir.encoding import encode

    out = {}
    for n, a in cal.x.items():
        if cal.static:
            part = a[first:first + count if count else None]
            out[n] = encode(part, encoding, steps, first_index=first).astype(np.float64)
        else:
            part = a[:, first:first + count if count else None]
            pad = np.zeros((max(steps - len(part), 0), *part.shape[1:]))
            out[n] = np.concatenate([part[:steps], pad])
    return out


def graded(inputs: Mapping[str, np.ndarray]) -> dict[str, bool]:
    """Whether each input carries values other than 0 and 1."""
    return {n: bool(np.any((a != 0) & (a != 1))) for n, a in inputs.items()}


def chunk_samples(graph: Graph, steps: int) -> int:
    """Samples per simulation chunk so that recorded traces stay near STATS_BYTES."""
    shapes = graph.shapes()
    per = sum(int(np.prod(s)) * (1 + len(graph.nodes[n].state_vars)) for n, s in shapes.items()) * 8 * steps
    return max(1, STATS_BYTES // max(per, 1))


def layer_stats(graph: Graph, cal: Calibration, encoding: Any | None, steps: int) -> dict[str, dict[str, float]]:
    """Per neuron node of the float ``graph``: ``u_absmax``, ``v_absmax``, ``v_negmax``, ``rate`` (see the
    module docstring), measured by the float reference over ``steps`` steps on ``cal``."""
    from neurocc.backends.emulator import prepare, simulate

    prog = prepare(graph)
    gains = {n: decay_factors(node, graph.dt, graph.method) for n, node in graph.nodes.items()  # type: ignore[arg-type]
             if isinstance(node, NEURON_TYPES)}
    acc: dict[str, dict[str, float]] = {n: {"u_absmax": 0.0, "v_absmax": 0.0, "v_negmax": 0.0, "spikes": 0.0,
                                            "count": 0.0} for n in gains}
    size = chunk_samples(graph, steps)
    for i in range(0, cal.samples, size):
        res = simulate(graph, float_inputs(cal, encoding, steps, i, size), steps=steps, record=True, program=prog)
        for n, dec in gains.items():
            _accumulate(acc[n], graph, n, dec, res.traces)
    return {n: {"u_absmax": a["u_absmax"], "v_absmax": a["v_absmax"], "v_negmax": a["v_negmax"],
                "rate": a["spikes"] / a["count"] if a["count"] else 0.0} for n, a in acc.items()}


def _accumulate(a: dict[str, float], graph: Graph, n: str, dec: Any, traces: Mapping[str, np.ndarray]) -> None:
    node = graph.nodes[n]
    gv = 1.0 if dec.gain_v is None else np.asarray(dec.gain_v, np.float64)
    if isinstance(node, (CubaLI, CubaLIF)):
        u = np.abs(traces[f"{n}/u"]) * gv
    else:
        x = sum(np.asarray(traces[f"{p}/out"], np.float64) for p in graph.predecessors(n))
        u = np.abs(x) * gv
    a["u_absmax"] = max(a["u_absmax"], float(np.max(u, initial=0)))
    if f"{n}/v" in traces:
        v = np.asarray(traces[f"{n}/v"], np.float64)
        a["v_absmax"] = max(a["v_absmax"], float(np.max(np.abs(v), initial=0)))
        a["v_negmax"] = max(a["v_negmax"], float(np.max(-v, initial=0)))
    if node.spiking:
        z = traces[f"{n}/out"]
        a["spikes"] += float(np.sum(z))
        a["count"] += float(z.size)


def to_layer_stats(stats: Mapping[str, Mapping[str, float]], weight_bits: Mapping[str, int] | None = None
                   ) -> dict[str, Any]:
    """``{node: LayerStats}`` for the quantize pass from :func:`layer_stats`."""
    from neurocc.compiler.passes.quantize import LayerStats

    bits = dict(weight_bits or {})
    return {n: LayerStats(u_absmax=s["u_absmax"] or None, v_absmax=s["v_absmax"] or None, rate=s["rate"],
                          v_negmax=s.get("v_negmax") or None,
                          weight_bits=bits.get(n)) for n, s in stats.items()}


def choose_input_scale(graph: Graph, target: Any, stats: Mapping[str, Any], name: str,
                       per_channel: bool = False) -> tuple[float, dict[str, Any]]:
    """The largest power-of-two input scale ``S`` for the graded input ``name`` (see the module
    docstring) and how it was bound: ``{"scale", "bound_by": {layer: {register: S_max}}}``."""
    from neurocc.compiler.passes.quantize import LayerStats, quantize_with_report

    probe = dict(stats)
    probe[name] = LayerStats(scale=1.0)
    _, rep = quantize_with_report(graph, target.numerics, target, stats=probe, per_channel=per_channel)
    bounds: dict[str, dict[str, float]] = {}
    for layer, lrep in rep["layers"].items():
        if not any(s.get("graded_input") for s in lrep["synapses"].values()) or not _reads(graph, layer, name):
            continue
        bounds[layer] = _layer_bounds(graph, layer, lrep, stats.get(layer))
    allowed = min((v for b in bounds.values() for v in b.values()), default=2.0 ** MAX_INPUT_EXP)
    exp = int(np.clip(math.floor(math.log2(allowed)) if allowed > 0 else MIN_INPUT_EXP, MIN_INPUT_EXP, MAX_INPUT_EXP))
    return 2.0 ** exp, {"scale": 2.0 ** exp, "bound_by": bounds}


def _reads(graph: Graph, layer: str, name: str) -> bool:
    """Whether ``layer``'s synapses read ``name`` (through pools/flattens only)."""
    from neurocc.ir.nodes import Input

    frontier = list(graph.predecessors(layer))
    while frontier:
        n = frontier.pop()
        for p in graph.predecessors(n):
            if p == name:
                return True
            if not graph.nodes[p].spiking and not isinstance(graph.nodes[p], (Input, *NEURON_TYPES)):
                frontier.append(p)
    return False


def _layer_bounds(graph: Graph, layer: str, lrep: Mapping[str, Any], st: Any) -> dict[str, float]:
    """Largest input scale each register of ``layer`` allows, from its report at ``S = 1``."""
    from neurocc.compiler.passes import quantize as q

    scale = np.max(np.asarray(lrep["scale"], np.float64))
    c = float(scale) / 2.0 ** lrep["exp"]          # s0 at S = 1
    out: dict[str, float] = {}
    theta = getattr(graph.nodes[layer], "v_threshold", getattr(graph.nodes[layer], "threshold", None))
    if theta is not None and np.any(np.asarray(theta) > 0):
        out["vth"] = q.VTH_MAX / (c * float(np.max(theta)))
    bias = max(abs(v) for v in lrep["bias_mant"]) * 2.0 ** max(lrep["bias_exp"]) * c / float(scale)
    if bias > 0:
        out["bias"] = (q.BIAS_MANT_MAX + 0.5) * 2 ** q.BIAS_EXP_MAX / bias
    if st is not None and st.u_absmax:
        out["u"] = q.HEADROOM * q.U_LIMIT / (64 * c * st.u_absmax)
    if st is not None and st.v_absmax and not graph.nodes[layer].spiking:
        out["v"] = q.HEADROOM * q.V_LIMIT / (64 * c * st.v_absmax)
    return out
