"""The .ics file, read back by icalendar and expanded by recurring-ical-events
(an independent RFC 5545 implementation): it must give Hearth's own dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar
import recurring_ical_events

from bots.dates.recurrence import Freq, Repeat, Schedule, occurrences
from bots.meetings.calendar import calendar
from bots.meetings.model import Meeting

NOW = datetime(2026, 2, 1, tzinfo=UTC)
ROOM = "!peers:example.org"
HOUR = timedelta(hours=1)


def meetings() -> list[Meeting]:
    berlin = Schedule(
        datetime(2026, 2, 3, 19, 0),
        "Europe/Berlin",
        HOUR,
        Repeat(Freq.WEEKLY, weekdays=(1,), until=date(2026, 12, 31)),
        skips=frozenset({date(2026, 3, 24)}),
        moves={date(2026, 3, 31): datetime(2026, 4, 1, 18, 30)},
    )
    lord_howe = Schedule(
        datetime(2026, 2, 6, 2, 15),
        "Australia/Lord_Howe",
        timedelta(minutes=90),
        Repeat(Freq.MONTHLY, weekdays=(4,), nth=1),
    )
    chicago = Schedule(
        datetime(2026, 2, 2, 2, 30),
        "America/Chicago",
        HOUR,
        Repeat(Freq.WEEKLY, interval=2, weekdays=(0,), count=30),
    )
    tehran = Schedule(datetime(2026, 6, 1, 17, 0), "Asia/Tehran", HOUR)
    return [
        Meeting(ROOM, 1, "Tuesday check-in", berlin, (HOUR,), "https://meet.example/a"),
        Meeting(ROOM, 2, "Night owls", lord_howe, ()),
        Meeting(ROOM, 3, "Fortnightly", chicago, ()),
        Meeting(ROOM, 4, "Once, in Tehran", tehran, ()),
        Meeting(ROOM, 5, "Cancelled", tehran, (), cancelled=True),
    ]


def test_the_file_parses_back_with_zones_rules_and_exceptions() -> None:
    text = calendar(meetings(), NOW, "Peer support")
    cal = icalendar.Calendar.from_ical(text)
    zones = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    assert zones == {"Europe/Berlin", "Australia/Lord_Howe", "America/Chicago", "Asia/Tehran"}
    events = cal.walk("VEVENT")
    assert "Cancelled" not in {str(e["SUMMARY"]) for e in events}
    series = [e for e in events if e["SUMMARY"] == "Tuesday check-in"]
    assert len(series) == 2  # the series and its moved date
    main = next(e for e in series if "RRULE" in e)
    assert main["RRULE"]["FREQ"] == ["WEEKLY"]
    # UNTIL in UTC, as RFC 5545 wants with a zoned DTSTART.
    assert main["RRULE"]["UNTIL"][0].tzinfo is not None
    assert main["DTSTART"].params["TZID"] == "Europe/Berlin"
    moved = next(e for e in series if "RECURRENCE-ID" in e)
    assert moved["RECURRENCE-ID"].dt == datetime(
        2026, 3, 31, 19, 0, tzinfo=moved["DTSTART"].dt.tzinfo
    )
    assert moved["UID"] == main["UID"]
    assert str(main["URL"]) == "https://meet.example/a"


def test_an_independent_expansion_gives_hearth_s_own_dates() -> None:
    text = calendar(meetings(), NOW, "Peer support")
    end = NOW + timedelta(days=366)
    theirs = sorted(
        (e["DTSTART"].dt.astimezone(UTC), str(e["SUMMARY"]))
        for e in recurring_ical_events.of(icalendar.Calendar.from_ical(text)).between(NOW, end)
    )
    ours = sorted(
        (o.start.astimezone(UTC), m.title)
        for m in meetings()
        if not m.cancelled
        for o in occurrences(m.schedule, NOW, 1000)
        if o.start < end
    )
    assert len(ours) > 60
    assert theirs == ours
