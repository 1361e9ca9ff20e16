"""Fuzz: mutated inputs of every format and CLI argument end in success or a neurocc error (issue 13).

Never a foreign exception, a hang (each case runs under a time limit) or exit status 3. The
categories and mutations are in tests/hostile/cases.py; hypothesis draws the seeds (and, for the
CLI, the argument values). Default run: 9 categories x 35 API cases + 10 CLI cases = 325 cases,
derandomized. ``make fuzz`` (``NEUROCC_FUZZ_PROFILE=long``) runs 400 random cases per category and
60 CLI cases. ``python tests/hostile/census.py N`` counts outcomes over N fixed seeds per category.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile.cases import CATEGORIES, HUGE, base_files, outcome

REPO = Path(__file__).resolve().parents[1]
COMMON = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("neurocc-default", max_examples=35, derandomize=True, **COMMON)
settings.register_profile("neurocc-long", max_examples=400, **COMMON)
PROFILE = "neurocc-long" if os.environ.get("NEUROCC_FUZZ_PROFILE") == "long" else "neurocc-default"
CLI_EXAMPLES = 60 if PROFILE == "neurocc-long" else 10


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict:
    logging.getLogger("torch").setLevel(logging.CRITICAL)
    return base_files(tmp_path_factory.mktemp("fuzz-base"))


@pytest.mark.parametrize("category", sorted(CATEGORIES))
@settings(settings.get_profile(PROFILE))
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_mutated_input_gives_success_or_neurocc_error(base: dict, category: str, seed: int) -> None:
    work = Path(tempfile.mkdtemp(dir=base["folder"]))
    try:
        case = CATEGORIES[category](random.Random(seed), base, work)
        kind, err = outcome(case, seconds=60)
        assert kind in ("ok", "neurocc"), f"{category} seed {seed}: {kind}: {type(err).__name__}: {err}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----- the CLI: argument values, through a subprocess ------------------------------------------------
def _cli_args(draw: st.DrawFn, base: dict, work: Path) -> list[str]:
    odd_int = st.sampled_from(["0", "-1", "x", "1e3", str(HUGE), "nan", "", "99999999999999999999999"])
    odd_float = st.sampled_from(["0", "-1", "nan", "inf", "1e-300", "1e300", "x", "0.001"])
    odd_out = st.sampled_from([str(work / "out"), str(work), str(base["nir"]), "/proc/neurocc-x", "/dev/null",
                               str(work / "no" / "such" / "dir" / "o"), "", "-"])
    command = draw(st.sampled_from(["inspect", "compile", "run", "validate", "plan", "targets", "deploy",
                                    "evaluate", "report", "export-nir"]))
    model = draw(st.sampled_from([str(base["nir"]), str(base["onnx"]), str(base["pt"]), "hostile.models:raises",
                                  "hostile.models:mlp", str(work), "/dev/null", "no-such.nir"]))
    art = str(base["artifact"])
    extra = {
        "inspect": [model] + draw(st.sampled_from([[], ["--input-shape", "4"], ["--input-shape", "0,x"]])),
        "compile": [model, "--target", draw(st.sampled_from(["emulator", "EMULATOR", "nope", "edge-cpu"])),
                    "-o", draw(odd_out), "--dt", draw(odd_float), "--timesteps", draw(odd_int)],
        "run": [art, "--backend", draw(st.sampled_from(["emulator", "reference", "nope"])), "--input",
                str(base["x_npz"]), "--output", draw(odd_out), "--steps", draw(odd_int)],
        "validate": [art, "--backends", "emulator", "--samples", draw(odd_int), "--json", draw(odd_out)],
        "plan": [model, "--target", draw(st.sampled_from(["loihi2", "nope", ",", "loihi2,spinnaker"]))],
        "targets": [draw(st.sampled_from(["loihi2", "nope", ""]))] + draw(st.sampled_from(
            [[], ["--targets", str(base["nir"])], ["--targets", "/dev/null"]])),
        "deploy": [art, "-o", draw(odd_out)],
        "evaluate": [art, "--data", draw(st.sampled_from([str(base["x_npz"]), str(base["nir"]), "/dev/null"]))],
        "report": [draw(st.sampled_from([art, str(work), "/dev/null"]))],
        "export-nir": [model, draw(odd_out)],
    }[command]
    return [command] + extra


@settings(settings.get_profile(PROFILE), max_examples=CLI_EXAMPLES)
@given(data=st.data())
def test_cli_arguments_never_internal_error(base: dict, data: st.DataObject) -> None:
    if "x_npz" not in base:
        import numpy as np

        base["x_npz"] = base["folder"] / "x.npz"
        np.savez(base["x_npz"], input=base["x"])
    work = Path(tempfile.mkdtemp(dir=base["folder"]))
    try:
        args = data.draw(st.builds(lambda: None).flatmap(lambda _: st.composite(
            lambda draw: _cli_args(draw, base, work))()))
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OPENBLAS_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, "-m", "neurocc", *args], capture_output=True, text=True,
                              env=env, cwd=work, timeout=120)
        assert proc.returncode in (0, 1, 2), f"neurocc {args}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)
