"""The room workers: events are decided one at a time within a room, in the
order :mod:`bots.framework.dispatch.order` picks, with at most
``max_concurrent_rooms`` rooms at once (what one decision does is replaced
here by a step the test controls)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from bots.base.errors import StateError
from bots.framework.dispatch.order import Queued
from bots.framework.dispatch.rooms import AHEAD, RoomWorkers
from bots.framework.storage import InboxItem


def no_fatal(exc: StateError) -> None:
    raise AssertionError(f"stopped: {exc}")


def plain(item: InboxItem) -> Queued:
    return Queued(item.source.get("sender"), state=False, urgent=False)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_rooms_run_side_by_side_up_to_the_bound_and_each_in_order() -> None:
    gate = asyncio.Event()
    active: set[str] = set()
    most = 0
    done: list[str] = []

    async def handle(item: InboxItem) -> None:
        nonlocal most
        assert item.room_id not in active, "two events of one room at once"
        active.add(item.room_id)
        most = max(most, len(active))
        await gate.wait()
        await asyncio.sleep(0)
        active.discard(item.room_id)
        done.append(item.event_id)

    workers = RoomWorkers(handle, plain, 2, no_fatal)
    items = [("!a", "$a1"), ("!a", "$a2"), ("!b", "$b1"), ("!a", "$a3"), ("!c", "$c1")]
    for seq, (room, event) in enumerate(items):
        workers.dispatch(InboxItem(seq, event, room, {"sender": "@m:x"}, encrypted=True))
    await settle()
    assert len(active) == 2  # the third room waits for a slot
    gate.set()
    await asyncio.wait_for(workers.drain(), 5)
    for task in workers.tasks():
        task.cancel()
    assert most == 2
    assert sorted(done) == sorted(e for _, e in items)
    assert [e for e in done if e.startswith("$a")] == ["$a1", "$a2", "$a3"]


async def test_a_staff_command_queued_behind_a_flood_is_decided_next_and_each_once() -> None:
    """The first flood message is being decided when the rest and the
    moderator's command arrive: the command goes next, the flood after it
    in its own order, and every event is decided exactly once."""
    gate = asyncio.Event()
    done: list[str] = []

    async def handle(item: InboxItem) -> None:
        await gate.wait()
        done.append(item.event_id)

    def classify(item: InboxItem) -> Queued:
        return Queued(item.source["sender"], False, urgent=item.event_id == "$ping")

    workers = RoomWorkers(handle, classify, 4, no_fatal)
    flood = [f"$f{i}" for i in range(5)]
    for seq, event in enumerate([*flood, "$ping"]):
        sender = "@mod:x" if event == "$ping" else "@flooder:x"
        workers.dispatch(InboxItem(seq, event, "!room", {"sender": sender}, encrypted=True))
        await settle()  # the worker takes the first one at once
    gate.set()
    await asyncio.wait_for(workers.drain(), 5)
    for task in workers.tasks():
        task.cancel()
    assert done == ["$f0", "$ping", "$f1", "$f2", "$f3", "$f4"]


async def test_a_failing_event_does_not_stop_its_room() -> None:
    done: list[str] = []

    async def handle(item: InboxItem) -> None:
        if item.event_id == "$bad":
            raise ValueError("a handler's bug")
        done.append(item.event_id)

    workers = RoomWorkers(handle, plain, 1, no_fatal)
    for seq, event in enumerate(["$bad", "$good"]):
        workers.dispatch(InboxItem(seq, event, "!room", {"sender": "@m:x"}, encrypted=True))
    await asyncio.wait_for(workers.drain(), 5)
    for task in workers.tasks():
        task.cancel()
    assert done == ["$good"]


async def test_the_next_event_is_decided_while_the_last_one_s_actions_go_out() -> None:
    """Deciding is not held up by performing, but a room has at most AHEAD
    decisions performing at once, and the room is idle only when they are done."""
    release = asyncio.Event()
    decided: list[str] = []
    performing: set[str] = set()
    most = 0
    performed: list[str] = []

    async def perform(event_id: str) -> None:
        nonlocal most
        performing.add(event_id)
        most = max(most, len(performing))
        await release.wait()
        performing.discard(event_id)
        performed.append(event_id)

    async def handle(item: InboxItem) -> Coroutine[Any, Any, None]:
        decided.append(item.event_id)
        return perform(item.event_id)

    workers = RoomWorkers(handle, plain, 4, no_fatal)
    events = [f"$e{i}" for i in range(5)]
    for seq, event in enumerate(events):
        workers.dispatch(InboxItem(seq, event, "!room", {"sender": "@m:x"}, encrypted=True))
    await settle()
    # Two decided and performing, the third waits for one of them.
    assert decided == events[:AHEAD]
    assert most == AHEAD
    draining = asyncio.create_task(workers.drain())
    await settle()
    assert not draining.done()
    release.set()
    await asyncio.wait_for(draining, 5)
    for task in workers.tasks():
        task.cancel()
    assert decided == events
    assert sorted(performed) == events
    assert most == AHEAD
