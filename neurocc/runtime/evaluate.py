"""Accuracy of a deployed network on labelled data: ``neurocc evaluate DIR --data TEST.npz``.

``TEST.npz`` holds ``x`` (samples, *input shape): static inputs in the model's own input scale,
and ``y`` (samples,): integer labels. Evaluation applies the artifact's own input encoding
(``manifest.encoding``, see :mod:`neurocc.ir.encoding`; constant current for ``timesteps`` steps
when the artifact has none), runs the backend through :func:`neurocc.runtime.run.run_artifact`,
and predicts the argmax of the first output's scores (:func:`neurocc.ir.encoding.decode`: spike
counts for a spiking readout, the integrator's growth otherwise).

Pipeline latency: where the executed graph delays signals (e.g. one step per synapse layer under
the Loihi numerics), the input is held for ``timesteps + L`` steps, ``L`` being the largest total
edge delay from an input to the output, and only the last ``timesteps`` steps are read, so every
backend scores the same ``timesteps``-step window of steady input.
"""
from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import InputError
from neurocc.ir.encoding import Encoding, decode, encode
from neurocc.ir.graph import Graph

FLOAT_BACKENDS = ("reference",)


def load_test_data(data: str | Path | Mapping[str, Any] | tuple[Any, Any], input_shape: tuple[int, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) from a TEST.npz path, a mapping with ``x`` and ``y``, or an (x, y) pair, checked."""
    where = "test data"
    if isinstance(data, (str, Path)):
        where = str(data)
        try:
            with np.load(Path(data), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except FileNotFoundError:
            raise InputError("test data file not found", where=where, fix="check the --data path") from None
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise InputError(f"cannot read the test data ({err})", where=where,
                             fix="write it with numpy.savez(path, x=inputs, y=labels)") from None
    elif isinstance(data, tuple):
        arrays = dict(zip(("x", "y"), data))
    else:
        arrays = dict(data)
    return _check(arrays, input_shape, where)


def _check(arrays: Mapping[str, Any], input_shape: tuple[int, ...], where: str) -> tuple[np.ndarray, np.ndarray]:
    want = f"(samples, {', '.join(map(str, input_shape))})"
    problems = [f"key '{k}' is missing: expected {d}" for k, d in
                (("x", f"an array {want} of static inputs"), ("y", "an array (samples,) of integer labels"))
                if k not in arrays]
    x = np.asarray(arrays["x"]) if "x" in arrays else None
    y = np.asarray(arrays["y"]) if "y" in arrays else None
    if x is not None:
        if x.dtype.kind not in "biuf":
            problems.append(f"key 'x' has dtype {x.dtype}; expected numbers")
        elif x.ndim != len(input_shape) + 1 or tuple(x.shape[1:]) != tuple(input_shape):
            problems.append(f"key 'x' has shape {tuple(x.shape)}; expected {want} (static, not time-major)")
        elif not np.all(np.isfinite(x)):
            problems.append("key 'x' contains NaN or infinite values")
    if y is not None:
        if y.ndim != 1 or y.dtype.kind not in "biu":
            problems.append(f"key 'y' has shape {tuple(y.shape)} and dtype {y.dtype}; expected integer labels (samples,)")
        elif x is not None and x.ndim >= 1 and len(y) != len(x):
            problems.append(f"key 'y' has {len(y)} labels but 'x' has {len(x)} samples")
    if not problems and len(x) == 0:  # type: ignore[arg-type]
        problems.append("the data set is empty")
    if problems:
        raise InputError("the test data does not fit the artifact", where=where, problems=problems,
                         fix=f"save x {want} in the model's input scale and y (samples,) integer labels: "
                             "numpy.savez('TEST.npz', x=x, y=y)")
    return np.asarray(x, np.float64), np.asarray(y, np.int64)


def artifact_encoding(manifest: Mapping[str, Any]) -> Encoding:
    """The encoding saved in the manifest, or a constant current for ``manifest.timesteps`` steps."""
    if manifest.get("encoding"):
        return Encoding.from_dict(dict(manifest["encoding"]))
    steps = manifest.get("timesteps")
    if not steps:
        raise InputError("the artifact records no input encoding and no timesteps", where="manifest.json",
                         fix="recompile with `neurocc compile ... --timesteps N`")
    return Encoding("constant", timesteps=int(steps))


def latency(graph: Graph) -> int:
    """Largest total edge delay on a path from an Input to an Output (recurrent edges excluded)."""
    recurrent = set(graph.recurrent_edges())
    edges = [e for e in graph.edges if e not in recurrent]
    best = {n: (0 if n in graph.inputs else None) for n in graph.nodes}
    for _ in range(len(graph.nodes)):
        changed = False
        for e in edges:
            if best[e.src] is not None and (best[e.dst] is None or best[e.src] + e.delay > best[e.dst]):
                best[e.dst] = best[e.src] + e.delay
                changed = True
        if not changed:
            break
    return max((best[o] or 0) for o in graph.outputs)


def evaluate(artifact_dir: str | Path, data: str | Path | Mapping[str, Any] | tuple[Any, Any],
             backend: str = "emulator", batch_size: int = 256, device: str | None = None) -> dict[str, Any]:
    """Accuracy of the artifact on ``backend``: ``{"accuracy", "n", "backend", "per_class",
    "timesteps", "latency_steps", "encoding"}``; ``per_class`` maps label → {"n", "accuracy"}.
    ``device``: the emulator's torch path (see :func:`neurocc.runtime.run.run_artifact`)."""
    from neurocc.runtime.run import as_artifact, run_artifact

    art = as_artifact(artifact_dir)
    spec = art.inputs[0]
    x, y = load_test_data(data, tuple(spec["shape"]))
    enc = artifact_encoding(art.manifest)
    graph = art.float_graph if backend in FLOAT_BACKENDS else art.graph
    out = graph.outputs[0]
    spiking = any(graph.nodes[p].spiking for p in graph.predecessors(out))
    lag = latency(graph)
    steps = enc.timesteps + lag
    preds = []
    for i in range(0, len(x), max(1, int(batch_size))):
        xs = encode(x[i:i + batch_size], enc, steps, first_index=i)
        ys = run_artifact(art, backend, {spec["name"]: xs}, steps=steps, device=device)[out]
        preds.append(decode(ys, spiking=spiking, timesteps=enc.timesteps).argmax(1))
    pred = np.concatenate(preds)
    per_class = {int(c): {"n": int(np.sum(y == c)), "accuracy": float(np.mean(pred[y == c] == c))}
                 for c in np.unique(y)}
    return {"accuracy": float(np.mean(pred == y)), "n": len(y), "backend": backend,
            "per_class": per_class, "timesteps": enc.timesteps, "latency_steps": lag,
            "encoding": enc.to_dict()}


def evaluate_artifact(artifact_dir: str | Path, data: Any, backend: str | None = None,
                      batch_size: int = 256, device: str | None = None) -> dict[str, Any]:
    """:func:`evaluate` with ``backend=None`` meaning the emulator (``neurocc.evaluate``)."""
    return evaluate(artifact_dir, data, backend=backend or "emulator", batch_size=batch_size, device=device)


def format_evaluation(result: Mapping[str, Any]) -> str:
    """A short human-readable summary of :func:`evaluate`'s result."""
    lines = [f"accuracy {result['accuracy'] * 100:.2f}% on {result['n']} samples "
             f"(backend {result['backend']}, {result.get('timesteps', '?')} timesteps"
             + (f" + {result['latency_steps']} latency" if result.get("latency_steps") else "") + ")"]
    per = result.get("per_class") or {}
    if per:
        lines.append("per class: " + ", ".join(f"{c}: {v['accuracy'] * 100:.1f}% ({v['n']})" for c, v in per.items()))
    return "\n".join(lines)
