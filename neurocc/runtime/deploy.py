"""Deployment bundles: ``neurocc deploy DIR -o BUNDLE`` (issue "Edge CPU backend", item 3).

A bundle is a self-contained folder for an edge device that needs only Python (>= 3.8), numpy and
onnxruntime: no neurocc, no torch. Layout (documented in docs/deploy.md)::

    BUNDLE/manifest.json     format, graph digest, numerics, dt, steps, encoding, input/output
                             names, shapes and dtypes, step-graph states, comparison rule,
                             versions, and the sha256 and size of every other file
    BUNDLE/model.onnx        the window graph (batch inference over a whole sequence)
    BUNDLE/model_step.onnx   the step graph (streaming; state as explicit inputs/outputs)
    BUNDLE/run.py            neurocc/runtime/bundle_runner.py, copied verbatim
    BUNDLE/golden.npz        seeded inputs and the emulator's outputs (``input/<name>``,
                             ``output/<name>``; ``static/<name>`` when the artifact encodes inputs)
    BUNDLE/requirements.txt  the minimum numpy and onnxruntime it needs (ranges: MIN_VERSIONS)
    BUNDLE/README.md         how to run it on the device

Any artifact whose executed graph the edge-cpu backend can express is deployable: targets
``edge-cpu`` (int8) and ``edge-cpu-f32`` (float32), and the Loihi targets (``loihi2``, ``loihi1``,
``emulator``: the edge-cpu graphs compute the ``loihi`` profile exactly). The golden outputs come
from the emulator (the specification); before the bundle is moved into place, its own self-test
runs here, so a bundle that cannot reproduce them is never written. Same artifact and options,
same bundle bytes (no time stamps; fixed zip dates in golden.npz).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurocc._files import atomic_directory, npz_bytes
from neurocc.errors import NeuroccError
from neurocc.ir.artifact import (
    Artifact,
    check_files,
    dumps,
    load_artifact,
    neurocc_version,
)
from neurocc.runtime import bundle_runner as br

RUNNER = "run.py"
GOLDEN = "golden.npz"
README = "README.md"
REQUIREMENTS = "requirements.txt"
DEFAULT_STEPS = 100
# float32 bundles: tolerance on non-spike outputs, relative to max(1, max|golden|) (see _comparison)
FLOAT_ATOL_REL = 1e-4

NUMERICS_NOTES = {
    "int8": "integer arithmetic of the int8 profile (neurocc.ir.numerics), encoded op for op in ONNX: "
            "bit-exact with the emulator",
    "loihi": "Loihi fixed-point arithmetic (the loihi profile of neurocc.ir.numerics, as Lava's bit-accurate "
             "models compute it), encoded op for op in ONNX: bit-exact with the emulator, i.e. what the "
             "Loihi chip computes for this network",
    "float32": "float32 evaluation of the float reference's discretisation (same spikes; membranes within "
               "float32 rounding of the float64 emulator)",
}


class DeployError(NeuroccError):
    """An artifact cannot be bundled for an edge device, or the bundle fails its own self-test."""


# ---- the public API --------------------------------------------------------------------------------
def deploy_artifact(artifact_dir: str | Path, out_dir: str | Path, *, golden_samples: int = 4,
                    golden_steps: int | None = None, golden_inputs: str | Path | Mapping[str, Any] | None = None,
                    seed: int = 0) -> Path:
    """Write the bundle of the artifact at ``artifact_dir`` into ``out_dir`` (atomically) and return it.

    ``golden_inputs`` (an ``X.npz`` path or mapping: time-major arrays by input name, or static
    ``(samples, *shape)`` arrays / ``x`` when the artifact has an encoding) replaces the seeded
    random golden inputs (``golden_samples`` samples of ``golden_steps`` steps from ``seed``).
    """
    from neurocc.backends import edge_cpu

    art = load_artifact(artifact_dir)
    _require_deployable(art)
    sidecar, models = _models(art)
    golden, meta = golden_vectors(art, golden_samples, golden_steps, golden_inputs, seed)
    comparison = _comparison(art, golden)
    with bundle_directory(out_dir) as tmp:
        (tmp / edge_cpu.MODEL_FILE).write_bytes(models["window"])
        (tmp / edge_cpu.STEP_FILE).write_bytes(models["step"])
        (tmp / RUNNER).write_bytes(Path(br.__file__).read_bytes())
        (tmp / GOLDEN).write_bytes(npz_bytes(golden))
        (tmp / REQUIREMENTS).write_text(_requirements())
        doc = bundle_manifest(art, sidecar, meta, comparison)
        (tmp / README).write_text(readme(doc))
        doc["files"] = {p.name: {"sha256": br.sha256_file(p), "bytes": p.stat().st_size}
                        for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / br.MANIFEST).write_text(dumps(doc))
        ok, lines = br.selftest(tmp)
        if not ok:
            raise DeployError("the bundle does not reproduce the emulator's golden outputs on this machine, "
                              "so it was not written", where=str(art.path), problems=[ln for ln in lines if "FAIL" in ln],
                              fix="for float32 a spike may flip by rounding: deploy with other golden inputs "
                                  "(Python: deploy_artifact(..., seed=1)), or compile "
                                  "for target edge-cpu (int8, exact); otherwise report this as a neurocc bug")
    return Path(out_dir)


def format_deploy(path: str | Path) -> str:
    """What ``neurocc deploy`` prints: the bundle's files and sizes and how to run it on the device."""
    root = Path(path)
    doc = br.load_manifest(root)
    shape = lambda s: "(steps, batch" + "".join(f", {d}" for d in s["shape"]) + ")"  # noqa: E731
    lines = [f"deployment bundle {root}: graph '{doc['graph']['name']}', {doc['numerics']} numerics "
             f"(compiled for {doc['source']['target']}; self-tested when written)"]
    lines += [f"  {name:<18} {_size(entry['bytes']):>9}" for name, entry in sorted(doc["files"].items())]
    lines += [f"  {br.MANIFEST:<18} {_size((root / br.MANIFEST).stat().st_size):>9}"]
    lines.append("inputs:  " + ", ".join(f"{s['name']} {shape(s)} {s['values']}" for s in doc["inputs"]))
    lines.append("outputs: " + ", ".join(f"{s['name']} {shape(s)} {s['values']}" for s in doc["outputs"]))
    lines += ["on the device (Python >= 3.8):",
              f"  pip install -r {REQUIREMENTS}",
              "  python run.py --selftest",
              "  python run.py --input x.npz --output y.npz",
              "  streaming: from run import Runner; y_t = Runner().step(x_t)"]
    return "\n".join(lines)


# ---- checks and models -----------------------------------------------------------------------------
def _require_deployable(art: Artifact) -> None:
    from neurocc.backends import edge_cpu

    found = edge_cpu.check(art.graph)
    if found:
        raise DeployError(f"the edge-cpu backend cannot express the network of this artifact (target "
                          f"'{art.target}', numerics {art.graph.numerics or 'float32'})", where=str(art.path),
                          problems=found, fix="compile the model for target edge-cpu (int8), edge-cpu-f32 "
                                              "(float32) or a Loihi target (loihi2, loihi1, emulator), then deploy")


def _models(art: Artifact) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(edge_cpu.json document, {"window": bytes, "step": bytes}): the artifact's own files when it
    has them (hash- and digest-checked), else emitted now from its graph."""
    from neurocc.backends import edge_cpu

    names = {"window": edge_cpu.MODEL_FILE, "step": edge_cpu.STEP_FILE}
    stored = [edge_cpu.SIDECAR, *names.values()]
    if not all(n in art.manifest.get("files", {}) for n in stored):
        return edge_cpu.describe(art.graph), {m: edge_cpu.emit(art.graph, m).SerializeToString() for m in names}
    check_files(art.path, art.manifest, stored)
    models = {m: (art.path / n).read_bytes() for m, n in names.items()}
    for mode, data in models.items():
        import onnx

        props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
        if props.get(edge_cpu.DIGEST_KEY) != art.graph.digest():
            raise DeployError(f"{names[mode]} was not made from this artifact's graph", where=str(art.path / names[mode]),
                              fix="recompile the artifact (neurocc compile ... --target edge-cpu)")
    return json.loads((art.path / edge_cpu.SIDECAR).read_text()), models


# ---- golden vectors -----------------------------------------------------------------------------------
def golden_vectors(art: Artifact, samples: int, steps: int | None, given: Any, seed: int
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``input/<name>`` (time-major, as a user feeds run.py), ``static/<name>`` (encoded artifacts)
    and ``output/<name>`` (the emulator's outputs), with what describes them in the manifest."""
    from neurocc.runtime.evaluate import artifact_encoding, latency
    from neurocc.runtime.run import load_inputs, run_artifact
    from neurocc.runtime.validate import random_inputs

    arrays = (load_inputs(given) if isinstance(given, (str, Path)) else dict(given)) if given is not None else None
    lag = latency(art.graph)
    golden: dict[str, np.ndarray] = {}
    if art.manifest.get("encoding"):
        from neurocc.ir.encoding import encode

        enc = artifact_encoding(art.manifest)
        steps = int(steps or enc.timesteps + lag)
        rng = np.random.default_rng(seed)
        for spec in art.inputs:
            x = _static(arrays, spec, len(art.inputs)) if arrays is not None else rng.random((samples, *spec["shape"]))
            golden[f"static/{spec['name']}"] = np.asarray(x, np.float32)
            golden[f"input/{spec['name']}"] = encode(golden[f"static/{spec['name']}"], enc, steps)
    else:
        x = arrays if arrays is not None else random_inputs(art, samples, steps or art.manifest.get("timesteps")
                                                            or DEFAULT_STEPS, seed)
        golden.update({f"input/{k}": np.asarray(v) for k, v in x.items()})
    inputs = {k[len("input/"):]: v for k, v in golden.items() if k.startswith("input/")}
    out = run_artifact(art, "emulator", inputs)
    golden.update({f"output/{o['name']}": np.asarray(out[o["name"]]) for o in art.outputs})
    first = next(iter(inputs.values()))
    meta = {"file": GOLDEN, "source": "emulator", "seed": None if given is not None else int(seed),
            "samples": int(first.shape[1]), "steps": int(first.shape[0]), "latency_steps": int(lag),
            "output_nonzero": {o["name"]: int(np.count_nonzero(out[o["name"]])) for o in art.outputs}}
    return golden, meta


def _static(arrays: Mapping[str, Any], spec: Mapping[str, Any], n_inputs: int) -> np.ndarray:
    key = spec["name"] if spec["name"] in arrays else ("x" if n_inputs == 1 and "x" in arrays else None)
    x = np.asarray(arrays[key]) if key is not None else None
    if x is None or x.shape[1:] != tuple(spec["shape"]) or x.dtype.kind not in "biuf":
        raise DeployError(f"golden inputs: expected a static array (samples, {', '.join(map(str, spec['shape']))}) "
                          f"under '{spec['name']}'" + (" or 'x'" if n_inputs == 1 else ""), where="golden_inputs",
                          fix="this artifact encodes its inputs: give static samples as in TEST.npz")
    return x


def _comparison(art: Artifact, golden: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The self-test's rule. Integer numerics: exact. float32: spikes exact, other outputs within
    ``atol = FLOAT_ATOL_REL · max(1, max|golden|)``; the deviation of this machine's window graph
    is measured and recorded (``measured_rel``)."""
    if art.graph.numerics is not None:
        return {"rule": "exact", "why": "integer numerics: the ONNX graphs encode neurocc.ir.numerics op for op, "
                                        "so every output must equal the emulator's bit for bit"}
    from neurocc.backends import edge_cpu

    inputs = {k[len("input/"):]: v for k, v in golden.items() if k.startswith("input/")}
    got = edge_cpu.run(art.graph, inputs)
    measured = {o["name"]: float(np.abs(got[o["name"]] - golden[f"output/{o['name']}"]).max(initial=0.0)
                                 / max(1.0, float(np.abs(golden[f"output/{o['name']}"]).max(initial=0.0))))
                for o in art.outputs}
    return {"rule": "float32", "spikes": "exact", "atol_rel": FLOAT_ATOL_REL, "measured_rel": measured,
            "why": "the device computes in float32 and the emulator in float64. float32 rounds each operation to "
                   "a relative 2^-24 (6e-8); a step rounds a few multiply-adds per element and leaky states forget "
                   "old errors, so after T steps the deviation stays below about T x 8 x 6e-8 of the output's "
                   f"magnitude (4.8e-5 at T = 100). The bound {FLOAT_ATOL_REL:g} x max(1, max|golden|) holds that "
                   "with a margin of 2 (up to about 200 steps of pure accumulation); measured_rel is what this "
                   "machine's window graph reached when the bundle was made. Spikes are thresholded, so they "
                   "must be identical: a flipped spike is a real difference, not rounding"}


# ---- files ------------------------------------------------------------------------------------------
def bundle_manifest(art: Artifact, sidecar: Mapping[str, Any], golden: Mapping[str, Any],
                    comparison: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle's manifest.json, less ``files`` (added once every file is written)."""
    from neurocc.backends import edge_cpu

    dtypes = {d["name"]: d["dtype"] for d in (*sidecar["inputs"], *sidecar["outputs"])}
    numerics = art.graph.numerics or "float32"
    enc = art.manifest.get("encoding")
    return {
        "format": br.FORMAT, "format_version": br.FORMAT_VERSION, "neurocc_version": neurocc_version(),
        "source": {"target": art.target, "artifact_neurocc_version": art.manifest.get("neurocc_version"),
                   "source_graph": art.manifest.get("source_graph")},
        "graph": {"name": art.graph.name, "digest": art.graph.digest()},
        "numerics": numerics, "numerics_note": NUMERICS_NOTES[numerics],
        "dt": art.graph.dt, "encoding": enc,
        "steps": golden["steps"] if enc else art.manifest.get("timesteps"),
        "latency_steps": golden["latency_steps"],
        "inputs": [{"name": s["name"], "shape": s["shape"], "dtype": dtypes[s["name"]], "values": s["values"],
                    "int_per_float": s.get("int_per_float")} for s in art.inputs],
        "outputs": [{"name": s["name"], "shape": s["shape"], "dtype": dtypes[s["name"]],
                     "values": s.get("values", "state")} for s in art.outputs],
        "states": [{k: s[k] for k in ("name", "dtype", "shape")} for s in sidecar["states"]],
        "models": {"window": edge_cpu.MODEL_FILE, "step": edge_cpu.STEP_FILE, "opset": sidecar["opset"]},
        "golden": dict(golden), "comparison": dict(comparison),
        "requires": {"python": ">=3.8", **{k: f">={v}" for k, v in MIN_VERSIONS.items()},
                     "built_with": _versions()},
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"numpy": version("numpy"), "onnxruntime": version("onnxruntime")}


# The oldest versions a bundle needs: onnxruntime runs its opset-17 / IR-8 models from 1.13 on
# (ONNX Runtime's version table), numpy.random.default_rng exists from numpy 1.17; the floors are
# the oldest pair installable here (Python 3.11) that passes the self-test: onnxruntime 1.15.0
# with numpy 1.24.2 (its own floor). tests/test_deploy_versions.py runs that pair (marked long).
MIN_VERSIONS = {"numpy": "1.24.2", "onnxruntime": "1.15.0"}


def _requirements() -> str:
    built = ", ".join(f"{k} {v}" for k, v in _versions().items())
    return ("# The minimum versions this bundle needs; `python run.py --selftest` passes with the oldest\n"
            f"# pair (numpy {MIN_VERSIONS['numpy']}, onnxruntime {MIN_VERSIONS['onnxruntime']}) and with the "
            f"versions it was built with ({built}).\n"
            "# onnxruntime releases before 1.19 are built for numpy 1.x: with one of them keep numpy < 2.\n"
            + "".join(f"{k}>={v}\n" for k, v in MIN_VERSIONS.items()))


def readme(doc: Mapping[str, Any]) -> str:
    """The device user's README.md (from the manifest's facts)."""
    ins = "\n".join(f"| `{s['name']}` | (steps, batch, {', '.join(map(str, s['shape']))}) | {s['values']} |"
                    for s in doc["inputs"])
    outs = "\n".join(f"| `{s['name']}` | (steps, batch, {', '.join(map(str, s['shape']))}) | {s['values']} |"
                     for s in doc["outputs"])
    enc = doc["encoding"]
    enc_text = (f"Static inputs `(batch, *shape)` are encoded by run.py ({enc['kind']}, scale {enc['scale']}, "
                f"{doc['steps']} steps); time-major inputs are used as they are.\n" if enc else "")
    return f"""# neurocc bundle: {doc['graph']['name']}

Compiled for `{doc['source']['target']}` ({doc['numerics']} numerics: {doc['numerics_note']}),
dt = {doc['dt']} s per step, by neurocc {doc['neurocc_version']}. Needs Python >= 3.8, numpy and
onnxruntime only (`pip install -r {REQUIREMENTS}`: numpy {doc['requires']['numpy']}, onnxruntime
{doc['requires']['onnxruntime']}; with an onnxruntime older than 1.19 keep numpy < 2).

    python run.py --selftest                     # sha256 of every file, then both graphs vs golden.npz
    python run.py --input x.npz --output y.npz   # add --graph step to run the streaming graph

`x.npz` holds one time-major array per input (spikes 0/1, graded values as floats):

| input | shape | values |
| --- | --- | --- |
{ins}

{enc_text}`y.npz` holds one array per output:

| output | shape | values |
| --- | --- | --- |
{outs}

{class_text(doc)}

Streaming, one time step per call (state kept between calls, zero after `reset()`):

    from run import Runner
    runner = Runner()
    y_t = runner.step({{"{doc['inputs'][0]['name']}": x_t}})   # x_t: (batch, *shape)

`model.onnx` runs a whole sequence (window graph), `model_step.onnx` one step with explicit state
(listed in manifest.json). The self-test rule is `{doc['comparison']['rule']}`: see
`manifest.json` → `comparison`. Do not edit the files: the self-test checks their sha256.
"""


def class_text(doc: Mapping[str, Any]) -> str:
    """How to read the predicted class from the first output (the README's paragraph)."""
    out = doc["outputs"][0]
    lag = int(doc.get("latency_steps") or (doc.get("golden") or {}).get("latency_steps") or 0)
    steps = (doc.get("encoding") or {}).get("timesteps") or doc.get("steps")
    window = f"y[-{steps}:]" if steps else "y"
    skip = (f" The network's output lags its input by {lag} step(s) (one per synapse layer): run "
            f"{lag} steps longer than your input (append zero steps, or hold a static input), or the "
            "last input steps never reach the output." if lag else "")
    if out["values"] == "spikes":
        rule = (f"the output neuron that spiked most: `y = np.load('y.npz')['{out['name']}']; "
                f"cls = {window}.sum(axis=0).argmax(axis=-1)` (one class per batch item; count only the "
                "steps that belong to the sample)")
    elif steps:
        rule = (f"the readout neuron whose state grew most over the last {steps} steps: `y = np.load('y.npz')"
                f"['{out['name']}']; cls = (y[-1] - y[-{steps} - 1]).argmax(axis=-1)`, as neurocc's evaluate "
                "reads it (integer states share one scale, so the argmax is the float model's)")
    else:
        rule = (f"the readout neuron with the largest final state: `cls = np.load('y.npz')['{out['name']}']"
                "[-1].argmax(axis=-1)`")
    return f"**Reading the class**: {rule}.{skip}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def bundle_directory(out_dir: str | Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary sibling of ``out_dir`` that replaces it on success (removed on failure).

    An existing ``out_dir`` is replaced only when it is empty or a bundle.
    """
    return atomic_directory(out_dir, manifest=br.MANIFEST, formats=(br.FORMAT,), what="neurocc bundle",
                            error=DeployError)
