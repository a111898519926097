"""Performing what was queued in the outbox: each action through the
effector with its idempotency key, a job scheduled or cancelled locally,
and the follow-ups an action asks for queued and performed in turn.

Each decision's actions are performed in lanes (:mod:`.lanes`): rooms at
once, each room in order, at most :data:`IN_FLIGHT` actions at once. What a
scheduled job decides is handed off (:meth:`Outbox.hand_off`): once it is
in the outbox, with its places in the lanes taken, the scheduler goes on to
the next job while it is performed in the background. A burst of
reminders due together then goes out as fast as the homeserver takes it,
not one after another; what a crash interrupts is performed on the next
start, with the same transaction ids."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, cast

from bots.framework.actions import (
    Action,
    ActionTypes,
    CancelJob,
    DeleteRecord,
    PutRecord,
    RecordWrite,
    ScheduleJob,
    room_of,
    to_record,
)
from bots.framework.logging import get_logger
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.lanes import Lanes, kind_of, lane_of
from bots.framework.scheduler import Scheduler
from bots.framework.storage import OutboxItem, Storage

log = get_logger(__name__)

# Actions performed at once, across rooms.
IN_FLIGHT = 16

Spawn = Callable[[Coroutine[Any, Any, None]], None]


def records_for(
    key: str, actions: Iterable[Action]
) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Outbox rows for what one event or job decided: each action's
    idempotency key is its decider's key and its place in the decision."""
    return [(f"{key}/{i}", room_of(a), to_record(a)) for i, a in enumerate(actions)]


def split_writes(actions: Iterable[Action]) -> tuple[list[Action], list[RecordWrite]]:
    """(actions for the outbox, record writes for the deciding transaction)."""
    queued: list[Action] = []
    writes: list[RecordWrite] = []
    for action in actions:
        if isinstance(action, PutRecord | DeleteRecord):
            writes.append(action)
        else:
            queued.append(action)
    return queued, writes


class Outbox:
    def __init__(self, action_types: ActionTypes, spawn: Spawn | None = None) -> None:
        self.action_types = action_types
        # The runtime's background tasks (drained on stop); without them,
        # what is handed off is performed at once.
        self._spawn = spawn
        self._lanes = Lanes(IN_FLIGHT)
        # Set once the bot has opened its state and connected.
        self.storage: Storage | None = None
        self.effector: Effector | None = None
        self.scheduler: Scheduler | None = None

    async def submit(self, key: str, actions: Sequence[Action]) -> None:
        """Queue what a job, a service or the bot itself decided under
        *key*, with its record writes, and perform it."""
        assert self.storage is not None
        queued, writes = split_writes(actions)
        await self.perform_decision(await self.storage.enqueue(records_for(key, queued), writes))

    async def hand_off(self, key: str, actions: Sequence[Action]) -> None:
        """Queue what *key* decided, with its record writes, and return:
        it is performed in the background, after what its rooms were
        handed before."""
        assert self.storage is not None
        queued, writes = split_writes(actions)
        items = await self.storage.enqueue(records_for(key, queued), writes)
        if self._spawn is None:
            await self.perform_decision(items)
        else:
            # Its places in the rooms' lanes are taken here, before the
            # next job is decided.
            self._spawn(self._in_lanes(items))

    async def perform_decision(self, items: Sequence[OutboxItem]) -> None:
        """Perform what one event, job or service decided: rooms at once,
        each in order, what is said after what was done before it
        (:mod:`bots.framework.outbox.lanes`)."""
        await self._in_lanes(items)

    def queue_decision(self, items: Sequence[OutboxItem]) -> Coroutine[Any, Any, None]:
        """Take *items*' places in the rooms' lanes now; the coroutine
        returned performs them in their turn (to be run, not dropped: what
        is queued after them in their rooms waits for it)."""
        return self._in_lanes(items)

    def queue_backlog(self, items: Sequence[OutboxItem]) -> Coroutine[Any, Any, None]:
        """What a previous run decided but did not perform (in the order
        queued): each decision's places in the lanes taken now, as if just
        decided; the coroutine returned performs them all."""
        decisions: dict[str, list[OutboxItem]] = {}
        for item in items:
            # An action's key is its decision's and its place in it.
            decisions.setdefault(item.key.rsplit("/", 1)[0], []).append(item)
        queued = [self._in_lanes(decided) for decided in decisions.values()]

        async def perform() -> None:
            await asyncio.gather(*queued)

        return perform()

    def _in_lanes(self, items: Sequence[OutboxItem]) -> Coroutine[Any, Any, None]:
        actions = [self._readable(item) for item in items]
        plan = [(lane_of(a), kind_of(a)) for a in actions]

        async def perform(index: int) -> None:
            await self._perform(items[index], actions[index])

        return self._lanes.queue(plan, perform)

    def _readable(self, item: OutboxItem) -> object:
        """The action *item* holds; None if its record no longer fits."""
        try:
            return self.action_types.from_record(item.action)
        except (KeyError, TypeError, ValueError):
            return None

    async def perform_queued(self, items: Iterable[OutboxItem]) -> None:
        """Perform *items* one after another (what a crash left pending,
        from many decisions, in the order queued)."""
        for item in items:
            await self._perform(item, self._readable(item))

    async def _perform(self, item: OutboxItem, action: object) -> None:
        assert self.storage is not None
        assert self.effector is not None
        if action is None:
            log.error("queued action no longer readable")
            await self.storage.finish(item, "unreadable")
            return
        try:
            if isinstance(action, ScheduleJob | CancelJob):
                await self._perform_locally(action)
                await self.storage.finish(item)
                return
            outcome = await self.effector.perform_one(cast(Action, action), item.key)
        except sqlite3.Error:
            raise
        except Exception as exc:
            # A job of a feature no longer enabled, or an adapter that
            # raises, would raise again on every start: record it as
            # failed rather than leave it pending to stop the bot.
            log.exception("queued action failed", action=type(action).__name__)
            await self.storage.finish(item, type(exc).__name__)
            return
        then, writes = split_writes(outcome.followups)
        followups = records_for(item.key, then)
        queued = await self.storage.enqueue(followups, writes) if then or writes else []
        await self.storage.finish(item, None if outcome.ok else outcome.problem or "failed")
        if not outcome.ok:
            log.error("action failed", action=type(action).__name__, problem=outcome.problem)
        # What an action asks for next is performed in turn, in its place.
        await self.perform_queued(queued)

    async def _perform_locally(self, action: ScheduleJob | CancelJob) -> None:
        assert self.scheduler is not None
        if isinstance(action, ScheduleJob):
            await self.scheduler.add(
                action.feature, action.kind, action.due, action.payload, action.key
            )
        else:
            await self.scheduler.cancel(action.key)
