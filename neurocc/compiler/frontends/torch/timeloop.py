"""A ``forward`` that loops over time (snnTorch tutorials 5–7) → the step function it repeats.

``torch.fx`` unrolls ``for step in range(num_steps)``; the traced graph then calls the same
layers once per step. This module keeps the **first** iteration as the step function:

* layer calls must repeat with the same period (every step calls the same layers in the same
  order), else the model is refused;
* a neuron's state argument (``mem1 = lif1.init_leaky()`` before the loop, ``mem1`` returned by
  the previous step) is its own state, which the IR neuron keeps: it is dropped (checked: a state
  argument in step 2 must come from the same neuron's call in step 1);
* ``x[step]`` (time-major input) becomes the step input; a plain ``x`` (tutorial 5 feeds the same
  sample every step) too: then the step input is x, given at every step;
* the output: the first returned value; ``torch.stack(spk_rec)`` of a layer's per-step spikes (or
  that layer's value of any one step) becomes that layer's per-step output.
"""
from __future__ import annotations

import operator
from typing import Any

import torch


def _calls(graph: Any) -> list[Any]:
    return [n for n in graph.nodes if n.op == "call_module"]


def step_graph(graph: Any, is_neuron: Any, modules: dict[str, Any]) -> Any:
    """``graph`` itself when no layer is called twice; else the step graph (ValueError if not periodic)."""
    from torch import fx

    calls = _calls(graph)
    targets = [n.target for n in calls]
    if len(set(targets)) == len(targets):
        return graph
    k = targets.index(targets[0], 1) if targets.count(targets[0]) > 1 else len(targets)
    first = targets[:k]
    if len(targets) % k or targets != first * (len(targets) // k) or len(set(first)) != k:
        raise ValueError("forward calls its layers in a pattern that does not repeat once per time step "
                         f"({targets[:2 * k + 1]}...)")
    pos = {n: i % k for i, n in enumerate(calls)}
    _check_state(calls, k, is_neuron, modules)
    out = fx.Graph()
    x = next(n for n in graph.nodes if n.op == "placeholder")
    env: dict[Any, Any] = {x: out.placeholder(x.name)}
    end = calls[k]
    for n in graph.nodes:
        if n is end:
            break
        if n.op in ("placeholder", "get_attr"):  # get_attr: copied below only where a copied node uses it
            continue
        if n.op == "call_function" and n.target is operator.getitem and n.args[0] is x:
            env[n] = env[x]  # x[step] → the step input
            continue
        if n.op == "call_module" and is_neuron(modules[n.target]):
            env[n] = out.call_module(n.target, (env[n.args[0]],))
            continue
        env[n] = out.node_copy(n, lambda a: env[a] if a in env else env.setdefault(a, out.node_copy(a)))
    out.output(env[_result(graph, pos, calls[:k])])
    return out


def _check_state(calls: list[Any], k: int, is_neuron: Any, modules: dict[str, Any]) -> None:
    for n in calls[k:2 * k]:
        if not is_neuron(modules[n.target]):
            continue
        for a in list(n.args[1:]) + list(n.kwargs.values()):
            src = a.args[0] if getattr(a, "target", None) is operator.getitem else a
            if getattr(src, "op", None) == "call_module" and src.target != n.target:
                raise ValueError(f"{n.target} is given the state of {src.target}; a neuron may only take back "
                                 "its own state")


def _result(graph: Any, pos: dict[Any, int], first: list[Any]) -> Any:
    """The iteration-0 node whose per-step value the model returns (first returned value)."""
    ret = next(n for n in graph.nodes if n.op == "output").args[0]
    while isinstance(ret, (tuple, list)):
        ret = ret[0]
    if getattr(ret, "op", None) == "call_function" and ret.target in (torch.stack, torch.cat):
        ret = ret.args[0][0]
    idx = None
    if getattr(ret, "target", None) is operator.getitem and ret.args[0] in pos:
        idx = ret.args[1]
        ret = ret.args[0]
    if ret not in pos:
        raise ValueError(f"the returned value {ret} is not a layer's per-step output (return torch.stack of a "
                         "layer's outputs over the steps, as snnTorch's tutorials do)")
    node = first[pos[ret]]
    if idx is None:
        return node
    return next((u for u in node.users if u.target is operator.getitem and u.args[1] == idx), node)
