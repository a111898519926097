"""What a performer works with: the nio client (on the account's one
transport), the key and history gates, the bot's DM records, and the locks
that keep two changes of one thing in order."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from nio import AsyncClient

from bots.base.errors import HomeserverError
from bots.framework.trust.history import HistoryOutcome


class KeyGate(Protocol):
    """Shares a room's key with the devices the trust policy allows
    (:class:`bots.framework.trust.sharing.KeySharer`)."""

    async def ensure_shared(self, room_id: str) -> None: ...


class HistoryGate(Protocol):
    """Hands an invitee the room's history before the invite
    (:class:`bots.framework.trust.history.HistorySharer`)."""

    async def before_invite(self, room_id: str, invitee: str) -> HistoryOutcome: ...


class DirectRooms(Protocol):
    async def direct_room(self, user_id: str) -> str | None: ...
    async def remember_direct_room(self, user_id: str, room_id: str) -> None: ...
    async def direct_rooms(self) -> dict[str, str]: ...


class Done:
    """The action's effect is in place (a call made outside nio, or none needed)."""


DONE = Done()


class Failed(Exception):
    """The action failed with *errcode*; the effector decides whether to retry."""

    def __init__(self, errcode: str) -> None:
        self.errcode = errcode


@dataclass
class Means:
    client: AsyncClient
    keys: KeyGate | None = None
    history: HistoryGate | None = None
    directs: DirectRooms | None = None
    # One read-change-write of a room's power levels at a time.
    power_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # One update of the bot's m.direct at a time.
    direct_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send_event(
        self, room_id: str, event_type: str, content: dict[str, Any], txn: str
    ) -> Any:
        """An event in *room_id*, encrypted if the room is, once its key is
        with every device the trust policy allows."""
        if self.keys is not None:
            try:
                await self.keys.ensure_shared(room_id)
            except HomeserverError as exc:
                raise Failed("key sharing failed") from exc
        # No await between sharing and nio's check that the key is shared:
        # nio never shares on its own, and would refuse rather than share
        # with a device the policy left out.
        return await self.client.room_send(
            room_id, event_type, content, tx_id=txn, ignore_unverified_devices=self.keys is None
        )
