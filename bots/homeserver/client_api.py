"""A minimal client-server API caller for set-up work (rooms, invites, joins).

Bots use nio through their session; this is for one-off administrative
steps such as `hearth dev` creating the demo room, where no encryption
session is needed because nothing is sent in the room.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from bots.errors import HomeserverError


class ClientAPI:
    def __init__(self, base_url: str, access_token: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self._token = access_token
        self._http = http

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

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self._http.request(
            method, f"{self.base_url}{path}", json=body, headers=headers
        ) as r:
            data: dict[str, Any] = await r.json(content_type=None) or {}
            if r.status >= 400:
                what = f"{method} {path.split('?')[0]}"
                reason = f"{data.get('errcode', '')} {data.get('error', '')}".strip()
                raise HomeserverError(f"{what} failed: HTTP {r.status} {reason}")
            return data

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

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        return await self.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key)}",
        )
