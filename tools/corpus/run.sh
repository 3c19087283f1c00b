#!/usr/bin/env bash
# Build the training corpus: bash tools/corpus/run.sh --out corpus/ [extract.py options]
#
# Creates the pinned venv (.venv-corpus at the repo root, or $WAVEJAM_CORPUS_VENV) when it is
# missing or requirements.txt changed, then runs extract.py with every argument passed through.
# `run.sh --self-test` runs the unit tests instead. Needs python3 with venv (Debian: python3-venv)
# and PyPI the first time. Exit status: extract.py's (2 = bad arguments), 3 = no usable python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${WAVEJAM_CORPUS_VENV:-$repo/.venv-corpus}"
python="${PYTHON:-python3}"
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "run.sh: $python not found; install Python 3.11+ (Debian: apt-get install python3 python3-venv)" >&2
    exit 3
fi

# Everything about the environment goes to stderr, so stdout is extract.py's alone.
if [[ ! -x "$venv/bin/python" ]]; then
    echo "run.sh: creating $venv" >&2
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >&2; then
        rm -rf "$venv"
        echo "run.sh: '$python -m venv' failed; on Debian: apt-get install python3-venv" >&2
        exit 3
    fi
fi
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "run.sh: installing $(grep -c '==' "$requirements") pinned packages into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    echo "$want" >"$stamp"
fi

if [[ "${1:-}" == "--self-test" ]]; then
    shift
    exec "$venv/bin/python" -m unittest discover -s "$here" -p 'test_*.py' "$@"
fi
exec "$venv/bin/python" "$here/extract.py" "$@"
