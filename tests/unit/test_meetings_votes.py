"""Poll votes for meetings: counted only from members of the room, on the
open poll the bot posted, for a date still ahead of a meeting not
cancelled, the latest vote winning whatever order they are handled in. No
I/O: the feature's handler with records in memory."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from bots.framework.actions import PutRecord
from bots.framework.events import PollResponse
from bots.framework.feature import Context
from bots.meetings.feature import on_poll_response
from bots.meetings.model import FEATURE, answered_kind, meetings_kind, poll_kind, rsvp_kind
from tests.unit.test_meetings_schedule import (
    ALICE,
    BERLIN,
    ROOM,
    Records,
    meetings_context,
    tuesday_check_in,
)

CAROL = "@carol:example.org"  # not in the room
YES = "hearth.1.20260324.yes"
NO = "hearth.1.20260324.no"


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp() * 1000)  # type: ignore[misc]


def context(records: Records) -> Context:
    # Handled late, after the meeting: what counts is when each vote was cast.
    return meetings_context(records, ms(2026, 3, 30, 12, 0) / 1000)


def response(
    sender: str, answer: str, ts: int, room: str = ROOM, poll: str = "$poll"
) -> PollResponse:
    return PollResponse(f"$v{ts}", room, sender, ts, True, poll, (answer,))


async def counted(records: Records, *votes: PollResponse) -> dict[str, str]:
    for v in votes:
        for a in await on_poll_response(v, context(records)):
            assert isinstance(a, PutRecord)
            records.data[(a.kind, a.key)] = dict(a.value)
    found = await records.records(FEATURE, rsvp_kind(ROOM, 1, "20260324"))
    return {user: v["answer"] for user, v in found.items()}


def with_meeting(poll: dict[str, object] | None = None, **kw: object) -> Records:
    """The Tuesday check-in, with the poll for 24 March posted ($poll)."""
    records = Records()
    m = replace(tuesday_check_in(), **kw)  # type: ignore[arg-type]
    records.data[(meetings_kind(ROOM), "1")] = m.to_record()
    records.data[(poll_kind(ROOM, 1), "20260324")] = poll or {"event_id": "$poll"}
    return records


async def test_a_vote_cast_before_the_meeting_counts_even_if_handled_after() -> None:
    assert await counted(with_meeting(), response(ALICE, YES, ms(2026, 3, 24, 18, 0))) == {
        ALICE: "yes"
    }


async def test_the_latest_vote_wins_in_any_order() -> None:
    early, late = ms(2026, 3, 23, 10, 0), ms(2026, 3, 23, 11, 0)
    records = with_meeting()
    assert await counted(records, response(ALICE, NO, late), response(ALICE, YES, early)) == {
        ALICE: "no"
    }


async def test_stale_and_stray_votes_are_not_counted() -> None:
    before = ms(2026, 3, 23, 10, 0)
    assert await counted(with_meeting(), response(CAROL, YES, before)) == {}  # not in the room
    after = ms(2026, 3, 24, 19, 30)
    assert await counted(with_meeting(), response(ALICE, YES, after)) == {}  # already begun
    assert await counted(with_meeting(cancelled=True), response(ALICE, YES, before)) == {}
    m = tuesday_check_in()
    skipped = m.with_schedule(replace(m.schedule, skips=frozenset({date(2026, 3, 24)})))
    records = Records()
    records.data[(meetings_kind(ROOM), "1")] = skipped.to_record()
    assert await counted(records, response(ALICE, YES, before)) == {}
    # Another room's poll, someone else's poll, or a spoiled vote: ignored.
    other = "!elsewhere:example.org"
    assert await counted(with_meeting(), response(ALICE, YES, before, other)) == {}
    assert await counted(with_meeting(), response(ALICE, "a0", before)) == {}
    assert await counted(with_meeting(), response(ALICE, "hearth.1.x.yes", before)) == {}


async def test_a_vote_counts_only_on_the_open_poll_posted_for_its_date() -> None:
    before = ms(2026, 3, 23, 10, 0)
    records = with_meeting()
    assert await counted(records, response(ALICE, YES, before)) == {ALICE: "yes"}
    # The date is written down as answered, so its answers are found again.
    assert (answered_kind(ROOM, 1), "20260324") in records.data
    # A crafted answer ID for a date with no poll (a modified client), an
    # answer naming another poll, or a vote on a closed poll: not counted.
    later = "hearth.1.20260331.yes"
    records = with_meeting()
    assert await on_poll_response(response(ALICE, later, before), context(records)) == []
    assert await counted(with_meeting(), response(ALICE, YES, before, poll="$other")) == {}
    closed = with_meeting(poll={"event_id": "$poll", "ended": True})
    assert await counted(closed, response(ALICE, YES, before)) == {}
