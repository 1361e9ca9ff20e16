"""The interpreter: build one kernel per node, schedule, and run a graph over time.

Semantics (shared by every backend): at step t a node's input is the sum over its incoming
edges of the source's output of step ``t − delay`` (zero before the start); nodes run in
:meth:`Graph.order`. Execution is organised for speed without changing those semantics:

* the graph is split into strongly connected components (over all edges) and processed in
  topological order of the components;
* a node outside any cycle is evaluated over a whole window of steps at once (stateless ops
  as one big matrix product over time × batch rows; neurons in a tight loop over the window);
* the nodes of a recurrent component run step by step, in the zero-delay order;
* long runs are cut into windows that fit a memory budget; each node keeps the last
  ``max(outgoing delay)`` steps of its output as history for the next window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurocc.backends.emulator import kernels as K
from neurocc.backends.emulator.neurons import FloatNeuron, IntNeuron
from neurocc.backends.emulator.plastic import QPlastic, post_neuron
from neurocc.backends.emulator.sigma_delta import SigmaDelta
from neurocc.errors import BackendError, InputError, NeuroccError
from neurocc.ir.graph import Graph

F64 = np.dtype(np.float64)
WINDOW_BYTES = 1 << 28  # budget for one window's node outputs (256 MiB)

_FLOAT = {"Input": K.Identity, "Output": K.Identity, "Add": K.Identity, "Flatten": K.Flatten, "Scale": K.Scale,
          "ReLU": K.ReLU, "Threshold": K.Threshold, "Affine": K.Dense, "Linear": K.Dense, "Conv1d": K.Conv,
          "Conv2d": K.Conv, "SumPool2d": K.Pool, "AvgPool2d": K.Pool, "MaxPool2d": K.Pool, "Delay": K.Delay,
          "I": FloatNeuron, "IF": FloatNeuron, "LI": FloatNeuron, "LIF": FloatNeuron, "CubaLI": FloatNeuron,
          "CubaLIF": FloatNeuron, "PlasticDense": QPlastic}
_INT = {"Input": K.Identity, "Output": K.Identity, "Add": K.Identity, "Flatten": K.Flatten, "Delay": K.Delay,
        "QDense": K.QDense, "QConv2d": K.QConv, "QSumPool2d": K.Pool, "QLIF": IntNeuron, "QLI": IntNeuron,
        "QSigmaDelta": SigmaDelta, "QPlasticDense": QPlastic}


def _make_kernel(graph: Graph, name: str, shapes: dict, profile, accel: str | None = None,
                 device: str | None = None, fdt: np.dtype = F64) -> K.Kernel:
    node = graph.nodes[name]
    preds = graph.predecessors(name)
    in_shape = shapes[preds[0]] if preds else shapes[name]
    integer = profile is not None
    table = _INT if integer else _FLOAT
    if profile is not None and profile.name == "spinnaker":
        from neurocc.backends.emulator.spinnaker import SPINNAKER_KERNELS
        table = {**_INT, **SPINNAKER_KERNELS}
    cls = table[node.kind]
    if device:   # the batched torch path (torch_path.py), else the compiled one (accel.py)
        from neurocc.backends.emulator.torch_path import kernel_class as torch_class
        cls = torch_class(cls, node, profile, device, numba=accel is not None, fdt=fdt)
    elif accel:
        from neurocc.backends.emulator.accel import kernel_class
        cls = kernel_class(cls, node, profile)
    kw: dict = {}
    if issubclass(cls, (K.QDense, K.QConv, K.Pool, IntNeuron)) or getattr(cls, "needs_profile", False):
        kw["profile"] = profile
    if issubclass(cls, (FloatNeuron, K.Delay)):
        kw["dt"] = graph.dt
    if issubclass(cls, FloatNeuron):
        kw["method"] = graph.method
    k = cls(name, node, in_shape, shapes[name], integer, **kw)
    if node.kind == "Input":
        k.out_dtype = np.int64 if integer else fdt.type
    if hasattr(k, "force"):
        k.force = accel == "numba" or device is not None
    return k


def _sccs(graph: Graph) -> list[list[str]]:
    """Strongly connected components in topological order (Tarjan; iterative)."""
    names = list(graph.nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on, stack, comps = set(), [], []
    counter = 0
    for root in names:
        if root in index:
            continue
        work = [(root, iter(graph.successors(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.successors(w))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    comps.append(comp)
    return comps[::-1]


@dataclass
class Block:
    nodes: list[str]   # in zero-delay step order
    cyclic: bool


class Program:
    """A graph prepared for execution: kernels, blocks, histories. Reusable across runs.
    ``kernels``: ``auto`` | ``numba`` | ``numpy`` (see :mod:`.accel`); ``float_dtype`` (float
    graphs, batched path only): ``float64`` (the specification) or ``float32`` (see
    :mod:`.floatpath`; integer graphs ignore it: they are exact integers); ``device``: None (numpy
    and numba) or ``cpu`` / ``cuda`` (the torch path, :mod:`.torch_path`); ``compiled`` lists
    the nodes that run a compiled or torch kernel."""

    def __init__(self, graph: Graph, profile, kernels: str = "auto", device: str | None = None,
                 float_dtype: str | None = None) -> None:
        from neurocc.backends.emulator.accel import use_compiled
        from neurocc.backends.emulator.floatpath import check_float_dtype

        self.graph = graph
        self.shapes = graph.shapes()
        accel = kernels if use_compiled(kernels) else None
        if device is not None:
            from neurocc.backends.emulator.torch_path import check_device
            device = check_device(device)
        fdt = check_float_dtype(float_dtype)
        if fdt != np.float64 and device is None and profile is None:
            raise InputError(f"float_dtype {float_dtype!r} runs on the batched path only", where="--float-dtype",
                               fix="add --device cpu (or cuda; device='cpu' in Python), or leave --float-dtype out "
                                   "for the float64 specification")
        self.float_dtype = fdt.name if profile is None else None
        self.kernels = {n: _make_kernel(graph, n, self.shapes, profile, accel, device, fdt) for n in graph.nodes}
        self.compiled = sorted(n for n, k in self.kernels.items()
                               if type(k).__module__.endswith((".accel", ".torch_path", ".floatpath")))
        order = {n: i for i, n in enumerate(graph.order())}
        self.blocks = []
        self.plastic = {n: post_neuron(graph, n) for n, k in self.kernels.items() if isinstance(k, QPlastic)}
        if self.plastic:   # learning couples a synapse to its post neurons' spikes of the same step
            self.blocks.append(Block(sorted(graph.nodes, key=order.__getitem__), True))
        for comp in ([] if self.plastic else _sccs(graph)):
            cyclic = len(comp) > 1 or any(e.src == e.dst for e in graph.in_edges(comp[0]))
            self.blocks.append(Block(sorted(comp, key=order.__getitem__), cyclic))
        self.hist_len = {n: max((e.delay for e in graph.out_edges(n)), default=0) for n in graph.nodes}
        self._propagate_dtypes()

    def _propagate_dtypes(self) -> None:
        """Pass-through kinds (Output, Add, Flatten, Delay) keep their input's dtype; a sum of
        several integer inputs is int64 (so it cannot overflow)."""
        ks = self.kernels
        for _ in range(2):
            for n in self.graph.order():
                if type(ks[n]) in (K.Identity, K.Flatten, K.Delay) and self.graph.in_edges(n):
                    srcs = [ks[e.src].out_dtype for e in self.graph.in_edges(n)]
                    if len(srcs) > 1:
                        fl = [d for d in srcs if np.dtype(d).kind == "f"]
                        ks[n].out_dtype = np.result_type(*fl).type if fl else np.int64
                    else:
                        ks[n].out_dtype = srcs[0]

    def window_steps(self, steps: int, batch: int) -> int:
        per_step = sum(batch * int(np.prod(self.shapes[n])) * 8 for n in self.graph.nodes)
        return max(1, min(steps, WINDOW_BYTES // max(per_step, 1)))

    def run(self, inputs: dict[str, np.ndarray], steps: int, batch: int, record: bool):
        g, ks = self.graph, self.kernels
        for k in ks.values():
            k.reset(batch)
            k.events = {}
        hist = {n: np.zeros((self.hist_len[n], batch, *self.shapes[n]), ks[n].out_dtype) for n in g.nodes}
        outputs = {n: None for n in g.outputs}
        traces: dict[str, np.ndarray] = {}
        W = self.window_steps(steps, batch)
        for t0 in range(0, steps, W):
            tc = min(W, steps - t0)
            full = self._run_window(inputs, t0, tc, batch, hist, traces if record else None, steps)
            for n in g.nodes:
                D = self.hist_len[n]
                if D:
                    hist[n] = full[n][-D:].copy() if full[n].shape[0] >= D else full[n]
            for n in g.outputs:
                arr = full[n][self.hist_len[n]:]
                if outputs[n] is None:
                    outputs[n] = np.empty((steps, *arr.shape[1:]), arr.dtype)
                outputs[n][t0:t0 + tc] = arr
        events = {n: dict(k.events) for n, k in ks.items() if k.events}
        return outputs, traces, events

    # ----- one window -----------------------------------------------------------------------
    def _input(self, n: str, full: dict, t: int | None, tc: int) -> np.ndarray:
        """Sum of ``n``'s incoming edges for local step t (or the whole window when t is None)."""
        acc = None
        for e in self.graph.in_edges(n):
            D = self.hist_len[e.src]
            src = full[e.src]
            part = src[D - e.delay + t] if t is not None else src[D - e.delay:D - e.delay + tc]
            if acc is None:
                acc = part
            elif acc.dtype.kind == "f" or part.dtype.kind == "f":
                acc = acc + part
            else:
                acc = acc.astype(np.int64) + part
        return acc

    def _run_window(self, inputs, t0, tc, batch, hist, traces, steps) -> dict[str, np.ndarray]:
        ks = self.kernels
        full: dict[str, np.ndarray] = {}
        for blk in self.blocks:
            if not blk.cyclic:
                n = blk.nodes[0]
                rec = self._rec(n, traces, t0, tc, steps, batch)
                x = inputs[n][t0:t0 + tc] if n in inputs else self._input(n, full, None, tc)
                full[n] = self._own(n, self._call(n, "window", t0, x, rec), hist[n], tc, batch)
                if traces is not None:
                    traces[f"{n}/out"][t0:t0 + tc] = full[n][self.hist_len[n]:]
                continue
            for n in blk.nodes:
                D = self.hist_len[n]
                full[n] = np.empty((D + tc, batch, *self.shapes[n]), ks[n].out_dtype)
                full[n][:D] = hist[n]
            for t in range(tc):
                for n in blk.nodes:
                    x = inputs[n][t0 + t] if n in inputs else self._input(n, full, t, tc)
                    y = self._call(n, "step", t0 + t, x, None)
                    full[n][self.hist_len[n] + t] = y
                    if traces is not None:
                        self._rec(n, traces, t0, tc, steps, batch)
                        traces[f"{n}/out"][t0 + t] = y
                        for var in ks[n].record_vars:
                            traces[f"{n}/{var}"][t0 + t] = ks[n].state[var]
                for n, post in self.plastic.items():
                    rw = ks[n].node.reward      # three-factor: the reward Input's value this step
                    ks[n].learn(full[post][self.hist_len[post] + t], full[rw][self.hist_len[rw] + t] if rw else None)
        return full

    def learned_weights(self) -> dict[str, np.ndarray]:
        """``{"<node>/w": (batch, post, pre)}``: every plastic synapse's weights after the last run."""
        return {f"{n}/w": self.kernels[n].W.copy() for n in self.plastic}

    def _own(self, n: str, y: np.ndarray, hist: np.ndarray, tc: int, batch: int) -> np.ndarray:
        """Node ``n``'s output over the window behind its ``hist`` (history steps), in its
        dtype. Without history the kernel's array is used as it is, no copy (nothing writes
        into ``full`` arrays after this; a pass-through node may share its input's array)."""
        D, dt = self.hist_len[n], self.kernels[n].out_dtype
        shape = (tc, batch, *self.shapes[n])
        if D == 0 and y.shape == shape:
            return y if y.dtype == dt else y.astype(dt)
        out = np.empty((D + tc, *shape[1:]), dt)
        out[:D] = hist
        out[D:] = y
        return out

    def _rec(self, n, traces, t0, tc, steps, batch):
        if traces is None:
            return None
        k = self.kernels[n]
        key = f"{n}/out"
        if key not in traces:
            traces[key] = np.zeros((steps, batch, *self.shapes[n]), k.out_dtype)
            for var in k.record_vars:
                st = k.state[var]
                traces[f"{n}/{var}"] = np.zeros((steps, *st.shape), np.int64 if k.integer else st.dtype)
        return {var: traces[f"{n}/{var}"][t0:t0 + tc] for var in k.record_vars}

    def _call(self, n: str, how: str, t: int, x, rec):
        k = self.kernels[n]
        try:
            return k.window(x, rec) if how == "window" else k.step(x)
        except NeuroccError:
            raise
        except Exception as err:  # internal failure: name the node and the step
            step = t + (k.t if how == "window" else 0)
            raise BackendError(f"while executing node '{n}' ({g_kind(k)}) at step {step}: "
                               f"{type(err).__name__}: {err}", where=f"graph '{self.graph.name}'",
                               fix="this is a bug in neurocc or an unsupported parameter; report it with "
                                   "the graph") from err


def g_kind(k: K.Kernel) -> str:
    return k.node.kind
