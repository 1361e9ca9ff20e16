#!/usr/bin/env python3
"""A PyNN network emitted by neurocc: runs unchanged on pyNN.spiNNaker, pyNN.nest and pyNN.brian2.

This file is copied verbatim into the artifact next to ``network.json`` and ``network.npz``
(the populations, parameters and connection lists). It needs numpy and PyNN only::

    python pynn_network.py --simulator spiNNaker --input X.npz --output Y.npz [--steps N]

``X.npz`` holds one array of 0/1 spikes per graph input, time-major ``(steps, batch, *shape)``;
``Y.npz`` gets one array per graph output in the same layout, on the SpiNNaker timeline (the
one ``neurocc run --backend emulator`` uses): step ``t`` of an input is a spike at
``(t + t0)·dt``; a population spike at tick ``τ`` is step ``τ − t0``. Batch items are
independent copies of the network inside one run (``--max-batch N``: in parts of N items, each
in a fresh simulator session; same results).
``--serve FD`` keeps one process for many runs (one JSON list of these arguments per stdin line,
the exit status answered on file descriptor FD): neurocc's Ray workers use it (:func:`serve`).

Per simulator (measured, docs/backends/spinnaker.md):
* spiNNaker: each population gets ``max_expected_summed_weight`` (so neurocc knows the ring-buffer
  shifts) and neurocc's neurons per core; the ``spinnaker`` parameter overrides apply.
* nest and brian2 integrate exactly: incoming weights are multiplied by ``float/<post>/psc_scale``
  so that a spike's response equals SpiNNaker's per-tick one.
* nest: ``spike_precision="on_grid"``; every projection arrives one step later than on SpiNNaker
  (NEST adds an arriving spike to the current after the step's V update), which the read-back
  removes (``extra_lags``).
* brian2: numpy code generation, ``defaultclock.dt = dt``; ``tau_refrac + dt`` (its refractory
  period is one step shorter); same latency as nest.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

SIMULATORS = ("spiNNaker", "nest", "brian2")
V_SHIFT = {"spiNNaker": 1, "nest": 0, "brian2": 1}   # sample index of V after tick τ is τ + shift
START_SHIFT = {"spiNNaker": 0, "nest": -2, "brian2": 0}
# ^ a set() after run(T·dt) first acts on the tick stamped T + 2 on nest (its spikes carry the end
#   of their update step, and PyNN's set() takes effect one step after the run ends: measured with
#   one neuron), T on brian2 (measured) and on sPyNNaker (its tick T starts the next run: assumed)
DRIVE = ("i_offset", "v_rest")   # held at 0 until the population's first tick (start_ticks)


def load_network(directory):
    """(meta, arrays) of network.json / network.npz in ``directory``."""
    d = Path(directory)
    meta = json.loads((d / "network.json").read_text())
    with np.load(d / "network.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def import_simulator(name):
    if name == "spiNNaker":
        import pyNN.spiNNaker as sim
    elif name == "nest":
        import pyNN.nest as sim
    elif name == "brian2":
        import brian2
        brian2.prefs.codegen.target = os.environ.get("NEUROCC_BRIAN2_TARGET", "numpy")
        import pyNN.brian2 as sim
    else:
        raise SystemExit(f"unknown simulator {name!r}; use one of {SIMULATORS}")
    return sim


def setup(sim, name, dt_ms, **extra):
    if name == "nest":
        sim.setup(timestep=dt_ms, min_delay=dt_ms, spike_precision="on_grid", **extra)
    else:
        sim.setup(timestep=dt_ms, min_delay=dt_ms, **extra)
    if name == "brian2":
        import brian2
        brian2.defaultclock.dt = dt_ms * brian2.ms


def _params(meta_pop, arrays, name, batch):
    p = {k[len(f"pop/{meta_pop['name']}/"):]: v for k, v in arrays.items() if k.startswith(f"pop/{meta_pop['name']}/")}
    if name == "spiNNaker":
        pre = f"spinnaker/{meta_pop['name']}/"
        p.update({k[len(pre):]: v for k, v in arrays.items() if k.startswith(pre)})
    return {k: np.tile(np.asarray(v, np.float64), batch) for k, v in p.items()}


def spike_times(x, t0, dt_ms):
    """Per neuron (batch-major: b·n + i) the spike times in ms of a (steps, batch, *shape) array."""
    x = np.asarray(x).reshape(x.shape[0], x.shape[1], -1)
    _, batch, n = x.shape
    out = []
    for b in range(batch):
        for i in range(n):
            out.append((np.flatnonzero(x[:, b, i]) + t0) * dt_ms)
    return out


def build(sim, name, meta, arrays, inputs, batch):
    """Populations and projections (dicts by name); ``inputs`` maps input names to spike arrays."""
    from pyNN.parameters import Sequence

    dt, t0 = meta["dt_ms"], meta["t0"]
    pops, projs = {}, {}
    for mp in meta["populations"]:
        n = int(np.prod(mp["shape"])) * batch
        if mp["kind"] == "source":
            times = spike_times(inputs[mp["name"]], t0, dt)
            # sPyNNaker wants plain lists of ms; pyNN.nest/brian2 want Sequence objects
            times = [[float(v) for v in t] for t in times] if name == "spiNNaker" else [Sequence(t) for t in times]
            if name == "brian2" and n == 1:
                times.append(Sequence([]))  # pyNN.brian2 cannot build a 1-neuron SpikeSourceArray
            pops[mp["name"]] = sim.Population(len(times), sim.SpikeSourceArray(spike_times=times), label=mp["name"])
            continue
        p = _params(mp, arrays, name, batch)
        if name == "brian2":
            p["tau_refrac"] = np.where(p["tau_refrac"] > 0, p["tau_refrac"] + dt, 0.0)
        kw = {"label": mp["name"]}
        if name == "spiNNaker":
            kw["additional_parameters"] = {"max_expected_summed_weight": list(mp["max_summed_weight"])}
        p.update({k: np.zeros_like(p[k]) for k in DRIVE})   # idle until its start tick (gated_run)
        pop = sim.Population(n, sim.IF_curr_exp(**p), **kw)
        if name == "spiNNaker":
            pop.set_max_atoms_per_core(int(mp["max_atoms_per_core"]))
        pop.initialize(v=0.0)
        pop.record(["spikes"] if mp["spiking"] else ["spikes", "v"])
        pops[mp["name"]] = pop
    for mj in meta["projections"]:
        pre, post = (int(np.prod(_pop(meta, k)["shape"])) for k in (mj["pre"], mj["post"]))
        i, j = arrays[f"proj/{mj['name']}/pre"], arrays[f"proj/{mj['name']}/post"]
        w = arrays[f"proj/{mj['name']}/weight"]
        scale = arrays.get(f"float/{mj['post']}/psc_scale")
        if name != "spiNNaker" and scale is not None:
            w = w * scale[j]
        rows = np.concatenate([np.column_stack([i + b * pre, j + b * post, w, np.full(w.shape, mj["delay"] * dt)])
                               for b in range(batch)])
        projs[mj["name"]] = sim.Projection(pops[mj["pre"]], pops[mj["post"]], sim.FromListConnector(rows),
                                           receptor_type=mj["receptor"], label=mj["name"])
    return pops, projs


def _pop(meta, name):
    return next(p for p in meta["populations"] if p["name"] == name)


def extra_lags(meta, name):
    """Steps by which each population trails SpiNNaker on ``name`` (0 on spiNNaker; nest and
    brian2: +1 per feed-forward projection: a spike lands in the current after that tick's V update)."""
    lag = {p["name"]: 0 for p in meta["populations"]}
    if name == "spiNNaker":
        return lag
    for _ in range(len(lag) + 1):
        for p in meta["populations"]:
            inc = [j for j in meta["projections"] if j["post"] == p["name"]]
            ff = [j for j in inc if j["ir_delay"] == 0] or inc
            if ff:
                lag[p["name"]] = max(lag[j["pre"]] + 1 for j in ff)
    return lag


def start_ticks(meta, name):
    """Simulator tick of each neuron population's step 0: ``t0 + lag + extra_lags``. Before it the
    population gets no ``i_offset`` and ``v_rest`` 0 (it rests at V = 0, the IR's initial state),
    so a bias is integrated from the step its first input arrives, as in the IR, not ``lag`` ticks
    earlier (which made every biased neuron fire at once on its first step)."""
    extra = extra_lags(meta, name)
    return {p["name"]: meta["t0"] + p["lag"] + extra[p["name"]] for p in meta["populations"] if p["kind"] != "source"}


def gated_run(sim, pops, meta, arrays, name, batch, total_ticks):
    """``sim.run`` in segments, switching each population's drive (``DRIVE``) on at its start tick."""
    starts = start_ticks(meta, name)
    done = 0
    for tick in sorted(set(starts.values())):
        at = min(max(tick + START_SHIFT[name], 0), total_ticks)
        if at > done:
            sim.run((at - done) * meta["dt_ms"])
            done = at
        for pop_name, start in starts.items():
            if start == tick:
                params = _params(_pop(meta, pop_name), arrays, name, batch)
                drive = {k: params[k] for k in DRIVE}
                if any(np.any(v != 0) for v in drive.values()):
                    pops[pop_name].set(**drive)
    if total_ticks > done:
        sim.run((total_ticks - done) * meta["dt_ms"])


def run_steps(meta, name, steps):
    """Simulated ticks: input steps + t0 + the largest lag (SpiNNaker's plus the simulator's) + 1."""
    extra = extra_lags(meta, name)
    return steps + meta["t0"] + max((p["lag"] + extra[p["name"]] for p in meta["populations"]), default=0) + 2


def collect(pops, meta, name, steps, batch, aligned=True, trains=False):
    """Per neuron population: ``spikes`` (steps, batch, *shape) uint8 (and ``v`` in IR units for
    non-spiking ones) on the SpiNNaker timeline (``aligned``) or the simulator's own ticks; spikes
    from PyNN's spike arrays on NEST, from neo SpikeTrains elsewhere or with ``trains``."""
    dt, t0 = meta["dt_ms"], meta["t0"]
    extra = extra_lags(meta, name)
    out = {}
    for mp in meta["populations"]:
        if mp["kind"] == "source":
            continue
        n = int(np.prod(mp["shape"]))
        shift = t0 + (extra[mp["name"]] if aligned else 0)
        seg = pops[mp["name"]].get_data().segments[0]
        z = np.zeros((steps, batch * n), np.uint8)
        idx, times = spike_events(pops[mp["name"]], seg, name == "nest" and not trains)
        ticks = np.rint(times / dt).astype(np.int64) - shift
        ok = (ticks >= 0) & (ticks < steps) & (idx < batch * n)
        z[ticks[ok], idx[ok]] = 1
        out[f"{mp['name']}/spikes"] = z.reshape(steps, batch, *mp["shape"])
        if not mp["spiking"]:
            sig = seg.filter(name="v")
            v = np.zeros((steps, batch * n))
            if sig:
                a = np.asarray(sig[0].magnitude, np.float64)
                ch = np.asarray(sig[0].array_annotations.get("channel_index", np.arange(a.shape[1])))
                start = shift + V_SHIFT[name]
                seg_v = a[start:start + steps]
                v[:len(seg_v), ch] = seg_v
            out[f"{mp['name']}/v"] = (v / mp["v_scale"]).reshape(steps, batch, *mp["shape"])
    return out


def spike_events(pop, seg, multiplexed):
    """(neuron index, time in ms) of every spike in ``seg``: with ``multiplexed`` from the arrays
    pyNN.nest fills the SpikeTrainList with (``.multiplexed``: no neo SpikeTrain object per neuron),
    else per SpikeTrain (its ``source_index``)."""
    if multiplexed:
        ids, times = seg.spiketrains.multiplexed
        ids = np.asarray(ids, np.int64)
        idx = pop.id_to_index(ids) if ids.size else ids
        return np.asarray(idx, np.int64), np.asarray(getattr(times, "magnitude", times), np.float64)
    idx, times = [], []
    for st in seg.spiketrains:
        idx.append(np.full(len(st), int(st.annotations.get("source_index", 0)), np.int64))
        times.append(np.asarray(st.magnitude, np.float64))
    return (np.concatenate(idx), np.concatenate(times)) if idx else (np.zeros(0, np.int64), np.zeros(0))


def outputs(meta, collected):
    """Y arrays keyed by graph output name (spikes, or the membrane of a non-spiking readout)."""
    y = {}
    for o, spec in meta["outputs"].items():
        key = f"{spec['population']}/{'spikes' if spec['values'] == 'spikes' else 'v'}"
        if key in collected:
            y[o] = collected[key]
    return y


def run(directory, name, inputs, steps=None, setup_kwargs=None, max_batch=None):
    """Build, run and read back; returns ``collected`` plus the graph outputs. With ``max_batch``
    the batch runs in parts of that many items, each in a fresh simulator session (``sim.setup``
    … ``sim.end``; the items are independent copies of the network): the same results with less
    memory (no faster on pyNN.nest: 123 vs 122 ms per digit, docs/backends/spinnaker.md)."""
    meta, arrays = load_network(directory)
    first = next(iter(inputs.values()))
    steps = int(steps or first.shape[0])
    batch = int(first.shape[1])
    sim = import_simulator(name)
    size = int(max_batch or batch)
    parts = []
    for a in range(0, batch, size):
        part = {k: v[:, a:a + size] for k, v in inputs.items()}
        parts.append(run_part(sim, name, meta, arrays, part, steps, setup_kwargs))
    got = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    got.update(outputs(meta, got))
    return got


def run_part(sim, name, meta, arrays, inputs, steps, setup_kwargs=None):
    """One simulator session (``setup`` … ``end``) for ``inputs``' batch items: ``collected``."""
    batch = int(next(iter(inputs.values())).shape[1])
    longest = max((int(j["delay"]) for j in meta["projections"]), default=1)
    extra = {"max_delay": max(longest, 10) * meta["dt_ms"]} if name == "nest" else {}
    setup(sim, name, meta["dt_ms"], **{**extra, **(setup_kwargs or {})})
    pops, _ = build(sim, name, meta, arrays, inputs, batch)
    gated_run(sim, pops, meta, arrays, name, batch, run_steps(meta, name, steps))
    got = collect(pops, meta, name, steps, batch)
    sim.end()
    return got


def parser():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulator", default="spiNNaker", choices=SIMULATORS)
    ap.add_argument("--input", required=True, help="X.npz: one (steps, batch, *shape) 0/1 array per input")
    ap.add_argument("--output", default="Y.npz")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--network", default=str(Path(__file__).resolve().parent), help="folder of network.json/.npz")
    ap.add_argument("--max-batch", type=int, default=None,
                    help="batch items per simulator session (default, or 0: all at once)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    with np.load(args.input, allow_pickle=False) as z:
        inputs = {k: z[k] for k in z.files}
    got = run(args.network, args.simulator, inputs, args.steps, max_batch=args.max_batch)
    np.savez(args.output, **got)
    print(f"wrote {args.output}: " + ", ".join(f"{k} {v.shape}" for k, v in got.items()))
    return 0


def serve(reply_fd):
    """Session mode (``--serve FD``; neurocc keeps one such process per Ray worker): import the
    simulator once, then run one job per line on stdin (a JSON list of this script's arguments)
    as :func:`main` would, its messages in ``<output>.log``, and answer ``"<exit status>\\n"`` on
    the file descriptor ``FD``; end at the end of stdin. Jobs are independent: every simulator
    session starts with ``sim.setup`` (on NEST a kernel reset) and ends with ``sim.end``."""
    _die_with_parent()
    with os.fdopen(reply_fd, "w", buffering=1) as reply:
        for line in sys.stdin:
            argv = [str(a) for a in json.loads(line)]
            output = argv[argv.index("--output") + 1] if "--output" in argv[:-1] else "Y.npz"
            reply.write(f"{_logged(output + '.log', main, argv)}\n")
    return 0


def _logged(log, fn, *args):
    """``fn(*args)``'s exit status, with file descriptors 1 and 2 (NEST prints from C++) in ``log``."""
    import traceback

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            rc = fn(*args)
        except SystemExit as err:     # argparse
            rc = err.code if isinstance(err.code, int) else 2
        except Exception:             # noqa: BLE001  (one bad job must not end the session)
            traceback.print_exc()
            rc = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    return rc


def _die_with_parent():
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a no-op."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve(int(sys.argv[2])))
    sys.exit(main())
