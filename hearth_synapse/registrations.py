"""Tells Hearth's bot about each account registered through the client API,
and the peer group its registration token was made for.

Synapse records nothing of which token an account used. During
registration it hands password-auth modules the user-interactive auth
results, token included (``get_username_for_registration``); once the
account exists it calls ``on_user_registration``. This module joins the two
by username and writes one small JSON file per new account into a spool
folder that the bot reads and deletes:

    {"user_id": "@newcomer:example.org", "token_ref": "9f2c…", "registered_at": 1764000000}

``token_ref`` is how Hearth refers to a token without keeping it (a hash;
null for an account made without a token): the admin agent maps it to the
group that ``hearth tokens create --group`` made it for. Accounts made with
the admin API or the shared secret (bots, staff) do not pass through client
registration and are not written. The module logs no user ID.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

TOKEN_LOGIN_TYPE = "m.login.registration_token"
# A registration that does not complete within this long is forgotten.
PENDING_TTL_S = 3600.0


def token_ref(token: str) -> str:
    """How Hearth refers to a token without keeping it (provisioning/tokens.py)."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class SpoolConfig:
    spool_dir: Path
    file_mode: int


class RegistrationSpool:
    def __init__(self, config: SpoolConfig, api: Any) -> None:
        self._config = config
        self._api = api
        # username → (token reference or None, when seen); joined with the
        # account once it exists. In memory: a Synapse restart between the
        # two steps of one registration loses only that account's group.
        self._pending: dict[str, tuple[str | None, float]] = {}
        api.register_password_auth_provider_callbacks(get_username_for_registration=self._remember)
        api.register_account_validity_callbacks(on_user_registration=self._registered)

    @staticmethod
    def parse_config(config: dict[str, Any]) -> SpoolConfig:
        spool = config.get("spool_dir")
        if not isinstance(spool, str) or not spool.startswith("/"):
            raise ValueError("hearth_synapse: spool_dir must be an absolute path")
        mode = config.get("file_mode", 0o660)
        if not isinstance(mode, int) or mode & 0o007:
            raise ValueError("hearth_synapse: file_mode must be an int and give others nothing")
        return SpoolConfig(Path(spool), mode)

    async def _remember(self, uia_results: dict[str, Any], params: dict[str, Any]) -> None:
        username = params.get("username")
        if isinstance(username, str):
            token = uia_results.get(TOKEN_LOGIN_TYPE)
            now = time.monotonic()
            ref = token_ref(token) if isinstance(token, str) else None
            self._pending = {
                name: seen for name, seen in self._pending.items() if now - seen[1] < PENDING_TTL_S
            }
            self._pending[username.lower()] = (ref, now)
        return None  # Synapse keeps the username the client asked for

    async def _registered(self, user_id: str) -> None:
        # Synapse lowercases the username it registers, as _remember does.
        localpart = user_id[1:].split(":", 1)[0]
        seen = self._pending.pop(localpart, None)
        if seen is None:
            return  # not a client registration (admin API, shared secret)
        try:
            entry = {"user_id": user_id, "token_ref": seen[0], "registered_at": int(time.time())}
            self._write(entry)
        except Exception:
            # Registration must not fail because of us; the bot then never
            # hears of this account, which the log line makes visible.
            logger.exception("hearth_synapse: could not record a new registration")

    def _write(self, entry: dict[str, Any]) -> None:
        folder = self._config.spool_dir
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(entry["user_id"].encode()).hexdigest()[:16]
        final = folder / f"{time.time_ns()}-{name}.json"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(entry, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, self._config.file_mode)
            # Complete or absent: the bot never reads half a file.
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
