"""Meetings declared in the community file, kept in step by the bot: added,
changed, withdrawn, or reported when the group's zone makes them
unreadable. Pure: reconcile() on declarations and meetings in memory."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from bots.framework.actions import PutRecord, ScheduleJob, SendNotice
from bots.meetings.declared import FIRST_DECLARED, fingerprint, reconcile
from bots.meetings.model import Meeting
from tests.unit.test_meetings_schedule import ROOM, tuesday_check_in

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a Friday
DECLARED = {
    "title": "Check-in",
    "when": "every tuesday 19:00",
    "for": "60m",
    "remind": ["1d", "15m"],
    "link": "https://meet.example/x",
    "zone": "Europe/Berlin",
}


def stored(decision_actions: tuple[object, ...]) -> Meeting:
    (put,) = [a for a in decision_actions if isinstance(a, PutRecord)]
    return Meeting.from_record(put.value)


def said(decision_actions: tuple[object, ...]) -> str:
    (notice,) = [a for a in decision_actions if isinstance(a, SendNotice)]
    return notice.body


def test_a_new_declaration_becomes_a_meeting_numbered_apart_from_chat_ones() -> None:
    chat = {1: tuesday_check_in()}
    (d,) = reconcile(ROOM, {"check-in": DECLARED}, chat, NOW)
    m = stored(d.actions)
    assert m.number == FIRST_DECLARED
    assert (m.source, m.fingerprint) == ("check-in", fingerprint(DECLARED))
    assert m.schedule.start == datetime(2026, 12, 1, 19, 0)
    assert m.schedule.zone == "Europe/Berlin"
    assert said(d.actions).startswith("Meeting 101 added from the community file: Check-in.")
    assert any(isinstance(a, ScheduleJob) and a.kind == "announce" for a in d.actions)
    assert d.key.endswith(fingerprint(DECLARED))


def test_an_unchanged_declaration_does_nothing() -> None:
    (d,) = reconcile(ROOM, {"check-in": DECLARED}, {}, NOW)
    m = stored(d.actions)
    assert reconcile(ROOM, {"check-in": DECLARED}, {m.number: m}, NOW) == []


def test_a_changed_declaration_keeps_the_number_and_the_dates_moderators_skipped() -> None:
    (d,) = reconcile(ROOM, {"check-in": DECLARED}, {}, NOW)
    m = stored(d.actions)
    m = m.with_schedule(replace(m.schedule, skips=frozenset({date(2026, 12, 8)})))
    renamed = {**DECLARED, "title": "Tuesday check-in", "when": "every tuesday 18:30"}
    (d,) = reconcile(ROOM, {"check-in": renamed}, {m.number: m}, NOW)
    new = stored(d.actions)
    assert new.number == m.number
    assert new.title == "Tuesday check-in"
    assert new.schedule.start.time().isoformat() == "18:30:00"
    assert new.schedule.skips == {date(2026, 12, 8)}
    assert said(d.actions).startswith("Meeting 101 was changed in the community file")
    # Another day of the week is another rule: the old exceptions go.
    (d,) = reconcile(ROOM, {"check-in": {**DECLARED, "when": "every friday 19:00"}}, {101: m}, NOW)
    assert stored(d.actions).schedule.skips == frozenset()


def test_a_withdrawn_declaration_cancels_the_meeting_once() -> None:
    (d,) = reconcile(ROOM, {"check-in": DECLARED}, {}, NOW)
    m = stored(d.actions)
    (d,) = reconcile(ROOM, {"check-in": {}}, {m.number: m}, NOW)
    assert stored(d.actions).cancelled
    assert "taken out of the community file" in said(d.actions)
    gone = stored(d.actions)
    assert reconcile(ROOM, {"check-in": {}}, {m.number: gone}, NOW) == []


def test_a_time_the_group_s_clocks_skip_is_reported_not_guessed() -> None:
    gap = {**DECLARED, "when": "on 2027-03-28 02:30"}
    (d,) = reconcile(ROOM, {"spring": gap}, {}, NOW)
    assert d.actions == ()
    assert d.problem is not None
    assert "doesn't exist in Europe/Berlin" in d.problem
