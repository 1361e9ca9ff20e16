"""Fuzz categories: a valid base file of each format, and seeded mutations of it.

Each category is ``setup(folder) -> context`` (valid base files, built once) and
``case(rng, context, work) -> None`` (one mutated input, run through the neurocc Python API).
:func:`outcome` runs one case and classifies it: ``ok`` (accepted), ``neurocc`` (a NeuroccError),
``foreign`` (any other exception: a bug) or ``hang`` (over the time limit). The test suite
(tests/test_fuzz.py) draws seeds with hypothesis; ``python tests/hostile/census.py`` counts
outcomes over a fixed range of seeds.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import signal
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import neurocc

HUGE = 2 ** 40


class Hang(BaseException):
    """Raised by the alarm when one case runs past its limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(*_: Any) -> None:
        raise Hang(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(fn: Callable[[], Any], seconds: float = 20.0) -> tuple[str, BaseException | None]:
    """('ok'|'neurocc'|'foreign'|'hang', the exception)."""
    try:
        with warnings.catch_warnings(), time_limit(seconds):
            warnings.simplefilter("ignore")
            fn()
    except neurocc.NeuroccError as err:
        return "neurocc", err
    except Hang as err:
        return "hang", err
    except Exception as err:  # noqa: BLE001  (the point: anything else is a finding)
        return "foreign", err
    return "ok", None


# ----- value mutations --------------------------------------------------------------------------
def bad_number(rng: random.Random) -> Any:
    return rng.choice([math.nan, math.inf, -math.inf, -1, 0, -1e300, 1e300, 10 ** 30, -(2 ** 63), 2 ** 64,
                       0.5, 1e-300, True, None, "EULER", "", [], {}, [1, 2], "1e6", b"x".decode()])


def bad_array(rng: random.Random, like: np.ndarray) -> Any:
    if like.dtype.kind not in "biuf":  # a string dataset: mutate as if it were numbers
        like = np.zeros(3, np.float32)
    shape = like.shape
    choice = rng.randrange(12)
    if choice == 0:
        return np.full(shape, np.nan, like.dtype if like.dtype.kind == "f" else np.float32)
    if choice == 1:
        return np.full(shape, rng.choice([np.inf, -np.inf, 1e38, -1e38]), np.float32)
    if choice == 2:
        return np.zeros((0,) + shape[1:], like.dtype)
    if choice == 3:
        return np.zeros(shape + (2,), like.dtype)
    if choice == 4:
        return np.asarray(b"abc")
    if choice == 5:
        return np.asarray("EULER")
    if choice == 6:
        return np.zeros(tuple(s + 1 for s in shape) or (3,), like.dtype)
    if choice == 7:
        return np.asarray(rng.choice([-1, 0, 2 ** 62, -(2 ** 62)]), np.int64)
    if choice == 8:
        return -np.abs(np.asarray(like, np.float64)) - 1
    if choice == 9:
        return np.asarray(like).astype(np.complex64) if like.dtype.kind in "fi" else np.zeros(3, np.complex64)
    if choice == 10:
        return np.asarray(rng.choice([0.0, 1e-30, -5.0]), np.float64)
    return np.asarray(like, np.float64)[..., :0] if like.ndim else np.asarray([], np.float64)


def mutate_json(rng: random.Random, doc: Any) -> Any:
    """One random change somewhere in a JSON document (delete, retype, huge, NaN, cycle-free)."""
    paths = list(_json_paths(doc, ()))
    if not paths:
        return rng.choice([None, [], "x", 1])
    path = rng.choice(paths)
    if not path:
        return rng.choice([None, [], "x", {}, [doc]])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = rng.randrange(4)
    if action == 0 and isinstance(parent, dict):
        del parent[key]
    elif action == 0 and isinstance(parent, list):
        parent.pop(key)
    else:
        parent[key] = bad_number(rng) if action != 3 else rng.choice([{"nodes": None}, [[]], "\x00", "a/../b"])
    return doc


def _json_paths(doc: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    yield path
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from _json_paths(value, path + (key,))


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return b"\x00"
    action = rng.randrange(3)
    if action == 0:
        return data[: rng.randrange(len(data))]
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out) if action == 1 else bytes(out[: len(out) // 2]) + data[len(out) // 2:]


# ----- base files -------------------------------------------------------------------------------
def base_files(folder: Path) -> dict[str, Any]:
    """Every valid base input, built once: NIR, ONNX, .pt2, .pt, targets.yaml, an artifact, inputs."""
    import nir
    import torch

    from hostile.models import mlp
    from hostile.payloads import cached_plain_pt2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 0.5, (5, 4)).astype(np.float32), rng.normal(0, 0.5, (3, 5)).astype(np.float32)
    lif = lambda n: nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                            v_threshold=np.ones(n), v_reset=np.zeros(n))
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([4])}),
                                   nir.Affine(weight=w1, bias=np.zeros(5, np.float32)), lif(5),
                                   nir.Affine(weight=w2, bias=np.zeros(3, np.float32)), lif(3),
                                   nir.Output(output_type={"output": np.array([3])}))
    nir.write(folder / "base.nir", graph)
    torch.manual_seed(0)
    model = mlp().eval()
    torch.save(model.state_dict(), folder / "base.pt")
    _onnx_mlp(model, folder / "base.onnx")
    shutil.copy(cached_plain_pt2(), folder / "base.pt2")
    shutil.copy(neurocc.targets.BUILTIN, folder / "targets.yaml")
    art = neurocc.compile(folder / "base.nir", "emulator", folder / "art", dt=1e-3)
    x = (rng.random((6, 2, 4)) > 0.5).astype(np.float32)
    return {"folder": folder, "nir": folder / "base.nir", "onnx": folder / "base.onnx", "pt2": folder / "base.pt2",
            "pt": folder / "base.pt", "targets": folder / "targets.yaml", "artifact": Path(art), "x": x}


def _onnx_mlp(model: Any, path: Path) -> None:
    """The MLP as ONNX Gemm/Relu/Gemm (written with onnx.helper: faster than torch.onnx.export)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inits = [numpy_helper.from_array(sd[k], k) for k in ("0.weight", "0.bias", "2.weight", "2.bias")]
    nodes = [helper.make_node("Gemm", ["x", "0.weight", "0.bias"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "2.weight", "2.bias"], ["y"], name="fc2", transB=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


# ----- categories: one mutated input each, run through the Python API ------------------------------
def case_nir(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """A NIR (HDF5) file with one dataset/group changed, removed or the bytes damaged; then load (+ plan)."""
    import h5py

    path = work / "m.nir"
    shutil.copy(base["nir"], path)
    if rng.random() < 0.25:
        path.write_bytes(mutate_bytes(rng, path.read_bytes()))
    else:
        with h5py.File(path, "r+") as f:
            items: list[tuple[str, Any]] = []
            f.visititems(lambda name, obj: items.append((name, obj)))
            name, obj = rng.choice(items)
            action = rng.randrange(5)
            if action == 0:
                del f[name]
            elif isinstance(obj, h5py.Dataset) and action < 4:
                value = obj[()]
                del f[name]
                new = bad_array(rng, np.asarray(value)) if action < 3 else None
                if new is not None and new.dtype.kind == "U":
                    new = new.astype("S")
                if new is None:
                    f.create_dataset(name, shape=(HUGE, 4), dtype="f4", chunks=(1, 4))
                else:
                    try:
                        f[name] = new
                    except (TypeError, ValueError):  # a value h5py cannot store: store text instead
                        f[name] = np.bytes_(b"EULER")
            else:
                obj.attrs["type"] = rng.choice(["EULER", "LIF ", "", "Conv9d"])
            if rng.random() < 0.2:
                meta = f.require_group("metadata")
                key = rng.choice(["neurocc_dt", "neurocc_method", "dt", "method"])
                if key in meta:
                    del meta[key]
                meta[key] = rng.choice([np.bytes_(b"EULER"), np.float64(math.nan), np.float64(-1.0),
                                        np.bytes_(b"euler"), np.float64(1e300)])
    return _then_compile(rng, path, work)


def _then_compile(rng: random.Random, path: Path, work: Path, **kw: Any) -> Callable[[], Any]:
    """Load ``path``; in half the cases also plan or compile it for a random target."""
    action = rng.randrange(6)
    if action == 0:
        return lambda: neurocc.plan(path, targets=["loihi2", "spinnaker"])
    if action < 3:
        target = rng.choice(["emulator", "loihi2", "spinnaker", "edge-cpu", "edge-cpu-f32"])
        return lambda: neurocc.compile(path, target, work / "art", **kw)
    return lambda: neurocc.load(path)


def case_onnx(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """An ONNX model with an initializer, attribute, op or input shape changed, or its bytes damaged."""
    import onnx
    from onnx import numpy_helper

    path = work / "m.onnx"
    model = onnx.load(str(base["onnx"]))
    action = rng.randrange(6)
    g = model.graph
    if action == 0 and g.initializer:
        init = rng.choice(list(g.initializer))
        new = np.asarray(bad_array(rng, numpy_helper.to_array(init)))
        if new.dtype.kind in "fiu":
            init.CopyFrom(numpy_helper.from_array(new.astype(np.float32), init.name))
        else:
            init.ClearField("raw_data")
            init.dims[:] = [HUGE]
    elif action == 1 and g.node:
        node = rng.choice(list(g.node))
        if node.attribute:
            attr = rng.choice(list(node.attribute))
            attr.CopyFrom(onnx.helper.make_attribute(attr.name, rng.choice([0, -1, HUGE, 1.5, "x", [0, 0]])))
        else:
            node.op_type = rng.choice(["Loop", "Foo", "Gemm", ""])
    elif action == 2 and g.node:
        del g.node[rng.randrange(len(g.node))]
    elif action == 3:
        dims = g.input[0].type.tensor_type.shape.dim
        for d in dims:
            d.ClearField("dim_param")
            d.dim_value = rng.choice([0, 1, HUGE, 3])
    elif action == 4 and g.initializer:
        init = rng.choice(list(g.initializer))
        init.dims[:] = [rng.choice([0, 7, HUGE])] + list(init.dims[1:])
    data = model.SerializeToString()
    path.write_bytes(mutate_bytes(rng, data) if action == 5 else data)
    x = np.random.default_rng(rng.randrange(99)).random((8, 4)).astype(np.float32)
    return _then_compile(rng, path, work, calibration={"x": x}, timesteps=8)


def case_pt2(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """A torch.export archive with one JSON record changed, one entry dropped or its bytes damaged."""
    path = work / "m.pt2"
    with zipfile.ZipFile(base["pt2"]) as zin:
        entries = {i.filename: zin.read(i) for i in zin.infolist()}
    name = rng.choice(sorted(entries))
    action = rng.randrange(4)
    if action == 0 and name.endswith(".json"):
        entries[name] = json.dumps(mutate_json(rng, json.loads(entries[name]))).encode()
    elif action == 1:
        del entries[name]
    else:
        entries[name] = mutate_bytes(rng, entries[name])
    with zipfile.ZipFile(path, "w") as zout:
        for key, data in entries.items():
            zout.writestr(key, data)
    if rng.random() < 0.1:
        path.write_bytes(mutate_bytes(rng, path.read_bytes()))
    return lambda: neurocc.load(path)


def case_pt(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """A state_dict file damaged or with a tensor changed, loaded with an entry (maybe a failing one)."""
    import torch

    path = work / "m.pt"
    state = torch.load(base["pt"], weights_only=True)
    action = rng.randrange(4)
    if action == 0:
        path.write_bytes(mutate_bytes(rng, base["pt"].read_bytes()))
    else:
        key = rng.choice(sorted(state))
        new = np.asarray(bad_array(rng, state[key].numpy()))
        state[key] = torch.from_numpy(new.astype(np.float32)) if new.dtype.kind in "fiu" else torch.zeros(0)
        torch.save(state, path)
    entry = rng.choice(["hostile.models:mlp"] * 4 + ["hostile.models:raises", "hostile.models:not_a_module",
                                                     "hostile.nope:mlp", "hostile.models:missing"])
    shape = rng.choice([None, (4,), (HUGE,), (0,)])
    return lambda: neurocc.load(path, entry=entry, input_shape=shape)


def case_targets(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """targets.yaml with one value changed (null, list, NaN, huge, bad enum, alias cycle) or damaged text."""
    import yaml

    path = work / "targets.yaml"
    text = base["targets"].read_text()
    action = rng.randrange(5)
    if action == 0:
        text = text[: rng.randrange(len(text))]
    elif action == 1:
        text += rng.choice(["\ncycle: &a [*a]\n", "\n  x: &a\n    <<: *a\n", "\n\t- x\n", "\n?\n", "\n- 1\n"])
    else:
        doc = yaml.safe_load(text)
        values = [".nan", ".inf", "-.inf", "1e400", str(10 ** 400), "-1", "0", "null", "[]", "{}", "EULER",
                  "[1, [2]]", "&x [*x]", "!!python/object/apply:os.system ['true']", "1.0e-400"]
        path_ = rng.choice(list(_json_paths(doc, ())))
        text = _yaml_replace(doc, path_, rng.choice(values))
    path.write_text(text)
    graph = _tiny_graph(base)

    def run() -> None:
        for t in list(neurocc.load_targets(path).values())[:3]:
            neurocc.plan(graph, targets=[t])
    return run


def _yaml_replace(doc: Any, path: tuple[Any, ...], value_text: str) -> str:
    import yaml

    marker = "__FUZZ_VALUE__"
    if not path:
        return value_text
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = marker
    return yaml.safe_dump(doc, sort_keys=False).replace(f"'{marker}'", value_text).replace(marker, value_text)


_GRAPHS: dict[str, Any] = {}


def _tiny_graph(base: dict[str, Any]) -> Any:
    if "g" not in _GRAPHS:
        _GRAPHS["g"] = neurocc.load(base["nir"])
    return _GRAPHS["g"]


def case_inputs(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """Inputs of odd names, shapes, dtypes and values, and odd --steps, run on the emulator/reference."""
    x = base["x"]
    arrays: dict[str, Any] = {"input": x}
    action = rng.randrange(6)
    if action == 0:
        arrays = {rng.choice(["", "x", "input/../x", "in\x00put"]): x}
    elif action == 1:
        arrays["input"] = bad_array(rng, x)
    elif action == 2:
        arrays["extra"] = x
    elif action == 3:
        arrays = {}
    path = work / "x.npz"
    np.savez(path, **{k.replace("\x00", "_") or "empty": v for k, v in arrays.items()})
    source: Any = path if rng.random() < 0.5 else arrays
    steps = rng.choice([None, None, 1, 3, 0, -1, HUGE, 10 ** 12])
    backend = rng.choice(["emulator", "emulator", "reference", "EMULATOR", "nope"])
    record = rng.random() < 0.3
    return lambda: neurocc.run(base["artifact"], backend, source, steps=steps, record=record)


def case_artifact(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """An artifact directory with one JSON value changed, one npz member changed, or a file removed."""
    art = work / "art"
    shutil.copytree(base["artifact"], art)
    files = sorted(p for p in art.iterdir() if p.is_file())
    target = rng.choice(files)
    action = rng.randrange(4)
    if action == 0:
        target.unlink()
    elif action == 1:
        target.write_bytes(mutate_bytes(rng, target.read_bytes()))
    elif target.suffix == ".json":
        target.write_text(json.dumps(mutate_json(rng, json.loads(target.read_text()))))
    else:
        with np.load(target) as z:
            arrays = {k: z[k] for k in z.files}
        if arrays:
            key = rng.choice(sorted(arrays))
            if rng.random() < 0.3:
                del arrays[key]
            else:
                arrays[key] = bad_array(rng, arrays[key])
        np.savez(target, **arrays)
    backend = rng.choice(["emulator", "reference"])
    action = rng.randrange(4)
    if action == 0:
        return lambda: neurocc.validate(art, backends=[backend], samples=2, json_path=work / "v.json")
    if action == 1:
        data = {"x": base["x"][0], "y": np.zeros(base["x"].shape[1], np.int64)}
        return lambda: neurocc.evaluate(art, data, backend=backend)
    return lambda: neurocc.run(art, backend, {"input": base["x"]})


def case_compile(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """compile with odd options: dt, timesteps, calibration arrays, output paths, targets."""
    out: Any = work / "out"
    action = rng.randrange(4)
    if action == 0:
        out.write_text("a file")
    elif action == 1:
        (out / "keep.txt").parent.mkdir()
        (out / "keep.txt").write_text("user data")
    elif action == 2:
        out = rng.choice(["/proc/neurocc-out", "/dev/null", work / "a\x00b", work / "x" / ".." / "y"])
    dt = rng.choice([None] * 4 + [1e-3, 1e-4, 0.0, -1.0, math.nan, math.inf, 1e-300, 1e300])
    target = rng.choice(["emulator", "loihi2", "spinnaker", "edge-cpu", "nope"])
    kw = {k: rng.choice(v) for k, v in {"timesteps": [None] * 6 + [8, 0, -3, 10 ** 12, 2.5, True],
                                        "method": [None] * 6 + ["EULER", "euler", "exact", 3]}.items()}
    return lambda: neurocc.compile(base["nir"], target, out, dt=dt, **kw)


def case_values(rng: random.Random, base: dict[str, Any], work: Path) -> Callable[[], Any]:
    """A well-formed NIR graph with extreme parameter values (NaN, inf, 0, negative, huge, tiny), compiled."""
    import nir

    def values(shape: tuple[int, ...], normal: float) -> np.ndarray:
        v = np.full(shape, normal, np.float64)
        if rng.random() < 0.15:
            idx = tuple(rng.randrange(s) for s in shape)
            v[idx] = rng.choice([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e300, -1e300, 1e-300, 2.0 ** 40, -0.5])
        return v

    kind = rng.choice(["LIF", "CubaLIF", "IF", "LI", "I"])
    params = {"LIF": dict(tau=values((3,), 0.01), r=values((3,), 1.0), v_leak=values((3,), 0.0),
                          v_threshold=values((3,), 1.0), v_reset=values((3,), 0.0)),
              "CubaLIF": dict(tau_syn=values((3,), 0.005), tau_mem=values((3,), 0.01), r=values((3,), 1.0),
                              v_leak=values((3,), 0.0), v_threshold=values((3,), 1.0), v_reset=values((3,), 0.0),
                              w_in=values((3,), 1.0)),
              "IF": dict(r=values((3,), 1.0), v_threshold=values((3,), 1.0), v_reset=values((3,), 0.0)),
              "LI": dict(tau=values((3,), 0.01), r=values((3,), 1.0), v_leak=values((3,), 0.0)),
              "I": dict(r=values((3,), 1.0))}[kind]
    neuron = getattr(nir, kind)(**params)
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": np.array([4])}),
                                   nir.Affine(weight=values((3, 4), 0.3), bias=values((3,), 0.0)), neuron,
                                   nir.Output(output_type={"output": np.array([3])}))
    path = work / "v.nir"
    nir.write(path, graph)
    target = rng.choice(["emulator", "loihi2", "loihi1", "spinnaker", "spinnaker2", "edge-cpu", "edge-cpu-f32"])
    dt = rng.choice([None, 1e-3, 1e-4, 0.05])
    return lambda: neurocc.compile(path, target, work / "art", dt=dt)


CATEGORIES: dict[str, Callable[[random.Random, dict[str, Any], Path], Callable[[], Any]]] = {
    "nir": case_nir, "onnx": case_onnx, "pt2": case_pt2, "pt": case_pt, "targets": case_targets,
    "inputs": case_inputs, "artifact": case_artifact, "compile": case_compile, "values": case_values,
}
