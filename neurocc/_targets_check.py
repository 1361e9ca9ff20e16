"""Reading and checking a targets file: YAML with the line of every key, and one pass that collects
every problem (unknown key with a suggestion, wrong type, missing key, unknown value, range and
cross-field rules) as ``line N: <key path>: <problem and fix>``.

Private helper of :mod:`neurocc.targets` (which holds the dataclasses, the constants and the
public ``load_targets``/``get_target``); the allowed keys of ``limits`` and ``energy`` are derived
from the dataclass fields, so a new field is a new allowed key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurocc.errors import TargetsError
from neurocc.targets import (BACKENDS, BUILTIN, DOCS, NUMERICS, NUMERICS_RESETS, READOUT_RULES, RESET_MODES,
                             RULES, Energy, Limits, Target, Validation)

# ----- schema -------------------------------------------------------------------------------------
# A key's spec: (kind, required, nullable, extra). Kinds: int, float, str, choice, choices (a list
# of choice), names (a list of strings), section (a mapping checked against its own table).
Spec = tuple[str, bool, bool, Any]


def _dataclass_specs(cls: type) -> dict[str, Spec]:
    """Specs of a section derived from its dataclass, so a new field is a new allowed key."""
    specs: dict[str, Spec] = {}
    for f in dataclasses.fields(cls):
        hint = str(f.type)
        kind = ("bool" if "bool" in hint else "int" if "int" in hint else "float" if "float" in hint
                else "str")
        specs[f.name] = (kind, False, "None" in hint, None)
    return specs


SECTIONS: dict[str, dict[str, Spec]] = {
    "limits": {**_dataclass_specs(Limits), "synapse_encoding": ("choice", False, True, ("loihi", "spinnaker_rows"))},
    "energy": _dataclass_specs(Energy),
    "validation": {"rule": ("choice", False, False, RULES),
                   "min_cosine": ("float", False, True, None),
                   "readout_rule": ("choice", False, False, READOUT_RULES),
                   "max_relative_error": ("float", False, True, None),
                   "readout_min_cosine": ("float", False, True, None)},
}
ENTRY: dict[str, Spec] = {
    "description": ("str", True, False, None),
    "backend": ("choice", True, True, BACKENDS),
    "numerics": ("choice", True, False, NUMERICS),
    "dt": ("float", True, False, None),
    "reset_modes": ("choices", False, False, RESET_MODES),
    "supported": ("names", False, False, None),
    "limits": ("section", False, False, "limits"),
    "energy": ("section", False, False, "energy"),
    "validation": ("section", False, False, "validation"),
}
TOP: dict[str, Spec] = {
    "version": ("int", False, False, None),
    "extends": ("choice", False, True, ("builtin",)),
    "targets": ("section", True, False, "targets"),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TYPE_WORD = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "text", "choice": "one of",
              "choices": "a list", "names": "a list of names", "section": "a mapping"}


MAX_DEPTH = 32
MAX_INT = 2 ** 62  # larger figures are not chip limits; they would overflow the int64/float arithmetic


# ----- reading YAML with line numbers -----------------------------------------------------------
Lines = dict[tuple[str, ...], int]


def _read(path: Path) -> tuple[Any, Lines, list[tuple[int, str]]]:
    """Parse ``path``: the data (keys kept as written), the line of every key path, duplicates."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TargetsError("targets file not found", where=str(path),
                           fix="check the path given to --targets") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TargetsError(f"cannot read the targets file ({err})", where=str(path),
                           fix="pass a readable UTF-8 YAML file to --targets") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: Lines = {}
        dups: list[tuple[int, str]] = []
        data = _convert(loader, node, (), lines, dups) if node is not None else None
    except TargetsError as err:
        raise TargetsError(err.what, where=str(path), fix=err.fix) from None
    except RecursionError:
        raise TargetsError("an alias refers to itself (a cycle of &anchors and *aliases)", where=str(path),
                           fix="remove the alias cycle; write the values out instead") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise TargetsError(f"{line}not valid YAML: {getattr(err, 'problem', None) or err}",
                           where=str(path),
                           fix="fix the YAML syntax at that line (indentation, a missing ':' "
                               "or an unclosed bracket or quote)") from None
    finally:
        loader.dispose()
    return data, lines, dups


def _convert(loader: Any, node: Any, path: tuple[str, ...], lines: Lines,
             dups: list[tuple[int, str]]) -> Any:
    import yaml

    if len(path) > MAX_DEPTH:
        raise TargetsError(f"line {node.start_mark.line + 1}: {_dotted(path[:3])}...: nested deeper than "
                           f"{MAX_DEPTH} levels (an alias that contains itself?)",
                           fix="remove the alias cycle (&name ... *name inside itself); targets need 3 levels")
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = str(knode.value)
            kpath = path + (key,)
            line = knode.start_mark.line + 1
            if key in out:
                dups.append((line, f"line {line}: {_dotted(kpath)}: duplicate key (first on "
                                   f"line {lines[kpath]}); delete or rename one of them"))
                continue
            lines[kpath] = line
            out[key] = _convert(loader, vnode, kpath, lines, dups)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (str(i),)] = item.start_mark.line + 1
            items.append(_convert(loader, item, path + (str(i),), lines, dups))
        return items
    return loader.construct_object(node, deep=True)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "(top level)"


# ----- validation -------------------------------------------------------------------------------
class _Checker:
    """Collects every problem of one file as ``(line, text)``; each text names the key and fix."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self.problems: list[tuple[int, str]] = []

    def add(self, path: tuple[str, ...], what: str) -> None:
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        self.problems.append((line or 1, f"line {line or 1}: {_dotted(path)}: {what}"))

    def mapping(self, data: Any, path: tuple[str, ...], specs: dict[str, Spec]) -> dict[str, Any]:
        """Check a mapping against ``specs``; return the accepted values (converted)."""
        if not isinstance(data, dict):
            self.add(path, f"expected a mapping of keys, got {_show(data)}; write `key: value` lines")
            return {}
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key not in specs:
                self.add(path + (key,), _unknown_key(key, specs))
                continue
            ok, converted = self.value(value, path + (key,), specs[key])
            if ok:
                out[key] = converted
        for key, (_, required, _, _) in specs.items():
            if required and key not in data:
                self.add(path, f"missing required key '{key}'; add `{key}: ...` (see {DOCS})")
        return out

    def value(self, value: Any, path: tuple[str, ...], spec: Spec) -> tuple[bool, Any]:
        kind, _, nullable, extra = spec
        if value is None:
            if nullable:
                return True, None
            self.add(path, f"must not be empty/null; give {_TYPE_WORD[kind]}"
                     + (f" {', '.join(extra)}" if kind == "choice" else ""))
            return False, None
        check: Callable[..., tuple[bool, Any]] = getattr(self, "_" + kind)
        return check(value, path, extra)

    def _int(self, value: Any, path: tuple[str, ...], _: Any) -> tuple[bool, Any]:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {_show(value)}{_number_hint(value)}")
            return False, None
        if abs(value) > MAX_INT:
            self.add(path, f"{str(value)[:8]}... ({len(str(abs(value)))} digits) is too large; give at most {MAX_INT} "
                           "(or null for no limit)")
            return False, None
        return True, value

    def _bool(self, value: Any, path: tuple[str, ...], _: Any) -> tuple[bool, Any]:
        if not isinstance(value, bool):
            self.add(path, f"expected true or false, got {_show(value)}")
            return False, None
        return True, value

    def _float(self, value: Any, path: tuple[str, ...], _: Any) -> tuple[bool, Any]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(path, f"expected a number, got {_show(value)}{_number_hint(value)}")
            return False, None
        if isinstance(value, int) and abs(value) > MAX_INT or not math.isfinite(value):
            self.add(path, f"{_show(value)} is not a finite number of reasonable size; give a plain number "
                           "(null where no figure is known)")
            return False, None
        return True, float(value)

    def _str(self, value: Any, path: tuple[str, ...], _: Any) -> tuple[bool, Any]:
        if not isinstance(value, str):
            self.add(path, f"expected text, got {_show(value)}; put it in quotes")
            return False, None
        return True, value

    def _choice(self, value: Any, path: tuple[str, ...], choices: tuple[str, ...]) -> tuple[bool, Any]:
        if value not in choices:
            self.add(path, f"unknown value {_show(value)}; use one of: {', '.join(choices)}"
                     + _did_you_mean(str(value), choices))
            return False, None
        return True, value

    def _choices(self, value: Any, path: tuple[str, ...], choices: tuple[str, ...]) -> tuple[bool, Any]:
        if not isinstance(value, list):
            self.add(path, f"expected a list like [{', '.join(choices)}], got {_show(value)}")
            return False, None
        oks = [self._choice(v, path + (str(i),), choices) for i, v in enumerate(value)]
        return all(ok for ok, _ in oks), tuple(v for _, v in oks)

    def _names(self, value: Any, path: tuple[str, ...], _: Any) -> tuple[bool, Any]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(path, f"expected a list of node kinds like [LIF, Linear], got {_show(value)}")
            return False, None
        return True, tuple(value)

    def _section(self, value: Any, path: tuple[str, ...], name: str) -> tuple[bool, Any]:
        return True, self.mapping(value, path, SECTIONS[name]) if name != "targets" else value


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


def _number_hint(value: Any) -> str:
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        if "e" in value.lower() and "." not in value:
            return "; YAML reads 1e-3 as text: write 1.0e-3 or 0.001"
        return "; remove the quotes"
    return ""


def _did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _unknown_key(key: str, specs: dict[str, Spec]) -> str:
    hint = _did_you_mean(key, list(specs))
    return f"unknown key '{key}'{hint} (allowed: {', '.join(specs)})"


def _entry(chk: _Checker, name: str, data: Any, path: tuple[str, ...]) -> Target | None:
    """Check one target entry; return the Target when it has no problems."""
    before = len(chk.problems)
    if not _NAME.match(name):
        chk.add(path, f"target name '{name}' may use letters, digits, '.', '_' and '-' only")
    vals = chk.mapping(data, path, ENTRY)
    sections = {s: vals.get(s, {}) for s in SECTIONS}
    _semantics(chk, path, vals, sections)
    if len(chk.problems) > before:
        return None
    return Target(name=name, description=vals["description"], backend=vals["backend"],
                  numerics=vals["numerics"], dt=vals["dt"],
                  limits=Limits(**sections["limits"]), energy=Energy(**sections["energy"]),
                  validation=Validation(**sections["validation"]),
                  reset_modes=vals.get("reset_modes", ("zero",)),
                  supported=vals.get("supported", ()))


def _semantics(chk: _Checker, path: tuple[str, ...], vals: dict[str, Any],
               sections: dict[str, dict[str, Any]]) -> None:
    """Range and cross-field rules (types were already checked)."""
    if "dt" in vals and not vals["dt"] > 0:
        chk.add(path + ("dt",), f"dt must be > 0 seconds, got {vals['dt']}; e.g. dt: 0.001")
    for key, value in sections["limits"].items():
        low = 0 if key == "max_delay_steps" else 1
        if value is not None and not isinstance(value, (bool, str)) and value < low:
            chk.add(path + ("limits", key), f"must be >= {low} (or null for no limit), got {value}")
    for key, value in sections["energy"].items():
        if value is not None and value < 0:
            chk.add(path + ("energy", key), f"must be >= 0 (or null when not published), got {value}")
    rule = sections["validation"].get("rule", "exact")
    cos = sections["validation"].get("min_cosine")
    vpath = path + ("validation",)
    if rule == "cosine" and cos is None:
        chk.add(vpath, "rule 'cosine' needs a minimum: add `min_cosine: 0.99` (a value in (0, 1])")
    elif cos is not None and rule != "cosine":
        chk.add(vpath + ("min_cosine",), "min_cosine only applies to `rule: cosine`; remove it "
                "or set the rule to cosine")
    elif cos is not None and not 0 < cos <= 1:
        chk.add(vpath + ("min_cosine",), f"must be in (0, 1], got {cos}")
    _readout_rule(chk, vpath, sections["validation"])
    allowed = NUMERICS_RESETS.get(vals.get("numerics", ""), RESET_MODES)
    for mode in vals.get("reset_modes", ()):
        if mode not in allowed:
            chk.add(path + ("reset_modes",), f"numerics '{vals['numerics']}' implements reset "
                    f"{', '.join(allowed)} only, not '{mode}'; remove it")
    supported = vals.get("supported", ())
    if supported:
        import neurocc.ir  # noqa: F401  (registers every node kind)
        from neurocc.ir.nodes import NODE_KINDS

        for i, kind in enumerate(supported):
            if kind not in NODE_KINDS:
                chk.add(path + ("supported", str(i)), f"unknown node kind '{kind}'"
                        + _did_you_mean(kind, list(NODE_KINDS)) + f" (kinds: {', '.join(NODE_KINDS)})")


def _readout_rule(chk: _Checker, vpath: tuple[str, ...], v: dict[str, Any]) -> None:
    """readout_rule relative_error takes max_relative_error (> 0); cosine takes readout_min_cosine."""
    rule = v.get("readout_rule", "relative_error")
    err, cos = v.get("max_relative_error"), v.get("readout_min_cosine")
    if rule == "cosine" and err is not None:
        chk.add(vpath + ("max_relative_error",), "max_relative_error only applies to `readout_rule: "
                "relative_error`; remove it or set readout_min_cosine")
    if rule == "relative_error" and cos is not None:
        chk.add(vpath + ("readout_min_cosine",), "readout_min_cosine only applies to `readout_rule: cosine`; "
                "remove it or set the readout rule to cosine")
    if rule == "cosine" and cos is None:
        chk.add(vpath, "readout_rule 'cosine' needs a minimum: add `readout_min_cosine: 0.99` (a value in (0, 1])")
    if err is not None and not err > 0:
        chk.add(vpath + ("max_relative_error",), f"must be > 0 (e.g. 0.1 = 10 %), got {err}")
    if cos is not None and not 0 < cos <= 1:
        chk.add(vpath + ("readout_min_cosine",), f"must be in (0, 1], got {cos}")


def parse_file(file: Path) -> tuple[dict[str, Target], bool]:
    """The targets defined in ``file`` and whether it says ``extends: builtin``."""
    data, lines, dups = _read(file)
    if data is None:
        raise TargetsError("the targets file is empty", where=str(file),
                           fix=f"add a `targets:` mapping of chips (copy {BUILTIN.name}; see {DOCS})")
    chk = _Checker(lines)
    chk.problems += dups
    top = chk.mapping(data, (), TOP)
    if "version" in top and top["version"] != 1:
        chk.add(("version",), f"unsupported version {top['version']}; this neurocc reads version 1")
    found: dict[str, Target] = {}
    raw = top.get("targets")
    if raw is not None and not isinstance(raw, dict):
        chk.add(("targets",), "expected a mapping of target names to entries")
    elif raw is not None and not raw:
        chk.add(("targets",), "no targets defined; add at least one entry")
    for name, entry in (raw if isinstance(raw, dict) else {}).items():
        target = _entry(chk, name, entry, ("targets", name))
        if target is not None:
            found[name] = target
    if chk.problems:
        problems = [text for _, text in sorted(chk.problems, key=lambda p: p[0])]
        raise TargetsError(f"{len(problems)} problem(s) in the targets file", where=str(file),
                           problems=problems,
                           fix=f"correct each line named above ({DOCS} describes every key)")
    return found, top.get("extends") == "builtin" and file.resolve() != BUILTIN
