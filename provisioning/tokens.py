"""Registration tokens for onboarding waves, through Synapse's admin API.

A token may be tied to a peer group, so the onboarding bot knows where a
newcomer belongs. The tie is kept on the server, in the admin account's
data, under a hash of the token: the token itself is shown once and stored
nowhere else by Hearth.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import RequestError

GROUPS_ACCOUNT_DATA = "org.hearth.registration_token_groups"


# Letters and digits only. Synapse's own tokens may use "-", and one that
# begins with it reads as an option to `hearth tokens revoke` (and to most
# command lines an organiser might paste it into).
TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 24  # about 143 bits


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def token_ref(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class TokenInfo:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_ms: int | None
    group: str | None

    def status(self, now_ms: int) -> str:
        if self.expiry_ms is not None and self.expiry_ms <= now_ms:
            return "expired"
        if self.uses_allowed is not None and self.completed >= self.uses_allowed:
            return "used up"
        return "valid"


class Tokens:
    def __init__(self, api: ClientAPI, admin_user_id: str) -> None:
        self.api = api
        user = quote(admin_user_id, safe="")
        self._data_path = f"/_matrix/client/v3/user/{user}/account_data/{GROUPS_ACCOUNT_DATA}"

    async def groups(self) -> dict[str, str]:
        """Token reference → group, for every token made for a group."""
        try:
            data = await self.api.request("GET", self._data_path)
        except RequestError as exc:
            if exc.status == 404:
                return {}
            raise
        return {k: v for k, v in data.items() if isinstance(v, str)}

    async def create(self, uses: int, expires: timedelta, group: str | None) -> TokenInfo:
        expiry = int((time.time() + expires.total_seconds()) * 1000)
        data = await self.api.request(
            "POST",
            "/_synapse/admin/v1/registration_tokens/new",
            {"uses_allowed": uses, "expiry_time": expiry, "token": new_token()},
        )
        info = _info(data, group)
        if group is not None:
            groups = await self.groups()
            groups[token_ref(info.token)] = group
            await self.api.request("PUT", self._data_path, groups)
        return info

    async def list(self) -> list[TokenInfo]:
        data = await self.api.request("GET", "/_synapse/admin/v1/registration_tokens")
        groups = await self.groups()
        return [
            _info(t, groups.get(token_ref(t["token"]))) for t in data.get("registration_tokens", [])
        ]

    async def revoke(self, token: str) -> bool:
        """Delete *token*; False if there was no such token."""
        path = f"/_synapse/admin/v1/registration_tokens/{quote(token, safe='')}"
        try:
            await self.api.request("GET", path)
        except RequestError as exc:
            if exc.status == 404:
                return False
            raise
        try:
            await self.api.request("DELETE", path)
        except RequestError as exc:
            # Gone already: a DELETE retried after a dropped connection finds
            # the token its first attempt removed.
            if exc.status != 404:
                raise
        groups = await self.groups()
        if groups.pop(token_ref(token), None) is not None:
            await self.api.request("PUT", self._data_path, groups)
        return True


def _info(data: dict[str, Any], group: str | None) -> TokenInfo:
    return TokenInfo(
        token=str(data["token"]),
        uses_allowed=data.get("uses_allowed"),
        pending=int(data.get("pending", 0)),
        completed=int(data.get("completed", 0)),
        expiry_ms=data.get("expiry_time"),
        group=group,
    )
