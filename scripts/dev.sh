#!/usr/bin/env bash
# Run Hearth on this machine: a private Synapse on 127.0.0.1 (SQLite), demo
# accounts, an encrypted room and the bot. Prints the logins; Ctrl-C stops.
# Extra arguments go to `hearth dev` (try --help).
source "$(dirname "$0")/lib/setup.sh"
exec .venv/bin/hearth dev "$@"
