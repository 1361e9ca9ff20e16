"""targets.yaml and its loader: the shipped chips, their sourced figures, and the errors a user
gets for a broken file (each naming the file, the line, the key and the fix)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import neurocc
from neurocc.backends import REGISTRY
from neurocc.errors import TargetsError
from neurocc.targets import (BACKENDS, BUILTIN, NUMERICS, RESET_MODES, Target, get_target,
                             load_targets)

REPO = Path(__file__).resolve().parents[1]
CONTRACT_NAMES = {"loihi2", "loihi1", "spinnaker", "spinnaker2", "edge-cpu", "edge-cpu-f32", "emulator"}


def _write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (computed from the test's own text)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _error(path: Path) -> str:
    with pytest.raises(TargetsError) as info:
        load_targets(path)
    return str(info.value)


GOOD_ENTRY = """\
version: 1
targets:
  mychip:
    description: a test chip
    backend: emulator
    numerics: int8
    dt: 0.0005
    limits:
      chips: 2
      cores_per_chip: 4
      neurons_per_core: 100
    validation:
      rule: exact
"""


# ----- the shipped file ----------------------------------------------------------------------------
def test_shipped_file_has_the_contract_targets() -> None:
    targets = load_targets()
    assert set(targets) == CONTRACT_NAMES
    for name, t in targets.items():
        assert isinstance(t, Target) and t.name == name
        assert t.description and t.dt > 0
        assert t.numerics in NUMERICS
        assert t.backend is None or t.backend in BACKENDS
        assert set(t.reset_modes) <= set(RESET_MODES) and t.reset_modes
        assert t.validation.rule in ("exact", "cosine")
        if t.validation.rule == "cosine":
            assert t.validation.min_cosine is not None and 0 < t.validation.min_cosine <= 1


def test_contract_backends_and_numerics() -> None:
    """The architecture's Contract: who runs each target, with which numerics."""
    t = load_targets()
    assert (t["loihi2"].backend, t["loihi2"].numerics) == ("loihi", "loihi")
    assert (t["loihi1"].backend, t["loihi1"].numerics) == ("loihi", "loihi")
    assert (t["spinnaker"].backend, t["spinnaker"].numerics, t["spinnaker"].dt) == ("spinnaker", "spinnaker", 0.001)
    assert t["spinnaker2"].backend is None and not t["spinnaker2"].runnable
    assert (t["edge-cpu"].backend, t["edge-cpu"].numerics) == ("edge-cpu", "int8")
    assert t["edge-cpu-f32"].numerics == "float32"
    assert (t["emulator"].backend, t["emulator"].numerics) == ("emulator", "loihi")
    assert t["emulator"].limits.neurons_per_core is None and t["emulator"].limits.chips is None
    # SpiNNaker and Loihi 1 reset to a value only (IF_curr_exp, fixed-function neurons); issue 12:
    # loihi2 (programmable neurons) also subtracts / does not reset, via neurocc's Lava process model
    assert t["loihi1"].reset_modes == ("zero",) and t["spinnaker"].reset_modes == ("zero",)
    assert set(t["loihi2"].reset_modes) == {"zero", "subtract", "none"}
    # "none" (no reset: snnTorch reset_mechanism="none") added with issue 12; the int8 numerics implement it
    assert set(t["edge-cpu"].reset_modes) == {"zero", "subtract", "none"}


def test_figures_match_the_research_notes() -> None:
    """Values as stated in shared/research (lava-loihi.md §6, spinnaker.md §3), not in the code."""
    t = load_targets()
    l1, l2, sp, sp2 = (t[n].limits for n in ("loihi1", "loihi2", "spinnaker", "spinnaker2"))
    assert (l1.cores_per_chip, l1.neurons_per_core) == (128, 1024)
    assert l1.synapse_memory_bits_per_core == 128 * 1024 * 8  # 128 KiB, MAX_SYNAPSE_BITS = 1,048,576
    assert (l1.fan_in_axons_per_core, l1.fan_out_axons_per_core) == (4096, 4096)
    assert (l2.cores_per_chip, l2.neurons_per_core) == (128, 8192)
    assert (sp.cores_per_chip, sp.neurons_per_core) == (16, 256)
    assert (sp.sdram_bytes_per_chip, sp.routing_entries_per_chip) == (123469792, 1023)
    assert (sp2.cores_per_chip, sp2.routing_entries_per_chip) == (152, 16384)
    assert t["loihi1"].energy.pj_per_synop == 23.6  # Davies et al. 2018


def test_every_figure_has_a_source_comment() -> None:
    """Each numeric value in targets.yaml carries a comment on its line or just above it."""
    lines = (REPO / "targets.yaml").read_text().splitlines()
    number = re.compile(r"^\s+[a-z_]+:\s+-?[0-9][0-9.]*\s*(#.*)?$")
    missing = []
    for i, line in enumerate(lines):
        if number.match(line) and not line.lstrip().startswith("version"):
            above = lines[i - 1].strip() if i else ""
            if "#" not in line and not above.startswith("#"):
                missing.append(f"line {i + 1}: {line.strip()}")
    assert not missing, "figures without a source comment:\n" + "\n".join(missing)


def test_backend_names_are_registered() -> None:
    assert set(BACKENDS) <= set(REGISTRY)


def test_package_copy_is_the_repository_file() -> None:
    """neurocc/targets.yaml (package data) is the root targets.yaml, not a second copy."""
    assert BUILTIN.read_bytes() == (REPO / "targets.yaml").read_bytes()


def test_api_targets_is_callable_and_a_module() -> None:
    assert set(neurocc.targets()) == CONTRACT_NAMES
    assert neurocc.targets.get_target("loihi1").limits.neurons_per_core == 1024
    assert neurocc.get_target("emulator").backend == "emulator"


# ----- user files --------------------------------------------------------------------------------
def test_user_file_with_a_new_chip(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD_ENTRY)
    targets = load_targets(path)
    assert list(targets) == ["mychip"]
    chip = get_target("mychip", path)
    assert (chip.dt, chip.limits.chips, chip.limits.neurons_per_chip) == (0.0005, 2, 400)


def test_extends_builtin_keeps_the_shipped_chips(tmp_path: Path) -> None:
    path = _write(tmp_path, "extends: builtin\n" + GOOD_ENTRY.replace("version: 1\n", ""))
    targets = load_targets(path)
    assert set(targets) == CONTRACT_NAMES | {"mychip"}


def test_typo_in_a_key_names_line_key_and_suggestion(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("neurons_per_core: 100", "neuron_per_core: 100")
    msg = _error(_write(tmp_path, text))
    line = _line_of(text, "neuron_per_core")
    assert f"line {line}: targets.mychip.limits.neuron_per_core" in msg
    assert "did you mean 'neurons_per_core'" in msg
    assert str(tmp_path / "my.yaml") in msg


def test_wrong_type_names_line_and_key(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("chips: 2", "chips: two")
    msg = _error(_write(tmp_path, text))
    assert f"line {_line_of(text, 'chips: two')}: targets.mychip.limits.chips: expected an integer" in msg


def test_exponent_number_hint(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("dt: 0.0005", "dt: 5e-4")
    msg = _error(_write(tmp_path, text))
    assert f"line {_line_of(text, 'dt: 5e-4')}: targets.mychip.dt" in msg and "0.001" in msg


def test_unknown_numerics_lists_the_choices(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("numerics: int8", "numerics: int4")
    msg = _error(_write(tmp_path, text))
    assert f"line {_line_of(text, 'int4')}: targets.mychip.numerics: unknown value 'int4'" in msg
    assert "loihi, spinnaker, int8, float32" in msg


def test_unknown_backend_and_rule(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("backend: emulator", "backend: gpu").replace("rule: exact", "rule: close")
    msg = _error(_write(tmp_path, text))
    assert "targets.mychip.backend: unknown value 'gpu'" in msg
    assert "targets.mychip.validation.rule: unknown value 'close'" in msg


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (GOOD_ENTRY.replace("neurons_per_core", "neuron_per_core")
            .replace("chips: 2", "chips: '2'").replace("numerics: int8", "numerics: int4")
            .replace("    description: a test chip\n", ""))
    msg = _error(_write(tmp_path, text))
    assert "4 problem(s)" in msg
    assert "missing required key 'description'" in msg
    for needle in ("neuron_per_core", "limits.chips", "numerics"):
        assert needle in msg


def test_cross_field_rules(tmp_path: Path) -> None:
    # (issue 12: the loihi numerics implement subtract too, via neurocc's Lava process model;
    # spinnaker's IF_curr_exp still resets to a value only)
    text = (GOOD_ENTRY.replace("rule: exact", "rule: cosine").replace("numerics: int8", "numerics: spinnaker")
            + "    reset_modes: [zero, subtract]\n")
    msg = _error(_write(tmp_path, text))
    assert "needs a minimum" in msg and "min_cosine" in msg
    assert "numerics 'spinnaker' implements reset zero only, not 'subtract'" in msg


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = GOOD_ENTRY.replace("chips: 2", "chips: [2")
    msg = _error(_write(tmp_path, text))
    assert re.search(r"line \d+: not valid YAML", msg)


def test_duplicate_key(tmp_path: Path) -> None:
    text = GOOD_ENTRY + "    dt: 0.002\n"
    msg = _error(_write(tmp_path, text))
    assert f"line {len(text.splitlines())}: targets.mychip.dt: duplicate key" in msg


def test_missing_and_empty_files(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "nope.yaml")
    assert "empty" in _error(_write(tmp_path, "# nothing\n"))
    assert "missing required key 'targets'" in _error(_write(tmp_path, "version: 1\n"))


def test_unknown_target_lists_the_known_names() -> None:
    with pytest.raises(TargetsError) as info:
        get_target("loihi3")
    msg = str(info.value)
    assert "unknown target 'loihi3'" in msg and "did you mean 'loihi2'" in msg
    for name in CONTRACT_NAMES:
        assert name in msg
