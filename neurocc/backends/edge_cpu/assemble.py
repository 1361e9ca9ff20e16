"""Assemble ONNX models from a graph: the streaming step graph and the window graph.

Step graph (``mode="step"``), one time step per call::

    inputs   <input>             (batch, *shape)       one per graph Input
             <node>/<var>        (batch, *shape)       every state variable (u, v, ref, buffer)
             <src>@t-<k>         (batch, *shape)       src's output k steps ago (edge delays)
    outputs  <output>            (batch, *shape)       one per graph Output
             <state key>.next                          the state after this step
             <node>/out          (only with record)    every node's output this step

Window graph (``mode="window"``), a whole run from zero state::

    inputs <input> (time, batch, *shape);  outputs <output> (time, batch, *shape)

evaluated block by block over the graph's strongly connected components: a stateless node
outside any cycle is one op over all time × batch rows (layer-major: one MatMul/Conv for the
window); a neuron outside any cycle is a ``Scan`` over time of its element-wise update; a
recurrent component is a ``Scan`` over time of the step body of its nodes. An edge with delay d
between blocks shifts the source sequence by d steps (Pad + Slice).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocc.ir.nodes import Input

from .builder import IR_VERSION, OPSET, Builder, value_info
from .lower import Ctx, body_state_specs, emit_body, emit_node, ext_dtype, is_stateful, sum_inputs

NEXT = ".next"
NEURONS = ("I", "IF", "LI", "LIF", "CubaLI", "CubaLIF", "QLIF", "QLI", "QSigmaDelta")
DOMAIN = "ai.neurocc.edge_cpu"


def _model(b: Builder, name: str, inputs: list[Any], outputs: list[Any], doc: str) -> Any:
    from onnx import helper

    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.root.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="neurocc", doc_string=doc)
    return model


def _identity_out(b: Builder, value: str, name: str) -> str:
    return b.op("Identity", [value], outputs=[name])[0]


def _body_out(b: Builder, value: str, hint: str, taken: set[str]) -> str:
    """``value`` as a subgraph output: itself when it is a fresh value of this body, else an
    Identity copy (a body input, an outer-scope constant, or a value already output once)."""
    own = any(value in n.output for n in b.nodes)
    if own and value not in taken:
        taken.add(value)
        return value
    out = b.op("Identity", [value], hint)
    taken.add(out)
    return out


def emit_step_model(ctx: Ctx, record: bool = False) -> Any:
    """The streaming step graph (see the module docstring)."""
    g = ctx.graph
    b = Builder()
    specs = body_state_specs(ctx, g.order())
    for name in [*g.inputs, *g.outputs, *specs, *(k + NEXT for k in specs)]:
        b.reserve(name)
    if record:
        for n in g.nodes:
            b.reserve(f"{n}/out")
    body = emit_body(b, ctx, g.order(), {n: n for n in g.inputs}, {k: k for k in specs})
    ins = [value_info(n, ctx.dtype_of(n), ["batch", *ctx.shapes[n]]) for n in g.inputs]
    ins += [value_info(k, dt, ["batch", *shape]) for k, (dt, shape) in specs.items()]
    outs = []
    for o in g.outputs:
        outs.append(value_info(_identity_out(b, body.values[o], o), ctx.dtype_of(o), ["batch", *ctx.shapes[o]]))
    for k, (dt, shape) in specs.items():
        outs.append(value_info(_identity_out(b, body.state_out[k], k + NEXT), dt, ["batch", *shape]))
    if record:
        for n in g.nodes:
            outs.append(value_info(_identity_out(b, body.values[n], f"{n}/out"), ctx.dtype_of(n),
                                   ["batch", *ctx.shapes[n]]))
    return _model(b, f"{g.name}_step", ins, outs, f"neurocc edge-cpu step graph of '{g.name}'")


# --------------------------------------------------------------------------------------------
def blocks(ctx: Ctx) -> list[tuple[list[str], bool]]:
    """Strongly connected components in a topological order: (nodes in step order, cyclic)."""
    import networkx as nx

    g = ctx.graph
    order = {n: i for i, n in enumerate(g.order())}
    dg = nx.DiGraph()
    dg.add_nodes_from(g.nodes)
    dg.add_edges_from((e.src, e.dst) for e in g.edges)
    cond = nx.condensation(dg)
    out = []
    for c in nx.lexicographical_topological_sort(cond, key=lambda c: min(order[n] for n in cond.nodes[c]["members"])):
        members = sorted(cond.nodes[c]["members"], key=order.__getitem__)
        cyclic = len(members) > 1 or dg.has_edge(members[0], members[0])
        out.append((members, cyclic))
    return out


class _Window:
    """Builds the window graph; ``seq[n]`` is node n's output over the window (T, B, *shape)."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx, self.b = ctx, Builder()
        self.seq: dict[str, str] = {}
        g = ctx.graph
        for n in [*g.inputs, *g.outputs]:
            self.b.reserve(n)
        self.tb = self.b.dims(g.inputs[0], 0, 2)   # (T, B) of this run

    def shifted(self, src: str, d: int) -> str:
        """src's sequence delayed by d steps: zeros for t < d (Pad front, Slice to T)."""
        x = self.seq[src]
        if d == 0:
            return x
        rank = 2 + len(self.ctx.shapes[src])
        pads = np.zeros(2 * rank, np.int64)
        pads[0] = d
        b = self.b
        padded = b.op("Pad", [x, b.const(pads, "pads")], "padded", mode="constant")
        t = b.op("Slice", [self.tb, b.const(np.array([0], np.int64), "s"), b.const(np.array([1], np.int64), "e")])
        return b.op("Slice", [padded, b.const(np.array([0], np.int64), "s"), t, b.const(np.array([0], np.int64), "ax")],
                    "shifted")

    def external(self, n: str, inside: set[str]) -> str | None:
        ctx = self.ctx
        parts = [(self.shifted(e.src, e.delay), ctx.dtype_of(e.src)) for e in ctx.graph.in_edges(n)
                 if e.src not in inside]
        return sum_inputs(self.b, ctx, n, parts) if parts else None

    def rows(self, n: str, x: str) -> str:
        """A stateless node over all T·B rows at once (layer-major)."""
        ctx, b = self.ctx, self.b
        flat = b.reshape(x, [-1, *ctx.in_shape(n)])
        y, _ = emit_node(b, ctx, n, flat, {})
        full = b.op("Concat", [self.tb, b.const(np.array(ctx.shapes[n], np.int64), "shape")], "tbshape", axis=0)
        return b.op("Reshape", [y, full], f"{n}.seq")

    def scan(self, nodes: list[str]) -> None:
        """A Scan over time of the step body of ``nodes`` (one neuron, or a recurrent block)."""
        from onnx import helper

        ctx, b, g = self.ctx, self.b, self.ctx.graph
        inside = set(nodes)
        ext = {n: x for n in nodes if (x := self.external(n, inside)) is not None}
        specs = body_state_specs(ctx, nodes)
        needed = [n for n in nodes if any(e.dst not in inside for e in g.out_edges(n))]
        sb = b.child(f"{nodes[0]}.scan/")
        st_names = {k: sb.fresh(f"{k}") for k in specs}
        ext_names = {n: sb.fresh(f"{n}.x_t") for n in ext}
        body = emit_body(sb, ctx, nodes, ext_names, st_names)
        b_ins = [value_info(st_names[k], dt, ["batch", *shape]) for k, (dt, shape) in specs.items()]
        b_ins += [value_info(ext_names[n], ext_dtype(ctx, n, inside), ["batch", *ctx.in_shape(n)]) for n in ext]
        seqs = [ext[n] for n in ext]
        if not seqs:  # a block fed only by itself: a Scan needs one sequence to count the steps
            x0 = g.inputs[0]
            b_ins.append(value_info(sb.fresh("steps"), ctx.dtype_of(x0), ["batch", *ctx.shapes[x0]]))
            seqs = [x0]
        taken = set(st_names.values()) | set(ext_names.values())  # body inputs: copy before output
        b_outs = [value_info(_body_out(sb, body.state_out[k], f"{k}.next", taken), dt, ["batch", *shape])
                  for k, (dt, shape) in specs.items()]
        b_outs += [value_info(_body_out(sb, body.values[n], f"{n}.t", taken), ctx.dtype_of(n),
                              ["batch", *ctx.shapes[n]]) for n in needed]
        graph = helper.make_graph(sb.nodes, f"{nodes[0]}_step", b_ins, b_outs)
        init = [b.zeros_like_batch(g.inputs[0], 1, shape, dt) for dt, shape in specs.values()]
        outs = b.op("Scan", init + seqs, f"{nodes[0]}.scan", n_out=len(specs) + len(needed),
                    body=graph, num_scan_inputs=len(seqs))
        for n, v in zip(needed, outs[len(specs):]):
            self.seq[n] = v

    def neuron_scan(self, n: str) -> None:
        """A feed-forward neuron: ``pre`` over the whole window, a Scan of the state recurrence
        only, ``post`` over the whole window (the step graph's ops, hoisted; int8 QLIF/QLI use
        the float64 form of :mod:`.fastint`, the same numerics without int64 Div/Mod)."""
        from onnx import helper

        from . import fastint, neurons

        ctx, b, g = self.ctx, self.b, self.ctx.graph
        node = g.nodes[n]
        fast = fastint.applies(ctx, node)
        x = self.external(n, {n})
        xin = fastint.pre(b, ctx, n, x) if fast else neurons.neuron_pre(b, ctx, n, node, x)
        specs = fastint.state_spec(ctx, n, node) if fast else ctx.state_spec(n)
        sb = b.child(f"{n}.scan/")
        st_names = {var: sb.fresh(f"{n}/{var}") for var in specs}
        x_t = sb.fresh(f"{n}.x_t")
        step = fastint.step if fast else neurons.neuron_step
        raw, new = step(sb, ctx, n, node, x_t, st_names)
        raw_dt = (np.dtype(np.bool_) if node.spiking else fastint.F64) if fast else neurons.raw_dtype(ctx, node)
        xin_dt = np.dtype(np.float32) if not ctx.integer else (
            np.dtype(np.int32) if (fast or ctx.profile.name == "loihi") and node.kind != "QSigmaDelta"
            else np.dtype(np.int64))
        taken: set[str] = set()
        b_ins = [value_info(st_names[v], dt, ["batch", *shape]) for v, (dt, shape) in specs.items()]
        b_ins.append(value_info(x_t, xin_dt, ["batch", *ctx.shapes[n]]))
        b_outs = [value_info(_body_out(sb, new[v], f"{n}/{v}.next", taken), dt, ["batch", *shape])
                  for v, (dt, shape) in specs.items()]
        b_outs.append(value_info(_body_out(sb, raw, f"{n}.t", taken), raw_dt, ["batch", *ctx.shapes[n]]))
        graph = helper.make_graph(sb.nodes, f"{n}_step", b_ins, b_outs)
        init = [b.zeros_like_batch(g.inputs[0], 1, shape, dt) for dt, shape in specs.values()]
        outs = b.op("Scan", init + [xin], f"{n}.scan", n_out=len(specs) + 1, body=graph, num_scan_inputs=1)
        self.seq[n] = fastint.post(b, node, outs[-1]) if fast else neurons.neuron_post(b, ctx, node, outs[-1])

    def build(self) -> Any:
        ctx, g, b = self.ctx, self.ctx.graph, self.b
        for nodes, cyclic in blocks(ctx):
            n = nodes[0]
            if isinstance(g.nodes[n], Input):
                self.seq[n] = n
            elif not cyclic and g.nodes[n].kind in NEURONS:
                self.neuron_scan(n)
            elif cyclic or is_stateful(g.nodes[n]):
                self.scan(nodes)
            elif g.nodes[n].kind in ("Output", "Add"):
                self.seq[n] = self.external(n, {n})
            else:
                self.seq[n] = self.rows(n, self.external(n, set(nodes)))
        ins = [value_info(n, ctx.dtype_of(n), ["time", "batch", *ctx.shapes[n]]) for n in g.inputs]
        outs = [value_info(_identity_out(b, self.seq[o], o), ctx.dtype_of(o), ["time", "batch", *ctx.shapes[o]])
                for o in g.outputs]
        return _model(b, f"{g.name}_window", ins, outs, f"neurocc edge-cpu window graph of '{g.name}'")


def emit_window_model(ctx: Ctx) -> Any:
    """The window graph (see the module docstring)."""
    return _Window(ctx).build()
