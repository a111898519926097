"""Recurrence in a group's own zone: wall-clock times that hold across DST
changes, stored exceptions, lazy and bounded expansion. No I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bots.dates.recurrence import (
    Freq,
    Repeat,
    Schedule,
    iter_occurrences,
    occurrence,
    occurrences,
    on_day,
    wall_time_problem,
)

HOUR = timedelta(hours=1)


def weekly(start: datetime, zone: str, *days: int, **kw: object) -> Schedule:
    return Schedule(start, zone, HOUR, Repeat(Freq.WEEKLY, weekdays=days), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("zone", "first", "changed"),
    [
        # Spring forward in Berlin on 29 March 2026: CET +1 → CEST +2.
        ("Europe/Berlin", datetime(2026, 3, 17, 19, 0), (1, 2)),
        # Chicago springs forward on 8 March 2026: CST -6 → CDT -5.
        ("America/Chicago", datetime(2026, 3, 3, 19, 0), (-6, -5)),
        # Lord Howe falls back half an hour on 5 April 2026: +11 → +10:30.
        ("Australia/Lord_Howe", datetime(2026, 3, 24, 19, 0), (11, 10.5)),
        # Berlin falls back on 25 October 2026.
        ("Europe/Berlin", datetime(2026, 10, 13, 19, 0), (2, 1)),
    ],
)
def test_a_weekly_meeting_stays_at_its_local_time_across_a_dst_change(
    zone: str, first: datetime, changed: tuple[float, float]
) -> None:
    s = weekly(first, zone, first.weekday())
    got = occurrences(s, datetime(2026, 1, 1, tzinfo=UTC), 5)
    assert [o.start.strftime("%H:%M") for o in got] == ["19:00"] * 5
    offsets = [o.start.utcoffset() for o in got]
    hours = [o.total_seconds() / 3600 for o in offsets if o is not None]
    assert hours[0] == changed[0]
    assert hours[-1] == changed[1]
    # The UTC gaps between meetings are a week, except across the change.
    gaps = {b.start.astimezone(UTC) - a.start.astimezone(UTC) for a, b in itertools.pairwise(got)}
    shift = timedelta(hours=changed[0] - changed[1])
    assert gaps == {timedelta(weeks=1), timedelta(weeks=1) + shift}


def test_tehran_keeps_its_time_and_its_fixed_offset() -> None:
    # Iran has kept +03:30 all year since 2022: no change to follow.
    s = weekly(datetime(2026, 3, 16, 18, 30), "Asia/Tehran", 0)
    got = occurrences(s, datetime(2026, 3, 1, tzinfo=UTC), 4)
    assert {o.start.strftime("%H:%M %z") for o in got} == {"18:30 +0330"}


def test_a_time_in_the_spring_gap_takes_the_offset_from_before_it() -> None:
    s = Schedule(datetime(2026, 3, 27, 2, 30), "Europe/Berlin", HOUR, Repeat(Freq.DAILY))
    got = occurrences(s, datetime(2026, 3, 26, tzinfo=UTC), 4)
    # RFC 5545: 02:30 on the night the clocks skip 02:00–03:00 is 03:30 CEST.
    assert [o.start.strftime("%d %H:%M") for o in got] == [
        "27 02:30",
        "28 02:30",
        "29 03:30",
        "30 02:30",
    ]
    assert got[2].key == "20260329"


def test_a_repeated_hour_takes_its_first_instance() -> None:
    s = Schedule(datetime(2026, 10, 24, 2, 30), "Europe/Berlin", HOUR, Repeat(Freq.DAILY))
    got = occurrences(s, datetime(2026, 10, 24, tzinfo=UTC), 2)
    assert got[1].start.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST


def test_typed_times_that_are_not_one_moment_are_named() -> None:
    gap = wall_time_problem(datetime(2026, 3, 8, 2, 30), "America/Chicago")
    assert gap is not None
    assert "doesn't exist" in gap
    twice = wall_time_problem(datetime(2026, 4, 5, 1, 45), "Australia/Lord_Howe")
    assert twice is not None
    assert "twice" in twice
    assert wall_time_problem(datetime(2026, 4, 5, 2, 15), "Australia/Lord_Howe") is None
    assert wall_time_problem(datetime(2026, 3, 22, 2, 30), "Asia/Tehran") is None


def test_skips_and_moves_are_kept_as_exceptions() -> None:
    s = weekly(
        datetime(2026, 12, 1, 19, 0),
        "Europe/Berlin",
        1,
        skips=frozenset({date(2026, 12, 8)}),
        moves={date(2026, 12, 15): datetime(2026, 12, 16, 18, 0)},
    )
    got = occurrences(s, datetime(2026, 11, 30, tzinfo=UTC), 4)
    assert [(o.start.strftime("%m-%d %H:%M"), o.key, o.moved) for o in got] == [
        ("12-01 19:00", "20261201", False),
        ("12-16 18:00", "20261215", True),
        ("12-22 19:00", "20261222", False),
        ("12-29 19:00", "20261229", False),
    ]
    assert occurrence(s, "20261208") is None  # skipped
    assert occurrence(s, "20261209") is None  # not a date of the rule
    moved = on_day(s, date(2026, 12, 15))
    assert moved is not None
    assert moved.start.day == 16


def test_a_move_past_the_next_date_keeps_the_order() -> None:
    s = weekly(
        datetime(2026, 12, 1, 19, 0),
        "UTC",
        1,
        moves={date(2026, 12, 1): datetime(2026, 12, 9, 12, 0)},
    )
    got = occurrences(s, datetime(2026, 11, 30, tzinfo=UTC), 3)
    assert [o.key for o in got] == ["20261208", "20261201", "20261215"]


def test_an_endless_rule_is_expanded_lazily() -> None:
    # Daily since 2000: the next date is found without building 9,800 of them.
    s = Schedule(datetime(2000, 1, 1, 9, 0), "UTC", HOUR, Repeat(Freq.DAILY))
    it = iter_occurrences(s, datetime(2026, 11, 30, tzinfo=UTC))
    assert next(it).start == datetime(2026, 11, 30, 9, 0, tzinfo=ZoneInfo("UTC"))
    assert len(occurrences(s, datetime(2026, 11, 30, tzinfo=UTC), 10)) == 10


def test_a_rule_with_an_end_stops() -> None:
    s = Schedule(
        datetime(2026, 12, 1, 19, 0),
        "UTC",
        HOUR,
        Repeat(Freq.WEEKLY, weekdays=(1,), until=date(2026, 12, 15)),
    )
    assert len(occurrences(s, datetime(2026, 11, 1, tzinfo=UTC), 100)) == 3
    counted = Schedule(s.start, "UTC", HOUR, Repeat(Freq.DAILY, count=4))
    assert len(occurrences(counted, datetime(2026, 11, 1, tzinfo=UTC), 100)) == 4


def test_monthly_on_the_last_friday() -> None:
    s = Schedule(
        datetime(2026, 1, 30, 18, 0),
        "Europe/London",
        HOUR,
        Repeat(Freq.MONTHLY, weekdays=(4,), nth=-1),
    )
    got = occurrences(s, datetime(2026, 1, 1, tzinfo=UTC), 3)
    assert [o.start.date() for o in got] == [
        date(2026, 1, 30),
        date(2026, 2, 27),
        date(2026, 3, 27),
    ]
