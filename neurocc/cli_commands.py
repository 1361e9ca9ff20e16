"""The handlers of the ``neurocc`` subcommands (one ``cmd_<name>`` each, taking the parsed
arguments and returning the exit status) and the text tables they print. Each calls the Python
API in :mod:`neurocc`, so the command line and the API behave alike; errors propagate as
:class:`~neurocc.errors.NeuroccError` to :func:`neurocc.cli.main`, which maps them to exit codes."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import neurocc
from neurocc._files import read_npz, write_npz
from neurocc.cli_args import NETX_OPTIONS
from neurocc.errors import InputError


# ----- helpers ----------------------------------------------------------------------------------
def _load_kw(args: argparse.Namespace) -> dict[str, Any]:
    import os

    if os.getcwd() not in sys.path:  # "pkg.module:factory" entries import from here, as with python -m
        sys.path.insert(0, os.getcwd())
    netx = {k: getattr(args, k, None) for k in NETX_OPTIONS}
    return {"input_shape": args.input_shape, "entry": args.entry,
            "weights": None if args.weights is None else Path(args.weights),
            "trust_pickle": args.trust_pickle, **({"netx": netx} if any(v is not None for v in netx.values()) else {})}


def _graph(args: argparse.Namespace) -> Any:
    return neurocc.load(args.model, **_load_kw(args))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Collection[int] = frozenset()) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w)
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]])


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _memory(bits: int | None) -> str:
    if bits is None:
        return "-"
    return f"{bits / 8192:g} KiB" if bits % 8192 == 0 else f"{bits:,} b"


# ----- commands ---------------------------------------------------------------------------------
def cmd_targets(args: argparse.Namespace) -> int:
    if args.name:
        print(_target_details(neurocc.get_target(args.name, args.targets)))
        return 0
    print(format_targets(neurocc.load_targets(args.targets)))
    print(f"\n(from {args.targets or neurocc.targets.BUILTIN}; '-' = no limit or no published "
          "figure; `neurocc targets NAME` shows every field)")
    return 0


def format_targets(targets: dict[str, neurocc.Target]) -> str:
    """The table of ``neurocc targets``: one row per chip with its key limits."""
    rows = []
    for t in targets.values():
        lim, en, val = t.limits, t.energy, t.validation
        energy = "-" if en.pj_per_synop is None and en.pj_per_neuron_update is None else \
            f"{_num(en.pj_per_synop)} / {_num(en.pj_per_neuron_update)}"
        rows.append([t.name, t.backend or "(none)", t.numerics, f"{t.dt * 1e3:g} ms", _num(lim.chips),
                     _num(lim.cores_per_chip), _num(lim.neurons_per_core),
                     _memory(lim.synapse_memory_bits_per_core), energy,
                     "exact" if val.rule == "exact" else f"cosine>={val.min_cosine:g}"])
    return _table(["target", "backend", "numerics", "dt", "chips", "cores/chip", "neurons/core",
                   "syn.mem/core", "pJ synop/neuron", "validation"], rows, right={4, 5, 6, 7})


def _target_details(t: neurocc.Target) -> str:
    import dataclasses

    lines = [f"{t.name}: {t.description}",
             f"  backend      {t.backend or '(none: plan and compile only)'}",
             f"  numerics     {t.numerics}", f"  dt           {t.dt:g} s",
             f"  reset modes  {', '.join(t.reset_modes)}",
             f"  supported    {', '.join(t.supported) or '(all kinds the backend accepts)'}"]
    for section in ("limits", "energy", "validation"):
        lines.append(f"  {section}:")
        for f in dataclasses.fields(getattr(t, section)):
            lines.append(f"    {f.name:30} {_num(getattr(getattr(t, section), f.name))}")
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    graph = _graph(args)
    stats = graph.stats()
    rows = [[i, name, s["kind"], _shape_str(s["in_shape"]), _shape_str(s["out_shape"]),
             _num(s["params"]), _num(s["neurons"]), _num(s["synapses"])]
            for i, (name, s) in enumerate(stats.items(), 1)]
    print(f"graph '{graph.name}'  dt={'-' if graph.dt is None else f'{graph.dt:g} s'}  "
          f"method={getattr(graph.method, 'value', '-') or '-'}  numerics={graph.numerics or 'float'}")
    print(_table(["#", "node", "kind", "in shape", "out shape", "params", "neurons", "synapses"],
                 rows, right={0, 5, 6, 7}))
    rec = graph.recurrent_edges()
    print("recurrent edges: " + (", ".join(f"{e.src} -> {e.dst} (delay {e.delay})" for e in rec)
                                 if rec else "none"))
    total = {k: sum(int(s[k]) for s in stats.values()) for k in ("params", "neurons", "synapses")}
    print(f"total: {len(stats)} nodes, {len(graph.edges)} edges, {total['params']:,} parameters, "
          f"{total['neurons']:,} neurons, {total['synapses']:,} synapses")
    print(f"inputs: {', '.join(graph.inputs) or '-'}; outputs: {', '.join(graph.outputs) or '-'}")
    return 0


def _shape_str(shape: Any) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def cmd_export_nir(args: argparse.Namespace) -> int:
    graph = _graph(args)
    out = neurocc.export_nir(graph, Path(args.out))
    print(f"wrote {out} ({len(graph.nodes)} nodes, {len(graph.edges)} edges)")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    if args.prune:  # a bad SPEC fails before the model is loaded
        from neurocc.compiler.prune import parse_spec

        parse_spec(args.prune)
    target = neurocc.get_target(args.target, args.targets)
    graph = _graph(args)
    calibration = Path(args.calibration) if args.calibration else None  # x (and y) are checked by the pipeline
    extra = {}
    if args.encoding:
        from neurocc.ir.encoding import Encoding

        extra["encoding"] = ("sigma-delta" if args.encoding == "sigma-delta"   # steps: --timesteps or latency + 1
                             else Encoding(args.encoding, args.timesteps or 64, seed=args.seed))
    if args.delta_threshold is not None:
        extra["delta_threshold"] = args.delta_threshold
    if args.prune:
        extra["prune"] = args.prune
    if args.weight_rounding:
        extra["weight_rounding"] = args.weight_rounding
    if not args.no_source_check:  # the trained model itself, run in its framework (docs/source-check.md)
        extra["source"] = _source(args.model, args)
    out = neurocc.compile(graph, target, Path(args.out), dt=args.dt, calibration=calibration,
                          timesteps=args.timesteps, accuracy_budget=args.accuracy_budget,
                          targets_file=args.targets, per_channel=args.per_channel, echo=print,
                          allow_source_mismatch=args.allow_source_mismatch,
                          bias_from_step_zero=args.bias_from_step_zero, workers=args.workers,
                          ray_address=args.ray_address, **extra)
    print(f"compiled '{graph.name}' for {target.name} into {out}")
    return 0


def _source(model: str, args: argparse.Namespace) -> Any:
    """The runtime's Source for MODEL with the --entry/--weights/--trust-pickle options."""
    from neurocc.runtime.source import open_source

    kw = _load_kw(args)
    return open_source(model, entry=kw["entry"], weights=kw["weights"], trust_pickle=kw["trust_pickle"])


def cmd_run(args: argparse.Namespace) -> int:
    from neurocc.runtime.run import lag_note

    inputs = read_npz(Path(args.input), "--input")
    outputs = neurocc.run(Path(args.artifact), args.backend, inputs, steps=args.steps,
                          record=args.record, pad=args.pad, progress=True, device=args.device,
                          float_dtype=args.float_dtype)
    _save_weights(args, outputs)
    write_npz(Path(args.output), outputs)
    meta = _run_metadata(args, outputs)
    print(f"wrote {args.output}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items())
          + f" (metadata: {meta})")
    print(lag_note(Path(args.artifact), args.backend, args.pad))
    return 0


def _save_weights(args: argparse.Namespace, outputs: Any) -> None:
    """``--save-weights W.npz``: the learned weights ``<node>/w`` (batch, post, pre) of the run."""
    from neurocc.errors import InputError
    from neurocc.runtime.run import learned_weights

    learned = learned_weights(Path(args.artifact), outputs)
    if args.save_weights is None:
        return
    if not learned:
        raise InputError("the artifact has no plastic synapses, so there are no learned weights to save",
                         where="--save-weights", fix="leave --save-weights out for this artifact")
    write_npz(Path(args.save_weights), learned)
    print(f"wrote {args.save_weights}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in learned.items()))


def _run_metadata(args: argparse.Namespace, outputs: Any) -> Path:
    """``Y.json`` beside ``Y.npz``: artifact, backend, shapes and the overflow counts (null when the
    backend does not count them; see docs/artifact-format.md)."""
    import json

    from neurocc._files import write_bytes_atomic
    from neurocc.overflow import to_json

    out = Path(args.output)
    path = out.with_suffix(".json") if out.suffix != ".json" else Path(f"{out}.meta.json")
    doc = {"artifact": str(args.artifact), "backend": args.backend, "output": str(out),
           "arrays": {k: list(v.shape) for k, v in outputs.items()},
           "overflow": to_json(getattr(outputs, "overflow", None))}
    write_bytes_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    return path


def cmd_validate(args: argparse.Namespace) -> int:
    inputs = read_npz(Path(args.input), "--input") if args.input else None
    source = _source(args.source, args) if args.source else None
    report = neurocc.validate(Path(args.artifact), backends=args.backends, inputs=inputs,
                              samples=args.samples, json_path=args.json, progress=True, device=args.device,
                              source=source, workers=args.workers, ray_address=args.ray_address)
    results = report.get("results", [])
    fmt = _formatter("neurocc.runtime.validate", "format_validation")
    print(fmt(report) if fmt else _validation_table(results))
    print(f"report: {args.json or Path(args.artifact) / 'validation.json'}")
    failed = [r.get("backend") for r in results if not r.get("passed")]
    if failed:
        print(f"validation failed for: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


def _formatter(module: str, name: str) -> Callable[[Any], str] | None:
    """The runtime's own text formatter when its module provides one (it is imported by then)."""
    return getattr(sys.modules.get(module), name, None)


def _validation_table(results: list[dict[str, Any]]) -> str:
    rows = [[r.get("backend"), r.get("reference"), r.get("exact"), _num(r.get("compared")),
             _num(r.get("mismatches")), "-" if r.get("cosine") is None else f"{r['cosine']:.6f}",
             "PASS" if r.get("passed") else "FAIL"] for r in results]
    lines = [_table(["backend", "reference", "exact", "compared", "mismatches", "cosine", "result"],
                    rows, right={3, 4, 5})]
    for r in results:
        d = r.get("first_divergence")
        if d:
            lines.append(f"{r.get('backend')}: first divergence at node {d.get('node')} step "
                         f"{d.get('step')} index {d.get('index')} var {d.get('var')}: expected "
                         f"{d.get('expected')}, got {d.get('got')}")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    data = read_npz(Path(args.data), "--data")
    missing = [k for k in ("x", "y") if k not in data]
    if missing:
        raise InputError(f"the data file lacks array(s) {', '.join(missing)}", where=f"--data {args.data}",
                         fix="save it as numpy.savez(path, x=samples, y=integer_labels)")
    result = neurocc.evaluate(Path(args.artifact), Path(args.data), backend=args.backend, readout=args.readout,
                              time_major=args.time_major, progress=True, device=args.device,
                              workers=args.workers, ray_address=args.ray_address,
                              metrics=not args.no_metrics, float_dtype=args.float_dtype)
    fmt = _formatter("neurocc.runtime.evaluate", "format_evaluation")
    print(fmt(result) if fmt else f"accuracy: {result['accuracy']:.4f}")
    if args.json:
        import json

        from neurocc._files import atomic_path

        doc = {"artifact": str(args.artifact), "data": str(args.data), **result}
        with atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    names = [args.model, *args.more_models]
    models = [Path(m) if Path(m).is_dir() else neurocc.load(m, **_load_kw(args)) for m in names]
    opts = {"steps": args.steps, "rate": args.rate, "calibration": Path(args.calibration) if args.calibration else None,
            "dt": args.dt, "data": Path(args.data) if args.data else None}
    format_plan = neurocc.feature("neurocc.runtime.plan", "format_plan", "resource planning (neurocc plan)")
    if len(names) == 1 and args.workers is None and args.ray_address is None:
        print(format_plan(neurocc.plan(models[0], targets=args.target, targets_file=args.targets, **opts)))
        return 0
    from neurocc.runtime.plan_many import plan_models

    chosen = [neurocc.get_target(t, args.targets) for t in args.target] if args.target else \
        list(neurocc.load_targets(args.targets).values())
    per_model = plan_models(models, chosen, workers=args.workers, ray_address=args.ray_address, **opts)
    print("\n\n".join(f"{name}:\n{format_plan(rows)}" if len(names) > 1 else format_plan(rows)
                      for name, rows in zip(names, per_model)))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    deploy = neurocc.feature("neurocc.runtime.deploy", "deploy_artifact", "deployment bundles (neurocc deploy)")
    from neurocc.runtime.deploy import format_deploy

    print(format_deploy(deploy(Path(args.artifact), Path(args.out))))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    fmt = neurocc.feature("neurocc.runtime.report", "format_report", "reports (neurocc report)")
    inputs = read_npz(Path(args.input), "--input") if args.input else None
    print(fmt(Path(args.artifact), inputs=inputs, data=Path(args.data) if args.data else None, progress=True))
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from neurocc.quickstart import quickstart

    result = quickstart(args.targets, args.out, fast=args.fast, only=args.only, workers=args.workers,
                        ray_address=args.ray_address, samples=args.samples)
    print(result.text())
    return result.exit_status

