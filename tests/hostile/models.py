"""Model factories the fuzz cases name as ``--entry hostile.models:NAME`` (tests/ is on sys.path)."""
from __future__ import annotations


def mlp():
    """The 4 -> 5 -> 3 ReLU MLP whose state_dict the .pt cases mutate."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def raises():
    """A user's factory with a bug in it."""
    raise ZeroDivisionError("the user's factory failed")


def not_a_module():
    return 42
