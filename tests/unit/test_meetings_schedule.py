"""The meetings' chain of polls and reminders, run by the platform's real
scheduler on a fake clock: on time across a DST change, late after a
downtime (or skipped once the meeting began), never twice, and re-planned
after a move. The feature's own job handlers decide; records live in memory.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite
import pytest

from bots.dates.recurrence import Freq, Repeat, Schedule
from bots.framework.actions import (
    Action,
    DeleteRecord,
    EndPoll,
    PutRecord,
    ScheduleJob,
    SendNotice,
    SendPoll,
)
from bots.framework.config import BotConfig
from bots.framework.events import PowerSnapshot
from bots.framework.feature import Context
from bots.framework.feature import Job as FeatureJob
from bots.framework.scheduler import Job as StoredJob
from bots.framework.scheduler import JobKind, Scheduler
from bots.meetings.config import MeetingsConfig
from bots.meetings.feature import FEATURE as meetings_feature
from bots.meetings.model import FEATURE, Meeting, meetings_kind, rsvp_kind
from bots.meetings.plan import announce_job
from tests.unit.test_scheduler import FakeClock

ROOM = "!peers:example.org"
BERLIN = ZoneInfo("Europe/Berlin")
ALICE, BOB, CAROL = "@alice:example.org", "@bob:example.org", "@carol:example.org"


def at(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()  # type: ignore[misc]


class Records:
    """The feature's records, as the platform's store keeps them."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    async def record(self, feature: str, kind: str, key: str) -> dict[str, Any] | None:
        return self.data.get((kind, key))

    async def records(self, feature: str, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for (kd, k), v in self.data.items() if kd == kind}


def meetings_context(
    records: Records, now: float, members: frozenset[str] = frozenset({ALICE, BOB})
) -> Context:
    """What the feature's handlers read, with its records in memory."""
    return Context(
        me="@hearth-bot:example.org",
        feature=FEATURE,
        config=MeetingsConfig(community=Path("unused.yaml")),
        bot=BotConfig(
            homeserver="https://example.org",
            user_id="@hearth-bot:example.org",
            password_file=Path("unused"),
            state_dir=Path("unused"),
        ),
        now=now,
        db=None,  # type: ignore[arg-type]  # the meetings feature keeps records only
        power=lambda room, user: PowerSnapshot(0, None),
        store=records,
        members=lambda room: members,
    )


class Bot:
    """The scheduler and the feature's job specs, as the runtime wires them."""

    def __init__(self, db: aiosqlite.Connection, clock: FakeClock, records: Records) -> None:
        self.clock, self.records = clock, records
        self.sent: list[tuple[float, Action]] = []
        self.polls = 0
        kinds = [
            JobKind(FEATURE, spec.kind, self._runner(spec), spec.grace_s, spec.parse)
            for spec in meetings_feature.jobs
        ]
        self.scheduler = Scheduler(db, kinds, clock=clock)

    def _runner(self, spec: Any) -> Any:
        async def run(job: StoredJob) -> None:
            view = FeatureJob(spec.kind, job.key, job.due, job.payload, job.late, job.parsed)
            await self.apply(await spec.run(view, self.context()))

        return run

    def context(self) -> Context:
        return meetings_context(self.records, self.clock.now())

    async def apply(self, actions: Any) -> None:
        for a in actions:
            if isinstance(a, PutRecord):
                self.records.data[(a.kind, a.key)] = dict(a.value)
            elif isinstance(a, DeleteRecord):
                self.records.data.pop((a.kind, a.key), None)
            elif isinstance(a, ScheduleJob):
                await self.scheduler.add(a.feature, a.kind, a.due, a.payload, a.key)
            else:
                self.sent.append((self.clock.now(), a))
                if isinstance(a, SendPoll):
                    self.polls += 1
                    _, kind, key = a.record_as
                    self.records.data[(kind, key)] = {"event_id": f"$poll{self.polls}"}

    async def run_until(self, t: float) -> None:
        while (nxt := await self.scheduler.next_due()) is not None and nxt <= t:
            self.clock.wall = max(self.clock.wall, nxt)
            await self.scheduler.run_due()
        self.clock.wall = max(self.clock.wall, t)

    def said(self) -> list[tuple[str, str, str]]:
        """(Berlin time, what, text) of everything sent, in order."""
        out = []
        for ts, a in self.sent:
            when = datetime.fromtimestamp(ts, BERLIN).strftime("%a %d %H:%M")
            text = a.question if isinstance(a, SendPoll) else getattr(a, "body", "") or a.text  # type: ignore[union-attr]
            out.append((when, type(a).__name__, text))
        return out


def tuesday_check_in(**kw: Any) -> Meeting:
    schedule = Schedule(
        datetime(2026, 3, 24, 19, 0),
        "Europe/Berlin",
        timedelta(minutes=60),
        Repeat(Freq.WEEKLY, weekdays=(1,)),
    )
    m = Meeting(
        ROOM,
        1,
        "Tuesday check-in",
        schedule,
        (timedelta(days=1), timedelta(minutes=15)),
        "https://meet.example/room",
    )
    return replace(m, **kw)


async def added(bot: Bot, m: Meeting) -> None:
    bot.records.data[(meetings_kind(ROOM), str(m.number))] = m.to_record()
    await bot.apply([announce_job(m, bot.clock.now(), "added")])


async def test_polls_and_reminders_stay_on_local_time_across_the_dst_change(
    db: aiosqlite.Connection,
) -> None:
    clock = FakeClock()
    clock.wall = at(2026, 3, 20, 12, 0)  # Friday
    bot = Bot(db, clock, Records())
    await bot.scheduler.start()
    await added(bot, tuesday_check_in())
    bot.records.data[(rsvp_kind(ROOM, 1, "20260331"), ALICE)] = {"answer": "yes", "ts": 1}
    bot.records.data[(rsvp_kind(ROOM, 1, "20260331"), CAROL)] = {"answer": "yes", "ts": 1}
    await bot.run_until(at(2026, 4, 1, 12, 0))
    said = [(when, what) for when, what, _ in bot.said()]
    assert said == [
        ("Fri 20 12:00", "SendPoll"),  # for Tue 24
        ("Mon 23 19:00", "SendNotice"),
        ("Tue 24 18:45", "SendNotice"),
        ("Tue 24 19:00", "EndPoll"),
        ("Tue 24 19:00", "SendPoll"),  # for Tue 31, after the clocks went forward
        ("Mon 30 19:00", "SendNotice"),
        ("Tue 31 18:45", "SendNotice"),
        ("Tue 31 19:00", "EndPoll"),
        ("Tue 31 19:00", "SendPoll"),
    ]
    polls = [a for _, a in bot.sent if isinstance(a, SendPoll)]
    assert "Tue 31 Mar 2026, 19:00–20:00 (Europe/Berlin)" in polls[1].question
    assert polls[1].answers == ("Going", "Maybe", "Can't make it")
    assert polls[1].answer_ids[0] == "hearth.1.20260331.yes"
    # The last reminder pings those going who are still in the room; the
    # day-before one pings nobody.
    notices = [a for _, a in bot.sent if isinstance(a, SendNotice)]
    assert notices[2].mentions == ()
    assert notices[3].mentions == (ALICE,)
    assert "1 going" in notices[3].body
    assert "https://meet.example/room" in notices[3].body
    assert not any("Late" in n.body for n in notices)
    ended = [a for _, a in bot.sent if isinstance(a, EndPoll)]
    assert [e.poll_id for e in ended] == ["$poll1", "$poll2"]
    # Who said they would go is forgotten once the date has begun.
    assert await bot.records.records(FEATURE, rsvp_kind(ROOM, 1, "20260331")) == {}


async def test_after_a_downtime_reminders_come_late_once_and_not_after_the_start(
    db: aiosqlite.Connection, tmp_path: Path
) -> None:
    clock = FakeClock()
    clock.wall = at(2026, 3, 20, 12, 0)
    records = Records()
    bot = Bot(db, clock, records)
    await bot.scheduler.start()
    await added(bot, tuesday_check_in())
    await bot.run_until(at(2026, 3, 23, 18, 0))
    assert len(bot.sent) == 1  # the poll
    # Down from Monday 18:00 until Tuesday 18:50: both reminders fell due.
    clock.wall = at(2026, 3, 24, 18, 50)
    bot = Bot(db, clock, records)
    report = await bot.scheduler.start()
    assert report.late == 2
    await bot.run_until(clock.wall)
    texts = [t for _, what, t in bot.said() if what == "SendNotice"]
    assert len(texts) == 2
    assert all(t.startswith("(Late: I was offline when this was due.)") for t in texts)
    # Restarted again at once: the ledger keeps them from going twice.
    bot = Bot(db, clock, records)
    await bot.scheduler.start()
    await bot.run_until(at(2026, 3, 24, 18, 59))
    assert bot.sent == []

    # Next week the bot is down over the meeting itself: the reminders are
    # recorded as missed, not sent, and the next date is announced.
    await bot.run_until(at(2026, 3, 30, 12, 0))
    clock.wall = at(2026, 3, 31, 19, 30)
    bot = Bot(db, clock, records)
    report = await bot.scheduler.start()
    assert [p.kind for p in report.missed] == ["remind"]  # the day-before one, past grace
    await bot.run_until(clock.wall)
    assert [what for _, what, _ in bot.said()] == ["EndPoll", "SendPoll"]
    ledger = {k: v for (kind, k), v in records.data.items() if kind.startswith("sent:")}
    missed = [k for k, v in ledger.items() if v.get("missed")]
    assert missed == [f"20260331/{int(at(2026, 3, 31, 19, 0))}/remind/900"]
    poll = next(a for _, a in bot.sent if isinstance(a, SendPoll))
    assert "Tue 7 Apr" in poll.question


async def test_a_moved_date_gets_fresh_reminders_and_the_old_ones_do_nothing(
    db: aiosqlite.Connection,
) -> None:
    clock = FakeClock()
    clock.wall = at(2026, 3, 20, 12, 0)
    bot = Bot(db, clock, Records())
    await bot.scheduler.start()
    m = tuesday_check_in()
    await added(bot, m)
    await bot.run_until(at(2026, 3, 23, 20, 0))  # the day-before reminder went
    # A moderator moves Tuesday's meeting to Wednesday 18:00, then re-plans.
    moved = m.with_schedule(
        replace(m.schedule, moves={date(2026, 3, 24): datetime(2026, 3, 25, 18, 0)})
    )
    bot.records.data[(meetings_kind(ROOM), "1")] = moved.to_record()
    await bot.apply([announce_job(moved, clock.now(), "moved")])
    await bot.run_until(at(2026, 3, 25, 19, 0))
    said = [(when, what) for when, what, _ in bot.said()]
    assert said == [
        ("Fri 20 12:00", "SendPoll"),
        ("Mon 23 19:00", "SendNotice"),
        # Tuesday 18:45 passes in silence; the new date's reminders run.
        ("Tue 24 18:00", "SendNotice"),
        ("Wed 25 17:45", "SendNotice"),
        ("Wed 25 18:00", "EndPoll"),
        ("Wed 25 18:00", "SendPoll"),
    ]
    reminder = bot.sent[2][1]
    assert isinstance(reminder, SendNotice)
    assert "Wed 25 Mar 2026, 18:00" in reminder.body


async def test_cancelled_or_skipped_dates_send_nothing(db: aiosqlite.Connection) -> None:
    clock = FakeClock()
    clock.wall = at(2026, 3, 20, 12, 0)
    bot = Bot(db, clock, Records())
    await bot.scheduler.start()
    m = tuesday_check_in()
    await added(bot, m)
    await bot.run_until(clock.now())
    skipped = m.with_schedule(replace(m.schedule, skips=frozenset({date(2026, 3, 24)})))
    bot.records.data[(meetings_kind(ROOM), "1")] = skipped.to_record()
    await bot.apply([announce_job(skipped, clock.now(), "skipped")])
    await bot.run_until(at(2026, 3, 25, 12, 0))
    said = [(when, what, text[:40]) for when, what, text in bot.said()]
    assert [w for w in said if w[1] != "SendPoll"] == [
        ("Fri 20 12:00", "EndPoll", "This poll is closed: Tuesday check-in on"),
    ]
    polls = [a for _, a in bot.sent if isinstance(a, SendPoll)]
    assert "Tue 31 Mar" in polls[1].question  # announced at once instead
    bot.records.data[(meetings_kind(ROOM), "1")] = replace(skipped, cancelled=True).to_record()
    await bot.run_until(at(2026, 4, 30, 12, 0))
    # Cancelled: no reminder and no new poll; the open poll is closed.
    after = bot.said()[len(said) :]
    assert [(what, text) for _, what, text in after] == [
        ("EndPoll", "This poll is closed: Tuesday check-in on that date was called off.")
    ]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tehran"])
async def test_one_job_at_a_time_per_meeting_however_long_the_series(
    db: aiosqlite.Connection, zone: str
) -> None:
    clock = FakeClock()
    clock.wall = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    bot = Bot(db, clock, Records())
    await bot.scheduler.start()
    m = Meeting(
        ROOM,
        1,
        "Daily",
        Schedule(datetime(2026, 1, 2, 9, 0), zone, timedelta(minutes=30), Repeat(Freq.DAILY)),
        (timedelta(minutes=15),),
    )
    await added(bot, m)
    await bot.run_until(clock.wall + 30 * 86400 + 12 * 3600)
    pending = await db.execute_fetchall(
        "SELECT kind FROM scheduled_jobs WHERE state = 'pending' ORDER BY kind"
    )
    assert [r[0] for r in pending] == ["announce", "remind"]
    reminders = [a for _, a in bot.sent if isinstance(a, SendNotice)]
    assert len(reminders) == 30
