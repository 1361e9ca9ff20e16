"""The Lava worker: ``python -m neurocc.backends.loihi.worker JOB_DIR``.

This is the only place neurocc imports Lava (under :func:`.shim.import_lava`), because Lava's
runtime sets the interpreter-wide multiprocessing start method to ``fork``. The parent
(:mod:`neurocc.backends.loihi`) writes ``JOB_DIR``::

    manifest.json        {"format": "neurocc-lava-job/1", "runs": [{"id", "net", "procs", "steps", "data"}]}
    <net>.json/.npz      lowered networks (:func:`.plan.save_net`)
    <run>_in.npz         int32 RingBuffer data per source process, (*lava_shape, steps)

For every run the worker builds the named processes of the net (one connected part), runs them
``steps`` steps with ``Loihi2SimCfg(select_tag='fixed_pt')`` (the bit-accurate models), and
writes ``<run>_out.npz`` holding ``"<proc>/<var>"`` → int32 array ``(steps, *lava_shape)``, then
``<run>_status.json`` (``{"ok": true, "seconds": ...}`` or ``{"ok": false, "error": ...}``).
Networks are loaded once and Lava is imported once for all runs, which amortises the start-up.
The runs of one net's same processes and steps (the batch elements of a call) run back to back in
one Lava runtime (:func:`run_series`: one compile and one set of processes per batch instead of
per sample, the state Vars set back to their initial values between samples), each still with its
own output and status files; where :func:`.lanes.lanes_ok`, k of them side by side in one
widened network (:mod:`.lanes`), the groups of k back to back. Probes record with neurocc's
recorders (:mod:`.lava_recorders`: one file per recording instead of one Lava message per value).

A run with ``"kind": "netx"`` instead loads a lava-dl netx HDF5 file (``"file"``) with
``lava.lib.dl.netx.hdf5.Network`` (imported without torch: :func:`.shim.import_netx`), feeds the
RingBuffer data (key ``"input"``) to block 0's ``neuron.a_in`` or ``synapse.s_in`` (``"feed"``),
probes ``[block, var]`` pairs on the blocks' neurons (``"probes"``; leaf ports: a sink on
``neuron.s_out``, a Monitor on ``neuron.u``/``neuron.v``), runs with
``Loihi2SimCfg(select_tag='fixed_pt', select_sub_proc_model=True)`` and writes
``"<block>/<var>"`` arrays the same way.
With ``--serve FD`` the worker stays up for many job directories (one per stdin line; see
:func:`serve`): a Ray worker keeps one for all its batches (:func:`.runner.keep_worker`).
Exit status: 0 when every run succeeded, 1 otherwise, 2 on a bad job directory, 3 (``LAVA_MISSING``)
when Lava cannot be imported.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from neurocc.backends.loihi.lanes import lane_count, split, stack, widen
from neurocc.backends.loihi.plan import (
    JOB_FORMAT,
    LAVA_MISSING,
    LavaNet,
    LProc,
    load_net,
)
from neurocc.backends.loihi.reuse import learn_models, model_map, restart, serial


def _make(L: SimpleNamespace, p: LProc, data: dict[str, np.ndarray], period: int = 0) -> Any:
    """Construct the Lava process for ``p`` (see :mod:`.lower` for the mapping); ``period``: the
    steps per sample when several samples run one after another (:func:`run_series`)."""
    q, a = dict(p.params), p.arrays
    if p.kind == "source":
        return L.Source(data=data[p.name].astype(np.int32))
    if p.kind == "dense":
        return L.Dense(weights=a["weights"], weight_exp=q["weight_exp"], num_weight_bits=q["num_weight_bits"],
                       num_message_bits=q["num_message_bits"], name=p.name)
    if p.kind == "sparse":
        from scipy.sparse import csr_matrix

        return L.Sparse(weights=csr_matrix(a["weights"]), weight_exp=q["weight_exp"],
                        num_weight_bits=q["num_weight_bits"], num_message_bits=q["num_message_bits"], name=p.name)
    if p.kind == "delay_dense":
        return L.DelayDense(weights=a["weights"], delays=int(q["delays"]), weight_exp=q["weight_exp"],
                            num_weight_bits=q["num_weight_bits"], num_message_bits=q["num_message_bits"],
                            name=p.name)
    if p.kind == "learning_dense":
        from neurocc.backends.loihi.plastic import make_learning_dense

        return make_learning_dense(L, p)
    if p.kind == "conv":
        return L.Conv(weight=a["weight"], input_shape=tuple(q["input_shape"]), stride=tuple(q["stride"]),
                      padding=tuple(q["padding"]), dilation=tuple(q["dilation"]), groups=q["groups"],
                      num_message_bits=q["num_message_bits"], name=p.name)
    if p.kind == "lif":
        per = {k: (a[k] if k in a else q[k]) for k in ("du", "dv", "vth")}
        if q.get("learning"):   # the post neuron of a three-factor synapse: sends its traces (lava_learning)
            return L.NeuroccLearningLIF(shape=tuple(p.shape), bias_mant=a["bias_mant"], bias_exp=a["bias_exp"],
                                        name=p.name, semantics=q.get("semantics", {}), bias_u=a.get("bias_u"),
                                        **q["learning"], **per)
        if q.get("semantics"):  # soft reset, snnTorch's timings, v >= vth: neurocc's Lava process model
            return L.NeuroccLIF(shape=tuple(p.shape), bias_mant=a["bias_mant"], bias_exp=a["bias_exp"], name=p.name,
                                semantics={**q["semantics"], "period": int(period)}, bias_u=a.get("bias_u"), **per)
        if q.get("reset_interval"):   # netx's periodic reset: Lava's LIFReset (t mod T == offset mod T)
            return L.LIFReset(shape=tuple(p.shape), bias_mant=a["bias_mant"], bias_exp=a["bias_exp"], name=p.name,
                              reset_interval=q["reset_interval"], reset_offset=q["reset_offset"], **per)
        return L.LIF(shape=tuple(p.shape), bias_mant=a["bias_mant"], bias_exp=a["bias_exp"], name=p.name, **per)
    raise ValueError(f"unknown process kind {p.kind!r} for {p.name!r}")


def _port(obj: Any, port: str, ops: tuple) -> Any:
    out = getattr(obj, port)
    for op, arg in ops:
        out = out.transpose(list(arg)) if op == "transpose" else out.reshape(tuple(arg))
    return out


def build(L: SimpleNamespace, net: LavaNet, names: list[str], data: dict[str, np.ndarray], steps: int,
          folder: Path, period: int = 0) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Create the processes ``names`` of ``net``, connect them, attach a recorder per probe
    (:mod:`.lava_recorders`) recording ``steps`` steps into ``folder/<i>.npy``; return (processes
    by name, recorder by (proc, var))."""
    wanted = set(names)
    objs = {p.name: _make(L, p, data, period) for p in net.procs if p.name in wanted}
    for c in net.conns:
        if c.src in wanted:
            _port(objs[c.src], c.src_port, c.ops).connect(getattr(objs[c.dst], c.dst_port))
    recorders: dict[tuple[str, str], Any] = {}
    for i, pr in enumerate(pr for pr in net.probes if pr.proc in wanted):
        target, path = objs[pr.proc], str(folder / f"{i}.npy")
        if pr.var == "s":
            rec = L.NeuroccSpikes(shape=tuple(net.proc(pr.proc).shape), buffer=steps, path=path)
            target.s_out.connect(rec.a_in)
        else:
            rec = L.NeuroccProbe(shape=tuple(net.proc(pr.proc).shape), buffer=steps, path=path)
            rec.connect_var(getattr(target, pr.var))
        recorders[(pr.proc, pr.var)] = rec
    return objs, recorders


def recordings(recorders: dict[tuple[str, str], Any]) -> dict[str, np.ndarray]:
    """``"<proc>/<var>"`` → the int32 recording (time first) each recorder of :func:`build` wrote."""
    return {f"{proc}/{var}": np.load(rec.proc_params["path"], allow_pickle=False).astype(np.int32)
            for (proc, var), rec in recorders.items()}


def run_series(L: SimpleNamespace, net: LavaNet, names: list[str], datas: list[dict[str, np.ndarray]], steps: int
               ) -> list[dict[str, np.ndarray]]:
    """Run each sample of ``datas`` for ``steps`` steps in fixed_pt and return each sample's
    probes (time first): k samples side by side in lanes (:mod:`.lanes`) where
    :func:`.lanes.lane_count` gives k > 1, groups of lanes (or single samples) back to back in one
    runtime (:func:`_series`)."""
    k = lane_count(net, names, len(datas))
    if k > 1:
        return split(net, _series(L, widen(net, names, k), names, stack(datas, k), steps), k, len(datas))
    return _series(L, net, names, datas, steps)


def _series(L: SimpleNamespace, net: LavaNet, names: list[str], datas: list[dict[str, np.ndarray]], steps: int
            ) -> list[dict[str, np.ndarray]]:
    """Run each sample of ``datas`` for ``steps`` steps in fixed_pt, one after another in ONE Lava
    runtime (one compile, one set of processes: a fresh runtime costs 1-2x a digit's 67 steps), and
    return each sample's probes (time first).

    The samples are independent, as in separate runtimes: the sources hold the samples' data back
    to back, the recorders record all ``len(datas) * steps`` steps, and before each sample after
    the first every state Var (:data:`.reuse.STATE_VARS`: u, v, the synapses' one-step buffers) is set
    back to its initial value; neurocc's neurons count their ``bias_start`` from each sample's
    first step (``period``). Several samples need :func:`.reuse.serial` processes."""
    n = len(datas)
    data = {k: np.concatenate([d[k] for d in datas], axis=-1) for k in datas[0]}
    with tempfile.TemporaryDirectory(prefix="neurocc-rec-") as folder:
        objs, recorders = build(L, net, names, data, n * steps, Path(folder), period=steps if n > 1 else 0)
        procs = [*objs.values(), *recorders.values()]
        first = objs[names[0]]
        first.run(condition=L.RunSteps(num_steps=steps),
                  run_cfg=L.Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=model_map(L, procs)))
        learn_models(procs)
        try:
            for _ in range(1, n):
                restart(net, objs)
                first.run(condition=L.RunSteps(num_steps=steps))
            out = recordings(recorders)
            from neurocc.backends.loihi.plastic import read_weights

            weights = read_weights(net, objs)
        finally:
            first.stop()
    return [{**{k: v[i * steps:(i + 1) * steps] for k, v in out.items()}, **weights} for i in range(n)]


def run_one(L: SimpleNamespace, net: LavaNet, names: list[str], data: dict[str, np.ndarray], steps: int
            ) -> dict[str, np.ndarray]:
    """Build, run ``steps`` steps in fixed_pt, read every probe (time first), stop the runtime."""
    return run_series(L, net, names, [data], steps)[0]


def run_netx(L: SimpleNamespace, hdf5: Any, job: Path, run: dict, data: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Load ``run["file"]`` with netx, drive block 0, record the probes, run in fixed_pt."""
    steps = int(run["steps"])
    net = hdf5.Network(net_config=str(job / run["file"]), input_message_bits=int(run["input_message_bits"]),
                       num_layers=run.get("num_layers"), reset_interval=run.get("reset_interval"),
                       reset_offset=int(run.get("reset_offset") or 0))
    first = net.layers[0]
    src = L.Source(data=data["input"].astype(np.int32))
    src.s_out.connect(first.neuron.a_in if run["feed"] == "neuron" else first.synapse.s_in)
    recorders = {}
    for block, var in run["probes"]:
        neuron = net.layers[int(block)].neuron
        if var == "s":
            rec = L.Sink(shape=tuple(neuron.s_out.shape), buffer=steps)
            neuron.s_out.connect(rec.a_in)
        else:
            rec = L.Monitor()
            rec.probe(getattr(neuron, var), steps)
        recorders[(int(block), var)] = (rec, neuron)
    cfg = L.Loihi2SimCfg(select_tag="fixed_pt", select_sub_proc_model=True)
    net.run(condition=L.RunSteps(num_steps=steps), run_cfg=cfg)
    try:
        out = {}
        for (block, var), (rec, neuron) in recorders.items():
            if var == "s":
                arr = np.moveaxis(np.asarray(rec.data.get()), -1, 0)
            else:
                arr = np.asarray(rec.get_data()[neuron.name][var])
            out[f"{block}/{var}"] = np.rint(arr).astype(np.int32) if arr.dtype.kind == "f" else arr.astype(np.int32)
        return out
    finally:
        net.stop()


def _load(job: Path, run: dict) -> dict[str, np.ndarray]:
    with np.load(job / run["data"], allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _groups(job: Path, runs: list[dict], nets: dict[str, LavaNet]) -> list[list[dict]]:
    """The runs in groups that run back to back in one runtime (:func:`run_series`): the runs of
    one net's same processes and steps (the batch elements of a call) when :func:`serial`; every
    other run (netx, plastic, large) alone. Groups in the order of their first run."""
    groups: dict[Any, list[dict]] = {}
    for i, run in enumerate(runs):
        key: Any = i
        if run.get("kind") != "netx":
            net = nets.get(run["net"]) or nets.setdefault(run["net"], load_net(job, run["net"]))
            if serial(net, run["procs"]):
                key = (run["net"], tuple(run["procs"]), int(run["steps"]))
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def _group(L: SimpleNamespace, job: Path, group: list[dict], nets: dict[str, LavaNet], netx: list
           ) -> list[dict[str, np.ndarray]]:
    run = group[0]
    if run.get("kind") == "netx":
        if not netx:
            from neurocc.backends.loihi.shim import import_netx

            netx.append(import_netx())
        return [run_netx(L, netx[0], job, run, _load(job, run))]
    return run_series(L, nets[run["net"]], run["procs"], [_load(job, r) for r in group], int(run["steps"]))


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def run_job(L: SimpleNamespace, job: Path) -> int:
    """Every run of the job directory ``job``; 0 when all succeeded, 1 otherwise, 2 on a bad job."""
    manifest = json.loads((job / "manifest.json").read_text())
    if manifest.get("format") != JOB_FORMAT:
        print(f"{job}: not a {JOB_FORMAT} job (format {manifest.get('format')!r})", file=sys.stderr)
        return 2
    print(f"{len(manifest['runs'])} run(s)", flush=True)
    nets: dict[str, LavaNet] = {}
    netx: list = []
    failed = 0
    for group in _groups(job, manifest["runs"], nets):
        t = time.perf_counter()
        try:
            outs = _group(L, job, group, nets, netx)
            for run, out in zip(group, outs):
                np.savez(job / f"{run['id']}_out.npz", **out)
            status = {"ok": True, "seconds": (time.perf_counter() - t) / len(group)}
        except Exception:  # one failing run must not hide the others; the parent reports it
            failed += len(group)
            status = {"ok": False, "error": traceback.format_exc()}
            print(f"run {group[0]['id']} failed:\n{status['error']}", file=sys.stderr, flush=True)
        for run in group:
            _write_json(job / f"{run['id']}_status.json", status)
        ids = group[0]["id"] + (f" .. {group[-1]['id']} ({len(group)} back to back)" if len(group) > 1 else "")
        print(f"run {ids}: {'ok' if status['ok'] else 'FAILED'} in {time.perf_counter() - t:.2f} s", flush=True)
    return 1 if failed else 0


def _import() -> SimpleNamespace | None:
    from neurocc.backends.loihi.shim import import_lava
    from neurocc.errors import BackendError

    t0 = time.perf_counter()
    try:
        L = import_lava()
    except BackendError as err:
        print(str(err), file=sys.stderr, flush=True)
        return None
    print(f"lava imported in {time.perf_counter() - t0:.2f} s", flush=True)
    return L


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a no-op."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve(reply_fd: int) -> int:
    """Session mode (``--serve FD``): import Lava once, then run each job directory named by a line
    on stdin, its output going to that job's ``worker.log``, and answer ``"<status>\n"`` on the
    file descriptor ``FD``; end at the end of stdin (the parent closed it or died).

    The session and the processes Lava forks for each run die with their parent: a Ray worker
    that is killed (Ray then kills its children) leaves no Lava process behind."""
    _die_with_parent()
    os.register_at_fork(after_in_child=_die_with_parent)
    L = _import()
    if L is None:
        return LAVA_MISSING
    with os.fdopen(reply_fd, "w", buffering=1) as reply:
        for line in sys.stdin:
            job = Path(line.strip())
            sys.stdout.flush()
            sys.stderr.flush()
            saved = os.dup(1), os.dup(2)
            with open(job / "worker.log", "ab") as log:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                try:
                    rc = run_job(L, job)
                except Exception:   # noqa: BLE001  (a bad job directory must not end the session)
                    traceback.print_exc()
                    rc = 2
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
                    os.close(saved[0])
                    os.close(saved[1])
            reply.write(f"{rc}\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(int(argv[1]))
    if len(argv) != 1:
        print("usage: python -m neurocc.backends.loihi.worker JOB_DIR | --serve FD", file=sys.stderr)
        return 2
    job = Path(argv[0])
    manifest = json.loads((job / "manifest.json").read_text())
    if manifest.get("format") != JOB_FORMAT:
        print(f"{job}: not a {JOB_FORMAT} job (format {manifest.get('format')!r})", file=sys.stderr)
        return 2
    L = _import()
    if L is None:
        return LAVA_MISSING
    return run_job(L, job)


if __name__ == "__main__":  # the parent starts it with OPENBLAS_NUM_THREADS=1 in the environment
    sys.exit(main(sys.argv[1:]))
