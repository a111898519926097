"""What a typed date can make the bot compute: recurrence stepped from
near the date asked about (the same dates as stepping from the first, in
a few steps whatever the date), and dates beyond the horizon refused
before anything is stepped. No I/O; the cost is counted in steps, never
timed."""

from __future__ import annotations

import bisect
import itertools
import warnings
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule

from bots.dates.reading import parse_add, parse_day, parse_move
from bots.dates.recurrence import (
    Freq,
    Repeat,
    Schedule,
    occurrence,
    occurrences,
    on_day,
    steps_to,
)
from bots.dates.words import Unclear, horizon_problem, parse_date
from bots.meetings.changes import find_date
from bots.meetings.model import Meeting

HOUR = timedelta(hours=1)
TWO_YEARS = timedelta(days=730)
FAR = datetime(9999, 11, 30, 12, 0)

# Each a rule a moderator can type, started on a day that fits it (as
# `!meeting add` starts it), or one that does not (as a stored rule may).
RULES = {
    "daily": (datetime(2026, 1, 5, 19, 0), Repeat(Freq.DAILY)),
    "every 3 days": (datetime(2026, 1, 5, 19, 0), Repeat(Freq.DAILY, 3)),
    "tuesdays and thursdays, from a thursday": (
        datetime(2026, 1, 8, 18, 30),
        Repeat(Freq.WEEKLY, 1, (1, 3)),
    ),
    "every other thursday": (datetime(2026, 1, 8, 19, 0), Repeat(Freq.WEEKLY, 2, (3,))),
    "every 3 weeks on monday and friday, from a friday": (
        datetime(2026, 1, 9, 10, 0),
        Repeat(Freq.WEEKLY, 3, (0, 4)),
    ),
    "weekly, its day from the start": (datetime(2026, 1, 7, 19, 0), Repeat(Freq.WEEKLY)),
    "first monday": (datetime(2026, 1, 5, 18, 0), Repeat(Freq.MONTHLY, 1, (0,), nth=1)),
    "last friday every other month": (
        datetime(2026, 1, 30, 18, 0),
        Repeat(Freq.MONTHLY, 2, (4,), nth=-1),
    ),
    "day 15 every 3 months": (datetime(2026, 1, 15, 9, 0), Repeat(Freq.MONTHLY, 3, monthday=15)),
    "monthly, its day (31) from the start": (datetime(2026, 1, 31, 9, 0), Repeat(Freq.MONTHLY)),
    "daily, 40 times": (datetime(2026, 1, 5, 19, 0), Repeat(Freq.DAILY, count=40)),
    "every other tuesday, 25 times": (
        datetime(2026, 1, 6, 19, 0),
        Repeat(Freq.WEEKLY, 2, (1,), count=25),
    ),
    "wednesdays until mid-2027": (
        datetime(2026, 1, 7, 19, 0),
        Repeat(Freq.WEEKLY, 1, (2,), until=date(2027, 6, 30)),
    ),
    "second tuesday, 30 times or until 2027": (
        datetime(2026, 1, 13, 19, 0),
        Repeat(Freq.MONTHLY, 1, (1,), nth=2, count=30, until=date(2027, 3, 1)),
    ),
}


def schedule(name: str, zone: str = "Europe/Berlin") -> Schedule:
    start, repeat = RULES[name]
    return Schedule(start, zone, HOUR, repeat)


FREQ: dict[Freq, Literal[1, 2, 3]] = {
    Freq.MONTHLY: rrule.MONTHLY,
    Freq.WEEKLY: rrule.WEEKLY,
    Freq.DAILY: rrule.DAILY,
}


def from_the_first(s: Schedule) -> rrule.rrule:
    """The rule as it was stepped before: from its very first date."""
    r = s.repeat
    assert r is not None
    days = [rrule.weekday(d) for d in r.weekdays]
    return rrule.rrule(
        FREQ[r.freq],
        dtstart=s.start,
        interval=r.interval,
        byweekday=([d(r.nth) for d in days] if r.nth is not None else days) or None,
        bymonthday=r.monthday,
        count=r.count,
        until=datetime.combine(r.until, time(23, 59, 59)) if r.until else None,
        cache=False,
    )


def probes(s: Schedule) -> list[datetime]:
    """Every day of the first 15 months, then every seventh to three years
    on, a minute before the meeting's time and at it."""
    days = [*range(-3, 460), *range(460, 3 * 366, 7)]
    return [s.start + timedelta(days=d, minutes=m) for d in days for m in (-1, 0)]


@pytest.mark.parametrize("name", sorted(RULES))
def test_stepped_from_near_a_date_the_rule_gives_the_dates_it_always_gave(name: str) -> None:
    s = schedule(name)
    with warnings.catch_warnings():
        # dateutil frowns on a count beside an end, which the old way passed.
        warnings.simplefilter("ignore", DeprecationWarning)
        old = list(itertools.takewhile(lambda o: o.year < 2031, from_the_first(s)))
    for p in probes(s):
        after = old[bisect.bisect_right(old, p) :][:3]
        assert list(itertools.islice(s.originals_after(p), 3)) == after, p
        assert s.is_original(p) == (p in old), p


@pytest.mark.parametrize("name", sorted(RULES))
def test_finding_a_date_takes_a_few_steps_however_far_it_is(name: str) -> None:
    s = schedule(name)
    near = s.start + timedelta(days=400)
    # At most about two periods of the rule: a handful of dates, never the
    # ~2.9 million days from 2026 to 9999 that stepping from the first took.
    for when in (near, datetime(2028, 1, 1), FAR, datetime(9999, 12, 31, 23, 59)):
        assert steps_to(s, when) <= 20, when


def test_a_far_date_of_a_daily_meeting_is_found_where_it_is() -> None:
    s = schedule("daily")
    assert steps_to(s, datetime(9999, 12, 31, 19, 0)) <= 2
    found = on_day(s, date(9999, 12, 31))
    assert found is not None
    assert found.start == datetime(9999, 12, 31, 19, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert occurrence(s, "99991231") == found
    assert occurrence(schedule("every 3 days"), "99991231") is None  # not one of its dates
    assert on_day(s, date(2025, 1, 1)) is None  # before the first: none, and no stepping


def test_far_dates_keep_their_local_time_across_daylight_saving() -> None:
    # Every other Thursday, 19:00 in Berlin, asked about in 2900: the dates
    # either side of that spring's change are still at 19:00 local time.
    s = schedule("every other thursday")
    got = occurrences(s, datetime(2900, 3, 10, tzinfo=UTC), 4)
    assert {o.start.strftime("%a %H:%M") for o in got} == {"Thu 19:00"}
    assert [o.start.utcoffset() for o in got] == [HOUR, HOUR, 2 * HOUR, 2 * HOUR]
    assert {(b.start.date() - a.start.date()).days for a, b in itertools.pairwise(got)} == {14}


def test_a_far_date_typed_in_a_command_is_refused_before_any_stepping() -> None:
    today = date(2026, 3, 20)
    said = horizon_problem(date(9999, 12, 31), today, TWO_YEARS)
    assert said == (
        "31 December 9999 is too far ahead: dates can be at most 2 years from today "
        "(up to 19 March 2028)."
    )
    assert horizon_problem(date(2028, 3, 19), today, TWO_YEARS) is None
    assert "at most 30 days" in str(horizon_problem(date(2026, 5, 1), today, timedelta(days=30)))
    for typed in ("9999-12-31", "31 december 9999", "december 31 2099"):
        with pytest.raises(Unclear, match="too far ahead"):
            parse_date(typed.split(), today, TWO_YEARS)
        with pytest.raises(Unclear, match="too far ahead"):
            parse_day(typed, today, TWO_YEARS)
    with pytest.raises(Unclear, match="too far ahead"):
        parse_move("2026-03-24 9999-12-31 19:00", today, TWO_YEARS)
    with pytest.raises(Unclear, match="too far ahead"):
        parse_move("9999-12-31 19:00", today, TWO_YEARS)
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    for details in (
        '"Coffee" on 9999-12-31 10:30',
        '"Coffee" every day 19:00 until 9999-12-31',
    ):
        with pytest.raises(Unclear, match="too far ahead"):
            parse_add(details, now, "Europe/Berlin", TWO_YEARS)
    # Within it, and without one (the community file's check), dates read as before.
    assert parse_date(["2028-03-19"], today, TWO_YEARS) == (date(2028, 3, 19), 1)
    assert parse_date(["9999-12-31"], today) == (date(9999, 12, 31), 1)


def test_digits_int_cannot_read_get_a_reply_not_a_crash() -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    for details in ('"X" every day 19:00 ² times', '"X" every ² days 19:00', '"X" on ² may 19:00'):
        with pytest.raises(Unclear):
            parse_add(details, now, "Europe/Berlin", TWO_YEARS)


def test_the_date_a_moderator_means_is_found_from_near_it() -> None:
    s = schedule("daily")
    moved = {date(2027, 6, 1): datetime(2027, 6, 2, 8, 0)}
    m = Meeting("!r:x", 1, "Daily", Schedule(s.start, s.zone, HOUR, s.repeat, moves=moved), ())
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    far = find_date(m, date(2028, 3, 1), now)
    assert (far.key, far.moved) == ("20280301", False)
    # 2 June 2027 holds its own date and the one moved there: the moved one
    # starts first, so it is the one meant; its own date is found by its key.
    on_the_second = find_date(m, date(2027, 6, 2), now)
    assert (on_the_second.key, on_the_second.moved) == ("20270601", True)
    assert find_date(m, date(2027, 6, 1), now).key == "20270601"
