"""How a decision's actions are performed: several rooms at once, each
room in order (whoever decided what came before), and what the bot says
after what it did; what a scheduled job decides is handed off and
performed in the background the same way."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from nio import RoomBanResponse, RoomSendResponse

from bots.framework.actions import (
    ActionTypes,
    Ban,
    CancelJob,
    Reply,
    ScheduleJob,
    SendDirect,
    SendNotice,
)
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.lanes import Kind, Lanes, kind_of, lane_of, waves
from bots.framework.outbox.queue import Outbox, records_for
from bots.framework.storage import Storage

LOUNGE = "!lounge:example.org"
GARDEN = "!garden:example.org"


class SlowClient:
    """A send takes a moment; each one's start and end are noted in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    async def room_send(self, room_id: str, event_type: str, content: Any, **kw: Any) -> Any:
        self.log.append(("start", content["body"]))
        await asyncio.sleep(0.02)
        self.log.append(("end", content["body"]))
        return RoomSendResponse("$sent", room_id)

    async def room_ban(self, room_id: str, user_id: str, reason: str | None = None) -> Any:
        self.log.append(("start", f"ban in {room_id[1:3]}"))
        await asyncio.sleep(0.02)
        self.log.append(("end", f"ban in {room_id[1:3]}"))
        return RoomBanResponse()


async def open_outbox(tmp_path: Path, client: SlowClient, spawn: Any = None) -> Outbox:
    outbox = Outbox(ActionTypes(), spawn)
    outbox.storage = await Storage.open(tmp_path / "bot.db")
    outbox.effector = Effector(client)
    return outbox


def order_of(client: SlowClient) -> list[str]:
    return [f"{what} {body}" for what, body in client.log]


def test_a_decision_is_split_where_it_turns_from_doing_to_saying() -> None:
    does, says, local = Kind.DOES, Kind.SAYS, Kind.LOCAL
    assert waves([does, does, says, says]) == [[0, 1], [2, 3]]
    assert waves([says, does, says]) == [[0], [1], [2]]
    # Scheduling is the bot's own: it neither waits nor makes anyone wait.
    assert waves([says, local, says, does]) == [[0, 1, 2], [3]]
    assert waves([local, does, local]) == [[0, 1, 2]]
    assert waves([]) == []
    assert kind_of(Ban("!r:x", "@m:x")) is Kind.DOES
    assert kind_of(Reply("!r:x", "$e", "done")) is Kind.SAYS
    assert kind_of(CancelJob("k")) is Kind.LOCAL


async def test_bans_in_two_rooms_go_at_once_and_the_reply_after_both(tmp_path: Path) -> None:
    client = SlowClient()
    outbox = await open_outbox(tmp_path, client)
    assert outbox.storage is not None
    try:
        decided = [Ban(LOUNGE, "@m:x"), Ban(GARDEN, "@m:x"), Reply(LOUNGE, "$cmd", "banned")]
        await outbox.submit("event:$cmd", decided)
        assert not await outbox.storage.pending_outbox()
    finally:
        await outbox.storage.close()
    order = order_of(client)
    assert order.index("start ban in ga") < order.index("end ban in lo")
    assert order.index("start banned") > max(
        order.index("end ban in ga"), order.index("end ban in lo")
    )


async def test_a_room_s_actions_wait_for_what_another_decision_queued_there_first(
    tmp_path: Path,
) -> None:
    client = SlowClient()
    outbox = await open_outbox(tmp_path, client)
    try:
        await asyncio.gather(
            outbox.submit("event:$1", [SendNotice(LOUNGE, "first"), SendNotice(GARDEN, "g")]),
            outbox.submit("event:$2", [SendNotice(LOUNGE, "second")]),
        )
    finally:
        if outbox.storage is not None:
            await outbox.storage.close()
    order = order_of(client)
    assert order.index("start second") > order.index("end first")
    assert order.index("start g") < order.index("end first")


async def test_a_room_s_lane_is_let_go_once_its_actions_are_done() -> None:
    lanes = Lanes(in_flight=4)
    done: list[int] = []

    async def perform(index: int) -> None:
        await asyncio.sleep(0)
        done.append(index)

    running = lanes.queue([(LOUNGE, Kind.SAYS), (GARDEN, Kind.SAYS)], perform)
    assert len(lanes) == 2  # both places taken before anything ran
    await running
    assert sorted(done) == [0, 1]
    assert len(lanes) == 0


async def test_handed_off_actions_keep_their_room_s_order_and_rooms_overlap(
    tmp_path: Path,
) -> None:
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.create_task(coro))

    client = SlowClient()
    outbox = Outbox(ActionTypes(), spawn)
    outbox.storage = await Storage.open(tmp_path / "bot.db")
    outbox.effector = Effector(client)
    try:
        await outbox.hand_off("job:1", [SendNotice(LOUNGE, "l1"), SendNotice(GARDEN, "g1")])
        await outbox.hand_off("job:2", [SendNotice(LOUNGE, "l2")])
        await asyncio.gather(*tasks)
        assert not await outbox.storage.pending_outbox()
    finally:
        await outbox.storage.close()
    order = [f"{what} {body}" for what, body in client.log]
    # The lounge's two in order, one after the other...
    assert order.index("start l2") > order.index("end l1")
    # ...while the garden's went at the same time as the lounge's first.
    assert order.index("start g1") < order.index("end l1")


async def test_a_job_s_notice_goes_out_after_the_unbans_it_reports(tmp_path: Path) -> None:
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.create_task(coro))

    client = SlowClient()
    outbox = await open_outbox(tmp_path, client, spawn)
    try:
        # A timed ban ending in two rooms: the notice says it is over.
        decided = [Ban(LOUNGE, "@m:x"), Ban(GARDEN, "@m:x"), SendNotice(GARDEN, "over")]
        await outbox.hand_off("job:unban", decided)
        await asyncio.gather(*tasks)
    finally:
        if outbox.storage is not None:
            await outbox.storage.close()
    order = order_of(client)
    assert order.index("start over") > max(
        order.index("end ban in ga"), order.index("end ban in lo")
    )


def test_what_happens_in_no_room_has_a_lane_of_its_own() -> None:
    assert lane_of(SendNotice(LOUNGE, "hi")) == LOUNGE
    # Opening one member's DM holds up no one else's, nor the scheduler.
    assert lane_of(SendDirect("@a:x", "hi")) != lane_of(SendDirect("@b:x", "hi"))
    assert lane_of(SendDirect("@a:x", "hi")) == lane_of(SendDirect("@a:x", "again"))
    assert lane_of(CancelJob("k")) not in {lane_of(SendDirect("@a:x", "hi")), None}
    # A job cancelled and set again under one key, in that order.
    assert lane_of(CancelJob("k")) == lane_of(ScheduleJob("f", "remind", 0.0, "k"))


async def test_a_wave_s_failure_waits_for_the_rest_of_the_wave_before_letting_go() -> None:
    lanes = Lanes(in_flight=4)
    log: list[str] = []

    async def perform(index: int) -> None:
        if index == 0:
            raise sqlite3.OperationalError("disk I/O error")
        await asyncio.sleep(0.02)
        log.append(f"end {index}")

    first = lanes.queue([(LOUNGE, Kind.DOES), (GARDEN, Kind.DOES)], perform)

    async def after(index: int) -> None:
        log.append("garden's next")

    later = lanes.queue([(GARDEN, Kind.DOES)], after)
    outcome = await asyncio.gather(first, later, return_exceptions=True)
    assert isinstance(outcome[0], sqlite3.OperationalError)
    # The garden's next action waited for the garden's first, still running
    # when its wave's other action failed.
    assert log == ["end 1", "garden's next"]
    assert len(lanes) == 0


async def test_a_crash_s_backlog_keeps_its_order_ahead_of_what_is_decided_next(
    tmp_path: Path,
) -> None:
    client = SlowClient()
    outbox = await open_outbox(tmp_path, client)
    storage = outbox.storage
    assert storage is not None
    try:
        # Two decisions a previous run made but did not perform.
        for key, body in (("event:$1", "first"), ("event:$2", "second")):
            await storage.enqueue(records_for(key, [SendNotice(LOUNGE, body)]))
        resuming = outbox.queue_backlog(await storage.pending_outbox())
        # Decided after the start, before the backlog has been performed.
        fresh = await storage.enqueue(records_for("event:$3", [SendNotice(LOUNGE, "third")]))
        await asyncio.gather(outbox.perform_decision(fresh), resuming)
        assert not await storage.pending_outbox()
    finally:
        await storage.close()
    order = order_of(client)
    assert order.index("start second") > order.index("end first")
    assert order.index("start third") > order.index("end second")
