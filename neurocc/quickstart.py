"""``neurocc quickstart``: what this installation can do now, honestly.

It lists the targets, which neurocc commands and backends this version contains, and which
third-party toolchains are installed (read from package metadata: nothing heavy is imported).
When the model frontends exist and the repository's NIR paper fixture is at hand, it also loads
that model as a first taste of ``neurocc inspect``. The full quickstart (compile a sample network
for every target, run it on each backend and validate it against the emulator) replaces this
status page as those parts arrive.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from pathlib import Path

import neurocc

# (command, module, attribute) that each command needs
COMMANDS: list[tuple[str, str, str]] = [
    ("targets", "neurocc.targets", "load_targets"),
    ("inspect", "neurocc.compiler.frontends", "load"),
    ("export-nir", "neurocc.compiler.frontends.nir", "write_nir"),
    ("compile", "neurocc.compiler.pipeline", "compile_model"),
    ("run", "neurocc.runtime.run", "run_artifact"),
    ("validate", "neurocc.runtime.validate", "validate_artifact"),
    ("evaluate", "neurocc.runtime.evaluate", "evaluate_artifact"),
    ("plan", "neurocc.runtime.plan", "plan"),
    ("deploy", "neurocc.runtime.deploy", "deploy_artifact"),
    ("report", "neurocc.runtime.report", "format_report"),
]
# (distribution, what neurocc uses it for)
TOOLCHAINS: list[tuple[str, str]] = [
    ("torch", "PyTorch models (frontend)"),
    ("snntorch", "snnTorch models (frontend)"),
    ("onnx", "ONNX models (frontend)"),
    ("onnxruntime", "edge-cpu backend"),
    ("nir", "NIR files"),
    ("lava-nc", "loihi backend (Lava fixed_pt, run in a worker process)"),
    ("lava-dl", "loihi backend (netx network files)"),
    ("pyNN", "spinnaker backend (PyNN scripts)"),
    ("nest-simulator", "spinnaker backend: NEST float simulation"),
    ("brian2", "spinnaker backend: brian2 float simulation"),
    ("spynnaker", "spinnaker backend: SpiNNaker mapping (virtual board)"),
]
FIXTURE = Path("tests") / "fixtures" / "nir-paper" / "cnn_sinabs.nir"


def _ready(module: str, attr: str) -> str:
    """'ready', or why not (a module missing from this version, or one that fails to import)."""
    try:
        if importlib.util.find_spec(module) is None:
            return "arrives with a later release"
        mod = importlib.import_module(module)
    except ModuleNotFoundError as err:
        return f"arrives with a later release ({err.name} missing)"
    except Exception as err:  # noqa: BLE001  (a status page must not crash on one broken part)
        return f"broken: {type(err).__name__}: {err}"
    return "ready" if hasattr(mod, attr) else "arrives with a later release"


def _backend_ready(module: str) -> str:
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    found = spec is not None and spec.origin is not None  # a bare folder (namespace) is not a backend
    return "ready" if found else "arrives with a later release"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fixture() -> Path | None:
    for base in (Path.cwd(), Path(neurocc.__file__).resolve().parents[1]):
        if (base / FIXTURE).is_file():
            return base / FIXTURE
    return None


def _taste(status: dict[str, str]) -> list[str]:
    """Load the NIR paper's CNN when the frontend is ready (a one-line inspect)."""
    path = _fixture()
    if path is None or status.get("inspect") != "ready":
        return []
    try:
        graph = neurocc.load(path)
        stats = graph.stats()
    except Exception as err:  # noqa: BLE001
        return [f"  loading {path.name} failed: {type(err).__name__}: {err}"]
    neurons = sum(int(s["neurons"]) for s in stats.values())
    synapses = sum(int(s["synapses"]) for s in stats.values())
    return [f"  {path.name}: {len(stats)} nodes, {neurons:,} neurons, {synapses:,} synapses",
            f"  see every layer:  neurocc inspect {path}"]


def quickstart(targets_file: str | Path | None = None) -> str:
    """The quickstart page as text."""
    from neurocc.backends import REGISTRY
    from neurocc.cli import format_targets

    status = {cmd: _ready(mod, attr) for cmd, mod, attr in COMMANDS}
    out = [f"neurocc {neurocc.__version__}: what this installation can do now", "",
           "1. Targets (neurocc targets; add your own chip with --targets FILE):",
           format_targets(neurocc.load_targets(targets_file)), "", "2. Commands:"]
    out += [f"  {cmd:12} {state}" for cmd, state in status.items()]
    out += ["", "3. Backends (neurocc run/validate --backend B):"]
    out += [f"  {name:12} {_backend_ready(mod)}" for name, mod in REGISTRY.items()]
    out += ["", "4. Toolchains installed:"]
    for dist, use in TOOLCHAINS:
        version = _version(dist)
        out.append(f"  {dist:15} {version or 'not installed':14} {use}")
    taste = _taste(status)
    if taste:
        out += ["", "5. A first model (the NIR paper's spiking CNN):"] + taste
    ready = [cmd for cmd, state in status.items() if state == "ready"]
    out += ["", f"Ready in this version: {', '.join(ready)}.",
            "The full quickstart (compile a sample network for every target, run it on each backend",
            "and validate it against the emulator) arrives with a later release. "
            "Docs: docs/user-guide.md"]
    return "\n".join(out)
