"""The inbox and outbox: nothing received or decided is lost or doubled by a crash.

A "crash" here is closing the database between two steps and opening it
again, as the next start would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from bots.core.feature import FEATURE as CORE
from bots.framework.actions import (
    BUILTIN,
    Action,
    ActionTypes,
    Ban,
    CancelJob,
    Edit,
    EndPoll,
    Extension,
    Invite,
    JoinRoom,
    Kick,
    LeaveRoom,
    React,
    Redact,
    RedactRecent,
    Reply,
    ScheduleJob,
    SendDirect,
    SendNotice,
    SendPoll,
    SetPostingLevel,
    SetPower,
    SetState,
    Unban,
    UploadFile,
    to_record,
)
from bots.framework.config import BotConfig
from bots.framework.outbox.effector import Effector, transaction_id
from bots.framework.outbox.queue import records_for
from bots.framework.runtime import BotRuntime
from bots.framework.scheduler import JobKind, Scheduler
from bots.framework.scheduler import connect as connect_scheduler_db
from bots.framework.scheduler.features import report_kept_jobs
from bots.framework.storage import InboxItem, Storage
from tests.unit.test_effector_backoff_admin import FakeClient

ROOM = "!lounge:example.org"
OTHER_ROOM = "!garden:example.org"
ALICE = "@alice:example.org"
SENT = RoomSendResponse("$sent", ROOM)

Opener = Callable[[], Awaitable[Storage]]


@pytest.fixture
async def open_storage(tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the same database each time, as each start of the bot would;
    whatever a test leaves open is closed at the end."""
    opened: list[Storage] = []

    async def open_() -> Storage:
        store = await Storage.open(tmp_path / "state" / "bot.db")
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


def message(event_id: str, body: str = "!ping", room_id: str = ROOM) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "event_id": event_id,
        "room_id": room_id,
        "sender": ALICE,
        "origin_server_ts": 1_700_000_000_000,
        "content": {"msgtype": "m.text", "body": body},
    }


async def received(store: Storage, event_id: str = "$ping") -> InboxItem:
    (item,) = await store.receive([(event_id, ROOM, message(event_id), True)], "s1")
    return item


def decided(event_id: str = "$ping") -> list[Any]:
    """What a handler decided about *event_id*."""
    return [Reply(ROOM, event_id, "pong", mentions=(ALICE,)), React(ROOM, event_id, "👍")]


def decision(event_id: str = "$ping") -> list[tuple[str, str | None, dict[str, Any]]]:
    """The decision as the runtime queues it: (key, room, record)."""
    return records_for(event_id, decided(event_id))


# --- a crash between deciding and performing ---


async def test_decided_actions_survive_a_crash_in_order_with_their_keys(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    await store.close()

    store = await open_storage()
    pending = await store.pending_outbox()
    assert [(p.key, p.room_id) for p in pending] == [("$ping/0", ROOM), ("$ping/1", ROOM)]
    assert [ActionTypes().from_record(p.action) for p in pending] == decided()


async def test_actions_recovered_after_a_crash_are_sent_with_their_keys_transaction_ids(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    await store.close()

    store = await open_storage()
    client = FakeClient(SENT)
    effector = Effector(client)
    types = ActionTypes()
    for item in await store.pending_outbox():
        outcome = await effector.perform_one(types.from_record(item.action), item.key)
        assert outcome.ok
    assert [s["type"] for s in client.sends] == ["m.room.message", "m.reaction"]
    assert [s["tx_id"] for s in client.sends] == [
        transaction_id("$ping/0"),
        transaction_id("$ping/1"),
    ]


async def test_finished_actions_are_not_pending_after_the_next_start(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    for item in await store.pending_outbox():
        await store.finish(item)
    await store.close()

    store = await open_storage()
    assert await store.pending_outbox() == []


async def test_a_failed_action_is_not_pending_after_the_next_start(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    first, second = await store.pending_outbox()
    await store.finish(first, "M_FORBIDDEN")
    await store.close()

    store = await open_storage()
    assert [p.key for p in await store.pending_outbox()] == [second.key]


async def test_a_send_retried_after_a_crash_reuses_its_transaction_id(
    open_storage: Opener,
) -> None:
    client = FakeClient(SENT)
    types = ActionTypes()
    store = await open_storage()
    await store.settle(await received(store), decision()[:1])
    (item,) = await store.pending_outbox()
    await Effector(client).perform_one(types.from_record(item.action), item.key)
    await store.close()  # crash: sent, but never marked finished

    store = await open_storage()
    (again,) = await store.pending_outbox()
    await Effector(client).perform_one(types.from_record(again.action), again.key)
    first, retried = client.sends
    assert retried["tx_id"] == first["tx_id"]
    assert retried["content"] == first["content"]


async def test_settling_the_same_decision_twice_queues_nothing_the_second_time(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    item = await received(store)
    assert len(await store.settle(item, decision())) == 2
    assert await store.settle(item, decision()) == []
    assert len(await store.pending_outbox()) == 2


async def test_a_decision_already_performed_is_not_queued_again(open_storage: Opener) -> None:
    store = await open_storage()
    item = await received(store)
    for queued in await store.settle(item, decision()):
        await store.finish(queued)
    assert await store.settle(item, decision()) == []
    assert await store.pending_outbox() == []


# --- a crash between receiving and deciding ---


async def test_a_received_event_survives_a_crash_before_it_is_handled(
    open_storage: Opener,
) -> None:
    store = await open_storage()
    await received(store)
    await store.close()

    store = await open_storage()
    (item,) = await store.pending_inbox()
    assert item.event_id == "$ping"
    assert item.room_id == ROOM
    assert item.source == message("$ping")
    assert item.encrypted is True


async def test_the_sync_position_is_saved_with_the_events(open_storage: Opener) -> None:
    store = await open_storage()
    await received(store)
    await store.close()

    store = await open_storage()
    assert await store.sync_token() == "s1"


async def test_a_replayed_sync_does_not_add_an_event_twice(open_storage: Opener) -> None:
    store = await open_storage()
    await received(store)
    await store.close()

    store = await open_storage()
    again = await store.receive([("$ping", ROOM, message("$ping"), True)], "s1")
    assert again == []
    assert [i.event_id for i in await store.pending_inbox()] == ["$ping"]


async def test_an_event_already_handled_is_not_received_again(open_storage: Opener) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    again = await store.receive([("$ping", ROOM, message("$ping"), True)], "s2")
    assert again == []
    assert await store.pending_inbox() == []


async def test_a_settled_event_leaves_the_inbox(open_storage: Opener) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    await store.close()

    store = await open_storage()
    assert await store.pending_inbox() == []


# --- outbox records ---

SAMPLES: dict[type[Any], Any] = {
    Reply: Reply(
        ROOM,
        "$question",
        "Welcome, Alice",
        html="<b>Welcome</b>, Alice",
        mentions=(ALICE, "@bob:example.org"),
        thread_root="$root",
    ),
    SendNotice: SendNotice(ROOM, "Meeting in one hour", mentions=(ALICE,), thread_root="$t"),
    SendDirect: SendDirect(ALICE, "Your group request was received", html="<i>received</i>"),
    React: React(ROOM, "$question", "✅"),
    Edit: Edit(ROOM, "$notice", "Meeting moved to 19:00", html="<b>19:00</b>"),
    Redact: Redact(ROOM, "$spam", reason="spam"),
    RedactRecent: RedactRecent(ROOM, "@troll:example.org", 50, since_ms=1_700_000_000_000),
    JoinRoom: JoinRoom(ROOM),
    LeaveRoom: LeaveRoom(ROOM),
    Invite: Invite(ROOM, ALICE, reason="joined the group"),
    Kick: Kick(ROOM, "@troll:example.org", reason="code of conduct"),
    Ban: Ban(ROOM, "@troll:example.org", reason="repeated abuse"),
    Unban: Unban(ROOM, "@troll:example.org"),
    SetState: SetState(
        ROOM,
        "m.room.power_levels",
        {"users": {ALICE: 50, "@hearth-bot:example.org": 100}, "events": {"m.room.name": 50}},
    ),
    SetPower: SetPower(ROOM, "@troll:example.org", -1),
    SetPostingLevel: SetPostingLevel(ROOM, 50),
    SendPoll: SendPoll(
        ROOM, "Next meeting?", ("Monday", "Wednesday", "Friday"), max_selections=2, disclosed=False
    ),
    EndPoll: EndPoll(ROOM, "$poll", "The poll is closed."),
    UploadFile: UploadFile(ROOM, "/var/lib/hearth/flyer.pdf", "flyer.pdf", "application/pdf"),
    ScheduleJob: ScheduleJob(
        "meetings",
        "reminder",
        1_700_003_600.0,
        "reminder:$meeting",
        payload={"room_id": ROOM, "minutes_before": [60, 10]},
    ),
    CancelJob: CancelJob("reminder:$meeting"),
}


def test_every_builtin_action_has_a_sample() -> None:
    assert set(SAMPLES) == set(BUILTIN)


@pytest.mark.parametrize("action", SAMPLES.values(), ids=[t.__name__ for t in SAMPLES])
def test_actions_survive_the_outbox_as_json(action: Any) -> None:
    stored = json.loads(json.dumps(to_record(action)))
    assert ActionTypes().from_record(stored) == action


def test_tuples_come_back_as_tuples() -> None:
    stored = json.loads(json.dumps(to_record(SAMPLES[SendPoll])))
    assert ActionTypes().from_record(stored).answers == ("Monday", "Wednesday", "Friday")


def test_an_unknown_action_type_is_refused() -> None:
    with pytest.raises(KeyError):
        ActionTypes().from_record({"type": "LaunchRocket", "fields": {"room_id": ROOM}})


# --- the runtime performing what a previous run left ---


@pytest.fixture
def runtime(tmp_path: Path) -> BotRuntime:
    config = BotConfig(
        homeserver="https://matrix.example.org",
        user_id="@hearth-bot:example.org",
        password_file=tmp_path / "bot.password",
        state_dir=tmp_path / "state",
    )
    return BotRuntime(config, [CORE])


async def test_the_runtime_performs_a_crashed_run_s_actions_once(
    open_storage: Opener, runtime: BotRuntime
) -> None:
    store = await open_storage()
    await store.settle(await received(store), decision())
    await store.close()

    client = FakeClient(SENT)
    runtime.outbox.storage = await open_storage()
    runtime.outbox.effector = Effector(client)
    await runtime.outbox.perform_queued(await runtime.outbox.storage.pending_outbox())
    await runtime.outbox.storage.close()

    assert [s["tx_id"] for s in client.sends] == [
        transaction_id("$ping/0"),
        transaction_id("$ping/1"),
    ]
    store = await open_storage()
    assert await store.pending_outbox() == []


async def test_the_runtime_does_not_retry_a_refused_action_forever(
    open_storage: Opener, runtime: BotRuntime
) -> None:
    client = FakeClient(RoomSendError("not allowed", "M_FORBIDDEN"))
    runtime.outbox.storage = store = await open_storage()
    runtime.outbox.effector = Effector(client)
    await runtime.outbox.perform_queued(await store.settle(await received(store), decision()[:1]))
    assert len(client.sends) == 1
    assert await store.pending_outbox() == []


async def test_the_runtime_drops_a_record_it_can_no_longer_read(
    open_storage: Opener, runtime: BotRuntime
) -> None:
    client = FakeClient(SENT)
    runtime.outbox.storage = store = await open_storage()
    runtime.outbox.effector = Effector(client)
    unreadable = [("$ping/0", ROOM, {"type": "RemovedAction", "fields": {}})]
    await runtime.outbox.perform_queued(await store.settle(await received(store), unreadable))
    assert client.sends == []
    assert await store.pending_outbox() == []


@dataclass(frozen=True)
class OpenGroup(Extension):
    room_id: str
    event_id: str
    name: str


async def test_an_adapter_that_raises_cannot_stop_the_next_start(
    open_storage: Opener, runtime: BotRuntime
) -> None:
    async def broken(action: OpenGroup) -> Sequence[Action]:
        raise ValueError("the homeserver answered 502 with an HTML page")

    runtime.outbox.action_types = ActionTypes((OpenGroup,))
    client = FakeClient(SENT)
    runtime.outbox.storage = store = await open_storage()
    runtime.outbox.effector = Effector(client, performers={OpenGroup: broken})
    actions = [OpenGroup(ROOM, "$cmd", "Parents"), Reply(ROOM, "$cmd", "On it")]
    records = records_for("$cmd", actions)
    await runtime.outbox.perform_queued(await store.settle(await received(store, "$cmd"), records))
    # The reply after it is still sent, and nothing is left to fail again.
    assert [s["content"]["body"] for s in client.sends] == ["On it"]
    assert await store.pending_outbox() == []


async def test_a_job_for_a_feature_no_longer_enabled_is_kept_and_the_next_start_goes_on(
    open_storage: Opener, runtime: BotRuntime, tmp_path: Path
) -> None:
    store = await open_storage()
    actions = [
        ScheduleJob("notes", "nudge", 1_700_000_000.0, "nudge:$cmd"),
        Reply(ROOM, "$cmd", "I'll nudge you"),
    ]
    records = records_for("$cmd", actions)
    await store.settle(await received(store, "$cmd"), records)
    await store.close()  # crash; the next start runs without the notes feature

    client = FakeClient(SENT)
    runtime.outbox.storage = store = await open_storage()
    runtime.outbox.effector = Effector(client)
    scheduler_db = await connect_scheduler_db(tmp_path / "state" / "bot.db")
    try:
        runtime.outbox.scheduler = Scheduler(scheduler_db, [])  # no feature has a "nudge" job now
        await runtime.outbox.perform_queued(await store.pending_outbox())
        # The job is kept for when the feature is back, not lost.
        async with scheduler_db.execute("SELECT feature, kind, state FROM scheduled_jobs") as cur:
            jobs = await cur.fetchall()
    finally:
        await scheduler_db.close()
    assert [s["content"]["body"] for s in client.sends] == ["I'll nudge you"]
    assert await store.pending_outbox() == []
    assert [tuple(j) for j in jobs] == [("notes", "nudge", "pending")]


async def test_the_scheduler_and_the_room_workers_share_the_database_without_locking_out(
    open_storage: Opener, tmp_path: Path
) -> None:
    """The scheduler's loop reads while room workers add jobs and commit
    their own transactions, as when a newcomer's welcome schedules both a
    reminder and an expiry. None of it may fail with "database is locked":
    the bot takes that for a broken state folder and stops."""
    store = await open_storage()
    scheduler_db = await connect_scheduler_db(tmp_path / "state" / "bot.db")

    async def nothing(job: Any) -> None:
        return None

    kind = JobKind("notes", "nudge", nothing, grace_s=3600)
    scheduler = Scheduler(scheduler_db, [kind], max_sleep_s=0.001)
    serving = asyncio.create_task(scheduler.serve())

    async def worker(n: int) -> None:
        for i in range(40):
            key = f"{n}:{i}"
            queued = await store.enqueue([(key, ROOM, to_record(SendNotice(ROOM, "hi")))])
            await scheduler.add("notes", "nudge", 2e9, {}, f"remind:{key}")
            await scheduler.add("notes", "nudge", 2e9, {}, f"expire:{key}")
            await store.record("notes", "n", key)
            await store.finish(queued[0])

    try:
        await asyncio.gather(*(worker(n) for n in range(6)))
    finally:
        scheduler.stop()
        await serving
        await scheduler_db.close()
    assert await store.pending_outbox() == []
    assert len(await store.fetch("SELECT key FROM scheduled_jobs")) == 6 * 40 * 2


async def test_the_moderators_hear_of_jobs_kept_for_a_feature_left_out(
    runtime: BotRuntime,
) -> None:
    client = FakeClient(RoomSendResponse("$sent", "!mods:example.org"))
    runtime.reports.effector = Effector(client)
    runtime.facts.moderators_room_id = "!mods:example.org"
    await report_kept_jobs(runtime.reports.tell, {"meetings": 2, "onboarding": 1})
    assert client.sends == []  # held until the first sync has the room
    await runtime.reports.synced_now()
    bodies = [s["content"]["body"] for s in client.sends]
    assert bodies[0].startswith("2 scheduled jobs of the meetings feature are kept but not run")
    assert bodies[1].startswith("1 scheduled job of the onboarding feature is kept")
