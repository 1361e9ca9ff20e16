"""The report of the ANN → SNN conversion (:mod:`.convert`): the normalisation ``λ`` chosen per
layer (:class:`LayerScale`) and the measured accuracy/latency table (:class:`TradeoffRow`), as
JSON (``to_dict``/``to_json``) and as the text table ``compile`` prints.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LayerScale:
    """The normalisation of one converted layer: ``lam`` (one value, or one per channel)."""

    node: str
    kind: str                 # "IF" (was a ReLU) or the readout kind
    lam: list[float]
    max_activation: float
    v_threshold: float = 1.0


@dataclass(frozen=True)
class TradeoffRow:
    """Converted float SNN at ``timesteps``: agreement with the ANN's class, accuracy if labelled."""

    timesteps: int
    agreement: float | None
    accuracy: float | None


@dataclass(frozen=True)
class ConversionReport:
    """What ``convert`` chose and measured; ``to_dict()`` is JSON-able."""

    reset: str
    readout: str
    percentile: float
    per_channel: bool
    threshold_scale: float
    timesteps: int
    encoding: dict[str, Any]
    layers: tuple[LayerScale, ...]
    n_calibration: int
    ann_accuracy: float | None
    tradeoff: tuple[TradeoffRow, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def text(self) -> str:
        lines = [(f"ANN→SNN conversion: reset={self.reset}, readout={self.readout}, "
                  f"p{self.percentile:g} per {'channel' if self.per_channel else 'layer'}, "
                  f"threshold scale {self.threshold_scale:g}, T={self.timesteps}")]
        for lay in self.layers:
            lam = f"{lay.lam[0]:.4g}" if len(lay.lam) == 1 else f"{min(lay.lam):.4g}..{max(lay.lam):.4g}"
            lines.append(f"  {lay.node:<24} {lay.kind:<10} λ={lam} (max {lay.max_activation:.4g})")
        acc = f", ANN accuracy {self.ann_accuracy:.4f}" if self.ann_accuracy is not None else ""
        lines.append(f"  timesteps  agreement-with-ANN  accuracy   ({self.n_calibration} samples{acc})")
        for row in self.tradeoff:
            a = f"{row.accuracy:.4f}" if row.accuracy is not None else "-"
            g = f"{row.agreement:.4f}" if row.agreement is not None else "-"
            lines.append(f"  {row.timesteps:>9}  {g:>18}  {a:>8}")
        return "\n".join(lines)
