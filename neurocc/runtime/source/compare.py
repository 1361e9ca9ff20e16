"""Compare a recorded run of the source model with neurocc's float reference, layer by layer.

Both runs are keyed ``"<node>/<var>"`` (``out``, ``u``, ``v``), time-major ``(steps, batch, *shape)``.

* **Spikes** (``out`` of a spiking node) must be equal element for element.
* **Graded values and states** must agree within ``tol = TOL_REL · max(1, max |source value|)``
  per layer. Why :data:`TOL_REL` = 1e-4: the source runs in float32 (unit roundoff u = 2^-24 ≈
  6e-8), the reference in float64. A layer output is a dot product of n terms, accurate to about
  √n·u relative to Σ|w·x| (n·u in the worst case); a membrane with decay β carries that error
  for ~1/(1−β) steps. For n ≤ 1024 and β ≤ 0.95 the typical error is ≤ 32·20·6e-8 ≈ 4e-5 of the
  layer's scale; 1e-4 is above it, and three orders below the smallest semantic difference this
  check looks for (the ``(1−β)·θ`` of a reset applied before versus after the decay, 0.05 for β =
  0.95, θ = 1). The zoo (docs/source-check.md) reports the largest error measured per model.
* States are compared only at steps where neither run spiked at that neuron: a framework may
  record the membrane before its reset (snnTorch's ``mem``) and the IR after it; the step after
  a spike shows any difference in the reset itself.

Each sample is judged by its **first** divergence, ordered by (step, node in ``graph.order()``,
variable ``u``, ``v``, ``out``): every earlier value agrees, so the cause is in that node's own
update (the argument of :mod:`neurocc.runtime.divergence`). A first divergence that is a spike
where the non-spiking run's membrane is within ``tol`` of the threshold is a **tie** (float32
versus float64 rounding decided a comparison at the threshold; later differences of that sample
are its consequences). Any other first divergence fails the check, with its likely cause.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocc.ir.graph import Graph

TOL_REL = 1e-4
VAR_ORDER = ("u", "v", "out")


@dataclass(frozen=True)
class Layer:
    """One layer's comparison over all samples."""

    node: str
    kind: str
    spiking: bool
    spike_mismatches: int = 0
    spikes_compared: int = 0
    max_abs_error: float = 0.0          # graded output / states (masked at spikes), over the layer
    tol: float = 0.0
    diverged_samples: int = 0           # samples whose first (non-tie) divergence is in this layer
    tie_samples: int = 0

    def line(self) -> str:
        sp = (f"spikes {self.spike_mismatches}/{self.spikes_compared} differ" if self.spiking else "graded")
        verdict = "FAIL" if self.diverged_samples else ("ties" if self.tie_samples else "ok")
        return (f"  {self.node:<14} {self.kind:<9} {sp:<28} max |error| {self.max_abs_error:.3g} "
                f"(tol {self.tol:.3g})  {verdict}")


@dataclass
class SourceComparison:
    """The result: per-layer lines, per-sample verdicts, the first divergence and its cause."""

    layers: list[Layer]
    samples: int
    identical: int                      # samples equal everywhere (within tol)
    ties: int                           # samples whose first divergence is a tie at the threshold
    diverged: int
    output_count_agreement: float | None
    first_divergence: dict[str, Any] | None = None
    cause: str | None = None
    not_compared: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.diverged == 0 and bool(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "samples": self.samples, "identical": self.identical, "ties": self.ties,
                "diverged": self.diverged, "output_count_agreement": self.output_count_agreement,
                "first_divergence": self.first_divergence, "likely_cause": self.cause, "tol_rel": TOL_REL,
                "layers": [{"node": la.node, "kind": la.kind, "spike_mismatches": la.spike_mismatches,
                            "spikes_compared": la.spikes_compared, "max_abs_error": la.max_abs_error,
                            "tol": la.tol, "diverged_samples": la.diverged_samples, "tie_samples": la.tie_samples}
                           for la in self.layers],
                "not_compared": self.not_compared}


def _threshold(node: Any) -> np.ndarray | None:
    th = getattr(node, "v_threshold", None)
    return None if th is None else np.asarray(th, np.float64)


def _masks(graph: Graph, ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray]) -> tuple[dict, dict]:
    """Per key: a boolean mismatch array (steps, batch, *shape), and the per-layer numbers."""
    mism: dict[str, np.ndarray] = {}
    stats: dict[str, dict[str, Any]] = {}
    for n in graph.order():
        node = graph.nodes[n]
        if n in graph.inputs or n in graph.outputs:
            continue
        keys = [f"{n}/{v}" for v in VAR_ORDER if f"{n}/{v}" in ref and f"{n}/{v}" in src
                and ref[f"{n}/{v}"].shape == src[f"{n}/{v}"].shape]   # else the node stands for more than
        if f"{n}/out" not in keys:                                     # the module (a folded pooling)
            continue
        scale = max(1.0, max(float(np.max(np.abs(src[k]))) if src[k].size else 0.0 for k in keys))
        tol = TOL_REL * scale
        spikes_e, spikes_g = ref[f"{n}/out"] != 0, src[f"{n}/out"] != 0
        st = {"tol": tol, "err": 0.0, "sm": 0, "sc": 0}
        for k in keys:
            e, g = ref[k], src[k]
            if k.endswith("/out") and node.spiking:
                m = e != g
                st["sm"], st["sc"] = int(m.sum()), int(m.size)
            else:
                err = np.abs(e - g)
                if not k.endswith("/out") and node.spiking:
                    err = np.where(spikes_e | spikes_g, 0.0, err)
                m = err > tol
                st["err"] = max(st["err"], float(err.max()) if err.size else 0.0)
            mism[k] = m
        stats[n] = st
    return mism, stats


def _first_per_sample(graph: Graph, mism: Mapping[str, np.ndarray], batch: int) -> list[tuple | None]:
    """For each sample: (step, node position, var position, key, flat neuron index) of its first divergence."""
    pos = {n: i for i, n in enumerate(graph.order())}
    best: list[tuple | None] = [None] * batch
    for k, m in mism.items():
        node, var = k.rsplit("/", 1)
        flat = m.reshape(m.shape[0], m.shape[1], -1)
        hit = flat.any(axis=2)
        for b in np.flatnonzero(hit.any(axis=0)):
            t = int(np.argmax(hit[:, b]))
            cand = (t, pos[node], VAR_ORDER.index(var), k, int(np.argmax(flat[t, b])))
            if best[b] is None or cand[:3] < best[b][:3]:
                best[b] = cand
    return best


def _is_tie(graph: Graph, ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray], first: tuple, b: int,
            tol: float) -> bool:
    """A spike that differs where the non-spiking run's membrane is within ``tol`` of the threshold."""
    t, _, _, key, i = first
    node, var = key.rsplit("/", 1)
    th = _threshold(graph.nodes[node])
    if var != "out" or th is None:
        return False
    e_spk = ref[key].reshape(ref[key].shape[0], ref[key].shape[1], -1)[t, b, i] != 0
    side = src if e_spk else ref            # the run that did not spike
    v = side.get(f"{node}/v")
    if v is None:
        return False
    vv = float(v.reshape(v.shape[0], v.shape[1], -1)[t, b, i])
    return abs(vv - float(np.broadcast_to(th, v.shape[2:]).reshape(-1)[i])) <= tol


def likely_cause(graph: Graph, ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray], first: tuple,
                 b: int, unmapped: Mapping[str, list[str]] | None = None) -> str:
    """One sentence naming what most likely differs at the first divergence. ``unmapped``: per
    node, the source's submodules with weights that no graph node stands for."""
    t, _, _, key, i = first
    node, var = key.rsplit("/", 1)
    missing = (unmapped or {}).get(node)
    if missing and var in ("u", "v"):
        return (f"the source's '{node}' has submodule(s) {', '.join(missing)} with weights that no node of the graph "
                "holds (e.g. a recurrent connection the frontend dropped): its contribution to the state is missing")
    nd = graph.nodes[node]
    recurrent = any(e.dst == node or e.src == node for e in graph.recurrent_edges())
    spk = ref.get(f"{node}/out")
    spiked_before = spk is not None and t > 0 and nd.spiking and bool(
        (spk.reshape(spk.shape[0], spk.shape[1], -1)[:t, b, i] != 0).any()
        or (src[f"{node}/out"].reshape(spk.shape[0], spk.shape[1], -1)[:t, b, i] != 0).any())
    if var in ("u", "v") and spiked_before:
        return (f"the membrane of '{node}' differs after this neuron has spiked: the reset differs (its kind, or "
                "its order: snnTorch subtracts the threshold of step t-1 inside step t's integration, "
                "reset_delay) or a recurrent connection of the layer is missing or misread")
    if var in ("u", "v"):
        extra = "; the layer's recurrent input is read differently" if recurrent else ""
        return (f"the state '{var}' of '{node}' ({nd.kind}) differs before any spike: its decay "
                f"(beta/alpha vs tau at dt), input gain (r, w_in) or leak differs{extra}")
    if nd.spiking:
        return (f"'{node}' fires differently with the same membrane: the threshold value or comparison "
                "(v > θ vs v >= θ) differs, or the framework's spike is not a step of v - θ")
    return (f"the output of '{node}' ({nd.kind}) differs with equal inputs: its weights, bias or operation "
            "(padding, stride, pooling, flattening order) differ")


def compare_records(graph: Graph, ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray],
                    unmapped: Mapping[str, list[str]] | None = None) -> SourceComparison:
    """Judge ``src`` (the source model's record) against ``ref`` (the float reference's) on ``graph``
    (``unmapped``: see :func:`likely_cause`)."""
    mism, stats = _masks(graph, ref, src)
    batch = next(iter(ref.values())).shape[1]
    firsts = _first_per_sample(graph, mism, batch)
    diverged: dict[str, int] = {}
    ties: dict[str, int] = {}
    first_doc, cause = None, None
    for b, f in enumerate(firsts):
        if f is None:
            continue
        node = f[3].rsplit("/", 1)[0]
        if _is_tie(graph, ref, src, f, b, stats[node]["tol"]):
            ties[node] = ties.get(node, 0) + 1
            continue
        diverged[node] = diverged.get(node, 0) + 1
        if first_doc is None or f[:3] < (first_doc["step"], *first_doc["_pos"]):
            first_doc = _divergence_doc(ref, src, f, b)
            cause = likely_cause(graph, ref, src, f, b, unmapped)
    if first_doc is not None:
        first_doc.pop("_pos")
    layers = [Layer(n, graph.nodes[n].kind, graph.nodes[n].spiking, st["sm"], st["sc"], st["err"], st["tol"],
                    diverged.get(n, 0), ties.get(n, 0)) for n, st in stats.items()]
    skipped = [n for n in graph.order() if n not in stats and n not in graph.inputs and n not in graph.outputs]
    return SourceComparison(layers, batch, sum(f is None for f in firsts), sum(ties.values()),
                            sum(diverged.values()), _count_agreement(graph, ref, src), first_doc, cause, skipped)


def _divergence_doc(ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray], f: tuple, b: int) -> dict:
    t, p, v, key, i = f
    node, var = key.rsplit("/", 1)
    shape = ref[key].shape[2:]
    idx = [b, *np.unravel_index(i, shape)] if shape else [b]
    e = ref[key].reshape(ref[key].shape[0], ref[key].shape[1], -1)[t, b, i]
    g = src[key].reshape(src[key].shape[0], src[key].shape[1], -1)[t, b, i] if src[key].shape == ref[key].shape \
        else f"shape {list(src[key].shape)}"
    return {"node": node, "step": int(t), "index": [int(x) for x in idx], "var": var,
            "expected": float(e), "got": g if isinstance(g, str) else float(g), "_pos": (p, v)}


def _count_agreement(graph: Graph, ref: Mapping[str, np.ndarray], src: Mapping[str, np.ndarray]) -> float | None:
    """Fraction of samples whose output spike counts (per output neuron, summed over steps) are equal."""
    for o in graph.outputs:
        srcs = graph.predecessors(o)
        key = f"{srcs[0]}/out" if srcs else None
        if key in ref and key in src and graph.nodes[srcs[0]].spiking and ref[key].shape == src[key].shape:
            e, g = ref[key].sum(0), src[key].sum(0)
            same = (e == g).reshape(e.shape[0], -1).all(axis=1)
            return float(same.mean())
    return None
