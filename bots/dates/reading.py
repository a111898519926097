"""Reading what a moderator types about a meeting: natural, but strict.

Every function here is pure and takes "now" as an argument. Input that
could mean two things gets an :class:`~bots.dates.words.Unclear` asking
which, never a guess that lands on the wrong day: "friday" typed on a
Friday, a date without a year that has already passed this year, 02:30 on
the night the clocks go forward. The single words (a date, a time, a zone,
a length) are read in `bots/dates/words.py`; this module reads whole
commands: when a meeting is, how it repeats, and what an edit or a move
changes.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bots.dates.recurrence import (
    MAX_COUNT,
    Freq,
    Repeat,
    Schedule,
    has_any,
    place,
    wall_time_problem,
)
from bots.dates.words import (
    DEFAULT_DURATION,
    DEFAULT_REMINDERS,
    KEYWORDS,
    ORDINALS,
    WEEKDAYS,
    Unclear,
    is_number,
    looks_like_zone,
    parse_date,
    parse_length,
    parse_link,
    parse_reminders,
    parse_time,
    parse_title,
    zone_name,
)


@dataclass(frozen=True)
class MeetingSpec:
    title: str
    schedule: Schedule
    reminders: tuple[timedelta, ...]
    link: str | None


@dataclass(frozen=True)
class Changes:
    """What ``!meeting edit`` changes; None leaves a field as it was."""

    title: str | None = None
    at: time | None = None
    zone: str | None = None
    duration: timedelta | None = None
    reminders: tuple[timedelta, ...] | None = None
    link: str | None = None
    clear_link: bool = False


# --- !meeting add ---

ADD_USAGE = (
    '!meeting add "<title>" every <weekday> <time> [zone] [for 60m] '
    "[remind 1d,15m] [link https://...]   or   "
    '!meeting add "<title>" on <date> <time> [zone] ...'
)


def _words(text: str) -> list[str]:
    try:
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        lexer.escape = ""
        return list(lexer)
    except ValueError:
        raise Unclear("A quote is not closed.") from None


def parse_add(
    text: str, now: datetime, default_zone: str, horizon: timedelta | None = None
) -> MeetingSpec:
    """``"<title>" <when> [for <length>] [remind <list>] [link <url>]``.
    *now* is aware; dates are read in the meeting's zone, and refused
    beyond *horizon*."""
    words = _words(text)
    if not words:
        raise Unclear(f"Usage: {ADD_USAGE}")
    if (
        not text.lstrip().startswith(("'", '"'))
        and len(words) > 1
        and words[1]
        not in (
            "every",
            "on",
            "daily",
            "weekly",
            "monthly",
        )
    ):
        raise Unclear(f"Put the title in quotes. Usage: {ADD_USAGE}")
    title, rest = parse_title(words[0]), words[1:]
    when, options = _split_options(rest)
    duration, reminders, link = DEFAULT_DURATION, DEFAULT_REMINDERS, None
    until: date | None = None
    count: int | None = None
    for key, value in options:
        if key == "for":
            duration = parse_length(value)
        elif key == "remind":
            reminders = parse_reminders(value)
        elif key == "link":
            link = parse_link(value)
        elif key == "until":
            until = parse_date(value.split(), now.date(), horizon)[0]
        elif key == "times":
            count = int(value)
    schedule = parse_when(when, now, default_zone, duration, horizon)
    if schedule.repeat is None and (until is not None or count is not None):
        raise Unclear("'until' and 'times' are for repeating meetings.")
    if schedule.repeat is not None:
        if count is not None and not 1 <= count <= MAX_COUNT:
            raise Unclear(f"A meeting can repeat at most {MAX_COUNT} times.")
        if until is not None and until < schedule.start.date():
            raise Unclear("'until' is before the first meeting.")
        schedule = replace(schedule, repeat=replace(schedule.repeat, count=count, until=until))
        if not has_any(schedule):
            raise Unclear("That rule gives no dates at all.")
    return MeetingSpec(title, schedule, reminders, link)


def _split_options(words: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Peel ``for``/``remind``/``link``/``until`` options and ``N times``
    off the end of the when-words."""
    when: list[str] = []
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        w = words[i].lower()
        if w == "until" and i + 1 < len(words):
            # A date can be several words: take up to the next keyword.
            j = i + 1
            while j < len(words) and words[j].lower() not in KEYWORDS:
                j += 1
            options.append(("until", " ".join(words[i + 1 : j])))
            i = j
        elif w in ("for", "remind", "link") and i + 1 < len(words):
            options.append((w, words[i + 1]))
            i += 2
        elif w in ("for", "remind", "link", "until"):
            raise Unclear(f"'{w}' needs a value after it. Usage: {ADD_USAGE}")
        elif i + 1 < len(words) and words[i + 1].lower() == "times" and is_number(w):
            options.append(("times", w))
            i += 2
        else:
            when.append(words[i])
            i += 1
    seen = [k for k, _ in options]
    if len(seen) != len(set(seen)):
        raise Unclear("Each of for, remind, link, until and times can be given once.")
    return when, options


def _time_and_zone(words: list[str], default_zone: str) -> tuple[time, str]:
    if not words:
        raise Unclear("Say what time, like 19:00.")
    at = parse_time(words[0])
    zone = default_zone
    if len(words) > 1:
        zone = zone_name(words[1])
    if len(words) > 2:
        raise Unclear(f"I didn't understand {' '.join(words[2:])!r}. Usage: {ADD_USAGE}")
    return at, zone


def parse_when(
    words: list[str],
    now: datetime,
    default_zone: str,
    duration: timedelta,
    horizon: timedelta | None = None,
) -> Schedule:
    if not words:
        raise Unclear(f"Say when. Usage: {ADD_USAGE}")
    head = words[0].lower()
    if head in ("daily", "weekly", "monthly"):
        raise Unclear(f"Say it as 'every ...', e.g. every tuesday 19:00. Usage: {ADD_USAGE}")
    if head == "every":
        return _repeating(words[1:], now, default_zone, duration)
    if head == "on":
        words = words[1:]
    return _once(words, now, default_zone, duration, horizon)


def _once(
    words: list[str],
    now: datetime,
    default_zone: str,
    duration: timedelta,
    horizon: timedelta | None,
) -> Schedule:
    # The zone, if given, decides what "today" is.
    zone = next((zone_name(w) for w in words if looks_like_zone(w)), default_zone)
    local_now = now.astimezone(ZoneInfo(zone))
    day, used = parse_date(words, local_now.date(), horizon)
    at, zone = _time_and_zone(words[used:], default_zone)
    start = datetime.combine(day, at)
    _check_wall_time(start, zone)
    if place(start, ZoneInfo(zone)) <= now:
        raise Unclear(f"{start:%-d %B %Y, %H:%M} ({zone}) is in the past.")
    return Schedule(start, zone, duration)


def _repeating(words: list[str], now: datetime, default_zone: str, duration: timedelta) -> Schedule:
    w = [x.lower().rstrip(",") for x in words]
    interval = 1
    if w[:1] == ["other"]:
        interval, w, words = 2, w[1:], words[1:]
    elif w and is_number(w[0]) and len(w) > 1 and w[1] in ("weeks", "days", "months"):
        interval = int(w[0])
        if not 1 <= interval <= 52:
            raise Unclear("Repeat every 1 to 52 weeks, days or months.")
        w, words = [w[1].rstrip("s"), *w[2:]], words[1:]
        if len(w) > 1 and w[1] == "on":
            w, words = [w[0], *w[2:]], [words[0], *words[2:]]
    if not w:
        raise Unclear(f"Every what? Usage: {ADD_USAGE}")
    if w[0] in ("hour", "minute", "second", "hours", "minutes", "seconds"):
        raise Unclear("Meetings repeat at most once a day.")
    if w[0] == "day":
        return _first(Repeat(Freq.DAILY, interval), words[1:], now, default_zone, duration)
    if w[0] == "week" and len(w) > 1 and w[1] in WEEKDAYS:
        w, words = w[1:], words[1:]
    if w[0] == "month":
        return _monthly(w[1:], words[1:], interval, now, default_zone, duration)
    if w[0] in ORDINALS and len(w) > 1 and w[1] in WEEKDAYS:
        # "every first tuesday" (of the month)
        rest = words[2:]
        if [x.lower() for x in rest[:3]] == ["of", "the", "month"]:
            rest = rest[3:]
        repeat = Repeat(Freq.MONTHLY, interval, (WEEKDAYS[w[1]],), nth=ORDINALS[w[0]])
        return _first(repeat, rest, now, default_zone, duration)
    days: list[int] = []
    i = 0
    for i, word in enumerate(w):  # noqa: B007 - i is used after the loop
        parts = [p for p in word.split(",") if p]
        if parts and all(p in WEEKDAYS or p == "and" for p in parts):
            days += [WEEKDAYS[p] for p in parts if p != "and"]
        else:
            break
    else:
        i = len(w)
    if not days:
        raise Unclear(f"{words[0]!r} isn't a day of the week. Usage: {ADD_USAGE}")
    repeat = Repeat(Freq.WEEKLY, interval, tuple(sorted(set(days))))
    return _first(repeat, words[i:], now, default_zone, duration)


def _monthly(
    w: list[str],
    words: list[str],
    interval: int,
    now: datetime,
    default_zone: str,
    duration: timedelta,
) -> Schedule:
    # every month on the first tuesday 19:00 / every month on day 15 19:00
    if w[:2] == ["on", "the"]:
        w, words = w[2:], words[2:]
    elif w[:1] == ["on"]:
        w, words = w[1:], words[1:]
    if len(w) > 1 and w[0] in ORDINALS and w[1] in WEEKDAYS:
        repeat = Repeat(Freq.MONTHLY, interval, (WEEKDAYS[w[1]],), nth=ORDINALS[w[0]])
        return _first(repeat, words[2:], now, default_zone, duration)
    if len(w) > 1 and w[0] == "day" and is_number(w[1]):
        day = int(w[1])
        if not 1 <= day <= 28:
            raise Unclear(
                "Not every month has that day. Pick a day from 1 to 28, "
                "or e.g. 'every month on the last friday'."
            )
        repeat = Repeat(Freq.MONTHLY, interval, monthday=day)
        return _first(repeat, words[2:], now, default_zone, duration)
    raise Unclear(
        "Say which day of the month: 'every month on the first tuesday 19:00' "
        "or 'every month on day 15 19:00'."
    )


def _first(
    repeat: Repeat, words: list[str], now: datetime, default_zone: str, duration: timedelta
) -> Schedule:
    """The schedule starting at the first matching day from today on."""
    at, zone = _time_and_zone(words, default_zone)
    tz = ZoneInfo(zone)
    local_now = now.astimezone(tz)
    # dtstart today; the rule itself finds the first day that matches.
    # The first day found at an interval of one: "every 2 weeks on thursday"
    # starts this coming Thursday, not in the week after.
    every = replace(repeat, interval=1, count=None, until=None)
    probe = Schedule(datetime.combine(local_now.date(), at), zone, duration, every)
    first = next(
        (o for o in probe.originals() if place(o, tz) > now),
        None,
    )
    if first is None:
        raise Unclear("That rule gives no dates in the future.")
    _check_wall_time(first, zone)
    return Schedule(first, zone, duration, repeat)


def _check_wall_time(local: datetime, zone: str) -> None:
    problem = wall_time_problem(local, zone)
    if problem is not None:
        raise Unclear(problem)


# --- the other commands ---


def parse_changes(text: str, now: datetime) -> Changes:
    """``!meeting edit <id>`` options: title "...", at 19:30 [zone],
    for 90m, remind 1h, link https://... / link none."""
    words = _words(text)
    changes = Changes()
    i = 0
    if not words:
        raise Unclear(
            'Say what to change: title "...", at <time> [zone], for <length>, '
            "remind <list>, link <url> or link none."
        )
    while i < len(words):
        key = words[i].lower()
        value = words[i + 1] if i + 1 < len(words) else None
        if value is None:
            raise Unclear(f"'{key}' needs a value after it.")
        if key == "title":
            changes = replace(changes, title=parse_title(value))
        elif key == "at":
            changes = replace(changes, at=parse_time(value))
            if i + 2 < len(words) and looks_like_zone(words[i + 2]):
                changes = replace(changes, zone=zone_name(words[i + 2]))
                i += 1
        elif key == "for":
            changes = replace(changes, duration=parse_length(value))
        elif key == "remind":
            changes = replace(changes, reminders=parse_reminders(value))
        elif key == "link":
            if value.lower() in ("none", "off", "clear"):
                changes = replace(changes, clear_link=True)
            else:
                changes = replace(changes, link=parse_link(value))
        else:
            raise Unclear(
                f"I can't change {key!r}. Change title, at, for, remind or link; "
                "to change the days, cancel the meeting and add it again."
            )
        i += 2
    return changes


def parse_day(text: str, today: date, horizon: timedelta | None = None) -> date:
    """One date and nothing else (``!meeting skip 3 2026-12-01``)."""
    words = text.split()
    day, used = parse_date(words, today, horizon)
    if used != len(words):
        raise Unclear(f"I didn't understand {' '.join(words[used:])!r} after the date.")
    return day


def parse_move(text: str, today: date, horizon: timedelta | None = None) -> tuple[date, date, time]:
    """``<date> <time>`` (the same day, at another time) or
    ``<date> [to] <new date> <time>``."""
    words = text.split()
    day, used = parse_date(words, today, horizon)
    rest = words[used:]
    if rest[:1] and rest[0].lower() == "to":
        rest = rest[1:]
    if len(rest) == 1:
        return day, day, parse_time(rest[0])
    if not rest:
        raise Unclear("Say the new time: !meeting move <id> <date> [<new date>] <time>")
    new_day, used = parse_date(rest, today, horizon)
    if len(rest) != used + 1:
        raise Unclear("Say the new time: !meeting move <id> <date> [<new date>] <time>")
    return day, new_day, parse_time(rest[used])
