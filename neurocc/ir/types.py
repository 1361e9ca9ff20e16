"""Small value types shared by the IR: shapes, integer formats, timing and reset modes."""
from __future__ import annotations

import enum
from dataclasses import dataclass

Shape = tuple[int, ...]


class Rounding(str, enum.Enum):
    """How a value that does not fit the integer grid is rounded."""

    TOWARD_ZERO = "toward_zero"   # sign(x) * floor(|x|): Loihi's decay products, C integer division
    FLOOR = "floor"               # floor(x): arithmetic right shift of two's complement
    NEAREST_EVEN = "nearest_even"  # round half to even: numpy.rint


class Overflow(str, enum.Enum):
    """What happens when a result leaves the representable range of its register."""

    WRAP = "wrap"          # modulo 2**bits, two's complement (Loihi's current u)
    SATURATE = "saturate"  # clip to the range (Loihi's voltage v)


class ResetMode(str, enum.Enum):
    """What a spiking neuron does to its membrane after a spike."""

    ZERO = "zero"          # v <- v_reset (NIR's only reset; v_reset defaults to 0)
    SUBTRACT = "subtract"  # v <- v - v_threshold ("soft reset")
    NONE = "none"          # no reset: the membrane keeps integrating (snnTorch reset_mechanism="none")


class ResetTiming(str, enum.Enum):
    """When the reset of a spike acts on the membrane (see :class:`neurocc.ir.nodes.LIF`).

    ``r = v[t−1] > θ`` is the spike of the previous step recomputed from the stored membrane.
    """

    AFTER_SPIKE = "after_spike"      # NIR, Sinabs, Lava: v[t] is reset right after z[t] (same step)
    NEXT_STEP = "next_step"          # snnTorch Leaky: r acts in step t+1 after the decay, before the input
    NEXT_STEP_END = "next_step_end"  # snnTorch Synaptic/RLeaky/RSynaptic: r acts in step t+1 after the input


class Method(str, enum.Enum):
    """How continuous-time NIR dynamics are turned into per-step updates."""

    EULER = "euler"  # x[t] = x[t-1] + dt * f(x[t-1], input[t])
    EXACT = "exact"  # zero-order hold over a step: decay = exp(-dt / tau)


@dataclass(frozen=True)
class IntFormat:
    """An integer register: ``bits`` wide, signed or not, with its rounding and overflow rule.

    Example: Loihi's current ``u`` is ``IntFormat(24, True, TOWARD_ZERO, WRAP)``; its voltage
    ``v`` is ``IntFormat(24, True, TOWARD_ZERO, SATURATE)``.
    """

    bits: int
    signed: bool = True
    rounding: Rounding = Rounding.TOWARD_ZERO
    overflow: Overflow = Overflow.SATURATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", Rounding(self.rounding))
        object.__setattr__(self, "overflow", Overflow(self.overflow))
        if not 1 <= self.bits <= 64:
            raise ValueError(f"IntFormat.bits must be in 1..64, got {self.bits}")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


def shape_str(shape: Shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
