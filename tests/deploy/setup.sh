#!/usr/bin/env bash
# Set up what the deploy test needs (idempotent, quick when done):
#   debootstrap, systemd-nspawn (systemd-container), the ssh client, nftables
#   (to check the firewall rules in a throwaway network namespace), and
#   Ansible with ansible-lint in tests/deploy/.venv (from PyPI; the
#   collections on Galaxy are not needed: the playbook uses ansible.builtin only).
# Needs root for apt-get. Called by scripts/test.sh and by the test itself.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ANSIBLE_CORE="ansible-core==2.19.14"
ANSIBLE_LINT="ansible-lint==26.10.1"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "deploy setup: need root to run: $*" >&2; exit 1; fi
}

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v ssh >/dev/null || missing+=(openssh-client)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="$HERE/.venv"
stamp="$venv/.hearth-deploy-installed"
want="$ANSIBLE_CORE $ANSIBLE_LINT"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$ANSIBLE_CORE" "$ANSIBLE_LINT"
    echo "$want" > "$stamp"
fi
