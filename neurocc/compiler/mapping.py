"""The mapping report: what each layer uses of its cores, what binds, and how to make it fit.

``mapping_report(graph, target) -> MappingReport`` runs partition + place and tabulates, per
layer and per resource, the largest slice's use against the target's per-core budget (slack =
budget − used, utilisation = used / budget), then cores, chips and chip-level resources. When
the network does not fit, ``binding`` names the constraint to fix first (layer, resource,
needed, available) and ``fixes`` lists concrete changes ranked by effect, each one computed by
re-running the mapping with the change applied (see :mod:`neurocc.compiler.fixes`).

``require_fit(report)`` raises :class:`MappingError` (exit code 1, message naming the binding
constraint and the fixes) for ``neurocc compile``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from neurocc.compiler.passes.partition import Partition, Violation, partition
from neurocc.compiler.passes.place import Placement, place
from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.targets import Target

CORE_RESOURCES = ("neurons", "synapse_memory_bits", "fan_in_axons", "fan_out_axons")
LIMIT_OF = {"neurons": "neurons_per_core", "synapse_memory_bits": "synapse_memory_bits_per_core",
            "fan_in_axons": "fan_in_axons_per_core", "fan_out_axons": "fan_out_axons_per_core",
            "cores_per_chip": "cores_per_chip", "sdram_bytes": "sdram_bytes_per_chip",
            "routing_entries": "routing_entries_per_chip", "chips": "chips", "delay_steps": "max_delay_steps"}
_SCOPE_ORDER = {"connection": 0, "core": 0, "chip": 1, "network": 2}


@dataclass(frozen=True)
class ResourceUse:
    """One row of the report: ``layer`` (or ``chip <k>`` / ``network``) × ``resource``."""

    layer: str
    resource: str
    used: float
    budget: float | None

    @property
    def slack(self) -> float | None:
        return None if self.budget is None else self.budget - self.used

    @property
    def utilisation(self) -> float | None:
        return None if not self.budget else self.used / self.budget

    def to_dict(self) -> dict:
        return {"layer": self.layer, "resource": self.resource, "used": self.used, "budget": self.budget,
                "slack": self.slack, "utilisation": self.utilisation}


@dataclass(frozen=True)
class Binding:
    """The constraint that limits the mapping (for a network that fits: the tightest one)."""

    layer: str | None
    resource: str
    needed: float
    available: float | None
    scope: str
    detail: str = ""

    def text(self, verb: str = "needs") -> str:
        where = f"layer '{self.layer}'" if self.layer else "the network"
        avail = "unlimited" if self.available is None else _num(self.available)
        tail = f" ({self.detail})" if self.detail else ""
        return f"{where}: {self.resource} {verb} {_num(self.needed)}, available {avail}{tail}"


@dataclass(frozen=True)
class Fix:
    """A concrete change and its predicted effect, computed by mapping again with it applied."""

    kind: str            # weight_bits | chips | target | groups | move | prune
    action: str          # e.g. "lower weight bits to 4"
    fits: bool
    cores: int
    chips: int
    effect: str          # e.g. "fits: 37 cores on 1 chip"
    changes_model: bool = False
    accuracy: float | None = None   # prune: emulator accuracy on the calibration data after the change

    def to_dict(self) -> dict:
        return {"kind": self.kind, "action": self.action, "fits": self.fits, "cores": self.cores,
                "chips": self.chips, "effect": self.effect, "changes_model": self.changes_model,
                "accuracy": self.accuracy}


@dataclass(frozen=True, eq=False)
class MappingReport:
    target: str
    fits: bool
    binding: Binding | None
    violations: tuple[Violation, ...]
    rows: tuple[ResourceUse, ...]
    cores: int
    chips: int
    utilisation: float | None          # neurons placed / (cores × neurons_per_core)
    inter_chip_traffic: float
    partition: Partition = field(repr=False)
    placement: Placement = field(repr=False)
    fixes: tuple[Fix, ...] = ()

    def to_dict(self) -> dict:
        return {"target": self.target, "fits": self.fits,
                "binding": None if self.binding is None else {
                    "layer": self.binding.layer, "resource": self.binding.resource,
                    "needed": self.binding.needed, "available": self.binding.available,
                    "scope": self.binding.scope, "detail": self.binding.detail},
                "violations": [v.__dict__ | {"ratio": v.ratio} for v in self.violations],
                "cores": self.cores, "chips": self.chips, "utilisation": self.utilisation,
                "inter_chip_traffic": self.inter_chip_traffic,
                "layers": _layers_json(self.partition), "resources": [r.to_dict() for r in self.rows],
                "placement": self.placement.to_dict(), "fixes": [f.to_dict() for f in self.fixes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=_json_default)

    def format_table(self) -> str:
        from neurocc.compiler.mapping_table import format_report

        return format_report(self)


class MappingError(CompileError):
    """The network does not fit the target; ``report`` holds the full mapping report."""

    def __init__(self, report: MappingReport) -> None:
        self.report = report
        b = report.binding
        shown = list(report.fixes[:3])
        shown += [f for f in report.fixes[3:] if f.kind == "prune" and f.fits][:1]  # the model-side fix
        fixes = [f"{f.action}: {f.effect}" for f in shown]
        super().__init__(
            f"the network does not fit target '{report.target}': {b.text() if b else 'unknown limit'}",
            where=f"layer '{b.layer}'" if b and b.layer else f"target '{report.target}'",
            problems=[_violation_text(v) for v in report.violations],
            fix=("; or ".join(fixes) if fixes else "use a larger target (see `neurocc plan MODEL`)"))


def require_fit(report: MappingReport) -> MappingReport:
    if not report.fits:
        raise MappingError(report)
    return report


def map_network(graph: Graph, target: Target, *, weight_bits: int | None = None,
                rates: dict[str, float] | None = None) -> tuple[Partition, Placement]:
    part = partition(graph, target, weight_bits=weight_bits)
    return part, place(part, target, graph, rates=rates)


def mapping_report(graph: Graph, target: Target, *, targets: dict[str, Target] | None = None,
                   weight_bits: int | None = None, with_fixes: bool = True, recompile=None,
                   rates: dict[str, float] | None = None) -> MappingReport:
    """Partition, place and tabulate; for a network that does not fit, compute ranked fixes
    (``targets``: other targets to try as a fix; ``recompile(PruneSpec) -> (graph, accuracy)``:
    how the compile pipeline rebuilds a pruned model, for the prune fix's accuracy; ``rates``:
    measured spikes per neuron per step of each layer, to weight the placement's traffic)."""
    part, pl = map_network(graph, target, weight_bits=weight_bits, rates=rates)
    report = build_report(target, part, pl)
    if with_fixes and not report.fits:
        from neurocc.compiler.fixes import compute_fixes

        report = _with_fixes(report, tuple(compute_fixes(graph, target, report, targets or {}, weight_bits,
                                                                recompile)))
    return report


def _with_fixes(report: MappingReport, fixes: tuple[Fix, ...]) -> MappingReport:
    import dataclasses

    return dataclasses.replace(report, fixes=fixes)


def build_report(target: Target, part: Partition, pl: Placement) -> MappingReport:
    rows = tuple(_rows(target, part, pl))
    violations = tuple(part.violations) + tuple(pl.violations)
    fits = not violations
    npc = target.limits.neurons_per_core
    placed = sum(s.n_neurons for s in part.slices)
    util = placed / (pl.n_cores * npc) if npc and pl.n_cores else None
    return MappingReport(target.name, fits, _binding(violations, rows), violations, rows, pl.n_cores,
                         pl.n_chips, util, pl.inter_chip_traffic, part, pl)


def _rows(target: Target, part: Partition, pl: Placement) -> list[ResourceUse]:
    lim = target.limits
    rows = []
    for name, lp in part.layers.items():
        if not lp.on_cores:
            continue
        for r in CORE_RESOURCES:
            used = max((getattr(s.usage, r) for s in lp.slices), default=0)
            rows.append(ResourceUse(name, r, used, getattr(lim, LIMIT_OF[r])))
    for c in pl.chips:
        rows.append(ResourceUse(f"chip {c.chip}", "cores_per_chip", c.cores, lim.cores_per_chip))
        if lim.sdram_bytes_per_chip is not None:
            rows.append(ResourceUse(f"chip {c.chip}", "sdram_bytes", c.sdram_bytes, lim.sdram_bytes_per_chip))
        if lim.routing_entries_per_chip is not None:
            rows.append(ResourceUse(f"chip {c.chip}", "routing_entries", c.routing_entries, lim.routing_entries_per_chip))
    rows.append(ResourceUse("network", "chips", pl.n_chips, lim.chips))
    return rows


def _binding(violations: tuple[Violation, ...], rows: tuple[ResourceUse, ...]) -> Binding | None:
    """Not fitting: the per-core/connection violation with the largest needed/available ratio
    first (a partition that breaks a core limit makes chip counts moot), then chip, then
    network. Fitting: the resource row with the highest utilisation."""
    if violations:
        v = min(violations, key=lambda v: (_SCOPE_ORDER[v.scope], -v.ratio))
        return Binding(v.layer, v.resource, v.needed, v.available, v.scope, v.detail)
    used = [r for r in rows if r.utilisation is not None and r.layer != "network"] or \
        [r for r in rows if r.utilisation is not None]
    if not used:
        return None
    r = max(used, key=lambda r: r.utilisation)
    scope = "network" if r.layer == "network" else "chip" if r.layer.startswith("chip ") else "core"
    return Binding(None if scope != "core" else r.layer, r.resource, r.used, r.budget, scope)


def _layers_json(part: Partition) -> list[dict]:
    return [{"name": n, "kind": lp.kind, "shape": list(lp.shape), "view": list(lp.view),
             "neurons": lp.n_neurons, "on_cores": lp.on_cores, "block": list(lp.block),
             "contiguous": lp.contiguous, "cores": len(lp.slices) if lp.on_cores else 0,
             "synapses": int(sum(s.usage.synapses for s in lp.slices))}
            for n, lp in part.layers.items()]


def _violation_text(v: Violation) -> str:
    where = f"layer '{v.layer}'" if v.layer else "network"
    tail = f" ({v.detail})" if v.detail else ""
    return f"{where}: {v.resource} needs {_num(v.needed)}, available {_num(v.available)}{tail}"


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.3g}"


def _json_default(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
