"""What a compile writes beside the graphs: the mapping report (which must fit), the manifest's
extra entries (timesteps, encoding, calibration, conversion, diagnostics, budget, mapping), the
calibration sample ``neurocc validate --samples N`` draws from, and the backend's own files.

Files: :data:`MAPPING_FILE` (docs/artifact-format.md §6) and :data:`CAL_SAMPLE_FILE` (the first
:data:`CAL_SAMPLE` calibration samples: ``x`` per input, ``labels``).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurocc._files import npz_bytes
from neurocc.compiler.compiled import Compiled, compile_graph
from neurocc.ir.graph import Graph
from neurocc.targets import Target

MAPPING_FILE = "mapping.json"
CAL_SAMPLE_FILE = "calibration_sample.npz"  # the first CAL_SAMPLE calibration samples: x per input, labels
CAL_SAMPLE = 64

__all__ = ["CAL_SAMPLE", "CAL_SAMPLE_FILE", "MAPPING_FILE", "backend_emitter", "calibration_sample",
           "manifest_extra", "mapping", "recompiler"]


def mapping(graph: Graph, tgt: Target, targets_file: str | Path | None, recompile: Any = None,
            rates: dict[str, float] | None = None) -> Any:
    """The mapping report; MappingError (naming the binding constraint) when it does not fit.
    ``rates``: the calibrated spike rate of each layer, weighting the placement's traffic."""
    from neurocc.compiler.mapping import mapping_report, require_fit
    from neurocc.targets import load_targets

    others = {n: t for n, t in load_targets(targets_file).items() if n != tgt.name}
    return require_fit(mapping_report(graph, tgt, targets=others, recompile=recompile, rates=rates))


def calibrated_rates(compiled: Compiled) -> dict[str, float] | None:
    """The calibrated spike rate of each layer (None without calibration statistics)."""
    rates = {n: float(d["rate"]) for n, d in ((compiled.calibration or {}).get("layers") or {}).items()
             if isinstance(d, dict) and d.get("rate") is not None}
    return rates or None


def recompiler(graph: Graph, tgt: Target, kwargs: dict[str, Any]) -> Callable[[Any], tuple[Graph, Any]]:
    """For the prune fix: compile ``graph`` pruned by a spec as ``compile --prune`` would; return
    the executed graph and the emulator's accuracy on the calibration data (None without labels)."""
    def recompile(spec: Any) -> tuple[Graph, Any]:
        from neurocc.compiler.prune import prune_graph

        c = compile_graph(prune_graph(graph, spec), tgt, **kwargs)
        return c.graph, (None if c.diagnostics is None else c.diagnostics.accuracy_quant)

    return recompile


def manifest_extra(graph: Graph, c: Compiled, mapping: Any, budget: dict[str, Any] | None, calibration: Any,
                   timesteps: int | None) -> dict[str, Any]:
    """The manifest's entries beyond the graphs, the target and the quantization report."""
    cal = c.calibration
    if cal is None and calibration is not None:
        cal = {"file": str(calibration) if isinstance(calibration, (str, Path)) else None, "used": False}
    extra: dict[str, Any] = {}
    if c.graded_inputs:
        from neurocc.ir.artifact import io_spec

        extra["inputs"] = [{**i, "values": "graded"} if i["name"] in c.graded_inputs else i
                           for i in io_spec(c.graph)[0]]
    return {**extra, "timesteps": c.timesteps if c.timesteps is not None else timesteps, "encoding": c.encoding,
            "source_graph": graph.name, "calibration": cal, "conversion": c.conversion,
            "diagnostics": _diagnostics_doc(c.diagnostics), "accuracy_budget": budget,
            "mapping": {"file": MAPPING_FILE, "fits": mapping.fits, "cores": mapping.cores, "chips": mapping.chips}}


def _diagnostics_doc(d: Any) -> dict[str, Any] | None:
    """The manifest's summary of the emulator-in-the-loop diagnostics (None without them)."""
    if d is None:
        return None
    points, metric = d.loss_points()
    return {"samples": d.samples, "agreement": d.agreement, "output_cosine": d.output_cosine,
            "accuracy_float": d.accuracy_float, "accuracy_quant": d.accuracy_quant,
            "reference_accuracy": d.reference_accuracy, "reference_agreement": d.reference_agreement,
            "loss_points": points, "loss_metric": metric, "failures": list(d.failures)}


def calibration_sample(compiled: Compiled, files: dict[str, bytes], extra: dict[str, Any]) -> None:
    """Add the first :data:`CAL_SAMPLE` calibration samples to ``files`` and name them in ``extra``
    (what ``neurocc validate --samples N`` draws from); nothing without calibration data."""
    if compiled.cal is None:
        return
    sample = compiled.cal.subset(CAL_SAMPLE)
    files[CAL_SAMPLE_FILE] = npz_bytes({**sample.x, **({} if sample.y is None else {"labels": sample.y})})
    extra["calibration_sample"] = {"file": CAL_SAMPLE_FILE, "samples": sample.samples, "static": sample.static}


def backend_emitter(tgt: Target, compiled: Compiled) -> Callable[[Path], None] | None:
    """The backend's ``emit_files(directory, graph, float_graph, target)``, if it defines one."""
    if tgt.backend in (None, "emulator"):
        return None
    import importlib

    from neurocc.backends import REGISTRY

    try:
        module = importlib.import_module(REGISTRY[tgt.backend])
    except ModuleNotFoundError:
        return None
    emit = getattr(module, "emit_files", None)
    if emit is None:
        return None
    return lambda directory: emit(directory, compiled.graph, compiled.float_graph, tgt)
