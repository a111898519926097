"""The archive bot's calls as a Matrix application service.

Everything that places events in the archive goes with the application
service's token (``as_token``): Synapse then keeps each event's original
time (``?ts=``, the spec's "timestamp massaging", accepted only from an
application service) and does not rate-limit the registration
(``rate_limited: false``). A 429 is still waited out, as every Hearth call
is (`bots.matrix.transport`).

Calls that belong to the bot's encryption device (key upload, key queries,
to-device messages) go through nio with the device's own token instead:
see `bridge.archivist`.

Each send carries a transaction ID the caller derives from what is sent,
so a send repeated after an interruption is the same send to Synapse.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import RequestError, Transport

JsonDict = dict[str, Any]


def _room(room_id: str) -> str:
    return quote(room_id, safe="")


class AppService:
    def __init__(
        self, base_url: str, as_token: str, sender: str, http: aiohttp.ClientSession
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self._api = ClientAPI(self.base_url, as_token, Transport(http))

    async def register(self) -> None:
        """Make the sender an account of its own, once: Synapse keeps no
        account for it, and a device's token is honoured only for an account."""
        body = {
            "type": "m.login.application_service",
            "username": self.sender[1:].split(":", 1)[0],
            "inhibit_login": True,
        }
        try:
            await self._api.request(
                "POST", "/_matrix/client/v3/register", body, what="registering the archive bot"
            )
        except RequestError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise

    async def login(self, device_name: str, device_id: str | None) -> tuple[str, str]:
        """A device of the sender (``m.login.application_service``): its ID
        and access token. *device_id*: log in to this device again."""
        body: JsonDict = {
            "type": "m.login.application_service",
            "identifier": {"type": "m.id.user", "user": self.sender},
            "initial_device_display_name": device_name,
        }
        if device_id:
            body["device_id"] = device_id
        data = await self._api.request(
            "POST", "/_matrix/client/v3/login", body, what="application service login"
        )
        return str(data["device_id"]), str(data["access_token"])

    async def create_room(self, body: JsonDict) -> str:
        data = await self._api.request(
            "POST", "/_matrix/client/v3/createRoom", body, what="creating the archive room"
        )
        return str(data["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self._api.request(
            "POST",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/invite",
            {"user_id": user_id},
            what="inviting the community bot",
        )

    async def leave(self, room_id: str) -> None:
        await self._api.request(
            "POST",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/leave",
            {},
            what="leaving the archive room",
        )

    async def joined(self, room_id: str) -> set[str]:
        data = await self._api.request(
            "GET",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/joined_members",
            what="reading the archive's members",
        )
        return set(data.get("joined", {}))

    async def send(
        self, room_id: str, event_type: str, content: JsonDict, txn_id: str, ts_ms: int
    ) -> str:
        """Send one event stamped with *ts_ms*; its event ID."""
        data = await self._api.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/send/{quote(event_type)}/{txn_id}",
            content,
            {"ts": str(ts_ms)},
            what="sending to the archive",
        )
        return str(data["event_id"])

    async def put_state(
        self, room_id: str, event_type: str, content: JsonDict, state_key: str = ""
    ) -> str:
        data = await self._api.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/state/{quote(event_type)}/"
            f"{quote(state_key, safe='')}",
            content,
            what="marking the archive",
        )
        return str(data["event_id"])

    async def upload(self, data: bytes, filename: str) -> str:
        """Upload (already encrypted) bytes; their ``mxc://`` URI."""
        reply = await self._api.request(
            "POST",
            "/_matrix/media/v3/upload",
            params={"filename": filename},
            what="uploading an attachment",
            upload=(data, "application/octet-stream"),
        )
        return str(reply["content_uri"])

    async def upload_limit(self) -> int:
        """The largest upload the server takes, in bytes (its media config)."""
        reply = await self._api.request(
            "GET", "/_matrix/client/v1/media/config", what="asking the upload limit"
        )
        size = reply.get("m.upload.size") if isinstance(reply, dict) else None
        # A server that does not say: Synapse's default.
        return size if isinstance(size, int) and size > 0 else 50 * 1024**2

    async def latest(self, room_id: str, limit: int) -> list[JsonDict]:
        """The room's last *limit* events, newest first."""
        data = await self._api.request(
            "GET",
            f"/_matrix/client/v3/rooms/{_room(room_id)}/messages",
            params={"dir": "b", "limit": str(limit)},
            what="reading the archive's last events",
        )
        return list(data.get("chunk", []))
