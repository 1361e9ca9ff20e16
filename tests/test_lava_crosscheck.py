"""Lava 0.10 ``fixed_pt`` (in a worker subprocess) against hand-derived values and the emulator.

Part 1 (``test_hand_case``): small graphs whose spikes and u/v were derived by hand from the
arithmetic in research note lava-loihi.md §2 (the derivation is in each case's comment), so a
wrong lowering (timing, weight layout, flips, reshapes, delays) fails without trusting any code.

Part 2 (``test_emulator_matches_lava``): seeded random multi-layer quantized graphs run in Lava
and in the emulator; spikes and u/v must be identical at every step. All networks of a part run
in one worker call (one Lava import and start-up).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from neurocc.backends.loihi import LavaJob, run_lava_many
from neurocc.ir.graph import Edge, Graph
from neurocc.ir.nodes import Flatten, Input, Output
from neurocc.ir.qnodes import QLI, QLIF, QConv2d, QDense, QSumPool2d

pytestmark = pytest.mark.lava

BIG = 1 << 17  # vth << 6 = 2**23 > 2**23 - 1, the largest voltage: never fires


def lif(shape, du=4095, dv=4095, vth=0, bias_mant=0, bias_exp=0, cls=QLIF):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    full = lambda v: np.broadcast_to(np.asarray(v, np.int32), shape).copy()  # noqa: E731
    kw = dict(du=full(du), dv=full(dv), bias_mant=full(bias_mant), bias_exp=full(bias_exp))
    if cls is QLIF:
        kw["vth"] = full(vth)
    return cls(**kw)


def dense(w, **kw) -> QDense:
    return QDense(weight=np.asarray(w, np.int32), **kw)


def graph(nodes: dict, edges: list, name: str) -> Graph:
    return Graph(nodes, tuple(Edge(*e) for e in edges), numerics="loihi", name=name).verify()


def spikes_at(x: np.ndarray) -> list[int]:
    """Steps (axis 0) at which any element of (steps, *shape) is non-zero."""
    return np.nonzero(x.reshape(x.shape[0], -1).any(axis=1))[0].tolist()


# ----- hand cases: (graph, inputs, steps, check(result)) ----------------------------------------
HAND: dict[str, Callable[[], tuple[Graph, dict, int, Callable[[dict], None]]]] = {}


def hand(fn):
    HAND[fn.__name__] = fn
    return fn


@hand
def chain_timing():
    """§2.1: Src→Dense→LIF→Dense→LIF→Dense→LIF, immediate spikes (w=100, vth=0): an input
    spike in column 0 fires LIF1 at Lava step 2, LIF2 at 3, LIF3 at 4 = neurocc steps 1, 2, 3.
    LIF1 at step 1: u = 100 << 6 = 6400, v = 6400 > 0 → spike, v reset to 0 (u kept)."""
    nodes = {"x": Input(shape=(1,)), "d1": dense([[100]]), "l1": lif(1), "d2": dense([[100]]), "l2": lif(1),
             "d3": dense([[100]]), "l3": lif(1), "o1": Output(), "o2": Output(), "o3": Output()}
    edges = [("x", "d1"), ("d1", "l1", 1), ("l1", "d2"), ("d2", "l2", 1), ("l2", "d3"), ("d3", "l3", 1),
             ("l1", "o1"), ("l2", "o2"), ("l3", "o3")]
    x = np.zeros((6, 1, 1)); x[0] = 1

    def check(r):
        assert [spikes_at(r[o][:, 0]) for o in ("o1", "o2", "o3")] == [[1], [2], [3]]
        assert r["l1/u"][:3, 0, 0].tolist() == [0, 6400, 0]  # du=4095: factor 4096-4096 = 0
        assert r["l1/v"][:3, 0, 0].tolist() == [0, 0, 0]     # 6400 fired and was reset
    return graph(nodes, edges, "chain"), {"x": x}, 6, check


@hand
def du_zero_still_decays():
    """§2.6: du=0 decays u by (4096-1)/4096 each step, truncated toward zero: 64, 63, 62, 61;
    an inhibitory weight -1 gives -64, -63, -62, -61 (floor would stay at -64)."""
    nodes = {"x": Input(shape=(2,)), "dp": dense([[1, 0]]), "lp": lif(1, du=0, vth=BIG), "op": Output(),
             "dn": dense([[0, -1]]), "ln": lif(1, du=0, vth=BIG), "on": Output()}
    edges = [("x", "dp"), ("dp", "lp", 1), ("lp", "op"), ("x", "dn"), ("dn", "ln", 1), ("ln", "on")]
    x = np.zeros((5, 1, 2)); x[0] = 1

    def check(r):
        assert r["lp/u"][:, 0, 0].tolist() == [0, 64, 63, 62, 61]
        assert r["ln/u"][:, 0, 0].tolist() == [0, -64, -63, -62, -61]
    return graph(nodes, edges, "du0"), {"x": x}, 5, check


@hand
def u_wrap_and_v_saturation():
    """§2.6: a = ±(8·128) << 7 = ±2**17, u = a << 6 = ±2**23. Lava's wrap keeps +2**23 and turns
    -2**23 into +2**23; v = u saturates to 2**23 - 1 (vth = 2**17: never fires)."""
    w = np.array([[-128] * 8, [128] * 8])  # mixed: even values survive the LSB drop
    nodes = {"x": Input(shape=(8,)), "d": dense(w, weight_exp=7), "l": lif(2, vth=BIG), "o": Output()}
    x = np.zeros((3, 1, 8)); x[0] = 1

    def check(r):
        assert r["l/u"][1, 0].tolist() == [2**23, 2**23]
        assert r["l/v"][1, 0].tolist() == [2**23 - 1, 2**23 - 1]
    return graph(nodes, [("x", "d"), ("d", "l", 1), ("l", "o")], "wrap"), {"x": x}, 3, check


@hand
def weight_preprocessing():
    """§2.2: mixed [3,-1] → [2,-2] (LSB dropped); excitatory with num_weight_bits=6 drops 2 bits:
    7 → 4, 13 → 12; weight_exp=-2 shifts the SUM: (3+2) >> 2 = 1 (per synapse would give 0)."""
    nodes = {"x": Input(shape=(2,)),
             "dm": dense([[3, 0], [-1, 0]]), "lm": lif(2, vth=BIG), "om": Output(),
             "de": dense([[7, 0], [0, 13]], num_weight_bits=6), "le": lif(2, vth=BIG), "oe": Output(),
             "ds": dense([[3, 2]], weight_exp=-2), "ls": lif(1, vth=BIG), "os": Output()}
    edges = [("x", "dm"), ("dm", "lm", 1), ("lm", "om"), ("x", "de"), ("de", "le", 1), ("le", "oe"),
             ("x", "ds"), ("ds", "ls", 1), ("ls", "os")]
    x = np.zeros((3, 1, 2)); x[0] = 1

    def check(r):
        assert (r["lm/u"][1, 0] // 64).tolist() == [2, -2]
        assert (r["le/u"][1, 0] // 64).tolist() == [4, 12]
        assert (r["ls/u"][1, 0] // 64).tolist() == [1]
    return graph(nodes, edges, "weights"), {"x": x}, 3, check


@hand
def threshold_strict_and_bias():
    """§2.3: spike iff v > vth << 6. vth=1: a=1 gives v=64 (no spike), a=2 gives 128 (spike).
    Bias: mant -5, exp -1 → -5 >> 1 = -3 (floor) each step; mant 5, exp 2 → 20. dv=4095 keeps
    trunc(v/4096) = 0 of the old v, so v = u + bias every step."""
    nodes = {"x": Input(shape=(2,)), "d": dense([[1, 0], [0, 2]]), "l": lif(2, vth=1), "o": Output(),
             "db": dense([[0, 0], [0, 0]]), "lb": lif(2, vth=BIG, bias_mant=[-5, 5], bias_exp=[-1, 2]),
             "ob": Output()}
    edges = [("x", "d"), ("d", "l", 1), ("l", "o"), ("x", "db"), ("db", "lb", 1), ("lb", "ob")]
    x = np.zeros((3, 1, 2)); x[0] = 1

    def check(r):
        assert r["o"][1, 0].tolist() == [0, 1]
        assert r["l/v"][1, 0].tolist() == [64, 0]
        assert r["lb/v"][:, 0].tolist() == [[-3, 20]] * 3
    return graph(nodes, edges, "thresh"), {"x": x}, 3, check


@hand
def recurrence_and_delays():
    """A self-exciting neuron (recurrent QDense, delay 1) fires every step after the first input
    spike; with the recurrent edge at delay 2 (DelayDense, delays=1) every second step; an input
    edge at delay 3 (RingBuffer shifted by 2) fires at step 3 for an input in column 0."""
    nodes = {"x": Input(shape=(1,)),
             "d1": dense([[2]]), "l1": lif(1, vth=1), "r1": dense([[2]]), "o1": Output(),
             "d2": dense([[2]]), "l2": lif(1, vth=1), "r2": dense([[2]]), "o2": Output(),
             "d3": dense([[2]]), "l3": lif(1, vth=1), "o3": Output()}
    edges = [("x", "d1"), ("d1", "l1", 1), ("l1", "r1"), ("r1", "l1", 1), ("l1", "o1"),
             ("x", "d2"), ("d2", "l2", 1), ("l2", "r2"), ("r2", "l2", 2), ("l2", "o2"),
             ("x", "d3"), ("d3", "l3", 3), ("l3", "o3")]
    x = np.zeros((8, 1, 1)); x[0] = 1

    def check(r):
        assert spikes_at(r["o1"][:, 0]) == [1, 2, 3, 4, 5, 6, 7]
        assert spikes_at(r["o2"][:, 0]) == [1, 3, 5, 7]
        assert spikes_at(r["o3"][:, 0]) == [3]
    return graph(nodes, edges, "rec"), {"x": x}, 8, check


@hand
def conv_layout():
    """Correlation as PyTorch: y[h,w] = Σ W[kh,kw]·x[h+kh, w+kw]. One input spike at (h=1, w=2)
    of a 3×4 image under W = [[1,2],[3,4]] gives y[0,1]=4, y[0,2]=3, y[1,1]=2, y[1,2]=1."""
    w = np.array([[[[1, 2], [3, 4]]]])
    nodes = {"x": Input(shape=(1, 3, 4)), "c": QConv2d(weight=w.astype(np.int32), bias=np.zeros(1, np.int32)),
             "l": lif((1, 2, 3), vth=BIG), "o": Output()}
    x = np.zeros((3, 1, 1, 3, 4)); x[0, 0, 0, 1, 2] = 1

    def check(r):
        assert (r["l/u"][1, 0, 0] // 64).tolist() == [[0, 4, 3], [0, 2, 1]]
    return graph(nodes, [("x", "c"), ("c", "l", 1), ("l", "o")], "conv"), {"x": x}, 3, check


@hand
def pool_flatten_and_direct_input():
    """Sum pooling 2×2/2 of spikes at (0,0), (0,1), (1,1), (3,3) of a 4×4 map → [[3,0],[0,1]].
    Input (2,1,2) → QLIF directly (delay 0: a_in = x) fires where x=1 in the same step; Flatten
    (C order: index c·2 + w) → identity QDense → QLIF fires at index 2 for x[c=1, h=0, w=0]."""
    nodes = {"p_in": Input(shape=(1, 4, 4)), "p": QSumPool2d(), "pl": lif((1, 2, 2), vth=BIG), "po": Output(),
             "x": Input(shape=(2, 1, 2)), "lx": lif((2, 1, 2), vth=0), "ox": Output(), "f": Flatten(),
             "d": dense(np.eye(4)), "l2": lif(4, vth=0), "o2": Output()}
    edges = [("p_in", "p"), ("p", "pl", 1), ("pl", "po"),
             ("x", "lx"), ("lx", "ox"), ("lx", "f"), ("f", "d"), ("d", "l2", 1), ("l2", "o2")]
    p = np.zeros((3, 1, 1, 4, 4)); p[0, 0, 0, [0, 0, 1, 3], [0, 1, 1, 3]] = 1
    x = np.zeros((4, 1, 2, 1, 2)); x[0, 0, 1, 0, 0] = 1

    def check(r):
        assert (r["pl/u"][1, 0, 0] // 64).tolist() == [[3, 0], [0, 1]]
        assert r["ox"][0, 0].tolist() == [[[0, 0]], [[1, 0]]] and spikes_at(r["ox"][:, 0]) == [0]
        assert r["o2"][1, 0].tolist() == [0, 0, 1, 0]
        assert spikes_at(r["o2"][:, 0]) == [1]
    inputs = {"p_in": np.concatenate([p, np.zeros((1, 1, 1, 4, 4))]), "x": x}
    return graph(nodes, edges, "poolflat"), inputs, 4, check


@hand
def leaky_integrator_output():
    """QLI (vth = 2**17, never fires) read through an Output gives v: input 3 → u = 192 at step 1;
    du=4095 clears u next step; dv=2048 halves v: 192, 96, 48."""
    nodes = {"x": Input(shape=(1,)), "d": dense([[3]]), "li": lif(1, dv=2048, cls=QLI), "o": Output()}
    x = np.zeros((4, 1, 1)); x[0] = 1

    def check(r):
        assert r["o"][:, 0, 0].tolist() == [0, 192, 96, 48]
    return graph(nodes, [("x", "d"), ("d", "li", 1), ("li", "o")], "li"), {"x": x}, 4, check


@hand
def bias_start_and_bias_on_the_current():
    """neurocc's Lava process model: ``bias_u`` adds to u with a << 6, and no bias (v's nor u's)
    acts before step ``bias_start``. du = 4095 and dv = 4096 keep no memory, so u = (a << 6) +
    bias_u and v = u + bias. Input 3 arrives at step 1 (Dense delay). QLIF (bias 1 << 6 = 64,
    bias_u 128, bias_start 2): u = 0, 192, 128, 128; v = 0, 192, 192, 192 (step 1: input, no bias
    yet). QLI (bias 64, bias_start 1): v = 0, 192 + 64 = 256, 64, 64."""
    import dataclasses

    l1 = dataclasses.replace(lif(1, du=4095, dv=4096, vth=BIG, bias_mant=1, bias_exp=6),
                             bias_u=np.array([128]), bias_start=2)
    li = dataclasses.replace(lif(1, du=4095, dv=4096, bias_mant=1, bias_exp=6, cls=QLI), bias_start=1)
    nodes = {"x": Input(shape=(1,)), "d": dense([[3]]), "l": l1, "o": Output(),
             "d2": dense([[3]]), "li": li, "o2": Output()}
    edges = [("x", "d"), ("d", "l", 1), ("l", "o"), ("x", "d2"), ("d2", "li", 1), ("li", "o2")]
    x = np.zeros((4, 1, 1)); x[0] = 1

    def check(r):
        assert r["l/u"][:, 0, 0].tolist() == [0, 192, 128, 128]
        assert r["l/v"][:, 0, 0].tolist() == [0, 192, 192, 192]
        assert r["o2"][:, 0, 0].tolist() == [0, 256, 64, 64]
    return graph(nodes, edges, "bias_start"), {"x": x}, 4, check


@pytest.fixture(scope="module")
def all_runs(lava_ok) -> dict[str, list]:
    """Every hand case and every random network, run in ONE worker call (one Lava start-up)."""
    hand_cases = [fn() for fn in HAND.values()]
    random_cases = [dense_net(s) for s in range(N_DENSE)] + [conv_net(100 + s) for s in range(N_CONV)]
    jobs = [LavaJob(g, x, steps, record=True) for g, x, steps, *_ in hand_cases + random_cases]
    results = run_lava_many(jobs)
    print(f"Lava: {len(jobs)} networks ({len(hand_cases)} hand cases) run in one worker")
    return {"hand": list(zip(hand_cases, results[:len(hand_cases)])),
            "random": list(zip(random_cases, results[len(hand_cases):]))}


@pytest.mark.parametrize("name", list(HAND))
def test_hand_case(all_runs, name):
    (_, _, _, check), result = all_runs["hand"][list(HAND).index(name)]
    check(result)


# ----- random networks: Lava against the emulator -------------------------------------------------
def _weights(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    """int8, excitatory [0,255], inhibitory [-255,0] or out-of-range [-400,400]; 30 % zeros."""
    lo, hi = [(-128, 127), (0, 255), (-255, 0), (-400, 400)][rng.integers(4)]
    w = rng.integers(lo, hi + 1, size=(out, inp))
    return np.where(rng.random(w.shape) < 0.3, 0, w).astype(np.int32)


def _neuron(rng: np.random.Generator, shape: tuple[int, ...], li: bool = False):
    """Edge values: du/dv in {0, 4095, random, -1 (du only)}, vth in {0, 1, 2**17, random} per
    layer or per neuron, bias mantissa/exponent (negative exponents too) on 60 % of layers."""
    pick = lambda opts: opts[rng.integers(len(opts))]  # noqa: E731
    du = pick([0, 4095, -1, int(rng.integers(0, 4096))])
    dv = pick([0, 4095, int(rng.integers(0, 4096))])
    n = int(np.prod(shape))
    if rng.random() < 0.6:
        exp = rng.integers(-3, 8, n)
        mant = rng.integers(-300, 300, n) >> np.maximum(exp - 2, 0)
    else:
        exp, mant = np.zeros(n, int), np.zeros(n, int)
    if rng.random() < 0.2:  # per-neuron decays
        du, dv = rng.integers(-1, 4096, n).reshape(shape), rng.integers(0, 4096, n).reshape(shape)
    kw = dict(du=du, dv=dv, bias_mant=mant.reshape(shape), bias_exp=exp.reshape(shape))
    if li:
        return lif(shape, cls=QLI, **kw)
    vth = pick([0, 1, BIG, int(rng.integers(2, 400))])
    if rng.random() < 0.3:  # per-neuron thresholds
        vth = rng.integers(0, 400, n).reshape(shape)
    return lif(shape, vth=vth, **kw)


def _qdense(rng: np.random.Generator, out: int, inp: int, wrap: bool = False) -> QDense:
    exp = int(rng.choice([5, 7, 10, 12, 18, 20])) if wrap else int(rng.integers(-3, 4))
    return dense(_weights(rng, out, inp), weight_exp=exp, num_weight_bits=int(rng.choice([8, 7, 6, 4])))


def dense_net(seed: int):
    """Input → [QDense → QLIF (optional recurrent QDense, delay 1 or 2)] × 2 → QDense → QLIF or
    QLI, an Output on every layer. Some nets drive u into wrap (weight_exp 5..20: u wraps at 24
    bits, ``a << 6`` and the Dense output wrap at 32) or v into
    saturation (huge thresholds); some feed graded integer inputs through a graded QDense; some
    delay the first layer by 2..3 steps; some add a graded Input straight into the first layer."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(4, 40, 4)]
    wrap, graded, direct = seed % 5 == 4, seed % 7 == 3, seed % 4 == 1
    nodes = {"x": Input(shape=(sizes[0],))}
    edges, prev = [], "x"
    for k in range(1, 4):
        d, n = f"d{k}", f"n{k}"
        nodes[d] = _qdense(rng, sizes[k], sizes[k - 1], wrap and k == 1)
        if graded and k == 1:
            nodes[d] = nodes[d].replace(graded=True)
        nodes[n] = _neuron(rng, (sizes[k],), li=(k == 3 and rng.random() < 0.3))
        nodes[f"o{k}"] = Output()
        first_delay = int(rng.integers(2, 4)) if k == 1 and seed % 3 == 2 else 1
        edges += [(prev, d), (d, n, first_delay), (n, f"o{k}")]
        if k < 3 and rng.random() < 0.4:
            nodes[f"r{k}"] = _qdense(rng, sizes[k], sizes[k])
            edges += [(n, f"r{k}"), (f"r{k}", n, int(rng.choice([1, 1, 2])))]
        prev = n
    steps = int(rng.integers(20, 60))
    batch = 1 + (seed % 6 == 0)
    shape = (steps, batch, sizes[0])
    x = rng.integers(-20, 21, shape) if graded else (rng.random(shape) < rng.uniform(0.05, 0.5))
    inputs = {"x": x.astype(np.int32)}
    if direct:
        nodes["y"] = Input(shape=(sizes[1],))
        edges.append(("y", "n1"))
        inputs["y"] = rng.integers(-3, 4, (steps, batch, sizes[1])).astype(np.int32)
    return graph(nodes, edges, f"dense{seed}"), inputs, steps


def conv_net(seed: int):
    """Input (C,H,W) → QConv2d → QLIF → QSumPool2d → QLIF → Flatten → QDense → QLIF, with
    non-square kernels, strides, paddings and dilations (to catch x/y mix-ups), groups, and on
    some nets weights up to ±2**22 so the convolution wraps at 24 bits and a_in << 6 overflows."""
    rng = np.random.default_rng(seed)
    c_in = int(rng.integers(1, 3))
    c1 = c_in * int(rng.integers(1, 3))
    groups = c_in if rng.random() < 0.3 else 1
    h, w = int(rng.integers(6, 10)), int(rng.integers(6, 10))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dil = (int(rng.integers(1, 3)), 1) if rng.random() < 0.3 else (1, 1)
    big = seed % 4 == 3
    wt = rng.integers(-2**22, 2**22, (c1, c_in // groups, kh, kw)) if big else rng.integers(-128, 128, (c1, c_in // groups, kh, kw))
    conv = QConv2d(weight=wt.astype(np.int32), bias=np.zeros(c1, np.int32), groups=groups, dilation=dil,
                   stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                   padding=(int(rng.integers(0, 2)), int(rng.integers(0, 2))))
    s1 = conv.out_shape((c_in, h, w))
    pool = QSumPool2d(kernel_size=(2, 2), stride=(2, 2))
    s2 = pool.out_shape(s1)
    n_out = int(rng.integers(3, 12))
    nodes = {"x": Input(shape=(c_in, h, w)), "c": conv, "n1": _neuron(rng, s1), "o1": Output(),
             "p": pool, "n2": _neuron(rng, s2), "o2": Output(), "f": Flatten(),
             "d": _qdense(rng, n_out, int(np.prod(s2))), "n3": _neuron(rng, (n_out,)), "o3": Output()}
    edges = [("x", "c"), ("c", "n1", 1), ("n1", "o1"), ("n1", "p"), ("p", "n2", 1), ("n2", "o2"),
             ("n2", "f"), ("f", "d"), ("d", "n3", 1), ("n3", "o3")]
    steps = int(rng.integers(15, 40))
    x = rng.random((steps, 1, c_in, h, w)) < rng.uniform(0.1, 0.5)
    return graph(nodes, edges, f"conv{seed}"), {"x": x.astype(np.int32)}, steps


N_DENSE, N_CONV = 24, 8


def _emulator():
    try:
        from neurocc.backends.emulator import simulate
    except ImportError as err:
        return None, f"the emulator is not available ({err})"
    return simulate, ""


def test_emulator_matches_lava(all_runs):
    """Identical spikes and u/v at every step, every element, every network; and the random
    networks really reach u wrap, v saturation, the int32 ``a << 6`` wrap and the 24-bit conv wrap
    (the emulator counts those events)."""
    simulate, reason = _emulator()
    if simulate is None:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    compared = spikes = 0
    bad: list[str] = []
    events: dict[str, int] = {}
    for (g, x, steps, *_), lava in all_runs["hand"] + all_runs["random"]:
        res = simulate(g, x, steps, record=True)
        emu = {**res.outputs, **res.traces}
        for node, counts in res.events.items():
            for k, v in counts.items():
                events[f"{g.nodes[node].kind}.{k}"] = events.get(f"{g.nodes[node].kind}.{k}", 0) + v
        for key, got in lava.items():
            want = np.asarray(emu[key])
            compared += got.size
            if got.dtype == np.uint8:
                spikes += int(np.count_nonzero(got))
            if want.shape != got.shape or not np.array_equal(want, got):
                idx = np.argwhere(want != got)[0].tolist() if want.shape == got.shape else f"shape {want.shape}"
                bad.append(f"{g.name} {key}: first difference at (step, batch, *index) {idx}")
    n = len(all_runs["hand"]) + len(all_runs["random"])
    print(f"emulator vs Lava: {n} networks, {compared} elements compared ({spikes} spikes), "
          f"{len(bad)} arrays differ; overflow events exercised: {events}")
    assert not bad, "\n".join(bad[:20])
    for event in ("QLIF.u_wrap", "QLIF.v_saturate", "QLIF.int32_wrap", "QConv2d.out_wrap"):
        assert events.get(event, 0) > 0, f"the random networks never reached {event}"


NIR_MODELS = {"two_lif_neurons.nir": 1e-3, "lif_norse.nir": 1e-4, "lif_rockpool.nir": 1e-3, "cnn_sinabs.nir": 1e-3}


def test_compiled_nir_models_match_emulator(lava_ok, nir_paper, tmp_path):
    """The NIR paper models compiled for loihi2 (the real pipeline, artifact on disk) run in Lava
    exactly as in the emulator: outputs and every u/v trace."""
    simulate, reason = _emulator()
    if simulate is None:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    from neurocc.compiler.frontends.nir import read_nir
    from neurocc.compiler.pipeline import compile_model
    from neurocc.ir.artifact import load_artifact

    rng = np.random.default_rng(7)
    jobs = []
    for name, dt in NIR_MODELS.items():
        out = compile_model(read_nir(nir_paper / name), "loihi2", tmp_path / name, dt=dt)
        g = load_artifact(out).graph
        x = {n: (rng.random((12, 1, *g.nodes[n].shape)) < 0.3).astype(np.int32) for n in g.inputs}
        jobs.append(LavaJob(g, x, None, record=True))
    compared = 0
    for job, lava in zip(jobs, run_lava_many(jobs)):
        res = simulate(job.graph, job.inputs, record=True)
        emu = {**res.outputs, **res.traces}
        for key, got in lava.items():
            compared += got.size
            assert np.array_equal(np.asarray(emu[key]), got), f"{job.graph.name} {key} differs"
    print(f"compiled NIR models: {len(jobs)} networks, {compared} elements identical in Lava and the emulator")
