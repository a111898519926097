"""From a sync to the events worth keeping: the timeline of each joined
room (paged back when the server left some out), the invitations, and the
encrypted messages still waiting for their keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nio import InviteMemberEvent, MegolmEvent, MessageDirection, RoomMessagesResponse, SyncResponse

from bots.framework.config import BotConfig
from bots.framework.decrypted_state import ForgedState
from bots.framework.intake.parse import to_event, with_sender_keys
from bots.framework.logging import get_logger
from bots.framework.session import TRANSIENT, BotSession
from bots.framework.trust.received import sender_device_of

log = get_logger(__name__)

# At most this many pages of 100 events are fetched back per room after a
# downtime; a room busier than that for longer than the bot was away has its
# oldest events left out (logged).
BACKFILL_PAGES = 20

# (event id, room, source, encrypted): an event for the inbox.
Kept = tuple[str, str, dict[str, Any], bool]
# (event id, room, source): an encrypted event waiting for its key.
Awaiting = tuple[str, str, dict[str, Any]]


class SyncIntake:
    def __init__(
        self,
        config: BotConfig,
        session: BotSession,
        wants: Callable[[object], bool],
        oldest_ms: Callable[[], int],
    ) -> None:
        """*wants*: whether any feature could act on a typed event;
        *oldest_ms*: the server time before which events are too old to act on."""
        self.config = config
        self.session = session
        self.wants = wants
        self.oldest_ms = oldest_ms

    async def backfill(self, room_id: str, prev_batch: str, position: str) -> list[Any]:
        """The events a "limited" sync left out for *room_id*, oldest first:
        paged back from *prev_batch* to the last saved *position*, or until
        they are too old to act on."""
        client = self.session.client
        assert client is not None
        found: list[Any] = []
        start = prev_batch
        for _ in range(BACKFILL_PAGES):
            resp = await client.room_messages(
                room_id, start=start, end=position, direction=MessageDirection.back, limit=100
            )
            if not isinstance(resp, RoomMessagesResponse) or not resp.chunk:
                break
            found.extend(resp.chunk)
            oldest = min(getattr(e, "server_timestamp", 0) for e in resp.chunk)
            if oldest < self.oldest_ms() or not resp.end or resp.end == start:
                break
            start = resp.end
        found.reverse()
        return found

    async def collect(
        self, resp: SyncResponse, *, timeline: bool = True, position: str | None = None
    ) -> tuple[list[Kept], list[Awaiting]]:
        """The sync's events worth keeping, as (event id, room, source,
        encrypted), and the encrypted ones still waiting for their keys.

        Pending invitations are always kept; the timeline only if *timeline*.
        A room whose timeline came back "limited" (more events since
        *position* than one sync carries) is paged back, so nothing sent
        during a downtime is skipped.
        """
        me = self.config.user_id
        client = self.session.client
        assert client is not None
        items: list[Kept] = []
        awaiting: list[Awaiting] = []
        for room_id, info in resp.rooms.join.items() if timeline else ():
            events = list(info.timeline.events)
            if info.timeline.limited and info.timeline.prev_batch and position:
                try:
                    events = [
                        *await self.backfill(room_id, info.timeline.prev_batch, position),
                        *events,
                    ]
                except TRANSIENT:
                    log.warning("events of a busy downtime could not be fetched", room_id=room_id)
            for event in events:
                if getattr(event, "sender", None) == me or isinstance(event, ForgedState):
                    continue
                if isinstance(event, MegolmEvent):
                    if event.server_timestamp >= self.oldest_ms() and room_id in client.rooms:
                        awaiting.append((event.event_id, room_id, event.source))
                    continue
                source = getattr(event, "source", None)
                event_id = getattr(event, "event_id", None)
                if isinstance(source, dict) and isinstance(event_id, str):
                    encrypted = bool(getattr(event, "decrypted", False))
                    source = with_sender_keys(source, sender_device_of(client, room_id, event))
                    # Only what a feature could act on is written down: a
                    # member's ordinary message never reaches the disk.
                    if self.wants(to_event(room_id, source, encrypted=encrypted)):
                        items.append((event_id, room_id, source, encrypted))
        for room_id, invited in resp.rooms.invite.items():
            for event in invited.invite_state:
                if isinstance(event, InviteMemberEvent) and event.state_key == me:
                    # Stripped invite state has no event id or timestamp.
                    content = event.content if isinstance(event.content, dict) else {}
                    source = {
                        "type": "m.room.member",
                        "state_key": me,
                        "sender": event.sender,
                        "content": {
                            "membership": event.membership,
                            # A direct message's invitation says so.
                            "is_direct": content.get("is_direct") is True,
                        },
                        "event_id": f"invite:{room_id}:{resp.next_batch}",
                        "origin_server_ts": int(time.time() * 1000),
                    }
                    items.append((source["event_id"], room_id, source, False))
        return items, awaiting
