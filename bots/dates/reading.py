"""Reading what a moderator types about a meeting: natural, but strict.

Every function here is pure and takes "now" as an argument. Input that
could mean two things gets an :class:`Unclear` asking which, never a guess
that lands on the wrong day: "friday" typed on a Friday, a date without a
year that has already passed this year, 02:30 on the night the clocks go
forward.

A command passes its *horizon*: a date further ahead than that is refused
(:func:`horizon_problem`). Nothing a group plans is years away, and a date
in the year 9999 is only a way to make the bot work for nothing.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from bots.dates.recurrence import (
    MAX_COUNT,
    Freq,
    Repeat,
    Schedule,
    has_any,
    place,
    wall_time_problem,
)
from bots.framework.commands.parse import parse_duration

MAX_REMINDERS = 5
MAX_REMIND_BEFORE = timedelta(days=14)
MAX_DURATION = timedelta(hours=12)
DEFAULT_DURATION = timedelta(minutes=60)
DEFAULT_REMINDERS: tuple[timedelta, ...] = (timedelta(days=1), timedelta(minutes=15))
MAX_TITLE = 100
MAX_LINK = 500

WEEKDAYS = {
    name: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}
MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3}
ORDINALS |= {"fourth": 4, "4th": 4, "last": -1}
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_URL = re.compile(r"^https?://[^\s<>\"]+$")
KEYWORDS = frozenset({"for", "remind", "link", "until", "times"})


class Unclear(Exception):
    """What to ask the moderator; raised by the parsers, replied as is."""


def horizon_problem(day: date, today: date, horizon: timedelta) -> str | None:
    """Why *day* is too far ahead to be typed, or None if it is not."""
    latest = today + horizon
    if day <= latest:
        return None
    days = horizon.days
    span = (
        f"{days // 365} year{'s' if days // 365 > 1 else ''}"
        if days % 365 == 0
        else f"{days} day{'s' if days > 1 else ''}"
    )
    return (
        f"{day:%-d %B %Y} is too far ahead: dates can be at most {span} from today "
        f"(up to {latest:%-d %B %Y})."
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


# --- words ---


@cache
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in available_timezones()}


def zone_name(text: str) -> str:
    """A time zone's canonical name, or :class:`Unclear` with a suggestion."""
    found = _zones().get(text.lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(text.lower(), list(_zones()), n=1, cutoff=0.6)
    hint = f" Did you mean {_zones()[close[0]]}?" if close else ""
    raise Unclear(f"I don't know the time zone {text!r}.{hint} Use a name like Europe/Berlin.")


def looks_like_zone(word: str) -> bool:
    return "/" in word or word.upper() in ("UTC", "GMT")


def parse_time(text: str) -> time:
    m = _TIME.fullmatch(text.strip().lower())
    if m is None:
        raise Unclear(f"{text!r} isn't a time. Use 24-hour time like 19:00 (or 7pm).")
    hour, minute, half = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if m.group(2) is None and half is None:
        raise Unclear(f"Is {text!r} a time? Write it as {hour:02d}:00.")
    if half is not None:
        if not 1 <= hour <= 12:
            raise Unclear(f"{text!r} isn't a time: with am/pm the hour is 1 to 12.")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise Unclear(f"{text!r} isn't a time of day.")
    return time(hour, minute)


def _checked_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        name = date(2000, month, 1).strftime("%B") if 1 <= month <= 12 else f"month {month}"
        raise Unclear(f"{day} {name} {year} doesn't exist.") from None


def parse_date(words: list[str], today: date, horizon: timedelta | None = None) -> tuple[date, int]:
    """A date from the start of *words*; returns it and how many words it
    took. Understands 2026-12-01, 1 december [2026], december 1 [2026],
    today, tomorrow, friday / this friday / next friday. A date more than
    *horizon* after *today* is refused."""
    day, used = _date(words, today)
    problem = horizon_problem(day, today, horizon) if horizon is not None else None
    if problem is not None:
        raise Unclear(problem)
    return day, used


def _date(words: list[str], today: date) -> tuple[date, int]:
    if not words:
        raise Unclear("Say which day, like 2026-12-01 or 1 december.")
    w = [x.lower().rstrip(",") for x in words[:4]]
    if m := _ISO_DATE.fullmatch(w[0]):
        return _checked_date(int(m.group(1)), int(m.group(2)), int(m.group(3))), 1
    if w[0] == "today":
        return today, 1
    if w[0] == "tomorrow":
        return today + timedelta(days=1), 1
    if w[0] in ("this", "next") and len(w) > 1 and w[1] in WEEKDAYS:
        return _weekday(w[1], today, w[0]), 2
    if w[0] in WEEKDAYS:
        return _weekday(w[0], today, ""), 1
    # 1 december [2026] or december 1 [2026]
    day_first = _number(w[0].rstrip("stndrh")) and len(w) > 1 and w[1] in MONTHS
    month_first = w[0] in MONTHS and len(w) > 1 and _number(w[1].rstrip("stndrh"))
    if day_first or month_first:
        day_word, month_word = (w[0], w[1]) if day_first else (w[1], w[0])
        day, month = int(day_word.rstrip("stndrh")), MONTHS[month_word]
        if len(w) > 2 and re.fullmatch(r"\d{4}", w[2]):
            return _checked_date(int(w[2]), month, day), 3
        this_year = _checked_date(today.year, month, day) if (month, day) != (2, 29) else None
        if this_year is not None and this_year >= today:
            return this_year, 2
        name = f"{day} {date(2000, month, 1):%B}"
        raise Unclear(
            f"{name} has passed this year. Add the year: {name.lower()} {today.year + 1}?"
        )
    raise Unclear(f"{words[0]!r} isn't a date. Use a date like 2026-12-01 or 1 december.")


def _number(word: str) -> bool:
    """Digits int() reads as typed: ASCII only, and few ("²" is a digit to
    str.isdigit but not to int)."""
    return word.isascii() and word.isdigit() and len(word) <= 6


def _weekday(name: str, today: date, qualifier: str) -> date:
    target = WEEKDAYS[name]
    ahead = (target - today.weekday()) % 7
    day = date(2000, 1, 3 + target).strftime("%A")  # 3 January 2000 was a Monday
    if ahead == 0:
        week = today + timedelta(days=7)
        raise Unclear(
            f"Today is {day}: do you mean today ({today:%-d %B}) or {day} {week:%-d %B}? "
            "Give the date."
        )
    coming = today + timedelta(days=ahead)
    if qualifier == "next" and target > today.weekday():
        # Still this week: "next" may mean this one or the one after.
        after = coming + timedelta(days=7)
        raise Unclear(f"Do you mean {day} {coming:%-d %B} or {day} {after:%-d %B}? Give the date.")
    return coming


def parse_reminders(text: str) -> tuple[timedelta, ...]:
    if text.lower() in ("none", "off", "no"):
        return ()
    found: list[timedelta] = []
    for part in (p for p in text.split(",") if p.strip()):
        d = parse_duration(part)
        if d is None:
            raise Unclear(f"{part.strip()!r} isn't a reminder time. Use e.g. remind 1d,15m")
        if d > MAX_REMIND_BEFORE:
            raise Unclear("Reminders can be at most 14 days before.")
        found.append(d)
    if len(found) > MAX_REMINDERS:
        raise Unclear(f"At most {MAX_REMINDERS} reminders per meeting.")
    return tuple(sorted(set(found), reverse=True))


def parse_length(text: str) -> timedelta:
    d = parse_duration(text)
    if d is None or d > MAX_DURATION:
        raise Unclear(f"{text!r} isn't a meeting length. Use e.g. for 60m or for 2h (at most 12h).")
    return d


def parse_link(text: str) -> str:
    if len(text) > MAX_LINK or not _URL.fullmatch(text):
        raise Unclear("The link must be a web address starting with https:// or http://")
    return text


def _title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise Unclear("The meeting needs a title.")
    if len(title) > MAX_TITLE:
        raise Unclear(f"Keep the title under {MAX_TITLE} characters.")
    return title


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
    title, rest = _title(words[0]), words[1:]
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
        elif i + 1 < len(words) and words[i + 1].lower() == "times" and _number(w):
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
    elif w and _number(w[0]) and len(w) > 1 and w[1] in ("weeks", "days", "months"):
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
    if len(w) > 1 and w[0] == "day" and _number(w[1]):
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
            changes = replace(changes, title=_title(value))
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
