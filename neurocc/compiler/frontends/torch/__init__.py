"""PyTorch → neurocc IR.

=====================  ======================================================================
module                 reads
=====================  ======================================================================
:mod:`.trace`          an in-memory step-function ``nn.Module``, traced with ``torch.fx``
                       (:func:`from_module`)
:mod:`.modules`        one module → one IR node: ANN layers and :mod:`neurocc.nn` neurons;
                       dispatches framework neurons to :mod:`.snntorch` / :mod:`.sinabs`
:mod:`.snntorch`       snnTorch Leaky/Synaptic/RLeaky/RSynaptic: exact step order, recurrent edges
:mod:`.sinabs`         Sinabs IAF/LIF (and ``*Squeeze``), SumPool2d, ``from_model`` networks
:mod:`.timeloop`       a ``forward`` that loops over time (snnTorch tutorials) → its step
:mod:`.files`          ``.pt``/``.pth`` (state_dict + ``entry``, or a pickled module only with
                       ``trust_pickle=True``) and ``.pt2`` archives (:func:`read_torch_file`,
                       :func:`load_entry`, :func:`read_exported`)
:mod:`.aten`           the aten ops of a ``torch.export`` program (ANN layers only)
=====================  ======================================================================

torch is imported inside the functions that need them (``import neurocc`` stays light); inside
this package ``import torch`` is an absolute import and so always the real torch.
"""
from __future__ import annotations

from neurocc.compiler.frontends.torch.files import (
    ENTRY_FIX,
    PICKLE_FIX,
    load_entry,
    read_exported,
    read_torch_file,
)
from neurocc.compiler.frontends.torch.modules import (
    DEFAULT_DT,
    ann_node,
    flatten_node,
    is_neuron,
    neuron_factory,
    neuron_outputs,
)
from neurocc.compiler.frontends.torch.trace import INPUT_SHAPE_FIX, from_module

__all__ = ["DEFAULT_DT", "ENTRY_FIX", "INPUT_SHAPE_FIX", "PICKLE_FIX", "ann_node", "flatten_node", "from_module",
           "is_neuron", "load_entry", "neuron_factory", "neuron_outputs", "read_exported", "read_torch_file"]
