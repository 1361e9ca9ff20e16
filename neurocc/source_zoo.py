"""The source-check zoo: small spiking models written as snnTorch and Sinabs users write them,
trained briefly on scikit-learn's digits as rate-coded spikes, then judged three ways:

1. the trained model run in its own framework (:mod:`neurocc.runtime.source`) against neurocc's
   float reference on the test set: the fraction of samples with identical output spike counts
   (acceptance: >= 99 %), plus the source check's first divergence when there is one;
2. each integer target (``loihi2`` on the emulator, ``edge-cpu`` on ONNX Runtime) against the
   source model's accuracy (acceptance: within 1 point), and ``spinnaker`` within its own rule
   (``validate``: the PyNN run's mean-activity cosine against the float reference);
3. whether ``compile`` passes its source check.

Inputs: pixels in [0, 1] as Bernoulli spikes per step (:data:`STEPS` steps), drawn from seeded
generators; training: Adam on the cross-entropy of the summed output spikes, :data:`ITERS`
iterations of :data:`BATCH` samples, one torch thread, seeded. ``python -m neurocc.source_zoo``
prints the table docs/source-check.md holds. Needs torch, snnTorch, Sinabs, scikit-learn.
"""
from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STEPS = 20
ITERS = 250
BATCH = 64
CAL_SAMPLES = 256


@dataclass(frozen=True)
class ZooModel:
    name: str
    framework: str
    layout: str          # dense / conv / recurrent
    reset: str
    build: Callable[[], Any]
    image: bool = False  # input (1, 8, 8) instead of (64,)
    refused: str = ""    # the integer targets refuse it; their message contains this text


def _snn_dense(neuron: Callable[..., Any], **kw: Any) -> Callable[[], Any]:
    def build() -> Any:
        from torch import nn

        return nn.Sequential(nn.Linear(64, 32), neuron(init_hidden=True, **kw), nn.Linear(32, 10),
                             neuron(init_hidden=True, **kw))
    return build


def _snn_rec(kind: str, **kw: Any) -> Callable[[], Any]:
    def build() -> Any:
        import snntorch as snn
        from torch import nn

        cls = snn.RLeaky if kind == "RLeaky" else snn.RSynaptic
        extra = {"alpha": 0.8} if kind == "RSynaptic" else {}
        size = {} if kw.get("all_to_all", True) is False else {"linear_features": 32}
        return nn.Sequential(nn.Linear(64, 32), cls(beta=0.9, init_hidden=True, **size, **extra, **kw),
                             nn.Linear(32, 10), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=kw.get(
                                 "reset_mechanism", "subtract")))
    return build


def _snn_conv(reset: str, pool: bool = False) -> Callable[[], Any]:
    def build() -> Any:
        import snntorch as snn
        from torch import nn

        layers = [nn.Conv2d(1, 6, 3)] + ([nn.AvgPool2d(2)] if pool else [])
        feat = 6 * 3 * 3 if pool else 6 * 6 * 6
        return nn.Sequential(*layers, snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset), nn.Flatten(),
                             nn.Linear(feat, 10), snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset))
    return build


def _sinabs(kind: str, conv: bool = False, single_spike: bool = True) -> Callable[[], Any]:
    def build() -> Any:
        import sinabs.layers as sl
        from torch import nn

        import sinabs.activation as sa

        single = {"spike_fn": sa.SingleSpike} if single_spike else {}
        neuron = (lambda: sl.IAFSqueeze(batch_size=None, num_timesteps=1, **single)) if kind == "IAFSqueeze" else \
            (lambda: sl.LIF(tau_mem=10.0, **single)) if kind == "LIF" else (lambda: sl.IAF(**single))
        if conv:
            return nn.Sequential(nn.Conv2d(1, 6, 3), neuron(), nn.Flatten(), nn.Linear(216, 10), neuron())
        return nn.Sequential(nn.Linear(64, 32), neuron(), nn.Linear(32, 10), neuron())
    return build


def models() -> list[ZooModel]:
    import snntorch as snn

    leaky = lambda **kw: snn.Leaky(beta=0.9, **kw)  # noqa: E731
    syn = lambda **kw: snn.Synaptic(alpha=0.8, beta=0.9, **kw)  # noqa: E731
    return [
        ZooModel("snn-leaky-subtract", "snnTorch", "dense", "subtract", _snn_dense(leaky)),
        ZooModel("snn-leaky-zero", "snnTorch", "dense", "zero", _snn_dense(leaky, reset_mechanism="zero")),
        ZooModel("snn-leaky-none", "snnTorch", "dense", "none", _snn_dense(leaky, reset_mechanism="none")),
        ZooModel("snn-leaky-nodelay", "snnTorch", "dense", "subtract, reset_delay=False",
                 _snn_dense(leaky, reset_delay=False)),
        ZooModel("snn-leaky-learn", "snnTorch", "dense", "subtract, learn_beta/threshold",
                 _snn_dense(leaky, learn_beta=True, learn_threshold=True)),
        ZooModel("snn-synaptic-subtract", "snnTorch", "dense", "subtract", _snn_dense(syn)),
        ZooModel("snn-synaptic-zero", "snnTorch", "dense", "zero", _snn_dense(syn, reset_mechanism="zero")),
        ZooModel("snn-rleaky-zero", "snnTorch", "recurrent", "zero", _snn_rec("RLeaky", reset_mechanism="zero")),
        ZooModel("snn-rleaky-subtract", "snnTorch", "recurrent", "subtract", _snn_rec("RLeaky")),
        ZooModel("snn-rleaky-1to1", "snnTorch", "recurrent", "subtract, all_to_all=False",
                 _snn_rec("RLeaky", all_to_all=False)),
        ZooModel("snn-rsynaptic-subtract", "snnTorch", "recurrent", "subtract", _snn_rec("RSynaptic")),
        ZooModel("snn-conv-subtract", "snnTorch", "conv", "subtract", _snn_conv("subtract"), image=True),
        ZooModel("snn-conv-zero", "snnTorch", "conv", "zero", _snn_conv("zero"), image=True),
        ZooModel("snn-conv-avgpool", "snnTorch", "conv", "subtract, Conv→AvgPool→Leaky",
                 _snn_conv("subtract", pool=True), image=True),
        ZooModel("sinabs-iaf-multi", "Sinabs", "dense", "subtract, MultiSpike (Sinabs' default)",
                 _sinabs("IAF", single_spike=False)),
        ZooModel("sinabs-iaf", "Sinabs", "dense", "subtract, SingleSpike", _sinabs("IAF")),
        ZooModel("sinabs-lif", "Sinabs", "dense", "subtract, SingleSpike", _sinabs("LIF")),
        ZooModel("sinabs-iaf-conv", "Sinabs", "conv", "subtract, SingleSpike", _sinabs("IAFSqueeze", conv=True),
                 image=True),
    ]


def rate_spikes(x: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Bernoulli(x) spikes per step, time-major float32 ``(steps, n, *shape)``."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, *x.shape)) < x[None]).astype(np.float32)


def train(zm: ZooModel, iters: int = ITERS, seed: int = 0) -> Any:
    """The model trained for ``iters`` Adam steps on rate-coded digits (deterministic for ``seed``)."""
    import torch

    from neurocc.runtime.source.torchrun import _sinabs_time_axis, reset_state
    from neurocc.zoo import load_digits_split

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = zm.build()
        x_tr, y_tr, _, _ = load_digits_split(seed=0, image=zm.image)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        rng = np.random.default_rng(seed)
        timed = _sinabs_time_axis(model)
        for it in range(iters):
            idx = rng.choice(len(x_tr), BATCH, replace=False)
            spikes = torch.as_tensor(rate_spikes(x_tr[idx], STEPS, seed * 100003 + it))
            reset_state(model)
            for m in model.modules():   # a fresh graph per batch (Sinabs keeps state tensors)
                if hasattr(m, "reset_states") and type(m).__module__.startswith("sinabs"):
                    m.reset_states()
            total = 0
            for t in range(STEPS):
                out = model(spikes[t][:, None] if timed else spikes[t])
                out = out[0] if isinstance(out, tuple) else out
                total = total + (out[:, 0] if timed else out)
            loss = torch.nn.functional.cross_entropy(total, torch.as_tensor(y_tr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        reset_state(model)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def _acc(outputs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(outputs.sum(0).reshape(len(y), -1).argmax(1) == y))


def rounded_source_accuracy(zm: ZooModel, model: Any, bits: int = 8) -> float:
    """The source model's test accuracy (its own framework) with the weights of every ``Linear``
    and ``Conv2d`` rounded to ``bits``-bit symmetric integers per layer (max |w| ↦ 2^(bits−1) − 1),
    everything else float: what the integer targets' weight grid alone does to the trained model."""
    import copy

    import torch

    from neurocc.runtime.source.torchrun import run_module
    from neurocc.zoo import load_digits_split

    _, _, x_te, y_te = load_digits_split(seed=0, image=zm.image)
    q = copy.deepcopy(model)
    with torch.no_grad():
        for mod in q.modules():
            if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
                s = mod.weight.abs().max() / (2 ** (bits - 1) - 1)
                if s > 0:
                    mod.weight.copy_(torch.round(mod.weight / s) * s)
    return _acc(run_module(q, {"input": rate_spikes(x_te, STEPS, 12345)}, [])["output"], y_te)


def evaluate(zm: ZooModel, model: Any, out_dir: str | Path, targets: tuple[str, ...] = ("loihi2", "edge-cpu"),
             backends: dict[str, str] | None = None, compile_kw: dict[str, Any] | None = None,
             spinnaker: bool = True) -> dict[str, Any]:
    """One row of the zoo table (see the module docstring); errors are recorded, not raised.
    Per integer target also ``<t>_agreement``: the fraction of test samples whose output spike
    counts equal the source model's, and ``<t>_same_class``: whose predicted class does."""
    import neurocc
    from neurocc.backends.reference import simulate
    from neurocc.compiler.floatside import float_side
    from neurocc.errors import NeuroccError
    from neurocc.ir.artifact import load_artifact
    from neurocc.runtime.source import unmapped_modules
    from neurocc.runtime.source.compare import compare_records
    from neurocc.runtime.source.torchrun import run_module
    from neurocc.runtime.validate import latency
    from neurocc.targets import get_target
    from neurocc.zoo import load_digits_split

    backends = backends or {"loihi2": "emulator", "edge-cpu": "edge-cpu"}
    x_tr, _, x_te, y_te = load_digits_split(seed=0, image=zm.image)
    test, cal = rate_spikes(x_te, STEPS, 12345), rate_spikes(x_tr[:CAL_SAMPLES], STEPS, 54321)
    row: dict[str, Any] = {"model": zm.name, "framework": zm.framework, "layout": zm.layout, "reset": zm.reset}
    try:
        graph = neurocc.load(model, input_shape=(1, 8, 8) if zm.image else None)
    except NeuroccError as err:
        row["error"] = f"load: {err.what}: {'; '.join(err.problems or [])}"[:300]
        return row
    fg = float_side(graph, get_target("edge-cpu"), None, "euler", None, None).float_graph
    got = run_module(model, {"input": test}, list(fg.nodes))
    res = simulate(fg, {"input": test.astype(np.float64)}, record=True)
    ref = {**res.outputs, **res.traces}
    cmp = compare_records(fg, ref, got, unmapped_modules(model, fg))
    row.update(source_acc=_acc(got["output"], y_te), reference_acc=_acc(ref[fg.outputs[0]], y_te),
               count_agreement=cmp.output_count_agreement, identical=cmp.identical, ties=cmp.ties,
               diverged=cmp.diverged, first_divergence=cmp.first_divergence, cause=cmp.cause,
               max_state_error=max((la.max_abs_error / max(la.tol / 1e-4, 1.0) for la in cmp.layers), default=0.0))
    for t in targets:
        try:
            art_dir = neurocc.compile(model, t, Path(out_dir) / f"{zm.name}-{t}", calibration={"x": cal},
                                      input_shape=(1, 8, 8) if zm.image else None, allow_source_mismatch=True,
                                      **(compile_kw or {}))
            art = load_artifact(art_dir)
            lag = latency(art.graph)[art.graph.outputs[0]] - latency(art.float_graph)[art.float_graph.outputs[0]]
            x = np.concatenate([test, np.zeros((lag, *test.shape[1:]), np.float32)]) if lag else test
            out = neurocc.run(art_dir, backends[t], {"input": x})[art.outputs[0]["name"]][lag:]
            row[f"{t}_acc"] = _acc(np.asarray(out, np.float64), y_te)
            mine, theirs = (np.asarray(a, np.float64).sum(0).reshape(len(y_te), -1) for a in (out, got["output"]))
            row[f"{t}_agreement"] = float(np.mean(np.all(mine == theirs, axis=1)))
            row[f"{t}_same_class"] = float(np.mean(mine.argmax(1) == theirs.argmax(1)))
            row[f"{t}_source_check"] = bool(art.manifest["source"]["result"]["passed"])
        except NeuroccError as err:
            detail = (err.problems or [""])[0] if getattr(err, "problems", None) else ""
            row[f"{t}_error"] = f"{err.what.splitlines()[0]}: {detail}"[:240]
    if spinnaker:
        _spinnaker(row, model, zm, cal, out_dir, compile_kw)
    return row


SPINNAKER_SAMPLES = 8


def _spinnaker(row: dict[str, Any], model: Any, zm: ZooModel, cal: np.ndarray, out_dir: str | Path,
               compile_kw: dict[str, Any] | None) -> None:
    """spinnaker within its rule: ``validate`` (the float PyNN run against the reference, mean-activity
    cosine >= the target's min_cosine) on :data:`SPINNAKER_SAMPLES` calibration samples."""
    import neurocc
    from neurocc.errors import NeuroccError

    try:
        art = neurocc.compile(model, "spinnaker", Path(out_dir) / f"{zm.name}-spinnaker", calibration={"x": cal},
                              input_shape=(1, 8, 8) if zm.image else None, allow_source_mismatch=True,
                              **(compile_kw or {}))
        res = neurocc.validate(art, backends=["spinnaker"], samples=SPINNAKER_SAMPLES)["results"][0]
        row.update(spinnaker_cosine=res["cosine"], spinnaker_passed=bool(res["passed"]))
        if res.get("error"):
            row["spinnaker_error"] = str(res["error"])[:200]
    except NeuroccError as err:
        detail = (err.problems or [""])[0]
        row["spinnaker_error"] = f"{err.what.splitlines()[0]}: {detail}"[:240]


def run_zoo(names: list[str] | None = None, iters: int = ITERS, out_dir: str | Path | None = None) -> list[dict]:
    """Train and evaluate the zoo models called ``names`` (default: all)."""
    from neurocc.errors import NeuroccError

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for zm in models():
            if names and zm.name not in names:
                continue
            try:
                model = train(zm, iters)
            except Exception as err:  # a framework that cannot train this layout here: say so in the row
                rows.append({"model": zm.name, "framework": zm.framework, "layout": zm.layout, "reset": zm.reset,
                             "error": f"training in {zm.framework} failed: {type(err).__name__}: {err}"[:200]})
                continue
            try:
                rows.append(evaluate(zm, model, out_dir or tmp))
            except NeuroccError as err:   # e.g. a targets file being edited: the row says so, the zoo goes on
                rows.append({"model": zm.name, "framework": zm.framework, "layout": zm.layout, "reset": zm.reset,
                             "error": f"{err.what}: {'; '.join(err.problems)}"[:300]})
    return rows


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _spin(r: dict) -> str:
    if r.get("spinnaker_cosine") is None:
        return "-"
    return f"{r['spinnaker_cosine']:.4f} ({'PASS' if r.get('spinnaker_passed') else 'FAIL'})"


def format_table(rows: list[dict]) -> str:
    """The Markdown table of docs/source-check.md."""
    head = ("| model | framework | layout | reset | source acc % | reference acc % | equal counts % | "
            "loihi2 acc % | edge-cpu acc % | spinnaker cosine (rule) | first divergence / error |")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        fd = r.get("first_divergence")
        note = r.get("error") or (f"node '{fd['node']}' {fd['var']} step {fd['step']}: {r.get('cause')}" if fd else "")
        for t in ("loihi2", "edge-cpu", "spinnaker"):
            if r.get(f"{t}_error"):
                note += f" {t}: {r[f'{t}_error']}"
        lines.append(f"| {r['model']} | {r['framework']} | {r['layout']} | {r['reset']} | {_pct(r.get('source_acc'))} | "
                     f"{_pct(r.get('reference_acc'))} | {_pct(r.get('count_agreement'))} | {_pct(r.get('loihi2_acc'))} | "
                     f"{_pct(r.get('edge-cpu_acc'))} | {_spin(r)} | {note.strip().replace('|', '/')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = run_zoo(sys.argv[1:] or None)
    print(format_table(result))
    print(json.dumps(result, indent=1, default=str), file=sys.stderr)
