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
