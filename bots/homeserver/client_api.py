"""A minimal client-server API caller for set-up work (rooms, invites, joins).

Bots use nio through their session; this is for one-off administrative
steps such as `hearth dev` creating the demo room, where no encryption
session is needed because nothing is sent in the room.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import aiohttp

from bots.errors import HomeserverError

MAX_RATE_LIMITED = 20


class RequestError(HomeserverError):
    """The homeserver answered with an error."""

    def __init__(self, what: str, status: int, data: dict[str, Any]) -> None:
        self.status = status
        self.errcode = str(data.get("errcode", ""))
        reason = f"{self.errcode} {data.get('error', '')}".strip()
        super().__init__(f"{what} failed: HTTP {status} {reason}")


class ClientAPI:
    def __init__(self, base_url: str, access_token: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self._token = access_token
        self._http = http
        # Requests made, by HTTP method: reads are GETs and the filtered sync.
        self.requests: Counter[str] = Counter()

    @property
    def access_token(self) -> str:
        return self._token

    @staticmethod
    async def login(
        base_url: str, user_id: str, password: str, http: aiohttp.ClientSession, device_name: str
    ) -> str:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "initial_device_display_name": device_name,
        }
        async with http.post(f"{base_url}/_matrix/client/v3/login", json=body) as r:
            data = await r.json()
            if r.status != 200:
                raise HomeserverError(f"login failed: HTTP {r.status} {data.get('errcode', '')}")
            return str(data["access_token"])

    async def request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """One API call. Waits out 429s as the server asks; other errors raise.

        Raises:
            RequestError: the server refused (carries status and errcode).
            HomeserverError: the server could not be reached.
        """
        headers = {"Authorization": f"Bearer {self._token}"}
        what = f"{method} {path.split('?')[0]}"
        for _ in range(MAX_RATE_LIMITED):
            self.requests[method] += 1
            try:
                async with self._http.request(
                    method, f"{self.base_url}{path}", json=body, headers=headers, params=params
                ) as r:
                    data: dict[str, Any] = await r.json(content_type=None) or {}
                    status = r.status
            except aiohttp.ClientError as exc:
                raise HomeserverError(
                    f"{what}: homeserver unreachable ({exc.__class__.__name__})"
                ) from None
            if status == 429:
                await asyncio.sleep(min(30.0, int(data.get("retry_after_ms", 1000)) / 1000))
                continue
            if status >= 400:
                raise RequestError(what, status, data)
            return data
        raise RequestError(what, 429, {"errcode": "M_LIMIT_EXCEEDED"})

    async def whoami(self) -> str:
        return str((await self.request("GET", "/_matrix/client/v3/account/whoami"))["user_id"])

    async def create_room(self, body: dict[str, Any]) -> str:
        return str((await self.request("POST", "/_matrix/client/v3/createRoom", body))["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request(
            "POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite", {"user_id": user_id}
        )

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/join/{quote(room_id)}", {})

    async def joined_members(self, room_id: str) -> set[str]:
        data = await self.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members"
        )
        return set(data.get("joined", {}))

    async def put_state(
        self, room_id: str, event_type: str, state_key: str, content: dict[str, Any]
    ) -> None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}"
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
            f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}",
        )
