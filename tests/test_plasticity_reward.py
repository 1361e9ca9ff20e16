"""Reward-modulated (three-factor) STDP: the r-STDP update by hand (fixed point and float), the
learning neuron's traces by hand, the rule form, and the example network (a neuron learns to
prefer the rewarded pattern) on the emulator and Lava, exact.

Hand computations: the ``reward_stdp`` preset with a+ = 2^-1, a− = 2^-2, tag decay 2^-2,
rate 2^-3, impulse 32, all taus 4, t_epoch 1, w0 = 100 (excitatory), seed 5; steps t = 1, 2, 3:

    dt = 2^-1·y0·x1 − 2^-2·x0·y1 − 2^-2·u0·t        dw = 2^-3·u0·t·y2

Lava's random streams are numpy's PCG64 (not neurocc code): x decay ``default_rng(5)``, draws
d[2t] at step t: d[4] = 0.0539; y decay ``default_rng(7)``: d[2] = 0.7757, d[4] = 0.3002,
d[6] = 0.00527; weight/tag rounding ``default_rng(2)``: c[2] = 0.8142, c[3] = 0.0919. The
learning neuron's multiplier for tau 4 is round(4096·e^-¼) = 3190.

* causal: pre at t=1, post at t=2, reward 64 at t=3.
  t=1: x1 = 32 (the impulse at the spike step). t=2: x1 = floor(32·e^-¼ = 24.92) + (0.0539 <
  0.92) = 25; the neuron's y1 = 32, in the synapse floor(32·e^(−1/65535) = 31.9995) + (0.3002 <
  0.9995) = 32; tag accumulator 2^-1·25 → 25 << 6 = 1600 = 12·128 + 64 → t = 12 + (0.8142 < 0.5)
  = 12. t=3: y2 = 64 (63.999 → 63 + (0.00527 < 0.999) = 64); dw term t·y2: factor widths 9 + 7 + 4
  = 20 bits → (12·64) >> 5 = 24, << (−3 + 7) = 384; accumulator 100·128 + 384 = 103·128 → w =
  103 (tag → 12·128 − 12·32 = 9·128: 9).
* anti-causal: post at t=1, pre at t=2, reward 64 at t=3.
  t=2: y1 = (32·3190) >> 12 = 24 (24.92), in the synapse 23 + (0.3002 < 0.9996) = 24; x1 = 32;
  tag −2^-2·24 → −24 << 5 = −768 → t = −6. t=3: dw: (−6·64) >> 5 = −12, << 4 = −192; 12800 − 192
  = 12608 = 98·128 + 64 → w = 98 + (0.0919 < 0.5) = 99.
* no reward: the tag decays, w stays 100.
* float reference: no 127 cap, exact decays, no product shift (as Lava's float model):
  causal w = 100 + 2^-3·(2^-1·32·e^-¼)·64·e^(−1/65535) = 100 + 128·e^-¼·e^(−1/65535) (≈ 199.68:
  the fixed-point t·y2 product is 2^5 smaller, see numerics.learning); anti-causal
  w = 100 − 2^-3·(2^-2·32·e^-¼·e^(−1/65535))·64·e^(−1/65535) = 100 − 64·e^-¼·e^(−2/65535).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocc.ir import Edge, Graph
from neurocc.ir.nodes import Input, Output
from neurocc.ir.numerics.learning import neuron_decay, neuron_traces
from neurocc.ir.plasticity import parse_rule, reward_stdp, rule_text
from neurocc.ir.qnodes import QLIF
from neurocc.ir.qnodes_plastic import QPlasticDense

ROOT = Path(__file__).resolve().parents[1]
PRESET = {"a_plus": 2 ** -1, "a_minus": 2 ** -2, "tag_decay": 2 ** -2, "rate": 2 ** -3, "tau_plus": 4,
          "tau_minus": 4, "impulse": 32, "reward_tau": 4, "reward": "r"}


def _pair(pre_step: int, post_step: int, reward_step: int | None, integer: bool) -> tuple[float, float]:
    """(weight, tag) after step 3 of one pre and one post neuron, through the emulator's kernel."""
    from neurocc.backends.emulator.plastic import QPlastic

    node = QPlasticDense(weight=np.array([[100]], np.int32), rng_seed=5, **reward_stdp(**PRESET))
    k = QPlastic("syn", node, (1,), (1,), True, float_rule=not integer)
    k.reset(1)
    for t in (1, 2, 3):
        k.step(np.array([[float(t == pre_step)]]))
        k.learn(np.array([[float(t == post_step)]]), np.array([[64.0 if t == reward_step else 0.0]]))
    return k.W[0, 0, 0], k.T[0, 0, 0]


def test_reward_stdp_pair_fixed_point_by_hand():
    assert _pair(1, 2, 3, True) == (103, 9)       # causal pair, rewarded: potentiation
    assert _pair(2, 1, 3, True)[0] == 99          # anti-causal pair, rewarded: depression
    assert _pair(1, 2, None, True)[0] == 100      # no reward, no change


def test_reward_stdp_pair_float_by_hand():
    e, f = math.exp(-0.25), math.exp(-1 / 65535)
    assert _pair(1, 2, 3, False)[0] == pytest.approx(100 + 128 * e * f, abs=1e-9)
    assert _pair(2, 1, 3, False)[0] == pytest.approx(100 - 64 * e * f * f, abs=1e-9)
    assert _pair(1, 2, None, False)[0] == 100


def test_learning_neuron_traces_by_hand():
    assert neuron_decay(4) == 3190 and neuron_decay(0) == 0
    y = np.array([[32, 0], [100, 0], [0, 0]], np.int64)
    # y1: (32·3190) >> 12 = 24 (+32 on the spiking neuron 1); y2 = 100·3190 >> 12 = 77 + 60, and
    # 0 + clip(200) = 127; y3 tau 0: no memory, impulse 5 on the spike
    got = neuron_traces(y, [0, 1], [60, 200], (0, 0, 32, 0, 5), (0, 0, 4, 4, 0), True)
    assert got.tolist() == [[24, 32], [127, 127], [0, 5]]
    got = neuron_traces(y.astype(float), [0, 1], [60, 200], (0, 0, 32, 0, 5), (0, 0, 4, 4, 0), False)
    e = math.exp(-0.25)
    assert got[0] == pytest.approx([32 * e, 32]) and got[1] == pytest.approx([100 * e + 60, 200])


def test_rule_form_tags_and_u_dependencies():
    d = reward_stdp()
    assert d["dw"] == "1 * 2^-2 * u0 * t * y2" and d["reward"] == "reward"
    assert parse_rule(d["dt"])[2].dependency == "u0" and parse_rule(rule_text(parse_rule(d["dt"]))) == parse_rule(d["dt"])
    w = np.full((2, 3), 10, np.int32)
    assert QPlasticDense(weight=w, **d).check() == []
    bad = QPlasticDense(weight=w, dw="2^-2 * u0 * t * y2", dt="2^-2 * u1 * t", impulses=(1, 0, 1, 0, 0))
    assert any("u0, u1" in p for p in bad.check())
    assert any("impulse is 0" in p and "y2" in p for p in bad.check())    # y2 without a reward is dead
    assert any("no tag rule" in p for p in QPlasticDense(weight=w, dw="2^-2 * u0 * t").check())
    with pytest.raises(ValueError, match="dependency only"):
        parse_rule("2^-2 * y0 * u0")


def _graph(reward: str = "r", r_shape: tuple[int, ...] = (1,)) -> Graph:
    z = np.zeros(1, np.int32)
    syn = QPlasticDense(weight=np.full((1, 2), 100, np.int32), rng_seed=5, **{**reward_stdp(**PRESET), "reward": reward})
    lif = QLIF(du=np.full(1, 4095), dv=np.full(1, 4096), vth=np.full(1, 150), bias_mant=z, bias_exp=z)
    return Graph({"x": Input(shape=(2,)), "r": Input(shape=r_shape), "syn": syn, "P": lif, "out": Output()},
                 (Edge("x", "syn"), Edge("syn", "P", 1), Edge("P", "out")), numerics="loihi", name="rstdp")


def test_reward_input_is_checked_and_saved(tmp_path):
    from neurocc.backends.emulator import check, simulate
    from neurocc.ir import load_graph, save_graph

    assert any("reward 'r' must be a graph Input of shape (1,)" in p and "(2,)" in p
               for p in check(_graph(r_shape=(2,)), None))
    assert any("reward 'nope'" in p and "no such node" in p for p in check(_graph(reward="nope"), None))
    g = _graph()
    save_graph(g, tmp_path)
    g2 = load_graph(tmp_path / "graph.json")
    assert (g2.nodes["syn"].reward, g2.nodes["syn"].dt) == ("r", g.nodes["syn"].dt)
    x = {"x": np.zeros((6, 1, 2)), "r": np.zeros((6, 1, 1))}
    x["x"][[0, 1], 0, :] = 1                   # two volleys: P fires at steps 1 and 2 (200 > 150)
    x["r"][3, 0, 0] = 64
    a, b = simulate(g, x), simulate(g2, x)
    assert a.weights["syn/w"][0, 0, 0] > 100 and np.array_equal(a.weights["syn/w"], b.weights["syn/w"])


def test_rewarded_pattern_is_preferred_on_the_emulator(rstdp):
    from neurocc.backends.emulator import run as emulate

    graph, x, onsets = rstdp.experiment()
    out = emulate(graph, x)
    s = rstdp.summary(out["W/w"][0], out["out"][:, 0], onsets)
    assert s["fired_A"] == s["fired_B"] == 8           # both patterns fired P throughout training
    assert s["w_A"] > 60 and s["w_B"] == 40            # only the rewarded pattern's synapses grew
    assert s["half_A_fires"] and not s["half_B_fires"]  # and half of A now fires P, half of B does not
    # the float reference of the rule on the same spikes prefers A too: A saturates (no 2^5 product
    # shift), B drifts up a little (its tags and the reward trace never reach exactly 0 in float)
    ref = rstdp.float_reference(graph, x, out["out"])
    assert (ref[0, :4] == 255).all() and 40 < ref[0, 4:].max() < 60
    # the learned weights frozen (the reward Input then feeds nothing): edge-cpu equals the emulator
    from neurocc.backends import edge_cpu
    from neurocc.ir.qnodes_plastic import freeze

    frozen = freeze(graph, {"W/w": out["W/w"]})
    test = {k: v[-2 * rstdp.Protocol().gap:] for k, v in x.items()}
    want, got = emulate(frozen, test), edge_cpu.run(frozen, test)
    assert np.array_equal(np.asarray(want["out"]), np.asarray(got["out"])) and np.asarray(got["out"]).sum() == 1


def _stress_graph(sign: str, t_epoch: int, dw: str, dt: str, w0: np.ndarray, reward: str = "r") -> Graph:
    n_post, n_pre = w0.shape
    z = np.zeros(n_post, np.int32)
    lif = QLIF(du=np.full(n_post, 3000), dv=np.full(n_post, 400), vth=np.full(n_post, 120), bias_mant=z, bias_exp=z)
    syn = QPlasticDense(weight=w0, sign_mode=sign, dw=dw, dt=dt, impulses=(30, 12, 25, 0, 9), taus=(5, 3, 4, 3, 2),
                        t_epoch=t_epoch, rng_seed=11, weight_exp=1, reward=reward)
    return Graph({"x": Input(shape=(n_pre,)), "r": Input(shape=(n_post,)), "syn": syn, "lif": lif, "out": Output()},
                 (Edge("x", "syn"), Edge("syn", "lif", 1), Edge("lif", "out")), numerics="loihi",
                 name=f"r3f_{sign}_{t_epoch}")


def test_lava_equals_emulator_three_factor(lava_ok, rstdp):
    """One worker: the example (4 trials per pattern, 240 steps) and three random three-factor
    networks (5 post, 7 pre, batch 2, rewards up to 159 so the 127 clip acts; mixed sign with
    t_epoch 1 and 3, an excitatory one with t_epoch 2 and u1 decimation; tags, w, x2, y1..y3
    factors) plus a two-factor one with a tag rule (Loihi2FLearningRule with dt): spikes and
    learned weights exact, and every synapse of the three-factor ones learned."""
    from neurocc.backends.emulator import run as emulate
    from neurocc.backends.loihi import run_lava_many

    rng = np.random.default_rng(3)
    w0 = rng.integers(-120, 120, (5, 7)).astype(np.int32)
    x = (rng.random((60, 2, 7)) < 0.3).astype(np.float64)
    r = np.where(rng.random((60, 2, 5)) < 0.2, rng.integers(1, 160, (60, 2, 5)), 0).astype(np.float64)
    rules = [("mixed", 1, "2^-1 * u0 * t * y2 - 2^-6 * y0 * y3 * w",
              "2^-1 * y0 * x1 - 2^-2 * x0 * y1 - 2^-3 * u0 * t + 2^-4 * x0 * x2 * y2", w0),
             ("mixed", 3, "3 * 2^-2 * u0 * t * y2 + 2^-3 * x0 * y2", "2^-1 * y0 * x1 - 2^-2 * x0 * y1 - 2^-2 * u0 * t", w0),
             ("excitatory", 2, "2^-1 * u1 * t * (y2 - 4) + 2^-4 * u1 * x1 * y3",
              "2^-1 * y0 * x1 - 2^-1 * x0 * y1 - 2^-2 * u1 * t", np.abs(w0)),
             ("mixed", 1, "2^-2 * u0 * t * (x1 + 8) - 2^-5 * y0 * y3 * w",   # two-factor with a tag (no reward)
              "2^-1 * y0 * x1 - 2^-2 * x0 * y1 - 2^-2 * u0 * t", w0, "")]
    graph, x_ex, onsets = rstdp.experiment(rstdp.Protocol(trials=4))
    jobs = [{"graph": graph, "inputs": x_ex}] + [{"graph": _stress_graph(*a), "inputs": {"x": x, "r": r}} for a in rules]
    lava = run_lava_many(jobs)
    for job, got in zip(jobs, lava):
        want = emulate(job["graph"], job["inputs"])
        assert set(want) == set(got)
        for k in want:
            a, b = np.asarray(got[k], np.int64), np.asarray(want[k], np.int64)
            bad = np.argwhere(a != b)
            assert a.shape == b.shape and not bad.size, (
                f"{job['graph'].name} {k}: {len(bad)} of {b.size} differ, first (index, lava, emulator): "
                f"{[(tuple(i), int(a[tuple(i)]), int(b[tuple(i)])) for i in bad[:3]]}")
    s = rstdp.summary(lava[0]["W/w"][0], lava[0]["out"][:, 0], onsets)
    assert s["w_A"] > 50 and s["w_B"] == 40 and s["half_A_fires"] and not s["half_B_fires"]
    for got, (sign, _te, _dw, _dt, w, *two_factor) in zip(lava[1:], rules):
        start = (w >> 1) << 1 if sign == "mixed" else w
        changed = got["syn/w"] != start
        assert changed.any() if two_factor else changed.all()


_LAVA_PARSE = """
import json, sys
sys.path.insert(0, {root!r})
import neurocc.backends.loihi.shim as s
s.import_lava()
from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
out = []
for dw, dt in {rules!r}:
    r = Loihi3FLearningRule(dw=dw, dt=dt, x1_impulse=1, x2_impulse=1, t_epoch=1, rng_seed=1)
    out.append([[[p.s_mantissa, p.s_exp - 7, p.dependency + (str(p.decimate_exponent) if p.dependency == "u" else ""),
                  [[f.state_var, f.const or 0] for f in p.factors]] for p in ps.products] for ps in (r.dw, r.dt)])
print(json.dumps(out))
"""


def test_tag_rules_parse_as_lava_reads_them(lava_ok):
    rules = [(reward_stdp()["dw"], reward_stdp()["dt"]),
             ("2^-1 * u1 * t * (y2 - 4) + 2^-4 * u1 * x1 * y3", "12 * 2^-5 * y0 * x1 - x0 * (t + 3) * y1 - 2^-2 * u1 * t")]
    code = _LAVA_PARSE.format(root=str(ROOT), rules=rules)
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lava = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = [[[[t.mantissa, t.exponent, t.dependency, [[v, c] for v, c in t.factors]] for t in parse_rule(s)]
             for s in pair] for pair in rules]
    assert lava == ours


def test_cli_validate_three_factor_artifact(lava_ok, rstdp, tmp_path):
    """compile → `validate --backends loihi`: the reward input (values 64) is graded in the
    manifest, spikes and learned weights exact against the emulator."""
    import neurocc
    from neurocc.cli import main

    graph, x, _ = rstdp.experiment(rstdp.Protocol(trials=2))
    neurocc.compile(graph, "loihi2", tmp_path / "art")
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert {i["name"]: i["values"] for i in manifest["inputs"]}["reward"] == "graded"   # run's 0/1 check skips it
    np.savez(tmp_path / "x.npz", **x)
    rep = tmp_path / "v.json"
    assert main(["validate", str(tmp_path / "art"), "--backends", "loihi", "--input", str(tmp_path / "x.npz"),
                 "--json", str(rep)]) == 0
    (res,) = json.loads(rep.read_text())["results"]
    assert res["passed"] and res["weights"]["W"] == {"compared": 8, "mismatches": 0, "max_abs_diff": 0}
