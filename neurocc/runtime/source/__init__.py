"""The ``source`` check: run the trained model in its own framework and compare it with neurocc.

``neurocc compile`` (and ``neurocc.compile``) runs the source model, where it can run, on the
calibration data (or on :data:`RANDOM_SAMPLES` seeded random spike trains of the input's shape
when there is none) and compares every layer with the float ``reference`` backend on the
artifact's float graph (:mod:`.compare`: spikes exactly, graded values and states within a
float32 tolerance). It prints one line per layer; a divergence that is not a tie at the
threshold fails the compile with the first divergence and its likely cause, unless
``allow_source_mismatch=True`` (CLI ``--allow-source-mismatch``), which compiles anyway and
records the measured difference in the manifest's ``source`` entry. ``neurocc validate DIR
--source MODEL`` adds a ``source`` row (:func:`validation_row`).

What can run (:func:`open_source`): a ``torch.nn.Module`` in memory (torch, snnTorch, Sinabs,
neurocc.nn step-function models), a ``.pt``/``.pth`` with ``entry`` (state_dict) or
``trust_pickle=True``, an ``entry`` string with ``weights``. ANNs (converted to spiking networks
by neurocc) are not compared step by step: the conversion report compares them with the ANN.
NIR, ONNX and ``.pt2`` files are recorded (digest) with the reason they are not run.

The manifest's ``source`` entry: ``{"file", "sha256", "weights", "weights_sha256", "frameworks":
{name: version}, "checked", "why_not", "inputs", "result"}`` (docs/artifact-format.md).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurocc.errors import CompileError, ModelLoadError
from neurocc.ir.graph import Graph
from neurocc.runtime.source.compare import SourceComparison, compare_records

RANDOM_SAMPLES = 16     # random input samples when there is no calibration data
RANDOM_STEPS = 50       # steps of those samples (or the calibration's timesteps)
RANDOM_RATE = 0.2       # their spike probability per input element per step
CHECK_SAMPLES = 64      # calibration samples the compile-time check runs
FRAMEWORKS = ("torch", "snntorch", "sinabs", "norse", "rockpool", "nir", "onnxruntime")


@dataclass
class Source:
    """A model that can (``module`` set) or cannot (``why_not``) run in its own framework."""

    where: str
    module: Any = None
    why_not: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    kind: str = "torch"          # torch (an nn.Module) | onnx (ONNX Runtime) | pt2 (torch.export)


def _sha256(path: Path) -> str:
    from neurocc.ir.artifact import sha256_file

    return sha256_file(path)


def _state_digest(module: Any) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def framework_versions(module: Any = None) -> dict[str, str]:
    """Versions of the frameworks the model's modules come from (torch always, when loaded)."""
    import importlib.metadata as md

    used = {"torch"} if module is not None else set()
    if module is not None:
        used |= {type(m).__module__.split(".")[0] for m in module.modules()}
    out = {}
    for name in FRAMEWORKS:
        if name in used:
            try:
                out[name] = md.version(name)
            except md.PackageNotFoundError:
                pass
    return out


def open_source(model: Any, *, entry: str | None = None, weights: str | Path | None = None,
                trust_pickle: bool = False) -> Source:
    """The source model of ``model`` (what :func:`neurocc.load` was given), loaded to run."""
    import torch

    if isinstance(model, torch.nn.Module):
        return Source(type(model).__name__, model, record={"file": None, "in_memory": type(model).__name__,
                                                           "state_sha256": _state_digest(model)})
    path = Path(model) if isinstance(model, (str, Path)) and Path(model).suffix else None
    if path is None and isinstance(model, str) and ":" in model:
        entry, path = model, None
    rec: dict[str, Any] = {"file": str(path) if path else None}
    if path is not None and path.exists():
        rec["sha256"] = _sha256(path)
    if weights is not None and Path(weights).exists():
        rec.update(weights=str(weights), weights_sha256=_sha256(Path(weights)))
    suffix = path.suffix.lower() if path else ""
    if suffix in (".pt", ".pth") or entry is not None:
        module = _load_torch(path, entry, weights, trust_pickle)
        return Source(str(path or entry), module, record=rec)
    if suffix in (".onnx", ".pt2") and path is not None:
        return Source(str(path), None, record=rec, path=path, kind=suffix[1:])
    what = {".nir": "a NIR file (no framework of its own to run; see docs/source-check.md)",
            ".h5": "a NIR file", ".hdf5": "a NIR file",
            ".json": "a neurocc graph",
            ".net": "a Lava-DL netx file (lava-dl's recorded outputs are its reference: docs/frontends.md)"}.get(suffix, "not a model neurocc can run in its framework")
    return Source(str(model), None, why_not=what, record=rec)


def _load_torch(path: Path | None, entry: str | None, weights: Any, trust_pickle: bool) -> Any:
    """The nn.Module a torch file or entry names (the torch frontend's own loading rules)."""
    import torch

    from neurocc.compiler.frontends.torch import files

    if entry is not None:
        module = files._build(entry)
        wfile = weights if weights is not None else path
        if wfile is not None:
            module.load_state_dict(files._load_weights_only(Path(wfile)))
        return module
    obj = torch.load(path, weights_only=False, map_location="cpu") if trust_pickle \
        else files._load_weights_only(path)
    if not isinstance(obj, torch.nn.Module):
        raise ModelLoadError("holds no model to run", where=str(path), fix=files.ENTRY_FIX)
    return obj


def run_check(src: Source, graph: Graph, inputs: Mapping[str, np.ndarray]) -> SourceComparison:
    """Run the source model and the float reference on ``inputs`` (float32 values, time-major) and
    compare every layer (:func:`.compare.compare_records`)."""
    from neurocc.backends.reference import simulate
    from neurocc.runtime.source.torchrun import run_module

    x = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    got = run_module(src.module, x, list(graph.nodes))
    res = simulate(graph, {k: v.astype(np.float64) for k, v in x.items()}, record=True)
    return compare_records(graph, {**res.outputs, **res.traces}, got, unmapped_modules(src.module, graph))


def unmapped_modules(module: Any, graph: Graph) -> dict[str, list[str]]:
    """Per graph node named after a module: its submodules with parameters that no node is named after."""
    out: dict[str, list[str]] = {}
    for name, m in module.named_modules():
        if name in graph.nodes:
            subs = [f"{name}.{q}" for q, sm in m.named_modules() if q and f"{name}.{q}" not in graph.nodes
                    and any(True for _ in sm.parameters(recurse=False))]
            if subs:
                out[name] = subs
    return out


def random_inputs(graph: Graph, samples: int = RANDOM_SAMPLES, steps: int | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded 0/1 spike trains at :data:`RANDOM_RATE` of each input's shape, time-major."""
    rng = np.random.default_rng(seed)
    return {n: (rng.random((int(steps or RANDOM_STEPS), samples, *graph.nodes[n].shape)) < RANDOM_RATE)
            .astype(np.float32) for n in graph.inputs}


def format_check(cmp: SourceComparison, where: str) -> str:
    """The lines ``compile`` prints: a header, one line per layer, the verdict and first divergence."""
    agree = "-" if cmp.output_count_agreement is None else f"{100 * cmp.output_count_agreement:.1f} %"
    lines = [f"source check against {where} (run in its framework): {cmp.samples} samples, "
             f"{cmp.identical} identical, {cmp.ties} tie(s) at the threshold, {cmp.diverged} diverged; "
             f"output spike counts equal on {agree} of samples"]
    lines += [la.line() for la in cmp.layers]
    if cmp.not_compared:
        lines.append(f"  not compared (no module of that name in the source, or one whose output is not the node's, "
                     f"e.g. a convolution whose pooling the graph folded in): {', '.join(cmp.not_compared)}")
    if cmp.first_divergence:
        fd = cmp.first_divergence
        lines.append(f"  first divergence: node '{fd['node']}' var {fd['var']} step {fd['step']} index "
                     f"{fd['index']}: neurocc reference {fd['expected']:.6g}, source {fd['got']}")
        lines.append(f"  likely cause: {cmp.cause}")
    return "\n".join(lines)


def check_inputs_for(compiled: Any) -> tuple[dict[str, np.ndarray], str]:
    """The compile-time check's inputs: the calibration data (time-major SNN samples), else random."""
    cal = getattr(compiled, "cal", None)
    if cal is not None and not cal.static:
        sub = cal.subset(CHECK_SAMPLES)
        return dict(sub.x), f"{sub.samples} calibration samples"
    x = random_inputs(compiled.float_graph, steps=compiled.timesteps)
    n = next(iter(x.values())).shape
    return x, f"{n[1]} random spike trains, {n[0]} steps, rate {RANDOM_RATE}, seed 0"


def compile_check(src: Source, *, allow_mismatch: bool = False,
                  echo: Callable[[str], None] | None = None) -> Callable[[Any], dict[str, Any]]:
    """The hook :func:`neurocc.compiler.pipeline.compile_model` calls with its ``FloatSide``: runs the
    check, prints it, raises CompileError on a divergence (unless ``allow_mismatch``), and returns
    the manifest's ``source`` entry."""
    say = echo or (lambda s: None)

    def hook(compiled: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {**src.record, "frameworks": _versions(src), "checked": False}
        if compiled.conversion and src.why_not is None and compiled.cal is not None:
            return _ann_hook(src, compiled, doc, allow_mismatch, say)
        why = src.why_not or ("the model is an ANN without calibration data" if compiled.conversion else
                              "the model arrives quantized (no float reading to compare)"
                              if compiled.float_graph is None else None)
        if why is None:
            inputs, how = check_inputs_for(compiled)
            try:
                cmp = run_check(src, compiled.float_graph, inputs)
            except Exception as err:  # the user's model code can raise anything when run step by step
                why = f"running it step by step in its framework failed ({type(err).__name__}: {err})"
            else:
                say(format_check(cmp, src.where) + "\n")
                doc.update(checked=True, inputs=how, result=cmp.to_dict(), allowed_mismatch=not cmp.passed)
                if not cmp.passed and not allow_mismatch:
                    raise _mismatch_error(cmp, src, compiled)
                return doc
        say(f"source check: not run: {src.where} is {why}\n" if src.why_not else f"source check: not run: {why}\n")
        doc["why_not"] = why
        return doc

    return hook


def _versions(src: Source) -> dict[str, str]:
    out = framework_versions(src.module)
    if src.module is None and src.path is None and str(src.record.get("file") or "").lower().endswith(
            (".nir", ".h5", ".hdf5")):
        out.update(framework_versions(None) or {"nir": _version("nir")})
    if src.kind != "torch":
        import importlib.metadata as md

        out.update({name: md.version(name) for name in (("onnxruntime", "onnx") if src.kind == "onnx" else ("torch",))})
    return out


def _version(name: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def run_ann(src: Source, graph: Graph, x: np.ndarray, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ANN check (:mod:`.annrun`): the source ANN against neurocc's reading of it, on static ``x``."""
    from neurocc.runtime.source import annrun

    if src.kind == "onnx":
        got = annrun.run_onnx(src.path, x)
    elif src.kind == "pt2":
        import torch

        module = torch.export.load(src.path).module()
        try:
            got = annrun.run_torch_ann(module, x, [])
        except (AssertionError, RuntimeError):   # exported with a fixed batch (of 1): run sample by sample
            parts = [annrun.run_torch_ann(module, x[i:i + 1], [])["output"] for i in range(len(x))]
            got = {"output": np.concatenate(parts)}
    else:
        got = annrun.run_torch_ann(src.module, x, list(graph.nodes))
    return annrun.compare_ann(graph, {k: v for k, v in got.items() if k not in skip}, x)


def _ann_hook(src: Source, side: Any, doc: dict[str, Any], allow_mismatch: bool,
              say: Callable[[str], None]) -> dict[str, Any]:
    from neurocc.runtime.source import annrun

    (x,) = side.cal.subset(annrun.ANN_SAMPLES).x.values()
    try:
        res = run_ann(src, side.ann_graph, np.asarray(x, np.float32), side.folded)
    except Exception as err:  # the user's model code / runtime can raise anything
        doc["why_not"] = f"running the ANN in its framework failed ({type(err).__name__}: {err})"
        say(f"source check: not run: {doc['why_not']}\n")
        return doc
    say(annrun.format_ann(res, src.where) + "\n")
    doc.update(checked=True, inputs=f"{res['samples']} static calibration samples (the ANN before conversion)",
               result=res, allowed_mismatch=not res["passed"])
    if not res["passed"] and not allow_mismatch:
        fd = res["first_divergence"] or {}
        raise CompileError(f"neurocc's reading of the ANN does not compute what the ANN computes: node "
                           f"'{fd.get('node')}' index {fd.get('index')}: neurocc {fd.get('expected')}, source "
                           f"{fd.get('got')}. Likely cause: {res['likely_cause']}", where=src.where,
                           fix="report it with the model, or compile anyway with --allow-source-mismatch (Python: "
                               "allow_source_mismatch=True): the difference is recorded in the manifest")
    return doc


def _mismatch_error(cmp: SourceComparison, src: Source, compiled: Any) -> CompileError:
    fd = cmp.first_divergence or {}
    return CompileError(
        f"neurocc's float reference does not compute what the source model computes: {cmp.diverged} of "
        f"{cmp.samples} samples diverge (not ties at the threshold); first at node '{fd.get('node')}' var "
        f"{fd.get('var')} step {fd.get('step')} index {fd.get('index')}: reference {fd.get('expected')}, "
        f"source {fd.get('got')}. Likely cause: {cmp.cause}",
        where=f"{src.where} (graph '{compiled.float_graph.name}')",
        problems=[la.line().strip() for la in cmp.layers if la.diverged_samples],
        fix="rewrite the layer named above with modules whose semantics neurocc reproduces (docs/frontends.md), "
            "or compile anyway with --allow-source-mismatch (Python: allow_source_mismatch=True): the measured "
            "difference is recorded in the artifact's manifest under 'source'")


def validation_row(art: Any, src: Source, inputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """validation.json's ``source`` result: the source model against the ``reference`` backend (the
    artifact's float graph) on the validation inputs; ``rule`` ``source`` (spikes exact, graded
    values and states within :data:`.compare.TOL_REL`, ties at the threshold allowed)."""
    res: dict[str, Any] = {"backend": "source", "reference": "reference", "rule": "source", "min_cosine": None,
                           "cosine": None, "cosine_per_layer": {}, "first_divergence_class": None,
                           "source": {**src.record, "frameworks": _versions(src)}}
    if art.manifest.get("conversion"):   # an ANN: checked before conversion, at compile (its graph is gone)
        done = (art.manifest.get("source") or {}).get("result")
        return {**res, "exact": bool(done and done["passed"]), "compared": len((done or {}).get("layers", [])),
                "mismatches": 0 if not done or done["passed"] else 1,
                "first_divergence": (done or {}).get("first_divergence"),
                "first_divergence_explanation": (done or {}).get("likely_cause"), "passed": bool(done and done["passed"]),
                "error": None if done else "an ANN is checked before conversion, at compile; this artifact holds "
                                           "no such check (compile it from the model file)"}
    if src.module is None:
        return {**res, "exact": False, "compared": 0, "mismatches": 0, "first_divergence": None,
                "first_divergence_explanation": None, "passed": False,
                "error": f"the source model cannot run: {src.where} is {src.why_not}"}
    try:
        cmp = run_check(src, art.float_graph, inputs)
    except Exception as err:  # the user's model code can raise anything when run step by step
        return {**res, "exact": False, "compared": 0, "mismatches": 0, "first_divergence": None,
                "first_divergence_explanation": None, "passed": False,
                "error": f"running {src.where} step by step failed ({type(err).__name__}: {err})"}
    spikes = sum(la.spikes_compared for la in cmp.layers)
    return {**res, "exact": cmp.identical == cmp.samples, "compared": spikes,
            "mismatches": sum(la.spike_mismatches for la in cmp.layers), "first_divergence": cmp.first_divergence,
            "first_divergence_explanation": cmp.cause, "passed": cmp.passed, "error": None,
            "class_agreement": cmp.output_count_agreement, "source_check": cmp.to_dict()}
