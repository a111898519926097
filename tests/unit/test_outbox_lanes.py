"""What a scheduled job decides is handed to the outbox and performed in the
background: in order within its room, several rooms at once."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from nio import RoomSendResponse

from bots.framework.actions import ActionTypes, SendNotice
from bots.framework.outbox.effector import Effector
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
