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
def lava_ok() -> None:
    """Skip (printing why) where Lava cannot run; checked once, in a subprocess."""
    from neurocc.backends.loihi import unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
