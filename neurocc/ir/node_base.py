"""The base of every IR node kind and the kind registry.

:class:`Node` is a frozen dataclass whose fields are normalised to their declared types on
construction (lists → tuples, strings → enums, arrays copied once and frozen read-only); every
subclass that sets ``kind`` registers itself in :data:`NODE_KINDS`, which the serializer and the
verifier look kinds up in. The kinds themselves live in :mod:`neurocc.ir.nodes` (which imports
every module that defines one) and :mod:`neurocc.ir.qnodes`.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neurocc.ir.types import IntFormat, Shape

NODE_KINDS: dict[str, type[Node]] = {}
# field metadata: leave the field out of the stored graph and its text/digest while it holds its
# default (fields added after the format was fixed: older files and digests stay as they were)
OMIT_DEFAULT = {"omit_default": True}


@functools.cache
def _hints(cls: type) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def frozen_array(value: typing.Any) -> np.ndarray:
    """Return ``value`` as a read-only numpy array (copied only if it was writable)."""
    arr = np.asarray(value)
    if arr.flags.writeable:
        arr = arr.copy()
        arr.setflags(write=False)
    return arr


def _coerce(hint: typing.Any, value: typing.Any) -> typing.Any:
    """Normalise a field value to its declared type (lists → tuples, strings → enums, arrays frozen)."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is np.ndarray:
        return frozen_array(value)
    if origin in (typing.Union, types.UnionType):
        real = [a for a in args if a is not type(None)]
        return _coerce(real[0], value) if len(real) == 1 else value
    if origin is tuple:
        return tuple(int(v) for v in np.atleast_1d(value)) if args and args[0] is int else tuple(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if hint is IntFormat and isinstance(value, dict):
        return IntFormat(**value)
    if hint is int and not isinstance(value, bool):
        return int(value)
    if hint is float:
        return float(value)
    return value


@dataclass(frozen=True, eq=False)
class Node:
    """Base of every node kind. Subclasses set ``kind`` and implement :meth:`out_shape`."""

    kind: ClassVar[str] = ""
    state_vars: ClassVar[tuple[str, ...]] = ()
    spiking: ClassVar[bool] = False  # emits binary spikes z
    ann_only: ClassVar[bool] = False  # must be removed before a spiking backend runs the graph
    quantized: ClassVar[bool] = False  # integer kind (see qnodes)

    def __init_subclass__(cls, **kwargs: typing.Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            NODE_KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(_hints(type(self))[f.name], value))

    # ----- structure -------------------------------------------------------------------------
    @property
    def stateful(self) -> bool:
        return bool(self.state_vars)

    def params(self) -> dict[str, typing.Any]:
        """Every field by name (arrays included), in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def stored_params(self) -> dict[str, typing.Any]:
        """:meth:`params` without the ``OMIT_DEFAULT`` fields that hold their default (what files,
        :meth:`Graph.text` and digests contain)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not (f.metadata.get("omit_default") and self.at_default(f))}

    def at_default(self, f: dataclasses.Field) -> bool:
        """Whether field ``f`` holds its declared default (arrays compared by value)."""
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            return False
        value = getattr(self, f.name)
        if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
            return default is not None and value is not None and bool(np.array_equal(value, default))
        return bool(value == default)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.params().items() if isinstance(v, np.ndarray)}

    def n_params(self) -> int:
        return int(sum(a.size for a in self.arrays().values()))

    def replace(self, **changes: typing.Any) -> Node:
        return dataclasses.replace(self, **changes)

    # ----- shapes and counts -----------------------------------------------------------------
    def out_shape(self, in_shape: Shape) -> Shape:
        """Output shape for an input of ``in_shape``; raise ValueError when they do not fit."""
        return in_shape

    def own_shape(self) -> Shape | None:
        """The shape the node's parameters fix for its input, or None if any shape is accepted."""
        return None

    def check(self) -> list[str]:
        """Problems with the node's own parameters (empty when fine)."""
        return []

    def n_neurons(self, shape: Shape) -> int:
        return int(np.prod(shape)) if self.state_vars and self.kind not in ("Delay",) else 0

    def n_synapses(self, in_shape: Shape) -> int:
        """Synapses as a chip stores them when expanded (0 for non-synaptic kinds)."""
        return 0
