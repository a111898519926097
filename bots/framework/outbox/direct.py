"""The performer of :class:`SendDirect`: the bot's one encrypted DM with a
member, reused while they are in it, otherwise opened afresh and filed in
the bot's ``m.direct``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import quote

from nio import LocalProtocolError, RoomCreateResponse

from bots.base.errors import HomeserverError
from bots.framework.actions import SendDirect
from bots.framework.content import message_content
from bots.framework.logging import get_logger
from bots.framework.outbox.means import Failed, Means
from bots.framework.outbox.registry import performs
from bots.framework.trust.channel import CryptoChannel
from bots.matrix.nio_client import api_of
from bots.matrix.transport import RequestError

log = get_logger(__name__)


def merged_direct(current: Any, ours: dict[str, str]) -> dict[str, list[str]] | None:
    """The bot's ``m.direct`` with each of its own DMs (room to member) first
    in that member's list; None when *current* could not be read, so that
    nothing is written over entries the bot cannot see."""
    if not isinstance(current, dict):
        return None
    merged = dict(current)
    # The bot's own record goes in whole: a read that misses the last write
    # must not drop anyone's entry.
    for room, user in ours.items():
        rooms = merged.get(user)
        others = [r for r in rooms if r != room] if isinstance(rooms, list) else []
        merged[user] = [room, *others]
    return merged


@performs(SendDirect)
async def send_direct(means: Means, action: SendDirect, txn: str) -> Any:
    room_id = await direct_room(means, action.user_id)
    return await means.send_event(room_id, "m.room.message", message_content(action), txn)


async def direct_room(means: Means, user_id: str) -> str:
    """The bot's encrypted DM with *user_id*."""
    if means.directs is None:
        raise Failed("no direct-room store")
    client = means.client
    known = await means.directs.direct_room(user_id)
    room = client.rooms.get(known) if known else None
    if room is not None and (user_id in room.users or user_id in room.invited_users):
        return room.room_id
    if known is not None and room is None:
        # Not synced yet (just created, or before the first full sync):
        # trust the record rather than open a second DM.
        return known
    resp = await client.room_create(
        is_direct=True,
        invite=[user_id],
        initial_state=[
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        ],
    )
    if not isinstance(resp, RoomCreateResponse):
        raise Failed(getattr(resp, "status_code", None) or "unknown")
    await means.directs.remember_direct_room(user_id, resp.room_id)
    await _mark_direct(means, user_id, resp.room_id)
    await _until_synced(means, resp.room_id, user_id)
    return resp.room_id


async def _until_synced(means: Means, room_id: str, user_id: str, timeout: float = 15.0) -> None:
    """nio encrypts only for rooms and members it has synced: wait for the
    new room and its invitee to arrive, and for the invitee's keys."""
    client = means.client
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        room = client.rooms.get(room_id)
        if room is not None and user_id in room.users:
            if client.should_query_keys:
                with contextlib.suppress(LocalProtocolError):
                    await CryptoChannel(client).query_keys()
            return
        await asyncio.sleep(0.1)
    raise Failed("new direct room not synced")


async def _mark_direct(means: Means, user_id: str, room_id: str) -> None:
    """Add the room to the bot's ``m.direct`` so clients file it as a DM."""
    api = api_of(means.client)
    me = quote(means.client.user_id, safe="")
    path = f"/_matrix/client/v3/user/{me}/account_data/m.direct"
    # One update at a time: two DMs opened at once would each write back
    # what they read, and one would be lost.
    async with means.direct_lock:
        try:
            current = await api.request("GET", path, what="reading m.direct")
        except RequestError as exc:
            current = {} if exc.errcode == "M_NOT_FOUND" else None
        except HomeserverError:
            current = None
        assert means.directs is not None
        merged = merged_direct(current, await means.directs.direct_rooms())
        if merged is None:
            # Writing back only our own entries would drop the others:
            # leave it, the next DM opened writes them all.
            log.warning("m.direct not read; left as it was")
            return
        try:
            await api.request("PUT", path, merged, what="writing m.direct")
        except HomeserverError as exc:
            log.warning("m.direct not updated", status=getattr(exc, "status", None))
