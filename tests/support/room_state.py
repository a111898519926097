"""A room's whole state and first events, as the server gives them to its admin."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bots.matrix.client_api import ClientAPI


async def full_state(api: ClientAPI, room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    events = await api.request("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state")
    return {(e["type"], e["state_key"]): e["content"] for e in events}  # type: ignore[index]


async def first_events(api: ClientAPI, room_id: str) -> list[dict[str, Any]]:
    data = await api.request(
        "GET",
        f"/_matrix/client/v3/rooms/{quote(room_id)}/messages",
        params={"dir": "f", "limit": "50"},
    )
    return list(data["chunk"])
