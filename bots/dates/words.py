"""The single things people type about a meeting: a date, a time, a time
zone, a length, reminders, a link, a title.

Every function here is pure and takes "today" as an argument. Input that
could mean two things raises :class:`Unclear` asking which, never a guess
that lands on the wrong day: "friday" typed on a Friday, a date without a
year that has already passed this year.

A command passes its *horizon*: a date further ahead than that is refused
(:func:`horizon_problem`). Nothing a group plans is years away, and a date
in the year 9999 is only a way to make the bot work for nothing.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, time, timedelta
from functools import cache
from zoneinfo import available_timezones

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
    day_first = is_number(w[0].rstrip("stndrh")) and len(w) > 1 and w[1] in MONTHS
    month_first = w[0] in MONTHS and len(w) > 1 and is_number(w[1].rstrip("stndrh"))
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


def is_number(word: str) -> bool:
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


def parse_title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise Unclear("The meeting needs a title.")
    if len(title) > MAX_TITLE:
        raise Unclear(f"Keep the title under {MAX_TITLE} characters.")
    return title
