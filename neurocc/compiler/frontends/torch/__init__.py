"""PyTorch → neurocc IR.

=====================  ======================================================================
module                 reads
=====================  ======================================================================
:mod:`.trace`          an in-memory step-function ``nn.Module``, traced with ``torch.fx``
                       (:func:`from_module`)
:mod:`.modules`        one module → one IR node: ANN layers, :mod:`neurocc.nn` and snnTorch
                       neurons (the snnTorch β/α → τ mapping and step ordering are there)
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
