#!/usr/bin/env bash
# Set up neurocc's environment in .venv (idempotent): `make demo` and `make test` call this.
#
#   1. python3.11 -m venv .venv
#   2. pip install -r requirements/base.txt                       (every backend's toolchain)
#   3. pip install --no-deps --ignore-requires-python -r requirements/lava.txt  (Lava, see docs)
#   4. pip install --no-deps -r requirements/no-deps.txt           (Sinabs, Norse, Rockpool, nirtorch)
#   5. pip install --no-deps -e .                                  (neurocc itself, editable)
#
# A stamp file in .venv holds a hash of the requirement files, pyproject.toml and this script;
# when it matches, nothing is done. Change a dependency and the next run installs again.
#
# Usage: scripts/setup.sh [--check | --hash]
#   --check  exit 0 if the set-up is current, 1 if not (installs nothing)
#   --hash   print the hash the stamp must hold
# Environment: NEUROCC_VENV (default .venv), PYTHON (interpreter to create it with).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${NEUROCC_VENV:-.venv}"
STAMP="$VENV/.neurocc-setup"
INPUTS=(pyproject.toml requirements/base.txt requirements/lava.txt requirements/no-deps.txt scripts/setup.sh)

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

for f in "${INPUTS[@]}"; do [[ -f "$f" ]] || die "missing $ROOT/$f (is this a complete checkout?)"; done
HASH="$(cat "${INPUTS[@]}" | sha256sum | cut -d' ' -f1)"

current() {
    [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] &&
        "$VENV/bin/python" -c 'import neurocc' >/dev/null 2>&1
}

if [[ "${1:-}" == "--hash" ]]; then echo "$HASH"; exit 0; fi
if [[ "${1:-}" == "--check" ]]; then
    if current; then say "current ($VENV)"; exit 0; fi
    say "not current ($VENV): run scripts/setup.sh"; exit 1
fi
if current; then
    say "environment is current ($VENV); nothing to do"
    exit 0
fi

# A Python 3.11 interpreter: $PYTHON, python3.11, or python3 when it is 3.11.
is311() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; }
find_python() {
    local c
    for c in ${PYTHON:-} python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && is311 "$c"; then command -v "$c"; return 0; fi
    done
    return 1
}

if [[ -x "$VENV/bin/python" ]] && ! is311 "$VENV/bin/python"; then
    die "$VENV exists but is not Python 3.11 ($("$VENV/bin/python" --version 2>&1)); remove it (rm -rf $VENV) and rerun"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    PY="$(find_python)" || die "neurocc needs Python 3.11 (found: $(command -v python3 >/dev/null && python3 --version 2>&1 || echo 'no python3')). Install python3.11 (e.g. apt-get install python3.11 python3.11-venv, or pyenv install 3.11) or set PYTHON=/path/to/python3.11"
    say "creating $VENV with $PY"
    "$PY" -m venv "$VENV" || die "'$PY -m venv' failed; on Debian/Ubuntu install python3.11-venv"
fi

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export OPENBLAS_NUM_THREADS=1
start=$SECONDS
say "installing requirements/base.txt (torch CPU, onnx, nir, PyNN, NEST, brian2, sPyNNaker, ...)"
"${PIP[@]}" install -r requirements/base.txt ||
    die "installing requirements/base.txt failed (see pip's message above); check the package index settings (pip config list)"
say "installing Lava without its pins (requirements/lava.txt; docs/backends/loihi.md says why)"
"${PIP[@]}" install --no-deps --ignore-requires-python -r requirements/lava.txt ||
    die "installing requirements/lava.txt failed (see pip's message above)"
say "installing Sinabs, Norse, Rockpool and nirtorch without their pins (requirements/no-deps.txt says why)"
"${PIP[@]}" install --no-deps -r requirements/no-deps.txt ||
    die "installing requirements/no-deps.txt failed (see pip's message above)"
say "installing neurocc (editable)"
"${PIP[@]}" install --no-deps -e . || die "installing neurocc itself failed (see pip's message above)"
"$VENV/bin/python" -c 'import neurocc' || die "neurocc does not import after installation"
printf '%s\n' "$HASH" > "$STAMP"
say "done in $((SECONDS - start)) s; try: $VENV/bin/neurocc quickstart"
