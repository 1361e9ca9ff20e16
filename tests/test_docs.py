"""The documentation agrees with the code: links resolve, commands and flags exist, targets exist.

Scans README.md and docs/**/*.md (fast: no model is loaded, nothing is run):

* every relative Markdown link points to an existing file, and its ``#anchor`` (if any) to a
  heading of that file (GitHub's slug rules);
* every ``neurocc <command>`` written as a command (a code-block line or an inline code span that
  starts with ``neurocc``) names a real subcommand of :func:`neurocc.cli.build_parser`;
* every option on such a command line exists for its subcommand (or for ``neurocc`` itself when
  it comes before the subcommand);
* every target named by ``--target``/``--only``/``neurocc targets NAME``/``target="..."``/
  ``get_target("...")`` exists in the shipped targets.yaml (command lines that pass their own
  ``--targets FILE`` are skipped: their targets live in that file).
"""
from __future__ import annotations

import argparse
import re
import shlex
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"^(\s*)(```|~~~)(.*)$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
COMMAND_START = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:\S*/)?neurocc(?:\s+|$)")
PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_.,]*|[a-z](?:,[a-z])*|<.*|.*\.\.\..*|\[.*)$")


# ----- reading the pages ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    page: Path
    number: int
    text: str
    code: str | None  # None: prose; else the fence's info string ("" for a bare fence)


def lines_of(page: Path) -> list[Line]:
    out, fence, info = [], None, None
    for i, text in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(text)
        if m and (fence is None or m.group(2) == fence):
            if fence is None:
                fence, info = m.group(2), m.group(3).strip().lower()
            else:
                fence, info = None, None
            continue
        out.append(Line(page, i, text, info if fence is not None else None))
    return out


def where(line: Line) -> str:
    return f"{line.page.relative_to(ROOT)}:{line.number}"


def slug(heading: str) -> str:
    """GitHub's heading anchor: inline markup dropped, lower case, punctuation removed, spaces → '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").lower()
    kept = [c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN"]
    return "".join(kept).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in lines_of(page):
        m = HEADING.match(line.text) if line.code is None else None
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return frozenset(found)


def command_lines() -> list[tuple[Line, str]]:
    """Every shell command that runs ``neurocc``: code-block lines (not Python blocks; ``\\``
    continuations joined, comments dropped) and inline code spans starting with ``neurocc``."""
    found = []
    for page in PAGES:
        lines = lines_of(page)
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.code is not None and line.code not in ("python", "py", "json", "yaml", "yml"):
                text = line.text
                while text.rstrip().endswith("\\") and i + 1 < len(lines) and lines[i + 1].code is not None:
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].text.strip()
                if COMMAND_START.match(text.strip()):
                    found.append((line, text.strip()))
            elif line.code is None:
                for m in INLINE_CODE.finditer(line.text):
                    span = m.group(2).strip()
                    if COMMAND_START.match(span):
                        found.append((line, span))
            i += 1
    return found


def tokens(command: str) -> list[str]:
    """The words after ``neurocc``: comments, ``[``/``]`` of optional parts and output after a
    ``:`` (error messages quoted in the docs) removed."""
    text = re.split(r"\s#\s|\s#$", " " + command + " ", maxsplit=1)[0]
    text = COMMAND_START.sub("", text.strip(), count=1)
    text = text.replace("[", " ").replace("]", " ").replace("|", " ")
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    out = []
    for w in words:
        if w in ("&&", ";", ">", "2>&1") or w.startswith(">"):
            break
        out.append(w)
    return out


# ----- the parser ----------------------------------------------------------------------------------
@cache
def parser() -> argparse.ArgumentParser:
    from neurocc.cli import build_parser

    return build_parser()


def subparsers() -> dict[str, argparse.ArgumentParser]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("neurocc's parser has no subcommands")


def options(p: argparse.ArgumentParser) -> set[str]:
    return {s for a in p._actions for s in a.option_strings}


def split_command(words: list[str]) -> tuple[list[str], str | None, list[str]]:
    """(options before the subcommand, the subcommand or None, the words after it). A subcommand
    followed by ``:`` is a quoted message (``neurocc run: <error>``): its words are not arguments."""
    top: list[str] = []
    for k, w in enumerate(words):
        if w.startswith("-"):
            top.append(w)
            continue
        if w.endswith(":"):
            return top, w[:-1], []
        return top, w, words[k + 1:]
    return top, None, []


# ----- tests ---------------------------------------------------------------------------------------
def test_the_pages_exist() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) >= 10, [str(p) for p in PAGES]


def test_relative_links_resolve() -> None:
    bad, checked = [], 0
    for page in PAGES:
        for line in lines_of(page):
            if line.code is not None:
                continue
            prose = INLINE_CODE.sub("", line.text)
            for m in LINK.finditer(prose):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, file:
                    continue
                path_part, _, anchor = target.partition("#")
                dest = (page.parent / path_part).resolve() if path_part else page
                checked += 1
                if not dest.exists():
                    bad.append(f"{where(line)}: link to {target}: {dest} does not exist")
                elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                    bad.append(f"{where(line)}: link to {target}: no heading with anchor '#{anchor}' in "
                               f"{dest.relative_to(ROOT)}")
    assert checked > 20, f"only {checked} relative links found: the scanner is broken"
    assert not bad, "\n".join(bad)


def test_table_rows_have_as_many_cells_as_their_header() -> None:
    """An unescaped `|` inside a cell (e.g. `|x|` in code) splits it and shifts the columns."""
    bad = []
    for page in PAGES:
        width = None
        for line in lines_of(page):
            if line.code is None and line.text.startswith("|"):
                n = len(re.findall(r"(?<!\\)\|", line.text))
                if width is None:
                    width = n
                elif n != width:
                    bad.append(f"{where(line)}: {n - 1} cells, the header has {width - 1} (escape | as \\|)")
            else:
                width = None
    assert not bad, "\n".join(bad)


def test_every_named_subcommand_exists() -> None:
    subs = subparsers()
    found, bad = set(), []
    for line, command in command_lines():
        _, sub, _ = split_command(tokens(command))
        if sub is None or sub.startswith("<") or sub == "...":
            continue
        found.add(sub)
        if sub not in subs:
            bad.append(f"{where(line)}: `neurocc {sub}` is not a subcommand (they are: {', '.join(subs)})")
    assert not bad, "\n".join(bad)
    # the scan really sees commands: the docs show most of them
    assert {"compile", "run", "validate", "evaluate", "deploy", "report", "quickstart"} <= found, found


def test_every_option_exists_for_its_subcommand() -> None:
    subs = subparsers()
    bad, checked = [], 0
    for line, command in command_lines():
        top, sub, rest = split_command(tokens(command))
        for w in top:
            checked += 1
            if w.split("=")[0] not in options(parser()):
                bad.append(f"{where(line)}: `neurocc {w}`: neurocc has no option {w}")
        if sub not in subs:
            continue
        own = options(subs[sub])
        for w in rest:
            if not w.startswith("-") or re.match(r"^-\d", w):
                continue
            checked += 1
            if w.split("=")[0] not in own:
                bad.append(f"{where(line)}: `neurocc {sub} ... {w}`: `{sub}` has no option {w.split('=')[0]} "
                           f"(it has: {', '.join(sorted(own))})")
    assert checked > 30, f"only {checked} options found: the scanner is broken"
    assert not bad, "\n".join(bad)


OTHER_PROGRAM = re.compile(r"^(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:\S*/)?(?:python3?(?:\.11)?|pip|make|setup\.sh)\b")
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


@cache
def source_text() -> str:
    """The scripts a page may show flags of: examples, benchmarks, the set-up, the Makefile, and
    neurocc's own files (the bundle runner, the emitted PyNN script)."""
    files = [ROOT / "Makefile", *ROOT.glob("scripts/*"), *ROOT.glob("examples/*.py"),
             *ROOT.glob("benchmarks/*.py"), *ROOT.rglob("neurocc/**/*.py")]
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files if f.is_file())


def test_flags_of_other_programs_exist_in_their_sources() -> None:
    """Flags shown for `python examples/...`, `python bundle/run.py`, benchmarks, pip or the set-up
    script (and any `--flag` in inline code) are neurocc options or occur in the repository's
    scripts, so a renamed or misspelt flag is caught."""
    known = options(parser()).union(*(options(p) for p in subparsers().values()))
    texts = []
    for page in PAGES:
        for line in lines_of(page):
            if line.code is None:
                texts += [(line, m.group(2)) for m in INLINE_CODE.finditer(line.text)]
            elif line.code not in ("python", "py", "json", "yaml", "yml") and OTHER_PROGRAM.match(line.text.strip()):
                texts.append((line, line.text.split(" #")[0]))
    bad, checked = [], 0
    for line, text in texts:
        for flag in FLAG.findall(text):
            checked += 1
            if flag not in known and flag not in source_text():
                bad.append(f"{where(line)}: {flag} is neither a neurocc option nor found in the repository's scripts")
    assert checked > 30, f"only {checked} flags found: the scanner is broken"
    assert not bad, "\n".join(bad)


def _names(value: str) -> list[str]:
    value = value.strip("`'\".,;:)")
    if not value or PLACEHOLDER.match(value):
        return []
    return [n for n in value.split(",") if n and not PLACEHOLDER.match(n)]


def named_targets() -> list[tuple[Line, str]]:
    found = []
    for line, command in command_lines():
        words = tokens(command)
        if "--targets" in words or any(w.startswith("--targets=") for w in words):
            continue
        _, sub, rest = split_command(words)
        for k, w in enumerate(rest):
            flag, _, inline = w.partition("=")
            if flag in ("--target", "--only"):
                value = inline or (rest[k + 1] if k + 1 < len(rest) else "")
                found += [(line, n) for n in _names(value)]
        if sub == "targets" and rest and not rest[0].startswith("-"):
            found += [(line, n) for n in _names(rest[0])]
    python = re.compile(r"""(?:\btarget\s*=\s*|get_target\(\s*)["']([A-Za-z0-9._-]+)["']""")
    for page in PAGES:
        for line in lines_of(page):
            found += [(line, m.group(1)) for m in python.finditer(line.text)]
    return found


def test_every_named_target_exists() -> None:
    from neurocc.targets import load_targets

    known = set(load_targets())
    found = named_targets()
    bad = [f"{where(line)}: target '{name}' is not in targets.yaml (known: {', '.join(sorted(known))})"
           for line, name in found if name not in known]
    assert len(found) > 10, f"only {len(found)} target names found: the scanner is broken"
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("heading, expected", [
    ("Export for Loihi hardware: `network.net` (lava-dl netx)", "export-for-loihi-hardware-networknet-lava-dl-netx"),
    ("5. Run, validate, evaluate", "5-run-validate-evaluate"),
    ("Deploy and the bundle's run.py", "deploy-and-the-bundles-runpy"),
    ("Profile `int8`: integer arithmetic for an edge CPU", "profile-int8-integer-arithmetic-for-an-edge-cpu"),
])
def test_slug_follows_githubs_rules(heading: str, expected: str) -> None:
    # expected anchors as GitHub renders them for these headings of this repository's pages
    assert slug(heading) == expected


def test_scanner_reads_commands_as_written() -> None:
    line = "neurocc compile m.nir --target loihi2 -o out [--dt 0.001]   # a comment --nothere"
    assert tokens(line) == ["compile", "m.nir", "--target", "loihi2", "-o", "out", "--dt", "0.001"]
    assert split_command(tokens("$ .venv/bin/neurocc --debug run DIR --record")) == (["--debug"], "run", ["DIR", "--record"])
    assert split_command(tokens("neurocc targets: my.yaml: 3 problem(s)")) == ([], "targets", [])
    assert COMMAND_START.match("NEUROCC_SPINNAKER_SIMULATOR=brian2 neurocc run x")
    assert not COMMAND_START.match("from neurocc import compile")
    assert _names("loihi1,spinnaker") == ["loihi1", "spinnaker"] and _names("T") == [] and _names("a,b") == []
