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


@pytest.fixture(scope="session")
def ca3():
    """examples/ca3_memory.py as a module (the CA3 memory built with neurocc's API)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("ca3_memory", REPO / "examples" / "ca3_memory.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ca3_memory"] = mod   # its frozen dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def lava_ok() -> None:
    """Skip (printing why) where Lava cannot run; checked once, in a subprocess."""
    from neurocc.backends.loihi import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
