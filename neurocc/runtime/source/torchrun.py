"""Run a torch / snnTorch / neurocc.nn model in torch itself, step by step, recording every layer.

The model is run the way its framework runs it (no neurocc code in the loop):

* state is cleared before the sequence with the framework's own calls: ``snntorch.utils.reset``
  (``init_hidden=True`` neurons) and ``reset_mem()`` on every snnTorch neuron (snnTorch keeps
  the membrane in the module even with ``init_hidden=False``); Sinabs layers ``reset_states()``;
* a step-function model ``forward(x)`` is called once per step with ``x[t]`` of shape
  ``(batch, *shape)``; a ``forward(x, *state)`` model is called with ``None`` state first and
  the returned state ``out[1:]`` afterwards (neurocc.nn and snnTorch ``init_hidden=False``
  layouts);
* forward hooks on the modules whose qualified names are IR node names (the torch frontend names
  each node after its module: ``fc1``, ``0``, ``features.3``) record each layer's output, and for
  neurons the state the framework keeps: snnTorch ``mem`` → ``v`` and ``syn`` → ``u`` (the
  membrane *before* the delayed reset of ``reset_delay=True``), neurocc.nn's returned state
  (``LIF``/``IF``: ``(v,)``, ``CubaLIF``: ``(u, v)``, after the reset).

Records are time-major float64 arrays ``(steps, batch, *shape)`` keyed ``"<node>/<var>"`` as the
reference backend's (``out``, ``u``, ``v``). torch is imported inside the functions.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from neurocc.errors import InputError

NNC_STATE = {"LIF": ("v",), "IF": ("v",), "CubaLIF": ("u", "v")}   # neurocc.nn returned state, in order


def state_args(model: Any) -> int:
    """How many state arguments ``model.forward`` takes after the input (0: a ``forward(x)``)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return 0
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 0
    return max(0, sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) - 1)


def reset_state(model: Any) -> None:
    """Clear every neuron's state with the framework's own calls (see the module docstring)."""
    try:
        import snntorch
        from snntorch import utils as sutils

        sutils.reset(model)
        for m in model.modules():
            if isinstance(m, snntorch.SpikingNeuron) and hasattr(m, "reset_mem"):
                m.reset_mem()
    except ImportError:
        pass
    for m in model.modules():
        if hasattr(m, "reset_states") and type(m).__module__.startswith("sinabs"):
            m.reset_states()


def _first_tensor(value: Any) -> Any:
    while isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value


def _neuron_state(module: Any, output: Any) -> dict[str, Any]:
    """The state a neuron module keeps after its call, as IR variable names."""
    kind = type(module).__name__
    if type(module).__module__.startswith("neurocc.nn") and kind in NNC_STATE and isinstance(output, tuple):
        return dict(zip(NNC_STATE[kind], output[1]))
    out: dict[str, Any] = {}
    for attr, var in (("syn", "u"), ("mem", "v"), ("v_mem", "v")):
        value = getattr(module, attr, None)
        if value is not None and hasattr(value, "detach"):
            out[var] = value
    return out


class _Recorder:
    """Forward hooks that keep one step of each named module's output and state."""

    def __init__(self, model: Any, names: Iterable[str]) -> None:
        modules = dict(model.named_modules())
        self.calls: dict[str, list[Any]] = {}
        self.handles = [modules[n].register_forward_hook(self._hook(n)) for n in names if n in modules and n]
        self.named = [n for n in names if n in modules and n]

    def _hook(self, name: str) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            self.calls.setdefault(f"{name}/out", []).append(_first_tensor(output))
            for var, value in _neuron_state(module, output).items():
                self.calls.setdefault(f"{name}/{var}", []).append(value)
        return hook

    def last(self) -> dict[str, Any]:
        """The value of each key's last call, and forget the calls."""
        out = {k: v[-1] for k, v in self.calls.items()}
        self.calls = {}
        return out

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def _sinabs_time_axis(model: Any) -> bool:
    """Sinabs layers other than the ``*Squeeze`` ones take ``(batch, time, ...)``: a step is fed as
    ``x[t][:, None]`` (time 1; the layers keep their state between calls) and recorded without it."""
    return any(type(m).__module__.startswith("sinabs") and hasattr(m, "reset_states")
               and "Squeeze" not in type(m).__name__ for m in model.modules())


def _untimed(a: np.ndarray, timed: bool) -> np.ndarray:
    return (a[:, 0] if timed and a.ndim >= 2 and a.shape[1] == 1 else a).copy()


def run_module(model: Any, inputs: Mapping[str, np.ndarray], names: Iterable[str]) -> dict[str, np.ndarray]:
    """Run ``model`` on time-major ``inputs`` (one array ``(steps, batch, *shape)``), step by step;
    every recorded value of the modules called ``names``, plus ``output`` (the model's first
    returned value), time-major float64."""
    import torch

    if len(inputs) != 1:
        raise InputError(f"the source model takes one input; got {sorted(inputs)}", where="source check",
                         fix="compare models with one input")
    (x,) = inputs.values()
    model = model.eval()
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    n_state = state_args(model)
    timed = _sinabs_time_axis(model)
    if not timed and loops_over_time(model, x, dtype):
        return _run_sequence(model, x, dtype, names)
    rec = _Recorder(model, list(names))
    steps: list[dict[str, np.ndarray]] = []
    try:
        reset_state(model)
        state: tuple[Any, ...] = (None,) * n_state
        with torch.no_grad():
            for t in range(x.shape[0]):
                xt = torch.as_tensor(np.asarray(x[t]), dtype=dtype)
                out = model(xt[:, None] if timed else xt, *state)
                if n_state:
                    state = tuple(out[1:1 + n_state])
                step = {**rec.last(), "output": _first_tensor(out)}
                steps.append({k: _untimed(v.detach().cpu().double().numpy(), timed) for k, v in step.items()
                              if hasattr(v, "detach")})
    finally:
        rec.close()
        reset_state(model)
    keys = [k for k in steps[0] if all(k in s and s[k].shape == steps[0][k].shape for s in steps)]
    return {k: np.stack([s[k] for s in steps]) for k in keys}


def loops_over_time(model: Any, x: np.ndarray, dtype: Any) -> bool:
    """Whether ``forward`` loops over time itself (snnTorch tutorials 5-7: ``for step in
    range(num_steps)`` on a time-major ``x``): one call on the whole ``x`` calls some layer once per
    step. A step model called so either fails (then: False) or calls each layer once."""
    import torch

    counts: dict[str, int] = {}
    hooks = [m.register_forward_hook(lambda *a, n=n: counts.__setitem__(n, counts.get(n, 0) + 1))
             for n, m in model.named_modules() if n]
    try:
        reset_state(model)
        with torch.no_grad():
            model(torch.as_tensor(np.asarray(x), dtype=dtype))
    except Exception:  # a step model given the whole sequence may raise anything (shapes)
        return False
    finally:
        for h in hooks:
            h.remove()
        reset_state(model)
    return x.shape[0] > 1 and max(counts.values(), default=0) == x.shape[0]


def _run_sequence(model: Any, x: np.ndarray, dtype: Any, names: Iterable[str]) -> dict[str, np.ndarray]:
    """A time-looping model called once on the whole ``x``; each hooked layer's calls are its steps;
    the first returned value is the per-step output when it has ``steps`` rows (``torch.stack``)."""
    import torch

    rec = _Recorder(model, list(names))
    try:
        reset_state(model)
        with torch.no_grad():
            out = _first_tensor(model(torch.as_tensor(np.asarray(x), dtype=dtype)))
    finally:
        rec.close()
        reset_state(model)
    steps = x.shape[0]
    result = {k: np.stack([v.detach().cpu().double().numpy() for v in vals]) for k, vals in rec.calls.items()
              if len(vals) == steps and all(hasattr(v, "detach") for v in vals)}
    if hasattr(out, "shape") and out.shape[0] == steps:
        result["output"] = out.detach().cpu().double().numpy()
    return result
