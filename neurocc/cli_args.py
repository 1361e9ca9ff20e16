"""Argument parsing of the ``neurocc`` command line: the argument types (each rejects bad text
with a one-line usage error, exit 2), the options every subcommand shares (``--targets``,
``--debug``), the MODEL options (``--input-shape``, ``--entry``, the lava-dl netx reader's
options) and each subcommand's own arguments. :func:`neurocc.cli.build_parser` assembles them."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


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


# ----- parser -----------------------------------------------------------------------------------
def common_options(sub: bool) -> argparse.ArgumentParser:
    """--targets/--debug, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if sub else {}
    p.add_argument("--targets", metavar="FILE", help="another targets.yaml (default: the shipped one)",
                   **({"default": None} | default))
    p.add_argument("--debug", action="store_true", help="show the Python traceback of any error",
                   **default)
    return p


def model_options() -> argparse.ArgumentParser:
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


# ----- each subcommand's own arguments ----------------------------------------------------------
def _artifact(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", metavar="DIR", help="an artifact directory (from compile)")


def _args_targets(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="show every field of one target")


def _args_quickstart(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="neurocc-quickstart", metavar="DIR",
                   help="the folder for the model, artifacts, table and report (default: neurocc-quickstart)")
    p.add_argument("--fast", action="store_true",
                   help="fewer timesteps and samples (a smoke test, as the tests run it; not the real figures)")
    p.add_argument("--only", type=_names, metavar="T,T", help="only these targets (default: every target)")
    p.add_argument("--samples", type=_samples, metavar="N|all",
                   help="test digits the slow simulators (Lava, NEST) score: N, or all 450 (default: all 450; "
                        "the fast backends always score all)")
    _workers_flags(p)


def _args_export_nir(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT.nir", help="the NIR file to write")


def _args_compile(p: argparse.ArgumentParser) -> None:
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
    _compile_conversion_flags(p)
    _workers_flags(p, "Ray workers running the --accuracy-budget search's trials in parallel (default 1: in this "
                      "process, no Ray; Ray's start costs 2-5 s, worth it when trials take seconds and cores are "
                      "idle); the artifact is the same for any number")


def _compile_conversion_flags(p: argparse.ArgumentParser) -> None:
    """compile: the encoding, pruning and source-check options (after --weight-rounding)."""
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


def _args_run(p: argparse.ArgumentParser) -> None:
    _artifact(p)
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


def _args_validate(p: argparse.ArgumentParser) -> None:
    _artifact(p)
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


def _args_evaluate(p: argparse.ArgumentParser) -> None:
    _artifact(p)
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


def _args_plan(p: argparse.ArgumentParser) -> None:
    p.add_argument("more_models", nargs="*", metavar="MODEL",
                   help="more models (or artifact DIRs) to plan, each reported in turn")
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
    _workers_flags(p, "Ray workers planning the (model, target) pairs in parallel (default 1: in this process, no "
                      "Ray; Ray's start costs 2-5 s); the report is the same for any number")


def _args_deploy(p: argparse.ArgumentParser) -> None:
    _artifact(p)
    p.add_argument("-o", "--out", required=True, metavar="BUNDLE", help="the bundle directory to write")


def _args_report(p: argparse.ArgumentParser) -> None:
    _artifact(p)
    p.add_argument("--input", metavar="X.npz", help="time-major inputs to show (default: calibration samples)")
    p.add_argument("--data", metavar="TEST.npz", help="labelled data: its first samples are shown, accuracy on all")


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    """Add subcommand NAME's own arguments to its parser P (inspect has none beyond MODEL's)."""
    adder = ARGUMENTS.get(name)
    if adder is not None:
        adder(p)


def _workers_flags(p: argparse.ArgumentParser, workers_help: str | None = None) -> None:
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help=workers_help or "Ray workers running sample batches in parallel (1: in this process, no Ray; "
                                        "default: the machine's cores for loihi and spinnaker, 1 for the software "
                                        "backends)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray started for the command)")


def _device_flag(p: argparse.ArgumentParser, float_dtype: bool = False) -> None:
    p.add_argument("--device", choices=("cpu", "cuda"),
                   help="run the emulator/reference on its batched torch path on this device (default: numpy/numba)")
    if float_dtype:
        p.add_argument("--float-dtype", metavar="float64|float32",
                       help="with --device: float graphs in float64 (default, the specification) or float32 (faster, "
                            "differs by rounding; never the judge)")


ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {  # subcommand -> its own arguments
    "targets": _args_targets, "quickstart": _args_quickstart, "export-nir": _args_export_nir,
    "compile": _args_compile, "run": _args_run, "validate": _args_validate, "evaluate": _args_evaluate,
    "plan": _args_plan, "deploy": _args_deploy, "report": _args_report,
}
