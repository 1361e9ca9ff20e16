"""Node kinds of the neurocc IR: one frozen dataclass per primitive, equations in the docstring.

Names and continuous-time semantics follow NIR 1.0 (``nir/ir/*.py``); ANN-only kinds
(``ReLU``, ``BatchNorm``, ``Add``) exist for conversion and are removed by the
``normalize``/``convert`` passes before a spiking backend sees the graph.

Conventions shared by every kind:

* shapes exclude batch and time; all parameters are numpy arrays frozen read-only;
* a node with several incoming edges receives the **sum** of its inputs (as in NIR);
* neuron parameters are per-neuron arrays of one common shape, which is the node's shape;
* state variables are named in ``state_vars`` (``u`` = synaptic current, ``v`` = membrane);
  the emulator's ``record=True`` output and ``Y.npz`` use ``<node>/<var>``;
* spikes ``z`` use NIR's strict test ``z = v > v_threshold``.

Quantized (integer) kinds live in :mod:`neurocc.ir.qnodes`; they register here through the
same base class so that the graph, verifier and serializer treat every kind alike.

The kinds are defined by topic and re-exported here, so that every name stays importable from
this module and importing it registers every kind in :data:`NODE_KINDS`: the base class and the
registry in :mod:`neurocc.ir.node_base`, the boundary and synapse kinds in
:mod:`neurocc.ir.node_synapses`, the neurons in :mod:`neurocc.ir.node_neurons`, the ANN-only
kinds in :mod:`neurocc.ir.node_ann`.
"""
from __future__ import annotations

# registration order = NODE_KINDS order (the one the kinds were defined in): base, boundary and
# synapses, neurons, ANN-only
# isort: off
from neurocc.ir.node_base import (
    NODE_KINDS,
    OMIT_DEFAULT,
    Node,
    _coerce,
    _hints,
    frozen_array,
)
from neurocc.ir.node_synapses import (
    Affine,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Delay,
    Flatten,
    Input,
    Linear,
    Output,
    Scale,
    SumPool2d,
    _conv_out,
    _Dense,
    _Pool2d,
)
from neurocc.ir.node_neurons import (
    IF,
    LI,
    LIF,
    NEURON_KINDS,
    CubaLI,
    CubaLIF,
    I,
    Threshold,
    _Neuron,
    _Spiking,
)
from neurocc.ir.node_ann import Add, BatchNorm, MaxPool2d, ReLU
# isort: on
from neurocc.ir.types import IntFormat, ResetMode, ResetTiming, Shape

__all__ = ["IF", "LI", "LIF", "NEURON_KINDS", "NODE_KINDS", "OMIT_DEFAULT", "Add", "Affine", "AvgPool2d", "BatchNorm",
           "Conv1d", "Conv2d", "CubaLI", "CubaLIF", "Delay", "Flatten", "I", "Input", "IntFormat", "Linear",
           "MaxPool2d", "Node", "Output", "ReLU", "ResetMode", "ResetTiming", "Scale", "Shape", "SumPool2d",
           "Threshold", "_Dense", "_Neuron", "_Pool2d", "_Spiking", "_coerce", "_conv_out", "_hints", "frozen_array"]
