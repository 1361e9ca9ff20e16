"""Save and load graphs in an open format: ``<stem>.json`` (structure) + ``<stem>.npz`` (arrays).

JSON layout (documented in docs/artifact-format.md)::

    {"format": "neurocc-graph", "version": 1, "name": ..., "dt": ..., "method": ...,
     "numerics": ..., "nodes": [{"name": n, "kind": k, "params": {field: value}}],
     "edges": [[src, dst, delay], ...]}

A parameter that is an array is written as ``{"array": "<node>/<field>"}`` and stored under that
key in the ``.npz`` (exact dtype and shape kept). Enums are their string value, integer formats
are ``{"bits", "signed", "rounding", "overflow"}`` objects, tuples are lists. Loading needs no
pickle: ``np.load(allow_pickle=False)``.

Sparse weights: the ``weight`` (out, in) of a dense kind (Affine, Linear, QDense,
QSpiNNakerDense) with at most :data:`SPARSE_MAX_DENSITY` of its entries non-zero is written as
``{"array": KEY, "sparse": "csr", "shape": [out, in]}`` and stored as three arrays
``KEY/indptr`` (int64, out + 1), ``KEY/indices`` (int32, column of each non-zero, sorted per
row) and ``KEY/data`` (the non-zero values, the weight's dtype). Loading rebuilds the dense
matrix (zeros elsewhere), so every pass and backend sees the same array.
"""
from __future__ import annotations

import enum
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import ModelLoadError
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import NODE_KINDS
from neurocc.ir.types import IntFormat

FORMAT = "neurocc-graph"
VERSION = 1
SPARSE_MAX_DENSITY = 0.5
_DENSE_KINDS = ("Affine", "Linear", "QDense", "QSpiNNakerDense")


def _encode_sparse(w: np.ndarray, key: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """CSR of a 2-D weight (module doc)."""
    rows, cols = np.nonzero(w)
    indptr = np.zeros(w.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
    arrays[f"{key}/indptr"], arrays[f"{key}/indices"] = indptr, cols.astype(np.int32)
    arrays[f"{key}/data"] = w[rows, cols]
    return {"array": key, "sparse": "csr", "shape": [int(n) for n in w.shape]}


def _decode_sparse(value: dict[str, Any], arrays: Any) -> np.ndarray:
    key = value["array"]
    indptr, indices, data = (np.asarray(arrays[f"{key}/{k}"]) for k in ("indptr", "indices", "data"))
    w = np.zeros(tuple(value["shape"]), data.dtype)
    w[np.repeat(np.arange(w.shape[0]), np.diff(indptr)), indices] = data
    return w


def _encode(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, IntFormat):
        return {"bits": value.bits, "signed": value.signed, "rounding": value.rounding.value,
                "overflow": value.overflow.value}
    if isinstance(value, tuple):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _encode_param(node: Any, field: str, key: str, arrays: dict[str, np.ndarray]) -> Any:
    value = getattr(node, field)
    if (field == "weight" and node.kind in _DENSE_KINDS and isinstance(value, np.ndarray) and value.ndim == 2
            and value.size and np.count_nonzero(value) <= SPARSE_MAX_DENSITY * value.size):
        return _encode_sparse(value, key, arrays)
    return _encode(value, key, arrays)


def graph_to_dict(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the arrays of ``graph``."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for name, node in graph.nodes.items():
        params = {k: _encode_param(node, k, f"{name}/{k}", arrays) for k in node.stored_params()}
        nodes.append({"name": name, "kind": node.kind, "params": params})
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "name": graph.name,
        "dt": graph.dt,
        "method": getattr(graph.method, "value", graph.method),
        "numerics": graph.numerics,
        "nodes": nodes,
        "edges": [[e.src, e.dst, e.delay] for e in graph.edges],
    }
    return doc, arrays


def _decode(value: Any, arrays: Any) -> Any:
    if isinstance(value, dict) and value.get("sparse") == "csr":
        return _decode_sparse(value, arrays)
    if isinstance(value, dict) and set(value) == {"array"}:
        return np.asarray(arrays[value["array"]])
    if isinstance(value, list):
        return tuple(_decode(v, arrays) for v in value)
    return value


def _check_header(doc: dict[str, Any], source: str) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelLoadError(f"not a neurocc graph (format is {got!r})", where=source,
                             fix="pass a graph.json written by neurocc, or the model file itself")
    if doc.get("version") != VERSION:
        raise ModelLoadError(f"graph format version {doc.get('version')} is not supported (this neurocc "
                             f"reads version {VERSION})", where=source,
                             fix="recompile the model with this version of neurocc")


def graph_from_dict(doc: dict[str, Any], arrays: Any, source: str = "<graph>") -> Graph:
    _check_header(doc, source)
    nodes = {}
    unknown = [n["kind"] for n in doc["nodes"] if n["kind"] not in NODE_KINDS]
    if unknown:
        raise ModelLoadError(f"unknown node kinds {sorted(set(unknown))}", where=source,
                             fix="the file comes from a newer neurocc; upgrade neurocc")
    for n in doc["nodes"]:
        cls = NODE_KINDS[n["kind"]]
        try:
            nodes[n["name"]] = cls(**{k: _decode(v, arrays) for k, v in n["params"].items()})
        except (TypeError, ValueError, KeyError) as err:
            raise ModelLoadError(f"node '{n['name']}' ({n['kind']}) cannot be rebuilt: {err}", where=source,
                                 fix="the file is corrupt or was edited by hand; rewrite it with neurocc") from err
    edges = tuple(Edge(s, d, int(k)) for s, d, k in doc["edges"])
    return Graph(nodes, edges, dt=doc.get("dt"), method=doc.get("method"), numerics=doc.get("numerics"),
                 name=doc.get("name", "graph"))


def save_graph(graph: Graph, directory: str | Path, stem: str = "graph") -> tuple[Path, Path]:
    """Write ``<directory>/<stem>.json`` and ``<stem>.npz``; returns both paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    doc, arrays = graph_to_dict(graph)
    jpath, npath = directory / f"{stem}.json", directory / f"{stem}.npz"
    jpath.write_text(json.dumps(doc, indent=1) + "\n")
    np.savez_compressed(npath, **arrays)
    return jpath, npath


def load_graph(path: str | Path) -> Graph:
    """Read a graph from ``<stem>.json`` (the ``.npz`` beside it supplies the arrays)."""
    jpath = Path(path)
    if jpath.is_dir():
        jpath = jpath / "graph.json"
    npath = jpath.with_suffix(".npz")
    try:
        doc = json.loads(jpath.read_text())
    except FileNotFoundError as err:
        raise ModelLoadError("file not found", where=str(jpath), fix="check the path") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"corrupt graph JSON ({err})", where=str(jpath),
                             fix="rewrite the graph with neurocc; the file was truncated or edited") from err
    _check_header(doc, str(jpath))
    try:
        with np.load(npath, allow_pickle=False) as arrays:
            return graph_from_dict(doc, {k: arrays[k] for k in arrays.files}, source=str(jpath))
    except FileNotFoundError as err:
        raise ModelLoadError(f"the arrays file {npath.name} is missing", where=str(jpath),
                             fix=f"keep {npath.name} beside {jpath.name}") from err
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ModelLoadError(f"corrupt arrays file {npath.name} ({err})", where=str(npath),
                             fix="rewrite the graph with neurocc; the file was truncated") from err
    except (KeyError, TypeError, AttributeError, IndexError, OverflowError, RecursionError) as err:
        raise ModelLoadError(f"damaged graph file: a value has the wrong type or is missing ({type(err).__name__}: "
                             f"{str(err)[:120]})", where=str(jpath),
                             fix="rewrite the graph with neurocc; the file was edited") from None
