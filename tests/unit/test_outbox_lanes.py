"""How a decision's actions are performed: several rooms at once, each
room in order (whoever decided what came before), and what the bot says
after what it did; what a scheduled job decides is handed off and
performed in the background the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from nio import RoomBanResponse, RoomSendResponse

from bots.framework.actions import ActionTypes, Ban, CancelJob, Reply, SendNotice
from bots.framework.outbox.effector import Effector
from bots.framework.outbox.lanes import Kind, Lanes, kind_of, waves
from bots.framework.outbox.queue import Outbox
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
