"""The emulator under the loihi profile against an independent transcription of Lava 0.10's
fixed_pt models (lava-loihi.md §2; written here with numpy int32 arithmetic as Lava does it,
sharing no code with neurocc.ir.numerics), the paper's Lava CSV, corner cases and mutants."""
from __future__ import annotations

import numpy as np
import pytest

import neurocc.ir.numerics as nm
import neurocc.ir.numerics.core as core
from neurocc.backends.emulator import simulate
from neurocc.ir import nodes as N
from neurocc.ir import qnodes as Q
from neurocc.ir.graph import Edge, Graph


# ---- an independent Lava oracle -------------------------------------------------------------
def _lava_weights(w: np.ndarray, nwb: int) -> np.ndarray:
    w = w.astype(np.int32)
    mixed, inh = w.min() < 0 < w.max(), w.size and w.max() <= 0 and w.min() < 0
    w = -w if inh else w
    w = np.clip(w, -256 if mixed else 0, 255)
    k = 8 - nwb + int(mixed)
    w = (w >> k) << k
    return -w if inh else w


def _lava_lif(u, v, a_in, p):
    dec = np.int64(u) * (4096 - (p["du"] + 1))
    dec = np.int32(np.sign(dec) * np.right_shift(np.abs(dec), 12))
    dec = dec + np.left_shift(a_in.astype(np.int32), 6)          # int32, wraps like Lava
    wr = np.where(dec > 2**23, dec - 2**24, dec)
    u = np.where(wr <= -(2**23), dec + 2**24, wr).astype(np.int32)
    dv = np.int64(v) * (4096 - p["dv"])
    dv = np.int32(np.sign(dv) * np.right_shift(np.abs(dv), 12))
    bias = np.where(p["bias_exp"] >= 0, np.left_shift(p["bias_mant"].astype(np.int32), np.maximum(p["bias_exp"], 0)),
                    np.right_shift(p["bias_mant"].astype(np.int32), np.maximum(-p["bias_exp"], 0)))
    v = np.clip(dv + u + bias.astype(np.int32), -(2**23) + 1, 2**23 - 1).astype(np.int32)
    s = v > (p["vth"] << 6)
    v[s] = 0
    return u, v, s


def lava_oracle(layers: list[dict], x: np.ndarray) -> list[dict]:
    """Run the LoihiProtocol loop of §2.1: Dense sends last step's buffer, neurons update,
    Dense accumulates this step's spikes. ``x`` (T, n_in) binary."""
    W = [_lava_weights(L["w"], L["nwb"]) for L in layers]
    R = [_lava_weights(L["rec"], 8) if L.get("rec") is not None else None for L in layers]
    buf = [np.zeros(w.shape[0], np.int32) for w in W]
    rbuf = [np.zeros(w.shape[0], np.int32) for w in W]
    u = [np.zeros(w.shape[0], np.int32) for w in W]
    v = [np.zeros(w.shape[0], np.int32) for w in W]
    out = [{"u": [], "v": [], "s": []} for _ in layers]

    def dense(w, s, e):
        acc = w[:, s.astype(bool)].sum(axis=1)
        return np.int32(np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e))

    for t in range(x.shape[0]):
        sent, rsent = list(buf), list(rbuf)
        spikes_in = x[t]
        for k, L in enumerate(layers):
            a = sent[k] + (rsent[k] if R[k] is not None else 0)
            u[k], v[k], s = _lava_lif(u[k], v[k], np.int32(a), L)
            buf[k] = dense(W[k], spikes_in, L["weight_exp"])
            if R[k] is not None:
                rbuf[k] = dense(R[k], s, 0)
            for key, val in (("u", u[k]), ("v", v[k]), ("s", s)):
                out[k][key].append(val.copy())
            spikes_in = s
    return [{k: np.array(a) for k, a in o.items()} for o in out]


def build_graph(layers: list[dict], n_in: int, dense_delay: int = 1) -> Graph:
    nodes: dict = {"input": N.Input(shape=(n_in,))}
    edges, prev = [], "input"
    for k, L in enumerate(layers):
        n = L["w"].shape[0]
        nodes[f"d{k}"] = Q.QDense(weight=L["w"], weight_exp=L["weight_exp"], num_weight_bits=L["nwb"])
        nodes[f"l{k}"] = Q.QLIF(du=np.full(n, L["du"]), dv=np.full(n, L["dv"]), vth=np.full(n, L["vth"]),
                                bias_mant=L["bias_mant"], bias_exp=L["bias_exp"])
        edges += [Edge(prev, f"d{k}"), Edge(f"d{k}", f"l{k}", dense_delay)]
        if L.get("rec") is not None:
            nodes[f"r{k}"] = Q.QDense(weight=L["rec"])
            edges += [Edge(f"l{k}", f"r{k}"), Edge(f"r{k}", f"l{k}", 1)]
        prev = f"l{k}"
    nodes["output"] = N.Output(shape=(layers[-1]["w"].shape[0],))
    edges.append(Edge(prev, "output"))
    return Graph(nodes, edges, numerics="loihi", name="random")


def random_net(seed: int, edge: bool) -> tuple[list[dict], np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 40, 4)
    layers = []
    for k in range(3):
        n, m = int(sizes[k + 1]), int(sizes[k])
        lo, hi = [(-128, 128), (0, 256), (-255, 1), (-400, 401)][rng.integers(4)] if edge else (-128, 128)
        w = rng.integers(lo, hi, (n, m)) * (rng.random((n, m)) > 0.3)
        pick = lambda choices, r: int(rng.choice(choices)) if edge else int(r)  # noqa: E731
        layers.append(dict(
            w=w, weight_exp=int(rng.integers(-3, 4)) if edge else 0, nwb=pick([8, 7, 6, 4], 8),
            du=pick([0, 4095, int(rng.integers(0, 4096))], rng.integers(0, 4096)),
            dv=pick([0, 4095, int(rng.integers(0, 4096))], rng.integers(0, 4096)),
            vth=pick([0, 1, 131071, int(rng.integers(1, 2000))], rng.integers(50, 2000)),
            bias_mant=rng.integers(-4096, 4096, n) * (rng.random() < 0.6),
            bias_exp=rng.integers(-2, 8, n),
            rec=rng.integers(-128, 128, (n, n)) if rng.random() < 0.3 else None))
    x = (rng.random((int(rng.integers(60, 120)), int(sizes[0]))) < rng.uniform(0.05, 0.5)).astype(np.uint8)
    return layers, x


def mismatches(layers, x, graph=None, kernels: str = "auto") -> int:
    want = lava_oracle(layers, x)
    g = graph or build_graph(layers, x.shape[1])
    got = simulate(g, {"input": x[:, None]}, record=True, kernels=kernels).traces
    bad = 0
    for k, w in enumerate(want):
        bad += int(np.sum(got[f"l{k}/out"][:, 0] != w["s"]))
        bad += int(np.sum(got[f"l{k}/u"][:, 0] != w["u"])) + int(np.sum(got[f"l{k}/v"][:, 0] != w["v"]))
    return bad


@pytest.mark.parametrize("seed", range(8))
def test_random_nets_match_lava_oracle(seed):
    layers, x = random_net(seed, edge=seed % 2 == 1)
    assert mismatches(layers, x) == 0


# ---- mutants: a wrong variant must be caught --------------------------------------------------
MUTANT_SEEDS = (0, 2, 4)


def _total(seeds=MUTANT_SEEDS) -> int:
    """Mismatches on the numpy kernels, where the mutated numerics functions run (``auto`` may
    switch to the compiled kernels once the process has spent a while in numpy: order-dependent)."""
    return sum(mismatches(*random_net(s, edge=False), kernels="numpy") for s in seeds)


def test_mutant_du_instead_of_du_plus_1(monkeypatch):
    monkeypatch.setattr(nm, "current_decay_factor", lambda du: 4096 - np.asarray(du, np.int64))
    assert _total() > 0


def test_mutant_floor_instead_of_trunc(monkeypatch):
    monkeypatch.setattr(core, "decay", lambda x, f, bits=12: np.floor((np.asarray(x) * f) * 2.0 ** -bits))
    assert _total() > 0


def test_mutant_no_weight_lsb_loss(monkeypatch):
    monkeypatch.setattr(core, "lava_dense_weights", lambda w, nwb=8, sign_mode=None: np.asarray(w, np.int64))
    assert _total() > 0


def test_mutant_no_dense_delay():
    bad = sum(mismatches(*random_net(s, False), graph=build_graph(random_net(s, False)[0],
                                                                     random_net(s, False)[1].shape[1], 0))
              for s in MUTANT_SEEDS)
    assert bad > 0


# ---- the NIR paper's Lava fixed-point CSV ----------------------------------------------------
def paper_loihi_graph() -> Graph:
    """Input → Dense(w) → (1 step) → LIF, with the paper's conversion (nir-onnx.md §2.2):
    dt/τ = 1e-4/2.5e-3 = 0.04; dv = int(0.04·4095) = 163 carries the leak (u has no memory:
    du = 4095); vth = int(0.1·131071) >> 9 = 25; weight = int(1·256·0.04) = 10. These are the
    parameters that reproduce the CSV: v jumps to 640 = 10 << 6 one step after each input."""
    return Graph({"input": N.Input(shape=(1,)), "dense": Q.QDense(weight=np.array([[10]])),
                  "lif": Q.QLIF(du=np.array([4095]), dv=np.array([int(0.04 * 4095)]),
                                vth=np.array([int(0.1 * 131071) >> 9]), bias_mant=np.array([0]),
                                bias_exp=np.array([0])),
                  "output": N.Output(shape=(1,))},
                 [Edge("input", "dense"), Edge("dense", "lif", 1), Edge("lif", "output")],
                 numerics="loihi", dt=1e-4, name="lif_paper_loihi")


def test_paper_lava_fixed_point_csv_exact(nir_paper):
    csv = np.loadtxt(nir_paper / "lif_lava_cpu_fixed.csv", delimiter=",")
    res = simulate(paper_loihi_graph(), {"input": csv[:, 0].reshape(-1, 1, 1)}, record=True)
    assert np.flatnonzero(res.outputs["output"][:, 0, 0]).tolist() == [461, 511, 711, 761]
    assert np.array_equal(res.traces["lif/v"][:, 0, 0], csv[:, 1].astype(np.int64))   # every step
    assert np.array_equal(res.outputs["output"][:, 0, 0], csv[:, 2].astype(np.uint8))


# ---- directed corner cases (lava-loihi.md §2.6) -------------------------------------------------
def one_neuron(w, weight_exp=0, **lif) -> Graph:
    n_in = np.asarray(w).shape[1]
    p = dict(du=0, dv=0, vth=131071, bias_mant=0, bias_exp=0) | lif
    return Graph({"input": N.Input(shape=(n_in,)), "d": Q.QDense(weight=np.asarray(w), weight_exp=weight_exp),
                  "l": Q.QLIF(**{k: np.array([v]) for k, v in p.items()}), "output": N.Output(shape=(1,))},
                 [Edge("input", "d"), Edge("d", "l", 1), Edge("l", "output")], numerics="loihi")


def run1(g, x):
    x = np.asarray(x, np.uint8)
    return simulate(g, {"input": x.reshape(len(x), 1, -1)}, record=True)


def test_u_wrap_off_by_one_and_event_count():
    # 8 inputs of -128 with weight_exp 7: a = -1024 << 7 = -2^17, << 6 = -2^23 -> u = +2^23
    r = run1(one_neuron(np.full((1, 8), -128), weight_exp=7, du=4095), [[1] * 8, [0] * 8])
    assert r.traces["l/u"][1, 0, 0] == 2**23
    assert r.events["l"]["u_wrap"] == 1


def test_v_saturates_and_du0_decays():
    r = run1(one_neuron([[255]], weight_exp=7, du=-1, vth=1 << 17), [[1]] * 3 + [[0]] * 3)  # never spikes
    v = r.traces["l/v"][:, 0, 0]
    assert v.max() == 2**23 - 1 and r.events["l"]["v_saturate"] > 0
    r = run1(one_neuron([[1]], du=0, dv=4095), [[1], [0], [0], [0], [0]])
    assert r.traces["l/u"][:, 0, 0].tolist() == [0, 64, 63, 62, 61]


def test_strict_threshold_and_vth_zero():
    # u = 64·w, dv = 4096 (no memory): v == vth<<6 does not spike, one more LSB does
    g = one_neuron([[25]], du=4095, dv=4096, vth=25)
    assert run1(g, [[1], [0]]).outputs["output"].sum() == 0
    g = one_neuron([[26]], du=4095, dv=4096, vth=25)
    assert run1(g, [[1], [0]]).outputs["output"][:, 0, 0].tolist() == [0, 1]
    g = one_neuron([[1]], du=4095, dv=4096, vth=0)
    assert run1(g, [[1], [0], [0]]).outputs["output"][:, 0, 0].tolist() == [0, 1, 0]


def test_weight_exp_negative_applies_to_the_sum():
    r = run1(one_neuron([[3, 2]], weight_exp=-2, du=4095, dv=4096), [[1, 1], [0, 0]])
    assert r.traces["l/u"][1, 0, 0] == 1 << 6                    # (3+2) >> 2 = 1, not 0 + 0


def test_negative_bias_exp_floors():
    r = run1(one_neuron([[0]], dv=4096, bias_mant=-5, bias_exp=-1), [[0]])
    assert r.traces["l/v"][0, 0, 0] == -3                       # -5 >> 1 = -3 (floor)


def test_mixed_lsb_loss_in_the_emulator():
    r = run1(one_neuron([[3, -1]], du=4095, dv=4096), [[1, 0], [0, 1], [0, 0]])
    assert r.traces["l/u"][1:, 0, 0].tolist() == [2 << 6, -2 << 6]  # 3 -> 2, -1 -> -2
