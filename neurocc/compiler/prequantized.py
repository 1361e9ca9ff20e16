"""What a graph that arrives already integer (a lava-dl netx file: ``loihi`` numerics) becomes on
each target: one rule, used by ``compile`` and by ``plan`` so that both give the same answer.

=========================================  ======================================================
target                                     the graph compiled and mapped
=========================================  ======================================================
same numerics (``emulator``, ``loihi2``,   the integers, unchanged (``loihi*``: refused with
``loihi1``)                                ``--reset-schedule chip``, which Lava cannot run)
``edge-cpu`` (``int8`` numerics)           the integers, unchanged: the target is taken with the
                                           ``loihi`` profile (:func:`integer_target`), whose ONNX
                                           lowering is exact (netx's periodic reset included);
                                           requantizing to int8 would change the trained network
``spinnaker`` with plastic synapses        the integers, unchanged (``loihi`` profile): PyNN's
                                           ``STDPMechanism`` network is lowered from them (one
                                           weight unit = 1 mV); refused, naming each node, rule
                                           and change, when a rule, neuron or node has no PyNN
                                           form (:func:`neurocc.backends.spinnaker.plastic_net.problems`)
``spinnaker``, float32 targets             the float model the integers stand for
                                           (:func:`~neurocc.compiler.passes.dequantize.dequantize`),
                                           then the target's own quantizer; refused when there is
                                           none (sigma-delta, no decay) or the backend cannot
                                           lower it (a SpiNNaker output that is not a neuron layer)
any other numerics                         refused, naming the targets that run it
=========================================  ======================================================

A float model goes through the same backend rule: :func:`float_form` (the float passes, then
the refusals of a backend that lowers the float graph: spinnaker's PyNN lowering) is what
``compile`` runs in :func:`neurocc.compiler.pipeline.prepare` and what ``plan`` asks per target,
so ``plan`` shows ``NO`` with compile's reason where compile would refuse.
"""
from __future__ import annotations

import dataclasses

from neurocc.errors import CompileError
from neurocc.ir.graph import Graph
from neurocc.ir.types import Method
from neurocc.targets import Target

EXACT_ELSEWHERE = {"edge-cpu": ("int8",)}   # backend -> target numerics it runs a loihi graph in exactly


def integer_target(graph: Graph, tgt: Target) -> Target:
    """``tgt`` as an already-integer ``graph`` is compiled for it: an ``edge-cpu`` (int8) target
    keeps a loihi graph's integers, and so does ``spinnaker`` for a graph with plastic synapses
    (its PyNN network is lowered from them), so they are taken with the ``loihi`` profile
    (recorded so in the artifact's manifest); every other target is returned unchanged."""
    if keeps_integers(graph, tgt):
        return dataclasses.replace(tgt, numerics="loihi",
                                   description=f"{tgt.description}; here with the loihi profile: the "
                                               "imported Loihi integers, unchanged")
    return tgt


def keeps_integers(graph: Graph, tgt: Target) -> str | None:
    """Why ``tgt`` keeps the loihi integers of ``graph`` (one line for ``compile``), or None."""
    if graph.numerics != "loihi":
        return None
    if tgt.numerics in EXACT_ELSEWHERE.get(tgt.backend or "", ()):
        return f"the {tgt.backend} backend runs these integers exactly (requantizing them would change the " \
               "trained network)"
    if tgt.backend == "spinnaker" and _plastic(graph):
        return "the synapses learn on chip; the PyNN network (STDPMechanism) is lowered from these integers, " \
               "one weight unit = 1 mV"
    return None


def _plastic(graph: Graph) -> list[str]:
    return [n for n, node in graph.nodes.items() if getattr(node, "plastic", False)]


def target_form(graph: Graph, tgt: Target) -> Graph:
    """The graph that ``compile`` quantizes (a float graph) or keeps (the integer ``graph``) for
    ``tgt``; CompileError listing every reason when the target cannot take it."""
    _refuse_plastic(graph, tgt)
    _refuse_chip_schedule(graph, tgt)
    tgt = integer_target(graph, tgt)
    if tgt.numerics == graph.numerics:
        _require_backend(graph, tgt, PLASTIC_FIX if _plastic(graph) else _integer_fix(tgt))
        return graph
    if graph.numerics == "loihi" and tgt.numerics in ("spinnaker", "float32"):
        from neurocc.compiler.passes.dequantize import dequantize

        float_graph = dequantize(graph)   # CompileError naming every node without a float form
        _require_backend(float_graph, tgt, "import only the layers the target takes (for a netx file, "
                                           "--num-layers N stops before a read-out such as SLAYER's average), or "
                                           "run it on a loihi-numerics target (emulator, loihi2) or on edge-cpu, "
                                           "which run the integers exactly")
        return float_graph
    raise CompileError(f"the model is already quantized for '{graph.numerics}' numerics (a lava-dl netx file "
                       f"holds Loihi integers) and target '{tgt.name}' uses '{tgt.numerics}'",
                       where=f"graph '{graph.name}'",
                       fix="compile it for a loihi-numerics target (emulator, loihi2, loihi1) or for edge-cpu, "
                           "which runs the integers exactly")


PLASTIC_FIX = ("use pair STDP (neurocc.ir.plasticity.stdp_pair: 'a+ * y0 * x1 - a- * x0 * y1', x1/y1 traces, "
               "excitatory, t_epoch 1) between memoryless QLIF populations (du 4095, dv 4096, no bias), or "
               "compile it for loihi2 (Lava's learning engine runs any sum-of-products rule)")


def float_form(graph: Graph, tgt: Target, dt: float | None = None, method: Method | str = Method.EULER
               ) -> Graph:
    """The float graph ``compile`` quantizes for ``tgt`` (the float passes at ``dt``, default the
    target's), CompileError listing every node the target's backend cannot lower (spinnaker:
    a reset other than zero, an output that is not a neuron layer, ...): one rule for compile
    (:func:`neurocc.compiler.pipeline.prepare`) and plan."""
    from neurocc.compiler.pipeline import Options, run_passes

    float_graph = run_passes(graph, Options(tgt, float(dt if dt is not None else tgt.dt), Method(method)))
    _require_backend(float_graph, tgt if tgt.backend == "spinnaker" else None,
                     "change the model as each problem says, or compile it for a target whose backend runs it "
                     "(emulator, loihi2, edge-cpu)")
    return float_graph


def _refuse_chip_schedule(graph: Graph, tgt: Target) -> None:
    """netx's periodic reset on the chip's schedule (``--reset-schedule chip``) runs on the
    emulator and edge-cpu only: the loihi backend runs Lava, whose LIFReset resets every
    reset_interval steps."""
    chip = [n for n, node in graph.nodes.items() if getattr(node, "reset_schedule", "lava") != "lava"]
    if chip and tgt.backend == "loihi":
        raise CompileError(f"--reset-schedule chip (node(s) {', '.join(repr(n) for n in chip)}) cannot run on target "
                           f"'{tgt.name}': its backend runs Lava, whose LIFReset resets every reset_interval steps",
                           where=f"graph '{graph.name}'",
                           fix="compile for the emulator or edge-cpu target, which run the chip's schedule, or "
                               "use --reset-schedule lava (Lava's LIFReset) for this target")


def _refuse_plastic(graph: Graph, tgt: Target) -> None:
    """Synapses that learn on chip (QPlasticDense) run on loihi-numerics backends and, where PyNN's
    STDPMechanism expresses the rule, on spinnaker; not on edge-cpu (even with the loihi profile)
    nor through another target's quantizer."""
    plastic = _plastic(graph)
    if plastic and (tgt.backend == "edge-cpu" or (tgt.numerics != "loihi" and tgt.backend != "spinnaker")):
        raise CompileError(f"node(s) {', '.join(repr(n) for n in plastic)} learn on chip (QPlasticDense) and target "
                           f"'{tgt.name}' has no learning rule", where=f"graph '{graph.name}'",
                           fix="compile it for a loihi-numerics target (loihi2, loihi1, emulator) or, for pair "
                               "STDP, for spinnaker (PyNN's STDPMechanism); for edge-cpu freeze the learned "
                               "weights first (neurocc.ir.qnodes_plastic.freeze) (docs/plasticity.md)")


def _integer_fix(tgt: Target) -> str:
    return (f"compile it for the emulator target, which runs it, or import the model without what is listed "
            f"for {tgt.name}")


def _require_backend(graph: Graph, tgt: Target | None, fix: str) -> None:
    """The problems the target's backend reports for ``graph`` (only backends that run graphs
    of this kind before compile: edge-cpu and spinnaker's PyNN lowering)."""
    if tgt is None or tgt.backend not in ("edge-cpu", "spinnaker"):
        return
    if tgt.backend == "edge-cpu":
        from neurocc.backends import edge_cpu

        found = edge_cpu.check(graph, tgt if graph.numerics is not None else None)
    else:
        from neurocc.backends import spinnaker

        found = spinnaker.check(graph, tgt if _plastic(graph) else None)
    if found:
        raise CompileError(f"target '{tgt.name}' cannot take graph '{graph.name}' ({len(found)} problem(s))",
                           where=f"graph '{graph.name}'", problems=found, fix=fix)


def refusal(err: CompileError) -> str:
    """One line for a plan row: the first reason and how many more there are."""
    problems = list(err.problems or ())
    first = problems[0] if problems else err.what
    more = f" (+{len(problems) - 1} more: `neurocc compile` lists them)" if len(problems) > 1 else ""
    return f"compile refuses: {first}{more}"
