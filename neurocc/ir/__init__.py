"""The neurocc graph IR: node kinds, the immutable graph, verification, serialization, numerics."""
from neurocc.ir.graph import Edge, Graph
from neurocc.ir import qnodes  # noqa: F401  (registers the quantized kinds)
from neurocc.ir import qnodes_spinnaker  # noqa: F401  (registers the spinnaker kinds)
from neurocc.ir import qnodes_sdn  # noqa: F401  (registers the sigma-delta kind)
from neurocc.ir import qnodes_plastic  # noqa: F401  (registers the plastic synapse kind)
from neurocc.ir.nodes import NODE_KINDS, Node
from neurocc.ir.serialize import load_graph, save_graph
from neurocc.ir.types import IntFormat, Method, Overflow, ResetMode, ResetTiming, Rounding, Shape

__all__ = ["Edge", "Graph", "IntFormat", "Method", "NODE_KINDS", "Node", "Overflow", "ResetMode", "ResetTiming",
           "Rounding", "Shape", "load_graph", "save_graph"]
