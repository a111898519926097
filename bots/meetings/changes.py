"""What a moderator's change to a meeting does: skip or move one date,
edit or cancel the series. Pure: each decider takes the room (for its
clock and horizon), the meeting and the typed text, and returns the
meeting after the change with what to tell the room, or raises
:class:`~bots.dates.words.Unclear`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from bots.dates.reading import parse_changes, parse_day, parse_move
from bots.dates.recurrence import (
    Occurrence,
    iter_occurrences,
    occurrence,
    on_day,
    place,
    wall_time_problem,
)
from bots.dates.words import Unclear
from bots.meetings import texts
from bots.meetings.here import Here
from bots.meetings.model import Meeting
from bots.meetings.plan import next_occurrence


@dataclass(frozen=True)
class Change:
    """A moderator's change: the meeting after it, what to tell the room,
    and the date whose goers are told (pinged)."""

    meeting: Meeting
    said: str
    affected: Occurrence | None


def _started(occ: Occurrence, now: datetime) -> bool:
    return occ.start <= now


def decide_skip(h: Here, m: Meeting, text: str) -> Change:
    day = parse_day(text, h.now.astimezone(m.schedule.tz).date(), h.horizon)
    occ = on_day(m.schedule, day)
    if occ is None:
        if day in m.schedule.skips:
            raise Unclear(f"{m.title} on {day:%a %-d %b} is already skipped.")
        raise Unclear(f"{m.title} has no date on {day:%a %-d %b %Y}.")
    if _started(occ, h.now):
        raise Unclear(f"{m.title} on {texts.day(occ)} has already begun.")
    s = m.schedule
    moved = {d: t for d, t in s.moves.items() if d != day}
    new = m.with_schedule(replace(s, skips=s.skips | {day}, moves=moved))
    return Change(new, f"{m.title} on {texts.day(occ)} will not take place.", occ)


def find_date(m: Meeting, day: date, now: datetime) -> Occurrence:
    """The date a moderator means: where it is now (moved or not), else its
    original date."""
    s = m.schedule
    # Looked for from the day before (a zone's offset is less than a day),
    # not from today: a date far ahead costs what tomorrow does.
    since = now
    if day > now.astimezone(s.tz).date() + timedelta(days=1):
        since = max(now, place(datetime.combine(day - timedelta(days=1), time()), s.tz))
    for occ in iter_occurrences(s, since):
        if occ.start.date() == day:
            return occ
        if occ.start.date() > day:
            break
    found = on_day(s, day)
    if found is None:
        raise Unclear(f"{m.title} has no date on {day:%a %-d %b %Y}.")
    return found


def decide_move(h: Here, m: Meeting, text: str) -> Change:
    s = m.schedule
    day, new_day, at = parse_move(text, h.now.astimezone(s.tz).date(), h.horizon)
    occ = find_date(m, day, h.now)
    if _started(occ, h.now):
        raise Unclear(f"{m.title} on {texts.day(occ)} has already begun.")
    local = datetime.combine(new_day, at)
    problem = wall_time_problem(local, s.zone)
    if problem is not None:
        raise Unclear(problem)
    if place(local, s.tz) <= h.now:
        raise Unclear(f"{local:%-d %B %Y, %H:%M} is in the past.")
    moves = {**s.moves, occ.day: local}
    new = m.with_schedule(replace(s, moves=moves))
    moved = occurrence(new.schedule, occ.key)
    assert moved is not None
    said = f"{m.title} on {texts.day(occ)} moves to {texts.when(moved)}."
    return Change(new, said, occ)


def _from_the_file(m: Meeting) -> None:
    """A declared meeting is the community file's: changed there, so what
    hearth provision shows is what the bot does. Single dates (skip, move)
    are the moderators' in chat."""
    if m.source != "chat":
        raise Unclear(
            f"{m.title} comes from the community file (meeting {m.source!r}): change or "
            "remove it there and run hearth provision. Single dates can be skipped or "
            "moved here."
        )


def decide_edit(h: Here, m: Meeting, text: str) -> Change:
    _from_the_file(m)
    c = parse_changes(text, h.now)
    s = m.schedule
    schedule = s
    if c.at is not None or c.zone is not None:
        start = datetime.combine(s.start.date(), c.at or s.start.time())
        schedule = replace(s, start=start, zone=c.zone or s.zone)
        nxt = next(iter_occurrences(schedule, h.now), None)
        if nxt is not None and not nxt.moved:
            problem = wall_time_problem(nxt.start.replace(tzinfo=None), schedule.zone)
            if problem is not None:
                raise Unclear(problem)
    schedule = replace(schedule, duration=c.duration or s.duration)
    new = replace(
        m.with_schedule(schedule),
        title=c.title or m.title,
        reminders=m.reminders if c.reminders is None else c.reminders,
        link=None if c.clear_link else (c.link or m.link),
    )
    was, now_ = next_occurrence(m, h.now), next_occurrence(new, h.now)
    lines = [f"Meeting {m.number} changed: {new.title}."]
    if now_ is not None and (was is None or (was.start, was.end) != (now_.start, now_.end)):
        lines.append(f"Next: {texts.when(now_)}.")
    if new.link != m.link:
        lines.append(f"Link: {new.link}" if new.link else "The link was removed.")
    if new.reminders != m.reminders:
        shown = ", ".join(texts.before(d) for d in new.reminders) or "none"
        lines.append(f"Reminders: {shown} before.")
    timed = was is not None and now_ is not None and (was.start, was.end) != (now_.start, now_.end)
    return Change(new, " ".join(lines), was if timed else None)


def decide_cancel(h: Here, m: Meeting, text: str) -> Change:
    _from_the_file(m)
    if text.strip():
        raise Unclear(
            "!meeting cancel <id> cancels the whole series. To call off one date: "
            "!meeting skip <id> <date>"
        )
    nxt = next_occurrence(m, h.now)
    return Change(replace(m, cancelled=True), f"{m.title} is cancelled.", nxt)
