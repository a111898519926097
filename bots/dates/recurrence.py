"""When a meeting happens: RFC 5545 recurrence in the group's own time zone.

A schedule is kept as wall-clock time in a named zone, never as UTC: a
weekly 19:00 meeting in Berlin stays at 19:00 when the clocks change, so
the rule is expanded on local times (dateutil's ``rrule``) and each
occurrence is placed in its zone only afterwards (``zoneinfo``).

A local time that does not exist (inside a spring-forward gap) takes the
offset from before the gap, and one that happens twice takes the first,
as RFC 5545 says; :func:`wall_time_problem` lets the parser refuse such a
time outright when a person typed it.

Skips and moves are stored as exceptions keyed by the occurrence's
original local start (its ``RECURRENCE-ID``), so they survive any later
expansion. Expansion is lazy: an endless rule yields only as many
occurrences as asked for.

A rule is stepped from near the time asked about, never from its first
date: dateutil steps occurrence by occurrence from its ``dtstart``, so a
daily meeting asked about the year 9999 would take seconds, with every
room waiting. :func:`_anchor` moves the start on by whole periods of the
rule (days, or weeks or months at the rule's interval), which leaves
every occurrence from there on where it was; a rule with a count is first
turned into the same rule with an end.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from dateutil import rrule

# Repeats finer than daily are refused: a support group meets at most daily,
# and an hourly rule is how a typo becomes millions of occurrences.
MAX_COUNT = 1000
# How many originals one expansion may pass over (skipped ones included).
MAX_SCAN = 5000
# An occurrence is named by its original local date: a meeting repeats at
# most daily, and the name survives a change of the meeting's time of day.
KEY_FORMAT = "%Y%m%d"


class Freq(Enum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


_RRULE_FREQ: dict[Freq, Literal[0, 1, 2, 3, 4, 5, 6]] = {
    Freq.DAILY: rrule.DAILY,
    Freq.WEEKLY: rrule.WEEKLY,
    Freq.MONTHLY: rrule.MONTHLY,
}
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Repeat:
    """How a meeting repeats. *weekdays*: 0 = Monday. *nth*: for a monthly
    rule on a weekday, which one (1 = first, -1 = last); *monthday*: for a
    monthly rule on a date."""

    freq: Freq
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    nth: int | None = None
    monthday: int | None = None
    count: int | None = None
    until: date | None = None

    def rrule_parts(self) -> dict[str, object]:
        """The rule as RFC 5545 RRULE parts (``icalendar.vRecur`` takes these)."""
        parts: dict[str, object] = {"FREQ": self.freq.value}
        if self.interval != 1:
            parts["INTERVAL"] = self.interval
        if self.weekdays:
            prefix = str(self.nth) if self.nth is not None else ""
            parts["BYDAY"] = [prefix + WEEKDAY_CODES[d] for d in self.weekdays]
        if self.monthday is not None:
            parts["BYMONTHDAY"] = self.monthday
        if self.count is not None:
            parts["COUNT"] = self.count
        return parts


@dataclass(frozen=True)
class Schedule:
    """A meeting's times. *start* is the first occurrence's local wall time
    (naive) in *zone*. *skips* and *moves* are keyed by an occurrence's
    original local date; a move gives its new local start."""

    start: datetime
    zone: str
    duration: timedelta
    repeat: Repeat | None = None
    skips: frozenset[date] = frozenset()
    moves: Mapping[date, datetime] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def originals(self) -> Iterator[datetime]:
        """Every original local start, in order, lazily."""
        if self.repeat is None:
            yield self.start
            return
        yield from _rule(self)

    def originals_after(self, local: datetime) -> Iterator[datetime]:
        if self.repeat is None:
            if self.start > local:
                yield self.start
            return
        # xafter steps without building a list, from a start moved on to
        # near *local*.
        yield from _rule(self, local).xafter(local)

    def is_original(self, local: datetime) -> bool:
        if self.repeat is None:
            return local == self.start
        if local < self.start:
            return False
        found = _rule(self, local).after(local - timedelta(seconds=1), inc=True)
        return found == local


def _rule(s: Schedule, near: datetime | None = None) -> rrule.rrule:
    """The rule as dateutil's; started at *near*'s anchor (:func:`_anchor`)
    when given: the same occurrences from the anchor on, reached in a few
    steps whatever *near* is."""
    r = s.repeat
    assert r is not None
    byweekday: list[rrule.weekday] | None = None
    if r.weekdays:
        days = [rrule.weekday(d) for d in r.weekdays]
        byweekday = [d(r.nth) for d in days] if r.nth is not None else days
    # dateutil takes a day it is not given from its dtstart: name it, so
    # that a start moved on cannot change it.
    bymonthday = r.monthday
    if r.freq is Freq.WEEKLY and not r.weekdays:
        byweekday = [rrule.weekday(s.start.weekday())]
    if r.freq is Freq.MONTHLY and not r.weekdays and bymonthday is None:
        bymonthday = s.start.day
    until = datetime.combine(r.until, time(23, 59, 59)) if r.until is not None else None
    count = r.count
    moved_on = near is not None and near > s.start
    if count is not None and (moved_on or until is not None):
        # A count is of occurrences from the very first, which a moved start
        # would lose: the same rule, ending at its last date. (dateutil also
        # refuses a count beside an end, as RFC 5545 does.)
        last = _last_of_count(s.start, replace(r, until=None))
        until = last if until is None else min(until, last)
        count = None
    dtstart = _anchor(s.start, r, near) if near is not None and moved_on else s.start
    return rrule.rrule(
        _RRULE_FREQ[r.freq],
        dtstart=dtstart,
        interval=r.interval,
        byweekday=byweekday,
        bymonthday=bymonthday,
        count=count,
        until=until,
        cache=False,
    )


def _anchor(start: datetime, r: Repeat, near: datetime) -> datetime:
    """A start for the rule before *near*: a whole number of the rule's
    periods after *start*, one short of the last that fits. From there the
    rule gives the occurrences it gives from *start*, and reaches *near*
    within about two periods.

    A period is the rule's interval in days, weeks or months. dateutil
    counts periods from its start's day, week (from Monday) or month, so a
    start moved on by whole periods keeps every later one in place; a
    monthly rule's start goes to the first of the month, at its time of
    day, so that no date of that month is lost."""
    if r.freq is Freq.MONTHLY:
        months = (near.year - start.year) * 12 + near.month - start.month
        periods = months // r.interval - 1
        if periods <= 0:
            return start
        month = start.month - 1 + periods * r.interval
        return datetime.combine(date(start.year + month // 12, month % 12 + 1, 1), start.time())
    length = r.interval * (7 if r.freq is Freq.WEEKLY else 1)
    periods = (near.date() - start.date()).days // length - 1
    if periods <= 0:
        return start
    return start + timedelta(days=periods * length)


@lru_cache(maxsize=256)
def _last_of_count(start: datetime, r: Repeat) -> datetime:
    """The last occurrence of a rule with a count: found once, in at most
    :data:`MAX_COUNT` steps (the most a count may be), then kept."""
    rule = _rule(Schedule(start, "UTC", timedelta(0), r))
    last = deque(itertools.islice(rule, MAX_COUNT), maxlen=1)
    return last[0] if last else start


def steps_to(s: Schedule, local: datetime) -> int:
    """How many originals the rule steps over before it reaches *local*:
    the cost of finding the occurrence at or after it."""
    if s.repeat is None:
        return 0
    return sum(1 for _ in itertools.takewhile(lambda o: o < local, _rule(s, local)))


@dataclass(frozen=True, order=True)
class Occurrence:
    """One meeting, placed in time. *key*: its original local date, which
    stays its name when it is moved (its ``RECURRENCE-ID`` is that date at
    the series' time)."""

    start: datetime  # aware, in the schedule's zone
    end: datetime
    key: str
    moved: bool = False

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def day(self) -> date:
        return datetime.strptime(self.key, KEY_FORMAT).date()


def occurrence_key(day: date) -> str:
    return day.strftime(KEY_FORMAT)


def place(local: datetime, tz: ZoneInfo) -> datetime:
    """A wall time in its zone (fold 0: the earlier of a repeated hour, and
    the pre-gap offset for a time inside a gap, as RFC 5545 says)."""
    return local.replace(tzinfo=tz, fold=0)


def _occurrence(s: Schedule, original: datetime) -> Occurrence:
    moved = s.moves.get(original.date())
    start = place(moved if moved is not None else original, s.tz)
    # Normalise through UTC so a gap time reads as the time it really is.
    start = start.astimezone(UTC).astimezone(s.tz)
    return Occurrence(start, start + s.duration, occurrence_key(original.date()), moved is not None)


def original_start(s: Schedule, day: date) -> datetime:
    """Where the rule puts the occurrence of *day* (before any move)."""
    return datetime.combine(day, s.start.time())


def occurrences(s: Schedule, after: datetime, limit: int) -> list[Occurrence]:
    """The next *limit* occurrences starting after *after* (aware), skips
    left out and moves in their new place."""
    return list(itertools.islice(iter_occurrences(s, after), limit))


def iter_occurrences(s: Schedule, after: datetime) -> Iterator[Occurrence]:
    tz = s.tz
    # Start a day early in local time: offsets differ by at most a day.
    local_after = after.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    base = (
        _occurrence(s, o)
        for o in itertools.islice(s.originals_after(local_after), MAX_SCAN)
        if o.date() not in s.skips and o.date() not in s.moves
    )
    moved = sorted(_occurrence(s, original_start(s, d)) for d in s.moves if d not in s.skips)
    for occ in heapq.merge(base, moved):
        if occ.start > after:
            yield occ


def occurrence(s: Schedule, key: str) -> Occurrence | None:
    """The occurrence named *key*, where it now is; None if the rule has no
    such date or it was skipped."""
    try:
        day = datetime.strptime(key, KEY_FORMAT).date()
    except ValueError:
        return None
    original = original_start(s, day)
    if day in s.skips or not s.is_original(original):
        return None
    return _occurrence(s, original)


def on_day(s: Schedule, day: date) -> Occurrence | None:
    """The occurrence whose original local start falls on *day* (a meeting
    repeats at most daily, so there is at most one)."""
    return occurrence(s, occurrence_key(day))


def has_any(s: Schedule) -> bool:
    return next(iter(s.originals()), None) is not None


def wall_time_problem(local: datetime, zone: str) -> str | None:
    """Why a typed local time is not one moment in *zone*: it falls in a
    spring-forward gap, or in an hour that happens twice. None if fine."""
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    when = f"{local:%H:%M} on {local:%-d %B %Y}"
    round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != local:
        return f"{when} doesn't exist in {zone}: the clocks go forward then. Pick another time."
    return (
        f"{when} happens twice in {zone}: the clocks go back then. Pick a time outside that hour."
    )
