"""The bot's direct messages with members: one per member, remembered,
and left, with a word why, once others are added to it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from nio import SyncResponse

from bots.framework.actions import Action, LeaveRoom, SendNotice
from bots.framework.community import shared_members_rooms
from bots.framework.config import BotConfig
from bots.framework.logging import get_logger
from bots.framework.outbox.queue import Outbox
from bots.framework.room_facts import RoomFacts
from bots.framework.session import BotSession
from bots.framework.storage import Storage

log = get_logger(__name__)

# Said before leaving a member's direct message that others were added to.
NO_LONGER_DIRECT = (
    "This conversation now has more people in it than you and me, so I'm leaving it: "
    "what you tell me should stay between us. Send me a direct message instead."
)


class DirectRooms:
    """The effector's :class:`~bots.framework.outbox.means.DirectRooms`."""

    def __init__(
        self,
        config: BotConfig,
        session: BotSession,
        facts: RoomFacts,
        outbox: Outbox,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.config = config
        self.session = session
        self.facts = facts
        self.outbox = outbox
        self.spawn = spawn
        self.storage: Storage | None = None
        # The bot's DM rooms, with the member each is with.
        self._dm_with: dict[str, str] = {}
        # Members' rooms the bot is leaving (no longer direct messages).
        self._leaving: set[str] = set()

    async def load(self, storage: Storage) -> None:
        self.storage = storage
        self._dm_with = await storage.direct_rooms()

    def member_of(self, room_id: str) -> str | None:
        """The member *room_id* is the bot's direct message with, if it is one."""
        return self._dm_with.get(room_id)

    async def direct_room(self, user_id: str) -> str | None:
        assert self.storage is not None
        return await self.storage.direct_room(user_id)

    async def direct_rooms(self) -> dict[str, str]:
        return dict(self._dm_with)

    async def remember_direct_room(self, user_id: str, room_id: str) -> None:
        assert self.storage is not None
        await self.storage.remember_direct_room(user_id, room_id)
        self._dm_with = {r: u for r, u in self._dm_with.items() if u != user_id}
        self._dm_with[room_id] = user_id

    def leave_shared_rooms(self, resp: SyncResponse) -> None:
        """Leave members' direct messages that others were added to: the bot
        joined them as direct messages, and a room of a member's with more
        people in it is no place for what members tell the bot. Only the
        rooms this sync brought are looked at: a membership changes nowhere
        else."""
        client, roles = self.session.client, self.facts.roles()
        if client is None or self.storage is None or roles is None:
            return
        members = {
            room_id: frozenset(client.rooms[room_id].users)
            for room_id in resp.rooms.join
            if room_id in client.rooms
        }
        for room in shared_members_rooms(
            members,
            self.facts.state.create_sender,
            self.facts.verdict().rooms,
            roles,
            self.config.user_id,
            self.facts.named_rooms(),
        ):
            if room not in self._leaving:
                self._leaving.add(room)
                log.info("leaving a member's room that is no longer a direct message")
                actions: list[Action] = [
                    SendNotice(room, NO_LONGER_DIRECT, mentions=()),
                    LeaveRoom(room),
                ]
                self.spawn(self.outbox.submit(f"leave-shared:{room}:{resp.next_batch}", actions))
