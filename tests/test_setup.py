"""The set-up the README promises: `make demo` / `make test` on a fresh machine, idempotent via a
stamp of the dependency files, and a wheel that carries targets.yaml."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "scripts" / "setup.sh"


def _fake_checkout(tmp_path: Path) -> Path:
    """The files the set-up hashes, plus a .venv whose python is this interpreter (neurocc imports)."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copytree(REPO / "requirements", root / "requirements")
    shutil.copy2(REPO / "pyproject.toml", root)
    shutil.copy2(SETUP, root / "scripts" / "setup.sh")
    (root / ".venv" / "bin").mkdir(parents=True)
    wrapper = root / ".venv" / "bin" / "python"  # a wrapper, not a symlink: a venv python finds
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # its site-packages by its path
    wrapper.chmod(0o755)
    return root


def _setup(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEUROCC_VENV"}
    return subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)


def test_stamp_skips_and_a_dependency_change_reruns(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    assert _setup(root, "--check").returncode == 1          # no stamp yet: set-up needed
    digest = _setup(root, "--hash").stdout.strip()
    assert len(digest) == 64
    (root / ".venv" / ".neurocc-setup").write_text(digest + "\n")
    r = _setup(root, "--check")
    assert r.returncode == 0, r.stderr
    r = _setup(root)                                         # current: installs nothing
    assert r.returncode == 0 and "nothing to do" in r.stderr
    with open(root / "requirements" / "base.txt", "a") as fh:
        fh.write("# a dependency changed\n")
    assert _setup(root, "--hash").stdout.strip() != digest
    assert _setup(root, "--check").returncode == 1


def test_wrong_python_in_venv_is_named(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    fake = root / ".venv" / "bin" / "python"
    fake.unlink()
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Python 3.9.0'; exit 0; fi\nexit 1\n")
    fake.chmod(0o755)
    r = _setup(root)
    assert r.returncode == 1
    assert "not Python 3.11" in r.stderr and "rm -rf" in r.stderr


def test_make_targets_and_ci_entry_point() -> None:
    r = subprocess.run(["make", "-n", "-C", str(REPO), "demo", "test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "scripts/setup.sh" in r.stdout and "neurocc quickstart" in r.stdout
    assert "-m pytest -n 2" in r.stdout
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert "make test" in ci.read_text()


def test_readme_leads_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


@pytest.mark.slow
def test_wheel_ships_targets_yaml(tmp_path: Path) -> None:
    """setuptools follows the neurocc/targets.yaml symlink: the wheel holds the real file."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "targets.yaml"):
        shutil.copy2(REPO / name, src)
    shutil.copytree(REPO / "neurocc", src / "neurocc", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert (src / "neurocc" / "targets.yaml").is_symlink()
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("neurocc-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("neurocc/targets.yaml") == (REPO / "targets.yaml").read_bytes()
        assert "neurocc/cli.py" in zf.namelist()
