"""The quickstart's rows, its verdict and its text table (docs/quickstart.md explains each column).

Columns: ``target``; ``backend``; ``accuracy %`` (top-1 on the test digits); ``n`` (how many);
``judge %`` (on rows scored on a subset: the accuracy of the row's judge, the emulator or the float
reference, on the same ``n`` digits); ``check`` (the validation: ``exact vs emulator: M of N
differ``, or ``cosine vs reference: c (min m)``); ``cores (chips)`` (from the artifact's mapping;
``-`` for targets without cores); ``compile s`` and ``run s`` (wall seconds: compiling the target;
evaluating plus validating the backend).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """How much work the quickstart does (``--fast`` = :data:`FAST`, for tests)."""

    timesteps: int = 64          # steps per test digit (ANN → SNN conversion)
    slow_samples: int | None = None   # test digits scored on the slow simulators (Lava, NEST); None:
    #                                   SLOW_PER_WORKER per worker (the time budget), at most all
    validate_samples: int = 8    # test digits every compared backend runs with every state variable recorded
    epochs: int = 40             # training epochs of the digits MLP
    seed: int = 0                # data split, training and Poisson draws
    workers: int | None = None   # Ray workers for the slow simulators (None: the machine's cores)
    ray_address: str | None = None   # join this Ray cluster (None: $RAY_ADDRESS, else a local Ray)


# The slow rows: Lava runs a batch's digits side by side in lanes (all 450 in ~7 s on one worker)
# and NEST costs ~0.12-0.15 s per digit per worker (docs/quickstart.md), so even one core scores
# all 450 test digits within the quickstart's 10-minute budget.
SLOW_PER_WORKER = 450
FULL = Settings()
FAST = Settings(timesteps=32, slow_samples=8, validate_samples=2)


@dataclass(frozen=True)
class Row:
    """One line of the table. ``passed``: None when nothing was judged; ``note``: what failed (one line)."""

    target: str
    backend: str
    accuracy: float | None = None
    n: int | None = None
    judge_accuracy: float | None = None     # the judge's accuracy on the same n digits (subset rows)
    check: str = "-"
    passed: bool | None = None
    cores: str = "-"
    compile_s: float | None = None
    run_s: float | None = None
    note: str = ""

    @property
    def no_runtime(self) -> bool:
        return self.check == NO_RUNTIME


NO_RUNTIME = "no runtime"
COLUMNS = ("target", "backend", "accuracy %", "n", "judge %", "check", "cores (chips)", "compile s", "run s")
RIGHT = {2, 3, 4, 7, 8}   # right-aligned (numeric) columns


def check_text(r: Mapping[str, Any]) -> tuple[str, bool, str | None]:
    """The check column for one validation.json result: (text, passed, what failed or None)."""
    if r.get("error"):
        return "FAILED", False, str(r["error"])
    if r["rule"] == "exact":
        text = f"exact vs {r['reference']}: {r['mismatches']:,} of {r['compared']:,} differ"
        if r["passed"]:
            return text, True, None
        fd = r.get("first_divergence") or {}
        why = (f"{r['backend']} differs from the {r['reference']}: first at node '{fd.get('node')}' "
               f"{fd.get('var')} step {fd.get('step')} index {fd.get('index')}")
        cls = r.get("first_divergence_class")
        return text, False, why + (f" [{cls}: {r.get('first_divergence_explanation')}]" if cls else "")
    cos, need = r.get("cosine"), float(r.get("min_cosine") or 0.0)
    text = f"cosine vs {r['reference']}: " + ("-" if cos is None else f"{cos:.4f} (min {need:.2f})")
    return text, bool(r["passed"]), None if r["passed"] else (r.get("reason") or f"mean-activity cosine below {need:.2f}")


def judge(rows: Sequence[Row]) -> tuple[str, list[str]]:
    """(the one-line verdict, every failure as ``target/backend: why``)."""
    failures = [f"{r.target}/{r.backend}: {r.note or r.check}" for r in rows if r.passed is False]
    if failures:
        names = ", ".join(f.split(":")[0] for f in failures)
        return f"{len(failures)} row(s) failed: {names} (the line under each row says why)", failures
    own = [r for r in rows if r.passed and r.backend not in ("emulator", "reference")]
    exact = [f"{r.backend} on {r.target}" for r in own if r.check.startswith("exact")]
    cosine = [f"{r.backend} on {r.target}" for r in own if r.check.startswith("cosine")]
    parts = []
    if exact:
        parts.append(f"every backend reproduced the emulator bit for bit ({', '.join(exact)})")
    if cosine:
        parts.append(f"the float simulators matched the float reference ({', '.join(cosine)})")
    if any(r.backend == "emulator" and r.passed for r in rows):
        parts.append("every quantized network agrees with its float reference")
    return ("; ".join(parts) or "nothing was validated") + ".", []


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table; a row with a note is followed by one ``->`` line."""
    cells = [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]

    def line(cs: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in RIGHT else c.ljust(w) for i, (c, w) in enumerate(zip(cs, widths, strict=True)))
        return "  ".join(padded).rstrip()

    out = [line(COLUMNS), line(["-" * w for w in widths])]
    for r, c in zip(rows, cells, strict=True):
        out.append(line(c))
        if r.note:
            out.append(f"{'':{widths[0]}}  -> {r.note}")
    return "\n".join(out)


def _cells(r: Row) -> list[str]:
    acc = NO_RUNTIME if r.no_runtime else "-" if r.accuracy is None else f"{100 * r.accuracy:.2f}"
    return [r.target, r.backend, acc, "-" if r.n is None else str(r.n),
            "" if r.judge_accuracy is None else f"{100 * r.judge_accuracy:.2f}", r.check, r.cores,
            _secs(r.compile_s), _secs(r.run_s)]


def _secs(s: float | None) -> str:
    return "-" if s is None else f"{s:.1f}"


def step_summary(rows: Sequence[Row]) -> str:
    """The progress line's closing summary for one target: ``emulator 97.1% ok, loihi 94.0% ok``."""
    parts = []
    for r in rows:
        if r.no_runtime:
            parts.append("compiled, no runtime")
            continue
        acc = "-" if r.accuracy is None else f"{r.accuracy:.1%}"
        state = {True: "ok", False: "FAILED", None: ""}[r.passed]
        parts.append(f"{r.backend} {acc} {state}".strip())
    return ", ".join(parts)
