"""Run a neurocc deployment bundle on an edge device: needs only numpy and onnxruntime.

``neurocc deploy`` copies this module verbatim into the bundle as ``run.py``; it imports nothing
from neurocc, only numpy, onnxruntime and the Python standard library (Python >= 3.8), so the
device needs neither neurocc nor torch. Beside it in the bundle::

    manifest.json      names, shapes, dtypes, dt, steps, encoding, numerics, sha256 of every file
    model.onnx         window graph: one call runs a whole input sequence from zero state
    model_step.onnx    step graph: one call runs one time step, the state is explicit
    golden.npz         inputs and the emulator's outputs (the specification) for a few samples

Command line::

    python run.py --selftest                          # hashes, then both graphs vs golden.npz
    python run.py --input x.npz --output y.npz        # window graph, time-major arrays
    python run.py --input x.npz --output y.npz --graph step   # the same, one step per call

``x.npz`` holds one array per input name, time-major ``(steps, batch, *shape)``: spikes as 0/1,
graded inputs as floats in the model's scale. An integer model receives graded inputs as
``rint(x * int_per_float)`` (int32, round half to even) exactly as ``neurocc run`` does. When the
manifest records an input ``encoding``, a static array ``(batch, *shape)`` is also accepted and
encoded here (``constant``: ``scale * x`` at every step; ``poisson``: ``rng.random() < clip(scale
* x, 0, 1)`` with ``rng = numpy.random.default_rng([seed, i])`` for sample ``i``) for
``manifest.steps`` steps. ``y.npz`` holds one array per output name ``(steps, batch, *shape)``.

Streaming (real time)::

    from run import Runner
    r = Runner()                      # the bundle beside this file; zero state
    y_t = r.step({"input": x_t})      # x_t (batch, *shape) -> {output: (batch, *shape)}
    r.reset()                         # back to zero state

Self-test rule (``manifest.comparison``): integer numerics must reproduce the golden outputs
exactly; float32 numerics must reproduce every spike exactly and other values within
``atol = atol_rel * max(1, max|golden|)`` per output array (the manifest states why).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

try:
    import numpy as np
except ImportError:  # pragma: no cover - exercised on a bare device
    sys.stderr.write("run.py: numpy is not installed here.\nFix: pip install -r requirements.txt "
                     "(beside run.py: numpy and onnxruntime)\n")
    sys.exit(2)

FORMAT = "neurocc-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
HERE = Path(__file__).resolve().parent
NEXT = ".next"


class BundleError(Exception):
    """A bundle file is missing or modified, or the inputs do not fit the model (exit status 2)."""


# ---- files --------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_manifest(root: Path) -> Dict[str, Any]:
    """The bundle's manifest (BundleError naming the file when it is missing or not a bundle's)."""
    path = Path(root) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; run.py must sit in the bundle written by `neurocc deploy`") from None
    except ValueError as err:
        raise BundleError(f"{path}: not valid JSON ({err}); redeploy the bundle") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: not a {FORMAT} manifest of version {FORMAT_VERSION}; redeploy the bundle")
    return doc


def file_problems(root: Path, manifest: Mapping[str, Any]) -> List[str]:
    """One line per listed file that is missing or whose sha256 differs from the manifest."""
    problems = []
    for name, entry in sorted(manifest["files"].items()):
        p = Path(root) / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from manifest.json (the file was modified or damaged)")
    return problems


def load_npz(path: Path) -> Dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise BundleError(f"{path}: file not found") from None
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise BundleError(f"{path}: cannot read it as .npz ({err}); write it with numpy.savez") from None


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (a temporary file beside it, renamed)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent.absolute())
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **dict(arrays))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- inputs -------------------------------------------------------------------------------------
def encode(x_static: np.ndarray, encoding: Mapping[str, Any], steps: int, first_index: int = 0) -> np.ndarray:
    """Static inputs ``(batch, *shape)`` as float32 ``(steps, batch, *shape)`` (see the docstring);
    the same arithmetic as ``neurocc.ir.encoding.encode``."""
    x = np.asarray(x_static, dtype=np.float64)
    scaled = float(encoding["scale"]) * x
    if encoding["kind"] == "constant":
        return np.ascontiguousarray(np.broadcast_to(scaled.astype(np.float32), (steps, *x.shape)))
    p = np.clip(scaled, 0.0, 1.0)
    out = np.empty((steps, *x.shape), np.float32)
    for i in range(x.shape[0]):
        rng = np.random.default_rng([int(encoding["seed"]), first_index + i])
        out[:, i] = rng.random((steps, *x.shape[1:])) < p[i]
    return out


def to_model(spec: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """One input array as the model's dtype: graded values of an integer model become
    ``rint(x * int_per_float)`` (round half to even), everything else is cast."""
    dtype = np.dtype(spec["dtype"])
    if dtype.kind in "iu" and spec.get("int_per_float"):
        return np.rint(np.asarray(x, np.float64) * float(spec["int_per_float"])).astype(dtype)
    return np.asarray(x).astype(dtype)


def prepare(manifest: Mapping[str, Any], arrays: Mapping[str, np.ndarray], step: bool = False
            ) -> Dict[str, np.ndarray]:
    """Checked model inputs; BundleError lists every problem. ``step``: one step ``(batch, *shape)``."""
    specs = {s["name"]: s for s in manifest["inputs"]}
    problems = [f"input '{k}' is missing" for k in specs if k not in arrays]
    problems += [f"unknown input '{k}' (the model's inputs: {', '.join(specs)})" for k in arrays if k not in specs]
    out = {}
    for name, spec in specs.items():
        if name not in arrays:
            continue
        x, shape = np.asarray(arrays[name]), tuple(spec["shape"])
        lead = 1 if step else 2
        if manifest.get("encoding") and not step and x.ndim == 1 + len(shape) and tuple(x.shape[1:]) == shape:
            x = encode(x, manifest["encoding"], int(manifest["steps"]))
        if x.dtype.kind not in "biuf":
            problems.append(f"input '{name}' has dtype {x.dtype}; expected numbers")
        elif x.ndim != lead + len(shape) or tuple(x.shape[lead:]) != shape or 0 in x.shape[:lead]:
            want = ("(batch, " if step else "(steps, batch, ") + ", ".join(map(str, shape)) + ")"
            problems.append(f"input '{name}' has shape {tuple(x.shape)}; expected {want}")
        elif not np.all(np.isfinite(x)):
            problems.append(f"input '{name}' contains NaN or infinite values")
        elif spec.get("values") == "spikes" and not np.all((x == 0) | (x == 1)):
            problems.append(f"input '{name}' carries spikes but holds values other than 0 and 1")
        else:
            out[name] = to_model(spec, x)
    if problems:
        raise BundleError("the inputs do not fit the model:\n" + "\n".join(f"  - {p}" for p in problems))
    return out


# ---- execution ----------------------------------------------------------------------------------
def make_session(path: Path, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU provider with ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise BundleError("onnxruntime is not installed here; fix: pip install -r requirements.txt "
                          "(beside run.py: numpy and onnxruntime)") from None

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_window(root: Path, manifest: Mapping[str, Any], inputs: Mapping[str, np.ndarray],
               threads: int = 1) -> Dict[str, np.ndarray]:
    """Outputs ``(steps, batch, *shape)`` of the window graph on time-major ``inputs``."""
    sess = make_session(Path(root) / manifest["models"]["window"], threads)
    names = [o["name"] for o in manifest["outputs"]]
    return dict(zip(names, sess.run(names, prepare(manifest, inputs))))


class Runner:
    """Streams the step graph: ``step({input: (batch, *shape)}) -> {output: (batch, *shape)}``,
    keeping every state (zeros after :meth:`reset`) between calls."""

    def __init__(self, bundle: Optional[str] = None, threads: int = 1) -> None:
        self.root = Path(bundle) if bundle is not None else HERE
        self.manifest = load_manifest(self.root)
        self.sess = make_session(self.root / self.manifest["models"]["step"], threads)
        self.states = {s["name"]: (np.dtype(s["dtype"]), tuple(s["shape"])) for s in self.manifest["states"]}
        self.outputs = [o["name"] for o in self.manifest["outputs"]]
        self.fetch = self.outputs + [k + NEXT for k in self.states]
        self.state: Dict[str, np.ndarray] = {}
        self.batch: Optional[int] = None

    def reset(self, batch: Optional[int] = None) -> None:
        """Zero state (for ``batch`` samples; by default the batch of the next step)."""
        self.batch = batch
        self.state = {k: np.zeros((batch, *shape), dt) for k, (dt, shape) in self.states.items()} if batch else {}

    def step(self, x_t: Any) -> Dict[str, np.ndarray]:
        """One time step; ``x_t`` is a dict by input name or, for a one-input model, an array
        ``(batch, *shape)`` of spikes (0/1) or graded values in the model's scale."""
        if not isinstance(x_t, Mapping):
            (name,) = [s["name"] for s in self.manifest["inputs"]]
            x_t = {name: x_t}
        return self._step(prepare(self.manifest, x_t, step=True))

    def _step(self, feed: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """One step on inputs already in the model's dtypes."""
        batch = int(next(iter(feed.values())).shape[0])
        if self.batch is None:
            self.reset(batch)
        elif batch != self.batch:
            raise BundleError(f"batch changed from {self.batch} to {batch} without reset(); call reset() first")
        res = self.sess.run(self.fetch, {**feed, **self.state})
        self.state = dict(zip(self.states, res[len(self.outputs):]))
        return dict(zip(self.outputs, res[:len(self.outputs)]))

    def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """All steps of time-major ``inputs`` from zero state, stacked ``(steps, batch, *shape)``."""
        full = prepare(self.manifest, inputs)
        steps = next(iter(full.values())).shape[0]
        self.reset()
        per = [self._step({k: v[t] for k, v in full.items()}) for t in range(steps)]
        return {k: np.stack([p[k] for p in per]) for k in self.outputs}


# ---- self-test ----------------------------------------------------------------------------------
def compare(manifest: Mapping[str, Any], name: str, want: np.ndarray, got: np.ndarray) -> Optional[str]:
    """None when ``got`` passes the manifest's comparison rule for output ``name``, else why not."""
    if want.shape != got.shape:
        return f"shape {got.shape}, expected {want.shape}"
    rule = manifest["comparison"]
    spec = {o["name"]: o for o in manifest["outputs"]}[name]
    w, g = want.astype(np.float64), got.astype(np.float64)
    if rule["rule"] == "exact" or spec.get("values") == "spikes":
        bad = np.argwhere(w != g)
        if len(bad):
            i = tuple(int(v) for v in bad[0])
            return f"{len(bad)} of {w.size} elements differ (exact rule); first at index {i}: expected {w[i]!r}, got {g[i]!r}"
        return None
    atol = float(rule["atol_rel"]) * max(1.0, float(np.abs(w).max(initial=0.0)))
    err = float(np.abs(w - g).max(initial=0.0))
    return None if err <= atol else f"max |difference| {err:.3g} exceeds the tolerance {atol:.3g}"


def golden_parts(golden: Mapping[str, np.ndarray], prefix: str) -> Dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}


def selftest(root: Optional[Path] = None, threads: int = 1) -> Tuple[bool, List[str]]:
    """Check the bundle: file hashes first, then the window and the step graph on the golden inputs
    against the emulator's golden outputs. Returns (passed, report lines)."""
    root = Path(root) if root is not None else HERE
    manifest = load_manifest(root)
    lines = [f"bundle {manifest['graph']['name']} ({manifest['numerics']} numerics, "
             f"{len(manifest['files'])} files, neurocc {manifest['neurocc_version']})"]
    bad = file_problems(root, manifest)
    lines += [f"FAIL file {p}" for p in bad] or [f"ok   sha256 of {len(manifest['files'])} files"]
    if bad:
        return False, lines + ["FAIL: the bundle's files do not match manifest.json; redeploy it"]
    golden = load_npz(root / manifest["golden"]["file"])
    inputs, want = golden_parts(golden, "input/"), golden_parts(golden, "output/")
    ok = True
    for name, x in golden_parts(golden, "static/").items():
        enc = encode(x, manifest["encoding"], inputs[name].shape[0])
        same = np.array_equal(enc, inputs[name])
        ok &= same
        lines.append(f"{'ok  ' if same else 'FAIL'} encoding of input '{name}' ({manifest['encoding']['kind']})")
    results = {"window": lambda: run_window(root, manifest, inputs, threads),
               "step": lambda: Runner(str(root), threads).run(inputs)}
    for graph, fn in results.items():
        got = fn()
        for name in want:
            why = compare(manifest, name, want[name], got[name])
            ok &= why is None
            lines.append(f"ok   {graph} graph, output '{name}' {want[name].shape}" if why is None
                         else f"FAIL {graph} graph, output '{name}': {why}")
    tested = f"{manifest['golden']['samples']} samples x {manifest['golden']['steps']} steps"
    lines.append(f"PASS: both graphs reproduce the emulator ({manifest['comparison']['rule']} rule, {tested})"
                 if ok else f"FAIL: this device does not reproduce the emulator ({tested})")
    return bool(ok), lines


# ---- command line -------------------------------------------------------------------------------
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="run.py", description="Run a neurocc deployment bundle with onnxruntime.")
    p.add_argument("--selftest", action="store_true", help="check file hashes and reproduce golden.npz")
    p.add_argument("--input", metavar="X.npz", help="one time-major array (steps, batch, *shape) per input name")
    p.add_argument("--output", metavar="Y.npz", help="where to write one array per output name")
    p.add_argument("--graph", choices=("window", "step"), default="window",
                   help="window: one call for the whole sequence (default); step: one call per time step")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--bundle", default=str(HERE), help="the bundle directory (default: beside run.py)")
    args = p.parse_args(argv)
    try:
        if args.selftest:
            ok, lines = selftest(Path(args.bundle), args.threads)
            print("\n".join(lines))
            return 0 if ok else 1
        if not (args.input and args.output):
            p.error("give --input X.npz and --output Y.npz, or --selftest")
        root = Path(args.bundle)
        manifest = load_manifest(root)
        x = load_npz(Path(args.input))
        y = run_window(root, manifest, x, args.threads) if args.graph == "window" else Runner(str(root), args.threads).run(x)
        save_npz(Path(args.output), y)
        print(f"wrote {args.output}: " + ", ".join(f"{k} {v.shape}" for k, v in y.items()))
        return 0
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
