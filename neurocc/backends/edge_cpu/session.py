"""Run emitted models with ONNX Runtime (CPU provider, one thread unless asked otherwise).

:class:`WindowRunner` runs a window graph over a whole input; :class:`StepRunner` feeds a step
graph one step at a time, carrying the state tensors (zeros at the start) from each call's
``.next`` outputs to the next call's inputs, and can return every output per step.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .assemble import NEXT

_ORT_TO_NP = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
              "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def make_session(model: Any, threads: int = 1) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


class WindowRunner:
    """``run({input: (T, B, *shape)}) -> {output: (T, B, *shape)}`` on a window graph."""

    def __init__(self, model: Any, threads: int = 1) -> None:
        self.sess = make_session(model, threads)
        self.outputs = [o.name for o in self.sess.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.sess.run(self.outputs, inputs)))


class StepRunner:
    """Streams a step graph: ``step({input: (B, *shape)}) -> {output: (B, *shape)}``."""

    def __init__(self, model: Any, threads: int = 1) -> None:
        self.sess = make_session(model, threads)
        ins = {i.name: i for i in self.sess.get_inputs()}
        self.state_keys = [o.name[:-len(NEXT)] for o in self.sess.get_outputs() if o.name.endswith(NEXT)]
        self.state_info = {k: (_ORT_TO_NP[ins[k].type], tuple(ins[k].shape[1:])) for k in self.state_keys}
        self.inputs = [n for n in ins if n not in self.state_info]
        self.outputs = [o.name for o in self.sess.get_outputs()]
        self.state: dict[str, np.ndarray] = {}

    def reset(self, batch: int) -> None:
        """Zero state for ``batch`` samples."""
        self.state = {k: np.zeros((batch, *shape), dt) for k, (dt, shape) in self.state_info.items()}

    def step(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        res = dict(zip(self.outputs, self.sess.run(self.outputs, {**inputs, **self.state})))
        self.state = {k: res.pop(k + NEXT) for k in self.state_keys}
        return res

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All steps of time-major ``inputs``; returns every non-state output stacked over time
        plus the state after each step under its key."""
        steps, batch = next(iter(inputs.values())).shape[:2]
        self.reset(batch)
        per_step: dict[str, list[np.ndarray]] = {}
        for t in range(steps):
            res = self.step({k: v[t] for k, v in inputs.items()})
            for k, v in {**res, **self.state}.items():
                per_step.setdefault(k, []).append(v)
        return {k: np.stack(v) for k, v in per_step.items()}
