"""``neurocc plan MODEL [MODEL ...] --target a,b --workers N``: many models and targets at once.

In this process (``--workers 1``, the default) each model is planned for every target in turn
(:func:`neurocc.plan`). With more workers (or ``--ray-address``) every (model, target) pair is a
Ray task (:class:`neurocc.runtime.ray_tasks.RayTasks`): the worker measures the model's activity
(the calibration run, an artifact's data run) and maps it onto that target. A target's row does not
depend on the other targets, so the rows, gathered per model in target order, are the ones the
sequential run prints: the same report, for any number of workers (tested). The activity
measurement is repeated per pair: worth it when mapping and measuring take seconds.

Models go to the workers as loaded graphs (loaded here, with the command's load options) and
calibration files as their arrays; an artifact directory and ``--data`` are read by the worker
(on a cluster: a path every machine sees).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plan_models"]


def plan_models(models: Sequence[Any], targets: Sequence[Any], *, workers: int | None = None,
                ray_address: str | None = None, **options: Any) -> list[list[Any]]:
    """The plan rows of each model (a Graph, a model file or an artifact directory), in order, for
    ``targets`` (Target objects); ``options``: :func:`neurocc.plan`'s (steps, rate, calibration,
    dt, data, and load options for model files)."""
    import neurocc
    from neurocc.compiler.trials import never
    from neurocc.runtime.ray_tasks import runner_for

    with runner_for(workers, ray_address, "plan") as runner:
        if runner is None:
            return [neurocc.plan(m, targets=list(targets), **options) for m in models]
        from neurocc.compiler.calibrate import preload

        if options.get("calibration") is not None:
            options = {**options, "calibration": preload(options["calibration"])}
        shared = runner.share(options)
        pairs = [(_portable(m), t) for m in models for t in targets]
        rows = runner.first(_plan_pair, shared, pairs, never,
                            [f"of model {i + 1} ({_name(m)}) for target '{t.name}'" for i, m in enumerate(models)
                             for t in targets])
    per = len(targets)
    return [[r for pair in rows[i * per:(i + 1) * per] for r in pair] for i in range(len(models))]


def _portable(model: Any) -> Any:
    """An existing path as an absolute path (Ray workers may run in another folder); other models
    (a Graph, ``pkg.module:factory``) as they are."""
    return Path(model).resolve() if isinstance(model, (str, Path)) and Path(model).exists() else model


def _name(model: Any) -> str:
    return str(model) if isinstance(model, (str, Path)) else getattr(model, "name", type(model).__name__)


def _plan_pair(options: dict[str, Any], pair: tuple[Any, Any]) -> list[Any]:
    """One Ray task: ``model`` planned for one target (a list of one row)."""
    import neurocc

    model, target = pair
    return neurocc.plan(model, targets=[target], **options)
