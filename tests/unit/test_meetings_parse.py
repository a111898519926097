"""Reading meetings as moderators type them: natural, strict, never a guess. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bots.dates.reading import parse_add, parse_changes, parse_move
from bots.dates.recurrence import Freq
from bots.dates.words import Unclear, parse_date, zone_name

MONTHLY = Freq.MONTHLY
# Friday 27 November 2026, 10:00 UTC.
FRIDAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ZONE = "Europe/London"


def unclear(text: str, now: datetime = FRIDAY) -> str:
    with pytest.raises(Unclear) as caught:
        parse_add(text, now, ZONE)
    return str(caught.value)


def test_the_issue_s_example() -> None:
    spec = parse_add(
        '"Tuesday check-in" every tuesday 19:00 Europe/Berlin for 60m remind 1d,15m '
        "link https://meet.example/room",
        FRIDAY,
        ZONE,
    )
    assert spec.title == "Tuesday check-in"
    assert spec.schedule.start == datetime(2026, 12, 1, 19, 0)
    assert spec.schedule.zone == "Europe/Berlin"
    assert spec.schedule.duration == timedelta(minutes=60)
    assert spec.schedule.repeat is not None
    assert spec.schedule.repeat.freq is Freq.WEEKLY
    assert spec.schedule.repeat.weekdays == (1,)
    assert spec.reminders == (timedelta(days=1), timedelta(minutes=15))
    assert spec.link == "https://meet.example/room"


@pytest.mark.parametrize(
    ("text", "start", "freq", "interval"),
    [
        ('"Coffee" on 2026-12-12 10:30', datetime(2026, 12, 12, 10, 30), None, 1),
        ('"Coffee" on 12 december 10:30', datetime(2026, 12, 12, 10, 30), None, 1),
        ('"Coffee" on december 12 2027 7pm', datetime(2027, 12, 12, 19, 0), None, 1),
        ('"Coffee" tomorrow 09:00', datetime(2026, 11, 28, 9, 0), None, 1),
        ('"Coffee" on monday 09:00', datetime(2026, 11, 30, 9, 0), None, 1),
        ("Walk every day 07:00", datetime(2026, 11, 28, 7, 0), Freq.DAILY, 1),
        # The coming Thursday, not the one after, however many weeks apart.
        ('"Peers" every 2 weeks on thursday 18:00', datetime(2026, 12, 3, 18), Freq.WEEKLY, 2),
        ('"Peers" every other monday 18:00', datetime(2026, 11, 30, 18), Freq.WEEKLY, 2),
        (
            '"M" every month on the first tuesday 18:30',
            datetime(2026, 12, 1, 18, 30),
            Freq.MONTHLY,
            1,
        ),
        (
            '"M" every last friday of the month 18:30',
            datetime(2026, 11, 27, 18, 30),
            Freq.MONTHLY,
            1,
        ),
        ('"M" every month on day 15 12:00', datetime(2026, 12, 15, 12), Freq.MONTHLY, 1),
        ('"Two" every mon,thu 20:00', datetime(2026, 11, 30, 20), Freq.WEEKLY, 1),
    ],
)
def test_natural_forms(text: str, start: datetime, freq: Freq | None, interval: int) -> None:
    spec = parse_add(text, FRIDAY, ZONE)
    assert spec.schedule.start == start
    if freq is None:
        assert spec.schedule.repeat is None
    else:
        assert spec.schedule.repeat is not None
        assert spec.schedule.repeat.freq is freq
        assert spec.schedule.repeat.interval == interval


def test_today_at_a_time_already_past_is_refused_as_past() -> None:
    assert "in the past" in unclear('"x" today 09:00')


def test_friday_said_on_a_friday_asks_which() -> None:
    said = unclear('"x" on next friday 19:00')
    assert "27 November" in said
    assert "4 December" in said
    assert "Give the date" in said
    assert "Give the date" in unclear('"x" on friday 19:00')


def test_next_weekday_still_this_week_asks_which() -> None:
    thursday = datetime(2026, 11, 26, 10, tzinfo=UTC)
    said = unclear('"x" on next friday 19:00', thursday)
    assert "27 November" in said
    assert "4 December" in said
    # Said on a Saturday, "next monday" can only be the coming one.
    saturday = datetime(2026, 11, 28, 10, tzinfo=UTC)
    spec = parse_add('"x" on next monday 19:00', saturday, ZONE)
    assert spec.schedule.start.date() == date(2026, 11, 30)


def test_a_date_without_a_year_that_has_passed_asks_for_the_year() -> None:
    new_year = datetime(2026, 12, 28, 12, tzinfo=UTC)
    said = unclear('"x" on 3 january 10:00', new_year)
    assert "3 january 2027" in said
    assert parse_add('"x" on 3 january 2027 10:00', new_year, ZONE).schedule.start.year == 2027


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('"x" on 30 february 2027 10:00', "30 February 2027 doesn't exist"),
        ('"x" on 2027-02-30 10:00', "doesn't exist"),
        ('"x" on 2026-11-01 10:00', "in the past"),
        ('"x" on 2027-03-28 01:30 Europe/London', "doesn't exist"),
        ('"x" on 2027-03-14 02:30 America/Chicago', "doesn't exist"),
        ('"x" on 2027-10-31 01:30 Europe/London', "happens twice"),
        ('"x" on 2027-01-05 10:00 Europe/Berln', "Did you mean Europe/Berlin?"),
        ('"x" on 2027-01-05 10:00 Mars/Olympus', "I don't know the time zone"),
        ('"x" every hour', "at most once a day"),
        ('"x" every minute', "at most once a day"),
        ('"x" every month on day 31 10:00', "Not every month has that day"),
        ('"x" every tuesday 19:00 5000 times', "at most 1000 times"),
        ('"x" every tuesday 19:00 until 2026-11-01', "before the first"),
        ('"x" on 2027-01-05 25:00', "isn't a time of day"),
        ('"x" on 2027-01-05 19', "Write it as 19:00"),
        ('"x" on 2027-01-05 13pm', "1 to 12"),
        ('"x" every tuesday 19:00 for 3d', "isn't a meeting length"),
        ('"x" every tuesday 19:00 remind 30d', "at most 14 days"),
        ('"x" every tuesday 19:00 link javascript:alert(1)', "web address"),
        ('"x" every tuesday 19:00 for', "needs a value"),
        ('"x" every tuesday 19:00 for 1h for 2h', "once"),
        ("Tuesday check-in every tuesday 19:00", "title in quotes"),
        ('"unclosed every tuesday', "quote is not closed"),
        ('"x" every blursday 19:00', "isn't a day of the week"),
        ('"x" on 2027-01-05 10:00 until 2027-02-01', "for repeating meetings"),
        ('"x" every tuesday 19:00 Europe/Berlin extra', "didn't understand"),
    ],
)
def test_bad_input_gets_a_clear_answer(text: str, needle: str) -> None:
    assert needle in unclear(text)


def test_a_rule_that_ends_before_its_first_date_is_refused() -> None:
    # The last friday of November 2026 is the 27th, today, at 09:00: gone,
    # and the next one (25 December) is after the end.
    said = unclear('"x" every last friday of the month 09:00 until 2026-11-30')
    assert "'until' is before the first meeting" in said


def test_the_zone_decides_what_today_is() -> None:
    # 23:30 UTC on Friday is already Saturday in Tokyo.
    late = datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    spec = parse_add('"x" today 20:00 Asia/Tokyo', late, ZONE)
    assert spec.schedule.start == datetime(2026, 11, 28, 20, 0)


def test_zone_names_are_found_whatever_their_case() -> None:
    assert zone_name("america/chicago") == "America/Chicago"
    assert zone_name("utc") == "UTC"


def test_parse_date_says_how_many_words_it_took() -> None:
    assert parse_date(["1", "december", "2027", "19:00"], date(2026, 11, 27)) == (
        date(2027, 12, 1),
        3,
    )
    assert parse_date(["2026-12-01", "19:00"], date(2026, 11, 27)) == (date(2026, 12, 1), 1)


def test_changes_and_moves() -> None:
    c = parse_changes('title "Check-in" at 18:30 Europe/Paris for 90m remind 2h link none', FRIDAY)
    assert c.title == "Check-in"
    assert c.at == time(18, 30)
    assert c.zone == "Europe/Paris"
    assert c.duration == timedelta(minutes=90)
    assert c.reminders == (timedelta(hours=2),)
    assert c.clear_link
    with pytest.raises(Unclear, match="cancel the meeting and add it again"):
        parse_changes("every wednesday", FRIDAY)
    today = date(2026, 11, 27)
    assert parse_move("2026-12-01 18:00", today) == (date(2026, 12, 1), date(2026, 12, 1), time(18))
    assert parse_move("2026-12-01 to 2026-12-02 18:00", today) == (
        date(2026, 12, 1),
        date(2026, 12, 2),
        time(18),
    )
    with pytest.raises(Unclear, match="new time"):
        parse_move("2026-12-01", today)
