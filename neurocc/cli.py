"""The ``neurocc`` command line (also ``python -m neurocc``); subcommands follow the Contract in
the architecture notes and call the Python API in :mod:`neurocc`, so both behave alike.

Exit status: 0 success; 1 a user-facing error (a :class:`~neurocc.errors.NeuroccError`: bad
file, unknown target, failed validation), printed as one paragraph; 2 a usage error or a feature
not in this version; 3 an internal error (a bug: rerun with ``--debug`` and report it).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import neurocc
from neurocc import NeuroccError
from neurocc._files import read_npz, write_npz
from neurocc.errors import InputError

Handler = Callable[[argparse.Namespace], int]


# ----- argument types ---------------------------------------------------------------------------
def _shape(text: str) -> tuple[int, ...]:
    """``1,28,28`` / ``1x28x28`` / ``(1, 28, 28)`` → (1, 28, 28)."""
    parts = [p for p in text.strip("()[] ").replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape; write sizes without batch "
                                         "and time, e.g. 1,28,28")
    return shape


def _samples(text: str) -> int:
    """``N`` (>= 1) or ``all`` (every test digit)."""
    if text.strip().lower() == "all":
        return 1 << 30
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a positive integer nor 'all'") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive integer")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive number of seconds (e.g. 0.001)")
    return value


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of percentage points in 0..100 (e.g. 1)")
    return value


def _pad(text: str) -> int | str:
    return text if text == "auto" else _positive_int(text)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a spike rate in 0..1 (spikes per neuron per step)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number >= 0")
    return value


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] = set()) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w)  # noqa: E731
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
                          bias_from_step_zero=args.bias_from_step_zero, **extra)
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
    is_dir = Path(args.model).is_dir()
    model = Path(args.model) if is_dir else _graph(args)
    rows = neurocc.plan(model, targets=args.target, targets_file=args.targets, steps=args.steps, rate=args.rate,
                        calibration=Path(args.calibration) if args.calibration else None, dt=args.dt,
                        data=Path(args.data) if args.data else None)
    format_plan = neurocc.feature("neurocc.runtime.plan", "format_plan", "resource planning (neurocc plan)")
    print(format_plan(rows))
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


# ----- parser -----------------------------------------------------------------------------------
def _common(sub: bool) -> argparse.ArgumentParser:
    """--targets/--debug, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if sub else {}
    p.add_argument("--targets", metavar="FILE", help="another targets.yaml (default: the shipped one)",
                   **({"default": None} | default))
    p.add_argument("--debug", action="store_true", help="show the Python traceback of any error",
                   **default)
    return p


def _model_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("model", metavar="MODEL",
                   help="a .nir, .onnx, .pt2 or .pt/.pth file, or pkg.module:factory (with --weights); "
                        "plan also takes a compiled artifact DIR")
    p.add_argument("--input-shape", type=_shape, metavar="SHAPE",
                   help="input shape without batch and time, e.g. 1,28,28 (torch models need it)")
    p.add_argument("--entry", metavar="PKG.MODULE:FACTORY",
                   help="the function or class that builds the nn.Module whose state_dict MODEL (.pt) holds; "
                        "importable from the current directory")
    p.add_argument("--weights", metavar="FILE", help="a state_dict (.pt) to load into the module")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow full pickle loading of a .pt or .pt2 file (runs code in it: only for files you trust)")
    g = p.add_argument_group("lava-dl netx files (.net), as netx.hdf5.Network's arguments (docs/frontends.md)")
    g.add_argument("--num-layers", dest="num_layers", type=_positive_int, metavar="N",
                   help="read only the first N layers of the file (layer 0, the input, counts)")
    g.add_argument("--skip-layers", dest="skip_layers", type=_positive_int, metavar="K",
                   help="drop layers 0..K-1: the graph input feeds layer K's synapse")
    g.add_argument("--reset-interval", dest="reset_interval", type=_positive_int, metavar="T",
                   help="zero every CUBA block's u and v every T steps (Lava's LIFReset: one sample per T steps; "
                        "block j at neurocc steps j, j+T, ...); runs on the emulator, edge-cpu and loihi (Lava)")
    g.add_argument("--reset-offset", dest="reset_offset", type=_count, metavar="S",
                   help="shift those resets by S steps (netx's reset_offset; default 0; needs --reset-interval)")
    g.add_argument("--reset-schedule", dest="reset_schedule", choices=("lava", "chip"),
                   help="lava (default: Lava's LIFReset, every T steps) or chip (the Loihi 2 chip's recording: "
                        "the first reset as lava, the later ones T+1 steps apart); needs --reset-interval")
    g.add_argument("--sigma-delta", dest="variant", choices=("lava-0.10", "lava-pr875"),
                   help="sigma-delta numerics: lava-0.10 (Lava 0.10.0 as released, the default) or lava-pr875 "
                        "(the corrected rule merged later: the receiver's sum tracks the activation)")
    return p


NETX_OPTIONS = ("num_layers", "skip_layers", "reset_interval", "reset_offset", "reset_schedule", "variant")


COMMANDS: list[tuple[str, Handler, str, bool]] = [  # name, handler, help, takes a MODEL
    ("targets", cmd_targets, "list the chips neurocc knows (targets.yaml)", False),
    ("inspect", cmd_inspect, "print a model's graph: nodes, shapes, parameters, neurons, synapses", True),
    ("export-nir", cmd_export_nir, "convert a model to a NIR file", True),
    ("compile", cmd_compile, "compile a model for a target into an artifact directory", True),
    ("run", cmd_run, "run an artifact on a backend", False),
    ("validate", cmd_validate, "compare backends with their reference; write validation.json", False),
    ("evaluate", cmd_evaluate, "accuracy of an artifact on labelled data", False),
    ("plan", cmd_plan, "how a model fits each target (cores, chips, memory, energy)", True),
    ("deploy", cmd_deploy, "bundle an edge-cpu artifact for another machine", False),
    ("report", cmd_report, "summarise an artifact and its validation", False),
    ("quickstart", cmd_quickstart, "train a digits network, compile it for every target, run and validate "
                                   "every backend, print the accuracy table and write a report", False),
]


def _add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    artifact = lambda: p.add_argument("artifact", metavar="DIR", help="an artifact directory (from compile)")  # noqa: E731
    if name == "targets":
        p.add_argument("name", nargs="?", metavar="NAME", help="show every field of one target")
    elif name == "quickstart":
        p.add_argument("--out", default="neurocc-quickstart", metavar="DIR",
                       help="the folder for the model, artifacts, table and report (default: neurocc-quickstart)")
        p.add_argument("--fast", action="store_true",
                       help="fewer timesteps and samples (a smoke test, as the tests run it; not the real figures)")
        p.add_argument("--only", type=_names, metavar="T,T", help="only these targets (default: every target)")
        p.add_argument("--samples", type=_samples, metavar="N|all",
                       help="test digits the slow simulators (Lava, NEST) score: N, or all 450 (default: 225 per "
                            "worker, all 450 from 2 workers, within the 10-minute budget; the fast backends always "
                            "score all)")
        _workers_flags(p)
    elif name == "export-nir":
        p.add_argument("out", metavar="OUT.nir", help="the NIR file to write")
    elif name == "compile":
        p.add_argument("--target", required=True, metavar="T", help="a target name (see `neurocc targets`)")
        p.add_argument("-o", "--out", required=True, metavar="DIR", help="the artifact directory to write")
        p.add_argument("--dt", type=_positive_float, metavar="SECONDS",
                       help="seconds per step (overrides the target's; NIR files carry no dt)")
        p.add_argument("--calibration", metavar="FILE.npz",
                       help="sample inputs x (ANN: (samples, *shape), static; spiking model: time-major (steps, "
                            "samples, *shape)) and optional labels y: needed for ANNs, scales every model")
        p.add_argument("--timesteps", type=_positive_int, metavar="N",
                       help="steps per sample (ANN conversion; default 64)")
        p.add_argument("--accuracy-budget", type=_points, metavar="POINTS",
                       help="accuracy points the emulator may lose on the calibration data against the float "
                            "model; searches per-layer weight bits and timesteps (needs --calibration)")
        p.add_argument("--per-channel", action="store_true",
                       help="one weight scale per output channel (thresholds per neuron follow)")
        p.add_argument("--weight-rounding", choices=("auto", "nearest", "calibrated"),
                       help="nearest: each weight to its nearest integer; calibrated: the rounding of least "
                            "input-current error on the calibration data (needs --calibration); auto (default): "
                            "calibrated for a spiking model with --calibration, else nearest")
        p.add_argument("--encoding", choices=("constant", "poisson", "sigma-delta"),
                       help="input encoding of a converted ANN: a constant current (default) or Poisson "
                            "rate spikes (default for spinnaker, whose inputs are spikes only); sigma-delta: "
                            "ReLUs become sigma-delta neurons sending graded changes (loihi2, emulator)")
        p.add_argument("--delta-threshold", type=float, metavar="FRACTION",
                       help="sigma-delta: each layer's threshold as a fraction of its calibrated activation "
                            "scale (default 0.05; --accuracy-budget searches it)")
        p.add_argument("--seed", type=int, default=0, help="seed of the Poisson encoding (default 0)")
        p.add_argument("--prune", metavar="SPEC",
                       help="zero the smallest-magnitude weights first: FRACTION (per layer), global:FRACTION, "
                            "neurons:FRACTION (whole neurons/channels); FRACTION in [0, 1) or NN%% "
                            "(docs/mapping.md#pruning)")
        p.add_argument("--bias-from-step-zero", action="store_true",
                       help="loihi2: biases act from step 0 instead of with each layer's delayed input, so "
                            "that lava-dl netx can express them and network.net is written; the first steps "
                            "then differ from the trained model (recorded in quantization.json)")
        p.add_argument("--allow-source-mismatch", action="store_true",
                       help="compile even when the trained model, run in its own framework, differs from neurocc's "
                            "float reference; the measured difference is recorded in the manifest")
        p.add_argument("--no-source-check", action="store_true",
                       help="do not run the trained model in its framework to compare it with neurocc's reading")
    elif name == "run":
        artifact()
        p.add_argument("--backend", required=True, metavar="B",
                       help="emulator, reference, loihi, spinnaker or edge-cpu")
        p.add_argument("--input", required=True, metavar="X.npz", help="one array (steps, batch, *shape) per input")
        p.add_argument("--output", required=True, metavar="Y.npz", help="where to write the outputs")
        p.add_argument("--steps", type=_positive_int, metavar="N", help="steps to run (default: the input's)")
        p.add_argument("--record", action="store_true", help="also write every state variable as <node>/<var>")
        p.add_argument("--save-weights", metavar="W.npz",
                       help="write the plastic synapses' weights after the run, <node>/w (batch, post, pre)")
        p.add_argument("--pad", nargs="?", const="auto", type=_pad, metavar="N",
                       help="append N steps of zero input (no N: the graph's latency) so the last input steps "
                            "reach the outputs")
        _device_flag(p, float_dtype=True)
    elif name == "validate":
        artifact()
        p.add_argument("--backends", type=_names, metavar="a,b,c",
                       help="backends to check (default: every one that can run the artifact)")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--input", metavar="X.npz", help="inputs to compare on")
        src.add_argument("--samples", type=_positive_int, metavar="N", help="N generated input samples")
        p.add_argument("--json", metavar="REPORT.json", help="where to write the report (default DIR/validation.json)")
        _device_flag(p)
        p.add_argument("--source", metavar="MODEL",
                       help="the trained model (.pt/.pth, or pkg.module:factory with --weights): adds a 'source' row, "
                            "the model run in its own framework against the float reference")
        p.add_argument("--entry", metavar="PKG.MODULE:FACTORY", help="what builds the --source model (state_dict .pt)")
        p.add_argument("--weights", metavar="FILE", help="a state_dict (.pt) to load into the --source model")
        p.add_argument("--trust-pickle", action="store_true",
                       help="allow full pickle loading of the --source .pt (runs code in it: only for files you trust)")
        p.add_argument("--input-shape", type=_shape, metavar="SHAPE", help=argparse.SUPPRESS)
        _workers_flags(p)
    elif name == "evaluate":
        artifact()
        p.add_argument("--data", required=True, metavar="TEST.npz",
                       help="arrays y (labels) and x: static (samples, *shape) or sequences (samples, steps, *shape)")
        p.add_argument("--backend", metavar="B", help="backend to evaluate on (default: emulator)")
        p.add_argument("--readout", choices=("count", "membrane", "first"), default="count",
                       help="class score: output spike count (default), membrane of the last layer, or first spike")
        p.add_argument("--time-major", action="store_true",
                       help="x sequences are (steps, samples, *shape) instead of (samples, steps, *shape)")
        p.add_argument("--json", metavar="RESULT.json", help="also write the result as JSON")
        p.add_argument("--no-metrics", action="store_true",
                       help="skip the measured cost (synaptic ops, sparsity, footprint, energy estimate; counted "
                            "on the emulator and reference backends)")
        _device_flag(p, float_dtype=True)
        _workers_flags(p)
    elif name == "plan":
        p.add_argument("--target", type=_names, metavar="a,b", help="targets to plan for (default: all)")
        p.add_argument("--steps", type=_positive_int, metavar="N", help="steps per inference (default 100, or the "
                                                                       "artifact's / calibration data's)")
        p.add_argument("--rate", type=_rate, metavar="R", help="assumed spikes per neuron per step where not "
                                                               "measured (default 0.1)")
        p.add_argument("--calibration", metavar="FILE.npz", help="measure the activity on these inputs (and convert "
                                                                 "an ANN), as compile reads them")
        p.add_argument("--dt", type=_positive_float, metavar="SECONDS", help="seconds per step (real-time targets' "
                                                                            "latency; NIR files carry no dt)")
        p.add_argument("--data", metavar="TEST.npz", help="with an artifact DIR: measure the activity on these samples "
                                                          "on the emulator's run of the integer network")
    elif name == "deploy":
        artifact()
        p.add_argument("-o", "--out", required=True, metavar="BUNDLE", help="the bundle directory to write")
    elif name == "report":
        artifact()
        p.add_argument("--input", metavar="X.npz", help="time-major inputs to show (default: calibration samples)")
        p.add_argument("--data", metavar="TEST.npz", help="labelled data: its first samples are shown, accuracy on all")


def _workers_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="Ray workers running sample batches in parallel (1: in this process, no Ray; default: "
                        "the machine's cores for loihi and spinnaker, 1 for the software backends)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray started for the command)")


def _device_flag(p: argparse.ArgumentParser, float_dtype: bool = False) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="run the emulator/reference on its batched torch path on this device (default: numpy/numba)")
    if float_dtype:
        p.add_argument("--float-dtype", metavar="float64|float32",
                       help="with --device: float graphs in float64 (default, the specification) or float32 (faster, "
                            "differs by rounding; never the judge)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurocc", parents=[_common(sub=False)],
        description="Compile trained neural networks for neuromorphic chips and edge CPUs, and "
                    "check that the result computes what was trained.",
        epilog="Start with `neurocc quickstart`. Docs: docs/user-guide.md")
    parser.add_argument("--version", action="version", version=f"neurocc {neurocc.__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, handler, help_text, takes_model in COMMANDS:
        parents = [_common(sub=True)] + ([_model_options()] if takes_model else [])
        p = subs.add_parser(name, parents=parents, help=help_text, description=help_text)
        _add_arguments(name, p)
        p.set_defaults(func=handler)
    return parser


# ----- entry point ------------------------------------------------------------------------------
INTERNAL = ("internal error in neurocc: {kind}: {msg}\nThis is a bug in neurocc, not in your input. "
            "Rerun the same command with --debug for the traceback and report it.")


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> str:
    """Warnings as one line ("neurocc: warning: ..."), not Python's file:line + source line."""
    return f"neurocc: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    from neurocc._signals import terminate_cleanly

    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    with terminate_cleanly():  # SIGTERM cleans up like Ctrl-C: temporary outputs are removed
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand; map exceptions to exit statuses (see the module docstring)."""
    try:
        return int(args.func(args) or 0)
    except NeuroccError as err:
        if args.debug:
            raise
        print(f"neurocc {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:
        if args.debug:
            raise
        name = err.name or "?"
        if name == "neurocc" or name.startswith("neurocc."):
            print(f"neurocc {args.command}: this command is not available yet in this version of "
                  f"neurocc (module {name} is not part of it).\nFix: the installation is incomplete: "
                  "run `make setup` (or `pip install -e .`) in the neurocc checkout.", file=sys.stderr)
            return 2
        print(f"neurocc {args.command}: the Python package '{name}' is not installed, and this "
              "command needs it.\nFix: run the set-up (`make demo` or scripts/setup.sh) or install "
              "it into this environment.", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        from neurocc._signals import exit_code

        code = exit_code(err)
        print("terminated" if code == 143 else "interrupted", file=sys.stderr)
        return code
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001  (the one place that turns bugs into a short message)
        if args.debug:
            raise
        print(INTERNAL.format(kind=type(err).__name__, msg=err), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
