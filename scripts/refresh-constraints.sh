#!/usr/bin/env bash
# Re-resolve every Python dependency (Hearth's and the test tools') in a
# scratch virtualenv and write the exact versions to constraints.txt, which
# scripts/dev.sh, scripts/test.sh, CI and the playbook all install with.
# Run it on purpose, review the diff, then run ./scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
scratch="$(mktemp -d)"
# pip builds in the source tree: leave nothing behind.
trap 'rm -rf "$scratch" "$ROOT/build"' EXIT
"${PYTHON:-python3}" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --upgrade pip
"$scratch/venv/bin/python" -m pip install -q ".[dev]"
{
    echo "# Exact versions of every Python package Hearth and its tests use."
    echo "# Made by scripts/refresh-constraints.sh; edit that, not this file."
    "$scratch/venv/bin/python" -m pip freeze --all --exclude hearth | grep -v -E '^(pip|setuptools|wheel)=='
} > constraints.txt
echo "constraints.txt refreshed: $(grep -c '==' constraints.txt) packages"
