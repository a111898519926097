"""Who said they would go to a date is kept no longer than it is needed:
answered ahead of the poll (`!rsvp 1 yes <date>`), a date that will never
be polled (skipped first, passed while the bot was down, its meeting
cancelled) loses its answers; a date still to come keeps them. Pure
planning, and the feature's own announcement job with records in memory."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import aiosqlite

from bots.framework.actions import DeleteRecord, PutRecord
from bots.framework.storage import MIGRATIONS, Storage
from bots.meetings.feature import FEATURE as meetings_feature
from bots.meetings.model import FEATURE, answered_kind, meetings_kind, rsvp_kind
from bots.meetings.plan import announce_job, close_polls, forget_unpolled
from tests.unit.test_meetings_schedule import (
    ALICE,
    BERLIN,
    BOB,
    ROOM,
    Bot,
    Records,
    added,
    at,
    tuesday_check_in,
)
from tests.unit.test_scheduler import FakeClock

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=BERLIN)


def deleted(actions: object) -> set[tuple[str, str]]:
    assert isinstance(actions, list)
    assert all(isinstance(a, DeleteRecord) for a in actions)
    return {(a.kind, a.key) for a in actions}


def rsvps(key: str, *users: str) -> set[tuple[str, str]]:
    return {(rsvp_kind(ROOM, 1, key), u) for u in users} | {(answered_kind(ROOM, 1), key)}


def test_the_answers_of_a_date_that_will_never_be_polled_are_deleted() -> None:
    m = tuesday_check_in()
    skipped = m.with_schedule(replace(m.schedule, skips=frozenset({date(2026, 3, 31)})))
    dated = {
        "20260331": [ALICE, BOB],  # skipped before its poll
        "20260407": [ALICE],  # still to come, not polled yet
        "20260324": [BOB],  # its poll is open: closed (and forgotten) when it begins
        "20260325": [ALICE],  # a Wednesday: no date of this meeting
    }
    polls = {"20260324": {"event_id": "$p"}}
    assert deleted(forget_unpolled(skipped, NOW, polls, dated)) == rsvps(
        "20260331", ALICE, BOB
    ) | rsvps("20260325", ALICE)
    # Begun without a poll (the bot was down over it), or answered after its
    # poll closed: deleted too.
    later = datetime(2026, 4, 8, tzinfo=UTC)
    ended = {"20260324": {"event_id": "$p", "ended": True}}
    assert deleted(forget_unpolled(m, later, ended, dated)) == (
        rsvps("20260331", ALICE, BOB)
        | rsvps("20260407", ALICE)
        | rsvps("20260324", BOB)
        | rsvps("20260325", ALICE)
    )
    # A cancelled meeting keeps no answers but those of its open polls,
    # which close_polls deletes as it closes them.
    gone = replace(m, cancelled=True)
    assert deleted(forget_unpolled(gone, NOW, polls, dated)) == (
        rsvps("20260331", ALICE, BOB) | rsvps("20260407", ALICE) | rsvps("20260325", ALICE)
    )
    closing = close_polls(gone, NOW, polls, {"20260324": [BOB]})
    assert rsvps("20260324", BOB) <= {
        (a.kind, a.key) for a in closing if isinstance(a, DeleteRecord)
    }


async def test_a_date_skipped_before_its_poll_keeps_no_answers(
    db: aiosqlite.Connection,
) -> None:
    clock = FakeClock()
    clock.wall = at(2026, 3, 20, 12, 0)
    records = Records()
    bot = Bot(db, clock, records)
    await bot.scheduler.start()
    m = tuesday_check_in()
    await added(bot, m)
    await bot.run_until(clock.now())  # the poll for 24 March
    # Answered ahead with !rsvp, as the command writes them.
    for key, user in (("20260331", ALICE), ("20260331", BOB), ("20260407", ALICE)):
        records.data[(rsvp_kind(ROOM, 1, key), user)] = {"answer": "yes", "ts": 1}
        records.data[(answered_kind(ROOM, 1), key)] = {}
    # A moderator skips 31 March, before its poll was ever posted.
    skipped = m.with_schedule(replace(m.schedule, skips=frozenset({date(2026, 3, 31)})))
    records.data[(meetings_kind(ROOM), "1")] = skipped.to_record()
    await bot.apply([announce_job(skipped, clock.now(), "skipped")])
    await bot.run_until(clock.now())
    assert await records.records(FEATURE, rsvp_kind(ROOM, 1, "20260331")) == {}
    assert set(await records.records(FEATURE, rsvp_kind(ROOM, 1, "20260407"))) == {ALICE}

    # The bot is down over 7 April: that date is never polled, and its
    # answers go at the next announcement.
    await bot.run_until(at(2026, 4, 6, 12, 0))
    clock.wall = at(2026, 4, 8, 12, 0)
    bot = Bot(db, clock, records)
    await bot.scheduler.start()
    await bot.run_until(clock.wall)
    assert await records.records(FEATURE, rsvp_kind(ROOM, 1, "20260407")) == {}
    assert await records.records(FEATURE, answered_kind(ROOM, 1)) == {}


async def test_answers_given_before_the_dates_were_written_down_are_found(
    tmp_path: Path,
) -> None:
    """A bot upgraded with answers in its database: the feature's migration
    writes their dates down, so the next announcement can forget them."""
    path = tmp_path / "bot.db"
    room = "!room:with:colons.example"
    old = await Storage.open(path, MIGRATIONS)
    await old.enqueue(
        [],
        [
            PutRecord(FEATURE, rsvp_kind(room, 12, "20260331"), ALICE, {"answer": "yes"}),
            PutRecord(FEATURE, rsvp_kind(room, 12, "20260331"), BOB, {"answer": "no"}),
            PutRecord(FEATURE, rsvp_kind(ROOM, 1, "20260407"), ALICE, {"answer": "yes"}),
            PutRecord(FEATURE, meetings_kind(ROOM), "1", {"title": "not an answer"}),
        ],
    )
    await old.close()
    upgraded = await Storage.open(path, [*MIGRATIONS, *meetings_feature.migrations])
    try:
        assert await upgraded.records(FEATURE, answered_kind(room, 12)) == {"20260331": {}}
        assert await upgraded.records(FEATURE, answered_kind(ROOM, 1)) == {"20260407": {}}
    finally:
        await upgraded.close()
