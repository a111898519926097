"""The room workers: one per room with events queued, at most
``max_concurrent_rooms`` deciding at once, so a busy room does not hold up
a quiet one. Within a room one event is decided at a time, the next chosen
by :func:`~bots.framework.dispatch.order.next_index` when a slot is free
(so a command that arrived meanwhile is seen)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bots.base.errors import StateError
from bots.framework.dispatch.order import Queued, next_index
from bots.framework.logging import get_logger
from bots.framework.storage import InboxItem, as_state_error

log = get_logger(__name__)


@dataclass
class _Room:
    pending: list[tuple[InboxItem, Queued]] = field(default_factory=list)
    urgent: int = 0  # how many of pending may go ahead; none: no need to look
    work: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def take(self) -> InboxItem:
        index = next_index(q for _, q in self.pending) if self.urgent else 0
        item, queued = self.pending.pop(index)
        self.urgent -= queued.urgent
        return item


class RoomWorkers:
    def __init__(
        self,
        handle: Callable[[InboxItem], Awaitable[None]],
        classify: Callable[[InboxItem], Queued],
        max_rooms: int,
        on_fatal: Callable[[StateError], None],
    ) -> None:
        """*handle* decides one event and settles it; *classify* says what
        the order needs of it; *on_fatal* stops the bot."""
        self._handle = handle
        self._classify = classify
        self._slots = asyncio.Semaphore(max_rooms)
        self._on_fatal = on_fatal
        self._rooms: dict[str, _Room] = {}

    def dispatch(self, item: InboxItem) -> None:
        """Queue *item* in its room's worker (started on its room's first event)."""
        room = self._rooms.get(item.room_id)
        if room is None:
            room = self._rooms[item.room_id] = _Room()
            room.task = asyncio.create_task(self._work(room))
        queued = self._classify(item)
        room.pending.append((item, queued))
        room.urgent += queued.urgent
        room.idle.clear()
        room.work.set()

    async def _work(self, room: _Room) -> None:
        while True:
            if not room.pending:
                room.idle.set()
                room.work.clear()
                await room.work.wait()
                continue
            async with self._slots:
                item = room.take()
                try:
                    await self._handle(item)
                except Exception as exc:
                    fatal = as_state_error(exc)
                    if fatal is not None:
                        # The state folder went read-only or full: stop rather
                        # than act without a record. What was received stays
                        # in the inbox.
                        self._on_fatal(fatal)
                        return
                    # Nothing a member sends may stop the bot; the inbox
                    # keeps the event for the next start.
                    log.exception("event handling failed")

    async def drain(self) -> None:
        """Until every room's queue is empty and its last event decided."""
        for room in list(self._rooms.values()):
            await room.idle.wait()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [room.task for room in self._rooms.values() if room.task is not None]
