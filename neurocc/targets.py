"""Targets: the chips neurocc compiles for, loaded from targets.yaml and validated.

``targets.yaml`` sits at the repository root and is shipped inside the package as data; a user
adds a chip by adding an entry, or passes ``--targets my.yaml``. Unknown keys are rejected with
the file, line and key named. This module is a leaf: compiler, backends and runtime all use it.

(The loader and validation below the dataclasses are filled in by the foundation work.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Numerics = Literal["loihi", "spinnaker", "int8", "float32"]
Rule = Literal["exact", "cosine"]


@dataclass(frozen=True)
class Limits:
    """Per-core and per-chip resource limits. ``None`` means unlimited / not applicable."""

    chips: int | None = None                       # chips available to one deployment
    cores_per_chip: int | None = None              # cores usable for neurons on one chip
    neurons_per_core: int | None = None
    synapse_memory_bits_per_core: int | None = None  # synaptic memory per core, in bits
    fan_in_axons_per_core: int | None = None       # distinct presynaptic sources per core
    fan_out_axons_per_core: int | None = None      # distinct output axons (destinations) per core
    sdram_bytes_per_chip: int | None = None        # SpiNNaker: shared SDRAM per chip
    routing_entries_per_chip: int | None = None    # SpiNNaker: multicast router table size
    max_delay_steps: int | None = None             # longest synaptic delay the chip stores
    weight_bits: int = 8                           # weight mantissa bits (loihi: 1..8)
    bits_per_synapse: int | None = None            # storage per synapse incl. index (memory model)


@dataclass(frozen=True)
class Energy:
    """Published energy figures for estimates (``None`` when not published)."""

    pj_per_synop: float | None = None
    pj_per_neuron_update: float | None = None
    step_time_s: float | None = None  # hardware wall time per timestep (latency estimate)


@dataclass(frozen=True)
class Validation:
    """How a backend's output for this target is judged against its reference."""

    rule: Rule = "exact"
    min_cosine: float | None = None


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    backend: str | None            # backend module name; None = plan/compile only (no runtime yet)
    numerics: Numerics             # numerics profile in neurocc.ir.numerics (float32 = no quantization)
    dt: float                      # default seconds per step
    limits: Limits = field(default_factory=Limits)
    energy: Energy = field(default_factory=Energy)
    validation: Validation = field(default_factory=Validation)
    reset_modes: tuple[str, ...] = ("zero",)       # reset modes the numerics implements
    supported: tuple[str, ...] = ()                # float node kinds it can compile (empty = all)
