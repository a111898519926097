"""When each of a decision's actions may be performed: rooms at once, each
room in order, and what the bot says after what it did.

A decision's actions are split into waves (:func:`waves`): a run of
actions that change something (invites, bans, power), then a run of
messages, and so on, in the order the decision gave them. A wave's actions
in different rooms are performed at once; a wave starts when the one
before it is done, so a message saying "you're in" or "banned" is sent
after the invite or the ban it reports, and the first word of a warning
before the mute that follows it.

Across decisions, each room is a lane (:class:`Lanes`): an action waits
for every action queued for its room before it, whoever decided it. Its
place is taken when the decision is queued, not when it starts, so a job
handed off to the background keeps its place behind the one before it.
What happens in no room has a lane of its own (:func:`lane_of`): a DM to
one member, the scheduler's bookkeeping (jobs set and cancelled in
order), each kind of a feature's own action, so that opening one member's DM holds up nobody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bots.framework.actions import Effect, Scheduling, SendDirect, room_of


class Kind(Enum):
    DOES = "does"  # changes something on the homeserver
    SAYS = "says"  # a message the bot posts
    LOCAL = "local"  # the bot's own bookkeeping: joins whichever wave it is in


def kind_of(action: object) -> Kind:
    if isinstance(action, Scheduling):
        return Kind.LOCAL
    if isinstance(action, Effect) and action.says:
        return Kind.SAYS
    return Kind.DOES


def lane_of(action: object) -> str:
    """The lane *action* waits in: its room, or for what happens in none,
    a lane of its kind."""
    room = room_of(action)
    if room is not None:
        return room
    if isinstance(action, SendDirect):
        return f"direct:{action.user_id}"
    if isinstance(action, Scheduling):
        # One lane for scheduling and cancelling: a job cancelled and set
        # again under one key must be so in that order.
        return "scheduler"
    return f"kind:{type(action).__name__}"


def waves(kinds: Sequence[Kind]) -> list[list[int]]:
    """The places in a decision of its actions (of *kinds*, in order),
    grouped in waves: consecutive actions of one kind, local ones joining
    the wave they fall in. Pure."""
    out: list[list[int]] = []
    current: Kind | None = None
    for index, kind in enumerate(kinds):
        if out and (kind is Kind.LOCAL or current in (None, kind)):
            out[-1].append(index)
            if kind is not Kind.LOCAL:
                current = kind
            continue
        out.append([index])
        current = None if kind is Kind.LOCAL else kind
    return out


@dataclass
class _Place:
    lane: str
    after: asyncio.Future[None] | None  # the one before it in its lane
    done: asyncio.Future[None]


class Lanes:
    def __init__(self, in_flight: int) -> None:
        """At most *in_flight* actions performed at once."""
        self._tails: dict[str, asyncio.Future[None]] = {}
        self._slots = asyncio.Semaphore(in_flight)

    def __len__(self) -> int:
        """Rooms with an action queued or being performed."""
        return len(self._tails)

    def queue(
        self,
        items: Sequence[tuple[str, Kind]],
        perform: Callable[[int], Awaitable[None]],
    ) -> Coroutine[Any, Any, None]:
        """Take a place in each lane for one decision's *items* (each its
        lane and kind, in the decision's order), now; the coroutine
        returned performs each, by its index, with *perform*, when its turn
        comes, and returns once all are done."""
        loop = asyncio.get_running_loop()
        places: list[_Place] = []
        for lane, _ in items:
            done: asyncio.Future[None] = loop.create_future()
            places.append(_Place(lane, self._tails.get(lane), done))
            self._tails[lane] = done
        return self._run(places, waves([kind for _, kind in items]), perform)

    async def _run(
        self,
        places: list[_Place],
        plan: list[list[int]],
        perform: Callable[[int], Awaitable[None]],
    ) -> None:
        try:
            for wave in plan:
                # Every action of the wave ends, even when one fails, before
                # the failure stops the rest: none is left running on its own
                # after its place was let go.
                ended = await asyncio.gather(
                    *(self._one(i, places[i], perform) for i in wave), return_exceptions=True
                )
                failed = next((e for e in ended if isinstance(e, BaseException)), None)
                if failed is not None:
                    raise failed
        finally:
            # Never leave a later action waiting on one that will not run
            # (a stop, or a failure that stops the bot).
            for place in places:
                self._release(place)

    async def _one(
        self, index: int, place: _Place, perform: Callable[[int], Awaitable[None]]
    ) -> None:
        try:
            if place.after is not None:
                await asyncio.shield(place.after)
            async with self._slots:
                await perform(index)
        finally:
            self._release(place)

    def _release(self, place: _Place) -> None:
        if not place.done.done():
            place.done.set_result(None)
        if self._tails.get(place.lane) is place.done:
            del self._tails[place.lane]
