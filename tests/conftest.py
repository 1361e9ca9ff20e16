"""Shared test set-up: one BLAS thread (two OpenBLAS threads on 2 cores are 35x slower)."""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "nir-paper"
LOCAL_FIXTURES = REPO / "tests" / "fixtures" / "nir-paper"


@pytest.fixture(scope="session")
def nir_paper() -> Path:
    """Folder of the NIR paper fixtures (a copy is kept in tests/fixtures so CI has them)."""
    return LOCAL_FIXTURES


def example_module(stem: str):
    """examples/<stem>.py imported as a module (registered in sys.modules: its frozen
    dataclasses look their module up)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(stem, REPO / "examples" / f"{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[stem] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def ca3():
    """examples/ca3_memory.py as a module (the CA3 memory built with neurocc's API)."""
    return example_module("ca3_memory")


@pytest.fixture(scope="session")
def rstdp():
    """examples/reward_stdp.py as a module (reward-modulated STDP built with neurocc's API)."""
    return example_module("reward_stdp")


@pytest.fixture(scope="session")
def lava_ok() -> None:
    """Skip (printing why) where Lava cannot run; checked once, in a subprocess."""
    from neurocc.backends.loihi import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def digits_mlp() -> dict:
    """A 64-16-10 ReLU torch MLP trained (seed 0, 60 full-batch Adam steps) on the first 1000 of
    scikit-learn's digits: ``{"net", "x", "y"}`` (x scaled to 0..1, float32). Read-only: tests
    compile it, none trains it further."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x[:1000])), torch.from_numpy(y[:1000]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"net": net.eval(), "x": x, "y": y}
