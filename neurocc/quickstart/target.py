"""One target of the quickstart: compile the digits network, evaluate and validate each backend.

Backends per target (:func:`backends`): integer targets show the ``emulator`` (the
specification, judged against the float ``reference`` by cosine: the quantization agreement) and
the target's own backend (judged against the emulator element for element); float32 targets show
the ``reference`` (the judge itself) and their own backend (judged by cosine); a target without a
runtime only compiles. Every failure is caught here and becomes the row's one-line note (the
full message, or the traceback of a bug, goes to the log), so one broken backend never stops the
others.
"""
from __future__ import annotations

import json
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import neurocc
from neurocc.errors import NeuroccError
from neurocc.progress import Step
from neurocc.quickstart.table import NO_RUNTIME, Row, Settings, check_text
from neurocc.targets import Target

SLOW_BACKENDS = ("loihi", "spinnaker")      # simulators run on Ray workers (a subset of the digits with --fast)
SPIKE_INPUT_BACKENDS = ("spinnaker",)       # take spikes only: the digits are Poisson-encoded
NOTE_CHARS = 160                            # a row's note is clipped to this (the log has it all)
T = TypeVar("T")


@dataclass(frozen=True)
class Digits:
    """The data and the trained float ANN (a torch module)."""

    x_tr: np.ndarray
    y_tr: np.ndarray
    x_te: np.ndarray
    y_te: np.ndarray
    model: Any


class Log:
    """Full error messages, tracebacks and warnings (written to ``quickstart.log``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, where: str, text: str) -> None:
        self.lines.append(f"== {where}\n{text.rstrip()}\n")


def attempt(log: Log, where: str, fn: Callable[[], T]) -> tuple[T | None, str | None]:
    """``(fn(), None)``, or ``(None, one line saying what failed)``; warnings and the full text go to ``log``."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = fn()
        for w in caught:
            log.add(f"{where} (warning)", f"{w.category.__name__}: {w.message}")
        return value, None
    except NeuroccError as err:
        log.add(where, f"{type(err).__name__}: {err}")
        first = f": {err.problems[0]}" if err.problems else ""
        return None, clip(f"{type(err).__name__}: {err.what}{first}")
    except Exception as err:  # noqa: BLE001  (one broken backend must not stop the others)
        log.add(where, traceback.format_exc())
        head = (str(err).strip().splitlines() or [""])[0]
        return None, clip(f"{type(err).__name__}: {head} (a bug in neurocc; traceback in quickstart.log)")


def clip(text: str, limit: int = NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "~"


def backends(tgt: Target) -> list[str]:
    """The judge (``emulator``, or ``reference`` for float32 targets), then the target's own backend."""
    if tgt.backend is None:
        return []
    first = "reference" if tgt.numerics == "float32" else "emulator"
    return [first] + ([tgt.backend] if tgt.backend != first else [])


def substeps(tgt: Target) -> int:
    """Progress sub-steps: compile, then evaluate and validate per backend."""
    return 1 + 2 * len(backends(tgt))


def run_target(tgt: Target, d: Digits, cfg: Settings, out: Path, step: Step, log: Log
               ) -> tuple[list[Row], Path | None]:
    """The rows of ``tgt`` and its artifact (None when the compile failed)."""
    step.advance(f"compiling for {tgt.name}")
    t0 = time.monotonic()
    art, err = attempt(log, f"{tgt.name}: compile", lambda: compile_digits(tgt, d, cfg, out))
    compile_s = time.monotonic() - t0
    names = backends(tgt)
    if art is None:
        return [Row(tgt.name, names[-1] if names else "-", passed=False, compile_s=compile_s,
                    note=f"compile failed: {err}")], None
    cores = cores_used(art, tgt)
    if not names:
        return [Row(tgt.name, "(none)", check=NO_RUNTIME, cores=cores, compile_s=compile_s,
                    note="plan and compile only: this target has no runtime yet (targets.yaml backend: null)")], art
    inputs, ierr = attempt(log, f"{tgt.name}: validation inputs", lambda: encoded(art, d.x_te[:cfg.validate_samples]))
    docs: list[dict[str, Any]] = []
    rows = []
    for i, b in enumerate(names):
        row = backend_row(tgt, art, b, judge=names[0] if i else None, d=d, cfg=cfg, step=step, log=log,
                          inputs=inputs, inputs_error=ierr, docs=docs)
        rows.append(replace(row, cores=cores, compile_s=compile_s if i == 0 else None))
    if docs:
        attempt(log, f"{tgt.name}: validation.json", lambda: merge_validation(art, docs))
    return rows, art


def compile_digits(tgt: Target, d: Digits, cfg: Settings, out: Path) -> Path:
    """Convert and compile the ANN for ``tgt`` into ``out/artifacts/<target>`` (written atomically)."""
    from neurocc.ir.encoding import Encoding

    kind = "poisson" if tgt.backend in SPIKE_INPUT_BACKENDS else "constant"
    return Path(neurocc.compile(d.model, tgt, out / "artifacts" / tgt.name, calibration={"x": d.x_tr, "y": d.y_tr},
                                timesteps=cfg.timesteps, input_shape=(64,),
                                encoding=Encoding(kind, cfg.timesteps, seed=cfg.seed)))


def cores_used(art: Path, tgt: Target) -> str:
    """``cores (chips)`` from the artifact's mapping; ``-`` for a target without cores (a CPU, the emulator)."""
    if tgt.limits.cores_per_chip is None:
        return "-"
    mapping = json.loads((art / "manifest.json").read_text()).get("mapping") or {}
    if "cores" not in mapping:
        return "?"
    chips = int(mapping.get("chips", 1))
    return f"{mapping['cores']} ({chips} chip{'s' if chips != 1 else ''})"


def encoded(art: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Static inputs ``x`` encoded as the artifact encodes them, for timesteps + pipeline latency steps."""
    from neurocc.ir.encoding import encode
    from neurocc.runtime.evaluate import artifact_encoding, latency
    from neurocc.runtime.run import as_artifact

    a = as_artifact(art)
    enc = artifact_encoding(a.manifest)
    return {a.inputs[0]["name"]: encode(x, enc, enc.timesteps + latency(a.graph))}


def backend_row(tgt: Target, art: Path, backend: str, *, judge: str | None, d: Digits, cfg: Settings, step: Step,
                log: Log, inputs: dict[str, np.ndarray] | None, inputs_error: str | None,
                docs: list[dict[str, Any]]) -> Row:
    """Evaluate ``backend`` (a subset on slow simulators), then validate it against its reference."""
    t0 = time.monotonic()
    n = min(cfg.slow_samples or len(d.y_te), len(d.y_te)) if backend in SLOW_BACKENDS else len(d.y_te)
    step.advance(f"{backend}: evaluating {n} test digits")
    acc, judge_acc, err = _evaluate(tgt, art, backend, judge, d, n, log, cfg, _counter(step, backend, n))
    judged = not (backend == "reference" and tgt.numerics == "float32")   # the float reference judges; it is not judged
    step.advance(f"{backend}: validating on {cfg.validate_samples} digits" if judged else f"{backend}: the judge")
    check, passed, verr, counts = "-", None, None, None
    if judged:
        if inputs is None:
            verr = f"no validation inputs: {inputs_error}"
        else:
            doc, verr = attempt(log, f"{tgt.name}: {backend} validate", lambda: validate_one(art, backend, inputs))
            if doc is not None:
                docs.append(doc)
                check, passed, verr = check_text(doc["results"][0])
                counts = doc.get("overflow")
    if err and verr == err:
        notes = [f"evaluate and validation failed: {err}"]
    else:
        notes = ([f"evaluate failed: {err}"] if err else []) + ([f"validation failed: {verr}"] if verr else [])
    over = [f"overflow: {node} " + ", ".join(f"{k} {v}" for k, v in ev.items()) + " (quickstart.log)"
            for node, ev in (counts or {}).items()]   # a note only: the validation verdict judges the outputs
    return Row(tgt.name, backend, acc, n if acc is not None else None, judge_acc, check,
               False if notes else passed, run_s=time.monotonic() - t0, note=clip("; ".join(notes + over)))


def _counter(step: Step, backend: str, n: int) -> Callable[[int], None]:
    """``on_samples`` for :func:`neurocc.runtime.evaluate.evaluate`: digits done, rate and ETA in
    the step's note (batches finish on any worker, in any order)."""
    from neurocc.progress import rate

    start, done = time.monotonic(), [0]

    def add(k: int) -> None:
        done[0] += k
        step.note(f"{backend}: evaluating {done[0]}/{n} test digits" + rate(done[0], n, time.monotonic() - start,
                                                                            "digits"))
    return add


def _evaluate(tgt: Target, art: Path, backend: str, judge: str | None, d: Digits, n: int, log: Log,
              cfg: Settings, on_samples: Callable[[int], None] | None = None
              ) -> tuple[float | None, float | None, str | None]:
    """(accuracy on the first ``n`` test digits, the judge's on the same digits when n is a subset,
    error); the slow simulators' batches on ``cfg.workers`` Ray workers (:mod:`neurocc.runtime.parallel`)."""
    from neurocc.runtime.evaluate import evaluate

    data = {"x": d.x_te[:n], "y": d.y_te[:n]}
    where = {"workers": cfg.workers, "ray_address": cfg.ray_address} if backend in SLOW_BACKENDS else {}
    res, err = attempt(log, f"{tgt.name}: {backend} evaluate",
                       lambda: evaluate(art, data, backend=backend, batch_size=n, on_samples=on_samples, **where))
    if res is None:
        return None, None, err
    judge_acc = None
    if judge is not None and n < len(d.y_te):
        same, _ = attempt(log, f"{tgt.name}: {judge} on the same {n} digits",
                          lambda: evaluate(art, data, backend=judge, batch_size=n))
        judge_acc = None if same is None else float(same["accuracy"])
    return float(res["accuracy"]), judge_acc, None


def validate_one(art: Path, backend: str, inputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """``validate_artifact`` for one backend, written to a scratch file (merged into validation.json later)."""
    from neurocc.runtime.validate import validate_artifact

    scratch = art.parent / f".{art.name}.validation-{backend}.json"
    try:
        return validate_artifact(art, backends=[backend], inputs=inputs, json_path=scratch)
    finally:
        scratch.unlink(missing_ok=True)


def merge_validation(art: Path, docs: list[dict[str, Any]]) -> None:
    """One ``DIR/validation.json`` in the Contract's layout, with every validated backend's result."""
    from neurocc.runtime.validate import VALIDATION_FILE, write_json

    merged = {**docs[0], "artifact": str(art), "results": [r for doc in docs for r in doc["results"]]}
    write_json(art / VALIDATION_FILE, merged)
