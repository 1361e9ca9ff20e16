"""The compiled artifact: one directory holding everything needed to run and check a model.

Layout (every file and field is documented in docs/artifact-format.md)::

    DIR/manifest.json           what the directory holds: format, versions, target, digests, files
    DIR/graph.json, graph.npz   the network the backends execute (integer for integer numerics)
    DIR/float_graph.json, .npz  the discretised float graph (the ``reference`` backend runs it)
    DIR/quantization.json       the quantization report (absent for float32 targets)
    DIR/<backend files>         e.g. network.net (Loihi/netx), model.onnx (edge-cpu)

Directories are written atomically (:func:`atomic_directory`): built in a temporary sibling and
renamed into place only after every file is written, so a failed compile leaves the previous
artifact (or nothing) and never a half-written directory. The same inputs give the same bytes:
the manifest holds no time stamps and JSON keys are written in a fixed order.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocc._files import atomic_directory as _atomic_directory
from neurocc._files import is_replaceable
from neurocc.errors import ModelLoadError, NeuroccError
from neurocc.ir.graph import Graph
from neurocc.ir.serialize import load_graph, save_graph

FORMAT = "neurocc-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
GRAPH_STEM = "graph"
FLOAT_STEM = "float_graph"
QUANT_REPORT = "quantization.json"


class ArtifactError(ModelLoadError):
    """An artifact directory is missing, corrupt, modified, or from another format version."""


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact. ``graph`` is what backends execute (integer unless the target's numerics
    is float32); ``float_graph`` is the discretised float graph for the ``reference`` backend."""

    path: Path
    manifest: Mapping[str, Any]
    graph: Graph
    float_graph: Graph
    target: str
    quantization: Mapping[str, Any] | None = None
    files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def target_settings(self) -> Mapping[str, Any]:
        """The target's settings as resolved at compile time (limits, validation rule, ...)."""
        return self.manifest["target"]["settings"]

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["inputs"])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.manifest["outputs"])


def neurocc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neurocc")
    except PackageNotFoundError:
        return "unknown"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dumps(doc: Any) -> str:
    """Deterministic JSON text (sorted keys, 1-space indent, trailing newline)."""
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False) + "\n"


# ---- atomic directories ---------------------------------------------------------------------------
def check_output_dir(out_dir: str | Path) -> None:
    """Refuse early (before any work) an ``out_dir`` that exists and is not empty or an artifact."""
    out = Path(out_dir).absolute()
    if out.exists() and not is_replaceable(out, MANIFEST, (FORMAT,)):
        raise NeuroccError("the output path exists and is not a neurocc artifact, so it is not replaced",
                           where=str(out), fix="choose a new -o directory, or remove this one yourself")


def atomic_directory(out_dir: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary directory beside ``out_dir`` that replaces it on success (see ``_files``).

    An existing ``out_dir`` that is neither empty nor an artifact is never replaced.
    """
    return _atomic_directory(out_dir, manifest=MANIFEST, formats=(FORMAT,), what="neurocc artifact")


# ---- writing --------------------------------------------------------------------------------------
def io_spec(graph: Graph, outputs_report: Mapping[str, Any] | None = None,
            input_scales: Mapping[str, float] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Manifest ``inputs``/``outputs`` entries: name, shape, and how values are to be read."""
    shapes = graph.shapes()
    scales = dict(input_scales or {})
    for nd in graph.nodes.values():   # a plastic synapse's third factor (reward): integers 0..127, graded
        if getattr(nd, "reward", "") and nd.reward not in scales:
            scales[nd.reward] = 1.0
    inputs = [{"name": n, "shape": list(shapes[n]),
               "values": "graded" if n in scales else "spikes", "int_per_float": scales.get(n)}
              for n in graph.inputs]
    outputs = []
    for n in graph.outputs:
        extra = dict((outputs_report or {}).get(n, {"values": "spikes" if _spiking_source(graph, n) else "state"}))
        outputs.append({"name": n, "shape": list(shapes[n]), **extra})
    return inputs, outputs


def _spiking_source(graph: Graph, name: str) -> bool:
    srcs = graph.predecessors(name)
    return bool(srcs) and all(graph.nodes[s].spiking for s in srcs)


def write_artifact(out_dir: str | Path, *, graph: Graph, float_graph: Graph, target: Any,
                   quantization: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                   extra_files: Mapping[str, bytes] | None = None,
                   emit: Callable[[Path], None] | None = None) -> Artifact:
    """Write an artifact directory atomically and return it loaded.

    ``target`` is a :class:`neurocc.targets.Target`; ``extra`` adds manifest keys (e.g.
    ``timesteps``, ``encoding``, ``calibration``); ``extra_files`` maps file names to bytes;
    ``emit(tmp_dir)`` may write backend files into the directory before the manifest is made.
    """
    with atomic_directory(out_dir) as tmp:
        save_graph(graph, tmp, GRAPH_STEM)
        save_graph(float_graph, tmp, FLOAT_STEM)
        if quantization is not None:
            (tmp / QUANT_REPORT).write_text(dumps(quantization))
        for name, data in (extra_files or {}).items():
            if Path(name).name != name or name == MANIFEST:
                raise NeuroccError(f"invalid artifact file name {name!r}", where="write_artifact",
                                   fix="use a plain file name other than manifest.json")
            (tmp / name).write_bytes(data)
        if emit is not None:
            emit(tmp)
        manifest = build_manifest(tmp, graph, float_graph, target, quantization, extra or {})
        (tmp / MANIFEST).write_text(dumps(manifest))
        try:  # an existing artifact is replaced only by one that loads
            load_artifact(tmp)
        except NeuroccError as err:
            raise NeuroccError(f"the new artifact does not load back, so nothing was written: {err.what}",
                               where=str(out_dir), problems=err.problems,
                               fix="check the option values named above; if they are valid, this is a bug in "
                                   "neurocc: please report it") from None
    return load_artifact(out_dir)


def build_manifest(directory: Path, graph: Graph, float_graph: Graph, target: Any,
                   quantization: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    inputs, outputs = io_spec(graph, (quantization or {}).get("outputs"), (quantization or {}).get("input_scales"))
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurocc_version": neurocc_version(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
        "target": {"name": target.name, "settings": _jsonable(dataclasses.asdict(target))},
        "numerics": graph.numerics,
        "dt": float_graph.dt,
        "method": getattr(float_graph.method, "value", float_graph.method),
        "graphs": {
            "executed": {"file": f"{GRAPH_STEM}.json", "arrays": f"{GRAPH_STEM}.npz", "digest": graph.digest()},
            "float": {"file": f"{FLOAT_STEM}.json", "arrays": f"{FLOAT_STEM}.npz", "digest": float_graph.digest()},
        },
        "quantization": QUANT_REPORT if quantization is not None else None,
        "inputs": inputs,
        "outputs": outputs,
        "encoding": None,
        "timesteps": None,
        "files": files,
    }
    doc.update(_jsonable(dict(extra)))
    return doc


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        return x.item()
    return x


# ---- reading --------------------------------------------------------------------------------------
def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the artifact at ``path`` (ArtifactError naming the problem and the fix)."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError("artifact directory not found" if not root.exists() else "not a directory",
                            where=str(root), fix="pass the directory written by `neurocc compile -o DIR`")
    mpath = root / MANIFEST
    try:
        doc = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise ArtifactError("manifest.json is missing, so this is not a complete artifact", where=str(root),
                            fix="recompile the model with `neurocc compile ... -o DIR`") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"manifest.json is corrupt ({err})", where=str(mpath),
                            fix="recompile the model; the file was truncated or edited") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(f"manifest.json is not a neurocc artifact manifest (format "
                            f"{doc.get('format') if isinstance(doc, dict) else type(doc).__name__!r})",
                            where=str(mpath), fix="pass the directory written by `neurocc compile -o DIR`")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"artifact format version {doc.get('format_version')!r} (written by neurocc "
                            f"{doc.get('neurocc_version', '?')}) is not the version this neurocc reads "
                            f"({FORMAT_VERSION})", where=str(mpath),
                            fix="recompile the model with this version of neurocc")
    problems = manifest_problems(doc)
    if problems:
        raise ArtifactError("manifest.json is damaged (values of the wrong type or missing)", where=str(mpath),
                            problems=problems, fix="recompile the model; do not edit files inside an artifact")
    return doc


def manifest_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every key of a manifest that the readers index, checked for type (one line per problem)."""
    problems = []
    target = doc.get("target")
    if not (isinstance(target, dict) and isinstance(target.get("name"), str)
            and isinstance(target.get("settings"), dict)):
        problems.append("target: expected {name: text, settings: mapping}")
    for key in ("inputs", "outputs"):
        items = doc.get(key)
        if not isinstance(items, list) or not items or not all(_io_ok(i) for i in items):
            problems.append(f"{key}: expected a non-empty list of {{name: text, shape: [integers >= 0]}}")
    files = doc.get("files")
    if not isinstance(files, dict) or not all(_plain_name(k) and isinstance(v, dict) for k, v in files.items()):
        problems.append("files: expected a mapping of plain file names to {sha256, bytes}")
    quant = doc.get("quantization")
    if quant is not None and not _plain_name(quant):
        problems.append(f"quantization: expected a plain file name or null, got {quant!r:.60}")
    dt = doc.get("dt")
    if dt is not None and (isinstance(dt, bool) or not isinstance(dt, (int, float)) or not 0 < dt < float("inf")):
        problems.append(f"dt: expected a positive number of seconds or null, got {dt!r:.60}")
    steps = doc.get("timesteps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 0 < steps < 2 ** 31):
        problems.append(f"timesteps: expected a positive integer or null, got {steps!r:.60}")
    for key in ("encoding", "graphs", "mapping"):
        if doc.get(key) is not None and not isinstance(doc.get(key), dict):
            problems.append(f"{key}: expected a mapping or null")
    return problems


def _io_ok(item: Any) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("shape"), list)
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 31 for s in item["shape"]))


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name and "\x00" not in name \
        and not name.startswith(".")


def check_files(root: Path, manifest: Mapping[str, Any], names: list[str]) -> None:
    """Every named file exists and matches its sha256 in the manifest."""
    problems = []
    for name in names:
        entry = manifest.get("files", {}).get(name)
        p = root / name
        if entry is None:
            problems.append(f"{name}: not listed in manifest.json")
        elif not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != entry.get("sha256"):
            problems.append(f"{name}: contents changed since compile (sha256 differs)")
    if problems:
        raise ArtifactError("artifact files are missing or modified", where=str(root), problems=problems,
                            fix="recompile the model; do not edit files inside an artifact")


def load_artifact(path: str | Path) -> Artifact:
    """Read and check an artifact directory (ArtifactError on any problem)."""
    root = Path(path)
    manifest = read_manifest(root)
    names = [f"{GRAPH_STEM}.json", f"{GRAPH_STEM}.npz", f"{FLOAT_STEM}.json", f"{FLOAT_STEM}.npz"]
    if manifest.get("quantization"):
        names.append(manifest["quantization"])
    check_files(root, manifest, names)
    graph, float_graph = load_graph(root / f"{GRAPH_STEM}.json"), load_graph(root / f"{FLOAT_STEM}.json")
    try:
        quant = json.loads((root / manifest["quantization"]).read_text()) if manifest.get("quantization") else None
    except (OSError, ValueError) as err:
        raise ArtifactError(f"cannot read {manifest['quantization']} ({err})", where=str(root),
                            fix="recompile the model") from None
    extra = tuple(n for n in manifest.get("files", {}) if n not in names)
    return Artifact(path=root, manifest=manifest, graph=graph, float_graph=float_graph,
                    target=manifest["target"]["name"], quantization=quant, files=extra)
