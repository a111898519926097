# Shared set-up for scripts/dev.sh and scripts/test.sh (sourced, not run).
# Creates .venv with Hearth and its development extras; idempotent and quick
# when nothing changed. Works on a fresh Debian 12 with Python 3.11.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "hearth: need root to run: $*" >&2; exit 1; fi
}

apt_install() {
    # apt-get update once per run, only when something is missing.
    if [ -z "${_HEARTH_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        _HEARTH_APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null; then
    apt_install python3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "hearth: Python 3.11 or newer is required (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.hearth-installed"
# constraints.txt pins every package (the E2EE stack included) to the versions
# the tests ran with; the playbook installs with the same file.
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "hearth: installing Python packages into .venv (first run takes a minute)..." >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
    echo "$want" > "$stamp"
fi
