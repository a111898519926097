"""A group's meetings as an iCalendar file (RFC 5545) for phones' calendars.

One VEVENT per meeting with its RRULE; skipped dates as EXDATE; each
moved date as its own VEVENT with the same UID and a RECURRENCE-ID naming
the date it replaces; every zone used as a VTIMEZONE, so calendar apps
that do not know the zone by name still place the meetings right.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from icalendar import Calendar, Event, vRecur

from bots.dates.recurrence import Schedule, original_start, place
from bots.meetings.model import Meeting

PRODID = "-//Hearth//Meetings//EN"


def calendar(meetings: Sequence[Meeting], now: datetime, name: str) -> str:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for m in meetings:
        if m.cancelled:
            continue
        cal.add_component(_series(m, now))
        tz = m.schedule.tz
        for original, new in sorted(m.schedule.moves.items()):
            if original in m.schedule.skips:
                continue
            moved = _event(m, place(new, tz), now)
            moved.add("recurrence-id", place(original_start(m.schedule, original), tz))
            cal.add_component(moved)
    # Zone rules from a year before the first meeting on: far smaller than
    # every change since 1970, and all that expanding these events needs.
    starts = [m.schedule.start.date() for m in meetings if not m.cancelled]
    first = min(starts, default=now.date()) - timedelta(days=366)
    cal.add_missing_timezones(first_date=first, last_date=date(2038, 1, 1))
    return cal.to_ical().decode()


def _event(m: Meeting, start: datetime, now: datetime) -> Event:
    ev = Event()
    ev.add("uid", f"{m.number}-{_slug(m.room)}@hearth")
    ev.add("dtstamp", now.astimezone(UTC))
    ev.add("summary", m.title)
    ev.add("dtstart", start)
    ev.add("dtend", start + m.schedule.duration)
    if m.link:
        ev.add("url", m.link)
        ev.add("description", m.link)
    return ev


def _series(m: Meeting, now: datetime) -> Event:
    s = m.schedule
    ev = _event(m, place(s.start, s.tz), now)
    if s.repeat is not None:
        parts = s.repeat.rrule_parts()
        if s.repeat.until is not None:
            # With a DTSTART in a zone, UNTIL must be given in UTC.
            parts["UNTIL"] = _until_utc(s)
        ev.add("rrule", vRecur(parts))
    for skipped in sorted(s.skips):
        ev.add("exdate", place(original_start(s, skipped), s.tz))
    return ev


def _until_utc(s: Schedule) -> datetime:
    assert s.repeat is not None
    assert s.repeat.until is not None
    last = datetime.combine(s.repeat.until, time(23, 59, 59))
    return place(last, s.tz).astimezone(UTC).replace(microsecond=0)


def _slug(room: str) -> str:
    return "".join(ch for ch in room if ch.isalnum())
