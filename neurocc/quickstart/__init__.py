"""``neurocc quickstart``: train a digits network, compile it for every target, run it on every
backend, validate every backend, and print one table (docs/quickstart.md explains every column).

1. Train the MLP 64 → 64 → 32 → 10 of :mod:`neurocc.zoo` on scikit-learn's bundled 8×8 digits
   (1347 train / 450 test, seed 0; seconds on a CPU) and score the float ANN on the test set.
2. For every target of targets.yaml (or ``--targets FILE``; ``--only`` picks some), in file
   order: compile it (ANN → SNN conversion with the training split as calibration data,
   ``timesteps`` steps per digit; integer targets are quantized to their numerics), then evaluate
   and evaluate each backend (:mod:`.target`) on the 450 test digits: the slow simulators (Lava,
   NEST) on the first ``slow_samples`` (default: all 450; ``--samples N|all``), NEST in sample
   batches on Ray workers, the machine's cores by default (one Ray instance for every target),
   Lava in-process where its net runs in lanes (faster than Ray's start); every compared
   backend is validated on the first ``validate_samples`` digits with every state variable recorded (exact against the emulator for integer targets, cosine against the
   float reference for float ones).
3. Write the HTML report of one artifact (the first of :data:`REPORT_TARGETS` that compiled),
   its rasters showing real test digits.

Output folder (``--out``, default ``neurocc-quickstart/`` in the current directory):
``model/mlp.pt2``, ``data/cal.npz`` and ``data/test.npz`` (to repeat any step by hand with the
CLI), ``artifacts/<target>/`` (each with its ``validation.json``; the report under
``artifacts/<REPORT>/report/``), ``quickstart.txt`` (what was printed), ``quickstart.json``
(every row) and ``quickstart.log`` (full error messages, tracebacks of bugs, warnings). Every file
and artifact is written atomically (complete or absent); a folder that is neither empty nor a
quickstart folder is never written into.

Progress goes to stderr (:mod:`neurocc.progress`: a live bar on a terminal, one line per step
otherwise); the table to stdout. A failing step (a missing toolchain, a bug) fails only its row,
which says why on one line; the exit status is 1 when any row failed, 0 otherwise.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import neurocc
from neurocc.errors import InputError
from neurocc.progress import Step
from neurocc.quickstart.table import FAST, FULL, SLOW_PER_WORKER, Row, Settings, format_table, judge, step_summary
from neurocc.quickstart.target import Digits, Log, attempt, encoded, run_target, substeps
from neurocc.targets import Target

DEFAULT_OUT = "neurocc-quickstart"
FORMAT = "neurocc-quickstart"               # quickstart.json "format": marks a folder as ours
REPORT_TARGETS = ("loihi2", "loihi1", "edge-cpu", "emulator")
REPORT_SAMPLES = 4                          # test digits in the report's rasters and firing rates

__all__ = ["DEFAULT_OUT", "FAST", "FULL", "Result", "Row", "Settings", "format_table", "judge", "quickstart"]


@dataclass(frozen=True)
class Result:
    """What one quickstart did: the rows, the verdict, the failures, where the report is."""

    rows: tuple[Row, ...]
    verdict: str
    failures: tuple[str, ...]
    report: Path | None
    out_dir: Path
    seconds: float
    settings: Settings = field(default=FULL)
    report_error: str | None = None

    @property
    def exit_status(self) -> int:
        return 1 if self.failures else 0

    def text(self) -> str:
        """The table, the verdict and where the files are (what the CLI prints)."""
        return "\n".join([
            format_table(self.rows), "", f"verdict: {self.verdict}",
            f"report: {self.report}" if self.report else f"report: FAILED: {self.report_error or 'nothing compiled'}",
            (f"files: {self.out_dir}/ (quickstart.txt, quickstart.json, quickstart.log, artifacts/); "
             f"total {self.seconds:.0f} s")])


def quickstart(targets_file: str | Path | None = None, out_dir: str | Path = DEFAULT_OUT, *, fast: bool = False,
               only: Sequence[str] | None = None, settings: Settings | None = None, workers: int | None = None,
               ray_address: str | None = None, samples: int | None = None) -> Result:
    """Run the quickstart (module docstring). Raises a NeuroccError only when nothing can run: an
    unknown ``only`` name, an output folder that is not ours, an ANN that cannot be trained.
    ``workers``/``ray_address``: where the slow simulators run (default: the machine's cores);
    ``samples``: test digits the slow simulators score (default: :data:`SLOW_PER_WORKER` per worker)."""
    start = time.monotonic()
    cfg = settings or (FAST if fast else FULL)
    if workers is not None or ray_address is not None:
        cfg = replace(cfg, workers=workers if workers is not None else cfg.workers,
                      ray_address=ray_address or cfg.ray_address)
    if samples is not None:
        cfg = replace(cfg, slow_samples=samples)
    chosen = choose(neurocc.load_targets(targets_file), only)
    out = prepare(Path(out_dir))
    log, total = Log(), len(chosen) + 2
    with Step("train the float ANN on the digits", index=(1, total)) as step:
        t0 = time.monotonic()
        digits = train(cfg, out)
        acc = ann_accuracy(digits)
        step.done(f"{acc:.2%} on {len(digits.y_te)} test digits")
    rows = [Row("float ANN", "torch", acc, len(digits.y_te), compile_s=time.monotonic() - t0)]
    arts: dict[str, Path] = {}
    with shared_workers(chosen, cfg, len(digits.y_te)) as cfg:
        for i, tgt in enumerate(chosen, start=2):
            with Step(tgt.name, total=substeps(tgt), index=(i, total)) as step:
                target_rows, art = run_target(tgt, digits, cfg, out, step, log)
                step.done(step_summary(target_rows))
            rows += target_rows
            if art is not None:
                arts[tgt.name] = art
    with Step("HTML report", index=(total, total)) as step:
        report, report_error = write_the_report(arts, digits, log)
        step.done(str(report) if report else f"FAILED: {report_error}")
    verdict, failures = judge(rows)
    if report is None:
        failures.append(f"HTML report: {report_error}")
        verdict += " The HTML report FAILED (see below)."
    result = Result(tuple(rows), verdict, tuple(failures), report, out, time.monotonic() - start, cfg, report_error)
    write_outputs(out, result, log)
    return result


@contextlib.contextmanager
def shared_workers(chosen: Sequence[Target], cfg: Settings, digits: int) -> Iterator[Settings]:
    """One Ray instance for every target's slow simulators (started once, ~3-6 s), when they run in
    parallel (:func:`neurocc.runtime.parallel.resolve_workers`); ``cfg`` with ``workers`` 1 when
    nothing runs in parallel, else as given (None: each ``evaluate`` applies its default, so NEST
    uses every core and a Lava net in lanes runs in-process, where it is faster)."""
    from neurocc.quickstart.target import SLOW_BACKENDS
    from neurocc.runtime.parallel import resolve_workers

    slow = [t.backend for t in chosen if t.backend in SLOW_BACKENDS]
    layout = resolve_workers(cfg.workers, slow, cfg.ray_address, min(cfg.slow_samples or digits, digits))
    if cfg.slow_samples is None:   # the time budget: SLOW_PER_WORKER digits per worker
        cfg = replace(cfg, slow_samples=min(digits, SLOW_PER_WORKER * (layout.workers if layout.parallel else 1)))
    if not slow or not layout.parallel:
        yield replace(cfg, workers=1)
        return
    from neurocc.runtime.ray_pool import ray_instance

    with ray_instance(layout):   # workers left None: each evaluate's own default (a Lava net in lanes runs in-process)
        yield replace(cfg, ray_address=layout.address)


def choose(targets: dict[str, Target], only: Sequence[str] | None) -> list[Target]:
    """Every target in file order, or the ``only`` ones (InputError naming unknown names)."""
    if not only:
        return list(targets.values())
    unknown = [n for n in only if n not in targets]
    if unknown:
        raise InputError(f"unknown target(s): {', '.join(unknown)}", where="--only",
                         fix=f"use names from `neurocc targets`: {', '.join(targets)}")
    return [targets[n] for n in dict.fromkeys(only)]


def prepare(out: Path) -> Path:
    """Create ``out`` and mark it as ours; refuse a non-empty folder no quickstart wrote."""
    out = out.absolute()
    marker = out / "quickstart.json"
    if out.exists() and not out.is_dir():
        raise InputError("the output path exists and is not a folder", where=str(out), fix="pass another --out DIR")
    if out.is_dir() and any(out.iterdir()) and _format_of(marker) != FORMAT:
        raise InputError("the output folder is not empty and was not written by neurocc quickstart, so "
                         "nothing is written into it", where=str(out),
                         fix="pass another --out DIR, or remove this folder yourself")
    out.mkdir(parents=True, exist_ok=True)
    _write_text(marker, json.dumps({"format": FORMAT, "status": "running"}) + "\n")
    return out


def _format_of(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def train(cfg: Settings, out: Path) -> Digits:
    """Train the digits MLP; write model/mlp.pt2 (torch.export), data/cal.npz and data/test.npz."""
    try:
        import torch

        from neurocc.zoo import load_digits_split, train_digits_ann

        x_tr, y_tr, x_te, y_te = load_digits_split(cfg.seed)
        model = train_digits_ann(cfg.seed, epochs=cfg.epochs)
    except ModuleNotFoundError as err:
        raise InputError(f"the quickstart needs the Python package '{err.name}' to train its network",
                         fix="run the set-up (`make demo` or scripts/setup.sh), or pip install it") from None
    from neurocc._files import atomic_path, write_npz

    write_npz(out / "data" / "cal.npz", {"x": x_tr, "y": y_tr})
    write_npz(out / "data" / "test.npz", {"x": x_te, "y": y_te})
    with atomic_path(out / "model" / "mlp.pt2") as tmp:
        torch.export.save(torch.export.export(model, (torch.zeros(1, 64),)), tmp)
    return Digits(x_tr, y_tr, x_te, y_te, model)


def ann_accuracy(d: Digits) -> float:
    from neurocc.zoo import ann_accuracy as accuracy

    return accuracy(d.model, d.x_te, d.y_te)


def write_the_report(arts: dict[str, Path], d: Digits, log: Log) -> tuple[Path | None, str | None]:
    """``write_report`` for the first of :data:`REPORT_TARGETS` compiled (else the first artifact),
    fed the first :data:`REPORT_SAMPLES` test digits: (the page, None) or (None, what failed)."""
    from neurocc.runtime.report import write_report

    name = next((t for t in REPORT_TARGETS if t in arts), next(iter(arts), None))
    if name is None:
        return None, "no target compiled"
    art = arts[name]
    inputs, _ = attempt(log, f"{name}: report inputs", lambda: encoded(art, d.x_te[:REPORT_SAMPLES]))
    page, err = attempt(log, f"{name}: report", lambda: write_report(art, inputs=inputs))
    return page, None if page is not None else f"{name}: {err}"


def write_outputs(out: Path, result: Result, log: Log) -> None:
    """quickstart.log, quickstart.txt, then quickstart.json (status done), each atomically."""
    doc = {"format": FORMAT, "status": "done", "exit_status": result.exit_status, "verdict": result.verdict,
           "failures": list(result.failures), "report": None if result.report is None else str(result.report),
           "seconds": result.seconds, "settings": asdict(result.settings), "neurocc_version": neurocc.__version__,
           "rows": [asdict(r) for r in result.rows]}
    _write_text(out / "quickstart.log", "".join(log.lines) or "no errors or warnings\n")
    _write_text(out / "quickstart.txt", result.text() + "\n")
    _write_text(out / "quickstart.json", json.dumps(doc, indent=1) + "\n")


def _write_text(path: Path, text: str) -> None:
    from neurocc._files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text)
