"""Targets: the chips neurocc compiles for, loaded from targets.yaml and validated.

``targets.yaml`` sits at the repository root and is shipped inside the package as data; a user
adds a chip by adding an entry, or passes ``--targets my.yaml`` (a file that starts with
``extends: builtin`` keeps the shipped chips and adds or replaces entries). Every problem in a
file is reported at once, each with its line, its key and the fix. This module is a leaf:
compiler, backends and runtime all use it; it imports nothing heavier than PyYAML (lazily).

Python API: :func:`load_targets`, :func:`get_target`, and the module itself is callable, so
``neurocc.targets()`` is ``load_targets()``.
"""
from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from neurocc.errors import TargetsError

Numerics = Literal["loihi", "spinnaker", "int8", "float32"]
Rule = Literal["exact", "cosine"]
ReadoutRule = Literal["relative_error", "cosine"]

NUMERICS: tuple[str, ...] = ("loihi", "spinnaker", "int8", "float32")
RULES: tuple[str, ...] = ("exact", "cosine")
READOUT_RULES: tuple[str, ...] = ("relative_error", "cosine")
# A target file that states no readout rule: relative error 0.25 (what the built-in targets state;
# the measurements behind it are in targets.yaml beside them).
DEFAULT_READOUT_MAX_ERROR = 0.25
RESET_MODES: tuple[str, ...] = ("zero", "subtract", "none")
# Backends a target may name (the runnable ones in neurocc.backends.REGISTRY; ``reference`` is
# the float simulator every artifact has, not a target). A new backend adds its name here too.
BACKENDS: tuple[str, ...] = ("emulator", "loihi", "spinnaker", "edge-cpu")
# Reset modes each numerics profile implements (sPyNNaker's IF_curr_exp resets to a value only:
# spinnaker.md §4; loihi: Lava's LIF resets to 0, neurocc's Lava process model subtracts too).
NUMERICS_RESETS: dict[str, tuple[str, ...]] = {"loihi": RESET_MODES, "spinnaker": ("zero",),
                                               "int8": RESET_MODES, "float32": RESET_MODES}
BUILTIN = Path(__file__).resolve().parent / "targets.yaml"
DOCS = "docs/targets.md"


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
    shared_conv_kernels: bool | None = None        # conv kernels stored once per core (not expanded)
    inputs_use_cores: bool | None = None           # spike sources occupy cores (SpiNNaker sources do)
    synapse_encoding: str | None = None            # loihi | spinnaker_rows | None (expanded × bits)
    max_synapses_per_row: int | None = None        # longest synaptic row (one pre neuron → one core)
    message_bits: int | None = None                # graded spike payload bits (None: binary spikes only)

    @property
    def neurons_per_chip(self) -> int | None:
        """``cores_per_chip × neurons_per_core`` (None when either is unlimited)."""
        if self.cores_per_chip is None or self.neurons_per_core is None:
            return None
        return self.cores_per_chip * self.neurons_per_core


@dataclass(frozen=True)
class Energy:
    """Published energy figures for estimates (``None`` when not published)."""

    pj_per_synop: float | None = None          # one synaptic op of a binary spike (an accumulate)
    pj_per_neuron_update: float | None = None
    pj_per_mac: float | None = None            # one multiply-accumulate: a graded spike, or a dense CPU op
    step_time_s: float | None = None  # hardware wall time per timestep (latency estimate)


@dataclass(frozen=True)
class Validation:
    """How a backend's output for this target is judged against its reference.

    ``rule``/``min_cosine`` judge spikes (and, for ``exact``, every value). Graded readouts
    (non-spiking outputs: LI/CubaLI membranes) compared across the float/integer divide, or by a
    float backend, are judged by ``readout_rule``: ``relative_error`` (‖got − ref‖₂ / ‖ref‖₂ over
    every step at most ``max_relative_error``) or ``cosine`` (cosine of the whole traces at least
    ``readout_min_cosine``)."""

    rule: Rule = "exact"
    min_cosine: float | None = None
    readout_rule: ReadoutRule = "relative_error"
    max_relative_error: float | None = None
    readout_min_cosine: float | None = None

    def readout_limit(self) -> float:
        """The readout bound: ``max_relative_error`` (default :data:`DEFAULT_READOUT_MAX_ERROR`) or
        ``readout_min_cosine``."""
        if self.readout_rule == "cosine":
            return float(self.readout_min_cosine if self.readout_min_cosine is not None else 0.99)
        return float(self.max_relative_error if self.max_relative_error is not None else DEFAULT_READOUT_MAX_ERROR)


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

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Target":
        """The inverse of ``dataclasses.asdict(target)`` (how an artifact's manifest stores it)."""
        s = dict(d)
        return cls(**{**s, "limits": Limits(**s.get("limits") or {}), "energy": Energy(**s.get("energy") or {}),
                      "validation": Validation(**s.get("validation") or {}),
                      "reset_modes": tuple(s.get("reset_modes", ("zero",))),
                      "supported": tuple(s.get("supported", ()))})

    @property
    def runnable(self) -> bool:
        """True when a backend can run artifacts for this target (``backend`` is not null)."""
        return self.backend is not None

    @property
    def integer(self) -> bool:
        """True for integer numerics (validated against the emulator), False for float32."""
        return self.numerics != "float32"


# ----- loading ----------------------------------------------------------------------------------
_CACHE: dict[tuple[str, int, int], dict[str, Target]] = {}


def load_targets(path: str | Path | None = None) -> dict[str, Target]:
    """Load and validate a targets file (default: the shipped ``targets.yaml``).

    Raises :class:`TargetsError` listing every problem (line, key, fix). A file whose top level
    has ``extends: builtin`` starts from the shipped targets and adds or replaces entries.
    """
    file = Path(path).expanduser() if path is not None else BUILTIN
    try:
        st = file.stat()
        key = (str(file.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _CACHE:
        return dict(_CACHE[key])
    targets = _load_uncached(file)
    if key is not None:
        _CACHE[key] = targets
    return dict(targets)


def _load_uncached(file: Path) -> dict[str, Target]:
    from neurocc._targets_check import parse_file

    found, extends = parse_file(file)
    return {**load_targets(None), **found} if extends else found


def get_target(name: str, path: str | Path | None = None) -> Target:
    """The target called ``name``; an unknown name raises TargetsError listing the known ones."""
    targets = load_targets(path)
    if name in targets:
        return targets[name]
    import difflib

    origin = f" (targets from {Path(path)})" if path is not None else ""
    close = difflib.get_close_matches(name, list(targets), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise TargetsError(f"unknown target '{name}'{origin}{hint}",
                       fix=f"use one of: {', '.join(targets)}; or add '{name}' to a targets file "
                           f"and pass it with --targets (see {DOCS})")


class _CallableModule(types.ModuleType):
    """Lets ``neurocc.targets()`` (the API call) and ``neurocc.targets`` (this module) coexist."""

    def __call__(self, path: str | Path | None = None) -> dict[str, Target]:
        return load_targets(path)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BACKENDS", "BUILTIN", "Energy", "Limits", "NUMERICS", "RESET_MODES", "RULES",
           "Target", "TargetsError", "Validation", "get_target", "load_targets"]
