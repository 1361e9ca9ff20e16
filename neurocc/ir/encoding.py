"""Input encoding of a converted network: how a static input becomes ``timesteps`` steps of input.

A converted (ANN→SNN) network is fed its static input ``x`` (in the model's own input scale) for
``timesteps`` steps. Two encodings:

* ``constant`` (default): a graded current ``scale · x`` delivered unchanged at every step;
  deterministic, no sampling noise, and the most accurate per timestep.
* ``sigma-delta``: presented as ``constant``; the network's Delta input neuron sends only the
  changes of the (integer) input, once for a static input (:mod:`neurocc.compiler.sdnn`).
* ``poisson``: binary spikes, ``z[t] = 1`` with probability ``p = clip(scale · x, 0, 1)``,
  independently per step and element (Bernoulli rate coding), sample ``i`` drawn from
  ``np.random.default_rng([seed, i])``; negative inputs give no spikes.

Either way one unit of encoded input stands for ``1 / scale`` in the model's input scale; the
``convert`` pass scales the first layer's weights by that factor. The encoding is saved with the
compiled artifact (``to_dict``) so that ``evaluate`` feeds test data exactly as calibrated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from neurocc.errors import InputError

EncodingKind = Literal["constant", "poisson", "sigma-delta"]
KINDS = ("constant", "poisson", "sigma-delta")


@dataclass(frozen=True)
class Encoding:
    """How static inputs are presented: ``kind``, number of ``timesteps``, ``scale``, ``seed``."""

    kind: EncodingKind = "constant"
    timesteps: int = 64
    scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.timesteps, (int, np.integer)) or self.timesteps < 1:
            problems.append(f"timesteps must be an integer >= 1, got {self.timesteps!r}")
        if not np.isfinite(self.scale) or self.scale <= 0:
            problems.append(f"scale must be a finite number > 0, got {self.scale!r}")
        if problems:
            raise InputError("invalid input encoding", where="encoding", problems=problems,
                             fix="use e.g. Encoding('constant', timesteps=64, scale=1.0, seed=0)")
        object.__setattr__(self, "timesteps", int(self.timesteps))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def input_unit(self) -> float:
        """Model-scale value of one unit of encoded input (``1 / scale``)."""
        return 1.0 / self.scale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Encoding:
        unknown = set(doc) - {"kind", "timesteps", "scale", "seed"}
        if unknown:
            raise InputError(f"unknown encoding keys {sorted(unknown)}", where="encoding",
                             fix="keep only kind, timesteps, scale, seed")
        return cls(**doc)


def encode(x_static: np.ndarray, encoding: Encoding, timesteps: int | None = None,
           first_index: int = 0) -> np.ndarray:
    """Encode ``x_static`` (batch, *shape) as a float32 array (steps, batch, *shape).

    ``timesteps`` overrides ``encoding.timesteps``. Poisson spikes are 0.0/1.0; sample ``i`` of
    the batch is drawn from ``default_rng([seed, first_index + i])``, time-major, so a sample's
    spikes do not depend on how a data set is cut into batches (pass the batch's offset as
    ``first_index``), and the first T steps of a longer encoding equal the T-step encoding.
    """
    x = np.asarray(x_static, dtype=np.float64)
    steps = encoding.timesteps if timesteps is None else int(timesteps)
    if steps < 1:
        raise InputError(f"timesteps must be >= 1, got {steps}", where="encode",
                         fix="pass a positive number of steps")
    if x.ndim < 1:
        raise InputError("expected a batch of inputs (batch, *shape), got a scalar", where="encode",
                         fix="add a leading batch axis")
    scaled = encoding.scale * x
    if encoding.kind in ("constant", "sigma-delta"):
        return np.ascontiguousarray(np.broadcast_to(scaled.astype(np.float32), (steps, *x.shape)))
    p = np.clip(scaled, 0.0, 1.0)
    out = np.empty((steps, *x.shape), np.float32)
    for i in range(x.shape[0]):
        rng = np.random.default_rng([encoding.seed, first_index + i])
        out[:, i] = rng.random((steps, *x.shape[1:])) < p[i]
    return out


def decode(y: np.ndarray, *, spiking: bool, timesteps: int) -> np.ndarray:
    """Class scores (batch, n) from a readout's output ``y`` (steps, batch, *shape).

    Only the last ``timesteps`` steps count (earlier ones are the pipeline's fill-in latency):
    spike counts over that window for a spiking readout, else the integrator's growth over it
    (``v[-1] − v[-timesteps-1]``; just ``v[-1]`` when the run is ``timesteps`` long).
    """
    y = np.asarray(y, np.float64)
    steps = y.shape[0]
    window = min(int(timesteps), steps)
    if spiking:
        scores = y[steps - window:].sum(0)
    else:
        scores = y[-1] - (y[steps - window - 1] if steps > window else 0.0)
    return scores.reshape(scores.shape[0], -1)
