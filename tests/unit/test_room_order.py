"""Events are handled in order within a room, with at most
``max_concurrent_rooms`` rooms handled at once (the runtime's room workers;
what one handling does is replaced here by a step the test controls)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bots import core
from bots.framework.config import BotConfig
from bots.framework.runtime import BotRuntime
from bots.framework.storage import InboxItem


async def test_rooms_run_side_by_side_up_to_the_bound_and_each_in_order(tmp_path: Path) -> None:
    config = BotConfig(
        homeserver="https://matrix.example.org",
        user_id="@hearth-bot:example.org",
        password_file=tmp_path / "bot.password",
        state_dir=tmp_path / "state",
        max_concurrent_rooms=2,
    )
    runtime = BotRuntime(config, [core.feature])
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

    runtime.handle = handle  # type: ignore[method-assign]
    items = [("!a", "$a1"), ("!a", "$a2"), ("!b", "$b1"), ("!a", "$a3"), ("!c", "$c1")]
    for seq, (room, event) in enumerate(items):
        runtime._dispatch(InboxItem(seq, event, room, {}, encrypted=True))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(active) == 2  # the third room waits for a slot
    gate.set()
    await asyncio.wait_for(asyncio.gather(*(q.join() for q in runtime._queues.values())), 5)
    for worker in runtime._workers.values():
        worker.cancel()
    assert most == 2
    assert sorted(done) == sorted(e for _, e in items)
    assert [e for e in done if e.startswith("$a")] == ["$a1", "$a2", "$a3"]
