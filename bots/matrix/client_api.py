"""A minimal client-server API caller for set-up and admin work (rooms,
invites, joins, state, registration tokens, cross-signing keys), through
the account's :class:`~bots.matrix.transport.Transport`.

Bots send and receive through nio in their session; this is for steps where
no encryption session is needed because nothing is sent in a room:
provisioning, `hearth tokens`, `hearth dev`, the playbook's account helper,
and the bot's own calls nio has no method for (its crypto channel's, an
invite with a reason, ``m.direct``), on the bot's transport.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

from bots.matrix.transport import Transport


class ClientAPI:
    def __init__(self, base_url: str, access_token: str, transport: Transport) -> None:
        self.base_url = base_url
        self._token = access_token
        self.transport = transport
        # Calls made, by HTTP method: reads are GETs and the filtered sync.
        self.requests: Counter[str] = Counter()

    @property
    def access_token(self) -> str:
        return self._token

    @staticmethod
    async def login(
        base_url: str, user_id: str, password: str, transport: Transport, device_name: str
    ) -> str:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": device_name,
        }
        url = f"{base_url}/_matrix/client/v3/login"
        data = await transport.call("POST", url, what="login", body=body)
        return str(data["access_token"])

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        *,
        what: str | None = None,
        upload: tuple[bytes, str] | None = None,
    ) -> Any:
        """One API call, retried as `bots.matrix.transport` says; the reply's JSON.
        *what* names it in errors (default: the method and path).

        Raises:
            RequestError: the server refused (carries status and errcode).
            HomeserverError: the server could not be reached.
        """
        self.requests[method] += 1
        return await self.transport.call(
            method,
            f"{self.base_url}{path}",
            what=what or f"{method} {path.split('?')[0]}",
            token=self._token,
            body=body,
            params=params,
            upload=upload,
        )

    async def whoami(self) -> str:
        return str((await self.request("GET", "/_matrix/client/v3/account/whoami"))["user_id"])

    async def create_room(self, body: dict[str, Any]) -> str:
        return str((await self.request("POST", "/_matrix/client/v3/createRoom", body))["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/invite",
            {"user_id": user_id},
        )

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/join/{quote(room_id, safe='')}", {})

    async def joined_members(self, room_id: str) -> set[str]:
        data = await self.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/joined_members"
        )
        return set(data.get("joined", {}))

    async def put_state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        path = (
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/{quote(event_type, safe='')}"
        )
        await self.request("PUT", f"{path}/{quote(state_key, safe='')}", content)

    async def sync(self, filter_: dict[str, Any]) -> dict[str, Any]:
        """A full-state sync, filtered: one request for every joined room's state."""
        return await self.request(
            "GET",
            "/_matrix/client/v3/sync",
            params={"filter": json.dumps(filter_), "full_state": "true", "timeout": "0"},
        )

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        return await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
            f"/state/{quote(event_type, safe='')}/{quote(state_key, safe='')}",
        )
