"""Which periodic-reset rule did the Loihi 2 chip follow? Hypotheses vs lava-dl's PilotNet-LIF recording.

Runs neurocc's emulator (equal to Lava 0.10's CPU model on every spike, u and v of this network:
scripts/pilotnet_lif_lava_vs_chip.py) under several reset rules and counts, per block, the
recorded spikes, u and v (``gts/pilotnet_lif``, 24 steps, the chip's own recordings: ``input.npy``
for the input block, v read as 128 where the neuron spiked, as Loihi reports it) that each rule
gets wrong. Block j's netx reset step is o_j = j + 1 (Lava steps counted from 1, interval 16)::

    lava             resets at o_j + 16k (Lava's LIFReset; neurocc's default)
    chip             resets at o_j + 17k (reset_schedule="chip")
    later-late       resets at o_j and o_j + 1 + 16k (k >= 1): every later reset one step late
    no-second        resets at o_j only
    end-of-step      Lava's dynamics, but each reset already visible in the read-out of the step before

Then, with no rule assumed, it steps every block one step at a time from the chip's own recorded
state of the step before, fed by the synapse output of its upstream block's recorded spikes,
once without and once with a reset, and prints the columns where only the reset reproduces
every recorded spike, u and v of the block (and any column where neither does).

    OPENBLAS_NUM_THREADS=1 python scripts/pilotnet_lif_reset_schedules.py   (a few seconds)
"""
from __future__ import annotations

import itertools
import sysconfig
from pathlib import Path

import numpy as np

from neurocc.backends.emulator import simulate
from neurocc.compiler.frontends.netx import read_netx
from neurocc.ir.numerics import reset as reset_rule

D = Path(sysconfig.get_paths()["purelib"]) / "tests" / "lava" / "lib" / "dl" / "netx" / "gts" / "pilotnet_lif"
BLOCKS = [("layer0", "input"), ("layer1", "conv-0"), ("layer2", "conv-1"), ("layer3", "conv-2"),
          ("layer4", "conv-3"), ("layer5", "conv-4"), ("layer7", "fc-0"), ("layer8", "fc-1"), ("layer9", "fc-2")]
STEPS = 24
_due = reset_rule.periodic_due
RULES = {
    "lava": lambda t, T, off, s: _due(t, T, off, "lava"),
    "chip": lambda t, T, off, s: _due(t, T, off, "chip"),
    "later-late": lambda t, T, off, s: t == off or (t > off + 1 and (t - off - 1) % T == 0),
    "no-second": lambda t, T, off, s: t == off,
    "end-of-step": lambda t, T, off, s: _due(t, T, off, "lava"),
}


def _whct(trace: np.ndarray) -> np.ndarray:
    a = trace[:, 0]
    return a.transpose(*range(a.ndim - 1, 0, -1), 0).astype(np.int64)


def traces(rule: str) -> dict[str, dict[str, np.ndarray]]:
    """Per block: spikes, u, v (recording layout) of the emulator under ``rule``."""
    reset_rule.periodic_due = RULES[rule]
    try:
        g = read_netx(D / "network.net", reset_interval=16)
        image = np.load(D / "image.npy").astype(np.int64).transpose(2, 1, 0)
        g = g.with_node("layer0", g.nodes["layer0"].replace(bias_mant=image))
        r = simulate(g, {"input": np.zeros((STEPS, 1, *image.shape), np.int64)}, record=True, kernels="numpy")
    finally:
        reset_rule.periodic_due = _due
    out = {}
    for j, (name, rec) in enumerate(BLOCKS):
        d = {"s": _whct(r.traces[f"{name}/out"])}
        if j:
            d["u"], d["v"] = _whct(r.traces[f"{name}/u"]), _whct(r.traces[f"{name}/v"])
            if rule == "end-of-step":   # the read-out of the step before each reset already shows 0
                for c in range(STEPS - 1):
                    if _due(c + 2, 16, j + 1, "lava"):
                        d["u"][..., c] = d["v"][..., c] = 0
            d["v"] = np.where(d["s"] > 0, 128, d["v"])
        out[rec] = d
    return out


def recording() -> dict[str, dict[str, np.ndarray]]:
    out = {"input": {"s": np.load(D / "input.npy").astype(np.int64)}}
    for _, rec in BLOCKS[1:]:
        out[rec] = {"s": np.load(D / f"{rec}.npy").astype(np.int64), "u": np.load(D / f"{rec}-u.npy").astype(np.int64),
                    "v": np.load(D / f"{rec}-v.npy").astype(np.int64)}
    return out


def open_loop(chip: dict[str, dict[str, np.ndarray]]) -> None:
    """Per block: the columns that only a reset before the update explains (from the chip's state)."""
    from neurocc.backends.emulator.program import Program
    from neurocc.ir import numerics
    from neurocc.ir.numerics.profiles import get_profile

    g = read_netx(D / "network.net", reset_interval=16)
    prog = Program(g, get_profile("loihi"), kernels="numpy")
    print("columns where only a reset before the update reproduces the block's recorded s, u and v:")
    for (_, up), (name, rec) in itertools.pairwise(BLOCKS):
        x = np.moveaxis(chip[up]["s"], -1, 0)                        # (T, W, H, C) / (T, N)
        x = (x.transpose(0, *range(x.ndim - 1, 0, -1)) if x.ndim > 2 else x)[:, None]   # (T, 1, C, H, W)
        if name == "layer7":                                         # the Flatten before fc-0
            x = x.reshape(STEPS, 1, -1)
        k = prog.kernels[f"{name}_synapse"]
        k.reset(1)
        a = _whct(np.asarray(k.window(x.astype(np.float64))))        # synapse output, recording layout
        n = g.nodes[name]
        lay = lambda v: np.asarray(v).transpose(*range(np.ndim(v) - 1, -1, -1))  # noqa: E731
        fu, fv = lay(numerics.current_decay_factor(n.du)), lay(numerics.voltage_decay_factor(n.dv))
        bias, vth = lay(n.bias_mant) * 64, lay(n.vth) * 64
        c = chip[rec]
        v_prev = np.where(c["s"] > 0, 0, c["v"])                     # the chip's 128 marks a spike: v is 0
        reset_only, neither = [], []
        for t in range(1, STEPS):
            fits = []
            for reset in (False, True):
                u0, v0 = (0 * c["u"][..., t - 1], 0 * v_prev[..., t - 1]) if reset else (c["u"][..., t - 1],
                                                                                         v_prev[..., t - 1])
                u = numerics.decay(u0.astype(np.float64), fu).astype(np.int64) + a[..., t - 1] * 64
                v = numerics.decay(v0.astype(np.float64), fv).astype(np.int64) + u + bias
                z = v > vth
                fits.append(np.array_equal(z, c["s"][..., t] > 0) and np.array_equal(u, c["u"][..., t])
                            and np.array_equal(np.where(z, 128, v), c["v"][..., t]))
            if fits == [False, True]:
                reset_only.append(t)
            elif not any(fits):
                neither.append(t)
        print(f"  {rec}: {reset_only}" + (f"; neither: {neither}" if neither else ""))


def main() -> None:
    chip = recording()
    n = sum(a.size for d in chip.values() for a in d.values())
    print(f"values recorded (9 blocks, {STEPS} steps): {n:,}; mismatches per rule, per block (spikes+u+v):")
    print("rule          total      " + " ".join(f"{rec:>8}" for _, rec in BLOCKS))
    for rule in RULES:
        ours = traces(rule)
        per = [sum(int(np.count_nonzero(ours[rec][k] != chip[rec][k])) for k in chip[rec]) for _, rec in BLOCKS]
        print(f"{rule:12} {sum(per):>9,}  " + " ".join(f"{p:>8}" for p in per))
    open_loop(chip)


if __name__ == "__main__":
    main()
