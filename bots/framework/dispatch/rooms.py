"""The room workers: one per room with events queued, at most
``max_concurrent_rooms`` deciding at once, so a busy room does not hold up
a quiet one. Within a room one event is decided at a time, the next chosen
by :func:`~bots.framework.dispatch.order.next_index` when a slot is free
(so a command that arrived meanwhile is seen).

A decision's actions are performed while the room's next event is decided
(at most :data:`AHEAD` decisions of a room performing at once): its places
in the rooms' lanes are taken before the next decision, so what the two
do in one room still happens in order
(:mod:`bots.framework.outbox.lanes`). A decision never waited to see its
predecessor's effects anyway: the server's state reaches the bot by sync,
after them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bots.base.errors import StateError
from bots.framework.dispatch.order import Queued, next_index
from bots.framework.logging import get_logger
from bots.framework.storage import InboxItem, as_state_error

log = get_logger(__name__)

# Decisions of one room whose actions are being performed at once.
AHEAD = 2

Performing = Coroutine[Any, Any, None]


@dataclass
class _Room:
    pending: list[tuple[InboxItem, Queued]] = field(default_factory=list)
    urgent: int = 0  # how many of pending may go ahead; none: no need to look
    work: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    performing: set[asyncio.Task[None]] = field(default_factory=set)

    def take(self) -> InboxItem:
        index = next_index(q for _, q in self.pending) if self.urgent else 0
        item, queued = self.pending.pop(index)
        self.urgent -= queued.urgent
        return item


class RoomWorkers:
    def __init__(
        self,
        handle: Callable[[InboxItem], Awaitable[Performing | None]],
        classify: Callable[[InboxItem], Queued],
        max_rooms: int,
        on_fatal: Callable[[StateError], None],
    ) -> None:
        """*handle* decides one event and settles it, and gives back what
        performs its decision, if anything; *classify* says what the order
        needs of it; *on_fatal* stops the bot."""
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
                if not room.performing:
                    room.idle.set()
                room.work.clear()
                await room.work.wait()
                continue
            while len(room.performing) >= AHEAD:
                await asyncio.wait(set(room.performing), return_when=asyncio.FIRST_COMPLETED)
            async with self._slots:
                item = room.take()
                try:
                    performing = await self._handle(item)
                except Exception as exc:
                    if not self._survive(exc):
                        return
                    continue
            if performing is not None:
                task = asyncio.create_task(performing)
                room.performing.add(task)
                task.add_done_callback(lambda done: self._performed(room, done))

    def _performed(self, room: _Room, task: asyncio.Task[None]) -> None:
        room.performing.discard(task)
        room.work.set()  # the worker may go on, or find its room idle
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._survive(exc)

    def _survive(self, exc: BaseException) -> bool:
        """Whether the room goes on after *exc*, raised deciding or performing."""
        fatal = as_state_error(exc)
        if fatal is not None:
            # The state folder went read-only or full: stop rather than act
            # without a record. What was received stays in the inbox.
            self._on_fatal(fatal)
            return False
        # Nothing a member sends may stop the bot; the inbox keeps the event
        # for the next start.
        log.error("event handling failed", exc_info=exc)
        return True

    async def drain(self) -> None:
        """Until every room's queue is empty and its last event decided."""
        for room in list(self._rooms.values()):
            await room.idle.wait()

    def tasks(self) -> list[asyncio.Task[None]]:
        workers = [room.task for room in self._rooms.values() if room.task is not None]
        return workers + [task for room in self._rooms.values() for task in room.performing]
