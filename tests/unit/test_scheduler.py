"""The shared scheduler: durable, claimed before running, honest about what it missed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bots.framework.scheduler import SCHEMA, Job, JobKind, Problem, Scheduler, connect

T0 = 1_800_000_000.0


class FakeClock:
    """Wall time set by the test; sleep() returns only when the test advances time.

    Sleeps count on a separate monotonic time, as asyncio's do, so jump()
    moves the wall clock alone."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 0.0
        self.sleeps = 0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._slept = asyncio.Event()

    def now(self) -> float:
        return self.wall

    async def sleep(self, seconds: float) -> None:
        entry = (self.mono + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self.sleeps += 1
        self._slept.set()
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
        for entry in [e for e in self._sleepers if e[0] <= self.mono]:
            self._sleepers.remove(entry)
            entry[1].set_result(None)

    def jump(self, seconds: float) -> None:
        self.wall += seconds

    async def asleep_after(self, sleeps: int) -> None:
        """Wait until the loop went to sleep again after the *sleeps*-th sleep."""
        while not (self.sleeps > sleeps and self._sleepers):
            self._slept.clear()
            await asyncio.wait_for(self._slept.wait(), 5)  # a hang guard, not a timing

    async def tick(self, seconds: float) -> None:
        """Advance time and wait for the loop to be asleep again."""
        before = self.sleeps
        self.advance(seconds)
        await self.asleep_after(before)


class Ran:
    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[Job] = []
        self.fail = fail

    async def __call__(self, job: Job) -> None:
        self.jobs.append(job)
        await asyncio.sleep(0)  # let a second scheduler interleave
        if self.fail:
            raise RuntimeError("the feature broke")

    @property
    def keys(self) -> list[str]:
        return [job.key for job in self.jobs]


class Reported:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    async def __call__(self, problem: Problem) -> None:
        self.problems.append(problem)


def needs_room(payload: Mapping[str, Any]) -> str:
    return str(payload["room"])


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    async with aiosqlite.connect(path) as db:
        await db.executescript(SCHEMA)
    return path


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    conn = await connect(db_path)
    yield conn
    await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ran() -> Ran:
    return Ran()


@pytest.fixture
def sched(db: aiosqlite.Connection, clock: FakeClock, ran: Ran) -> Scheduler:
    return Scheduler(db, [JobKind("onboarding", "remind", ran)], clock=clock)


@contextlib.asynccontextmanager
async def serving(sched: Scheduler, clock: FakeClock) -> AsyncIterator[None]:
    before = clock.sleeps
    task = asyncio.create_task(sched.serve())
    await clock.asleep_after(before)
    try:
        yield
    finally:
        sched.stop()
        await task


async def remind(sched: Scheduler, key: str, at: float, **payload: Any) -> bool:
    return await sched.add("onboarding", "remind", T0 + at, payload, key)


async def row(db: aiosqlite.Connection, key: str) -> dict[str, Any]:
    db.row_factory = aiosqlite.Row
    async with db.execute("SELECT * FROM scheduled_jobs WHERE key = ?", (key,)) as cur:
        found = await cur.fetchone()
    db.row_factory = None
    assert found is not None
    return dict(found)


async def test_jobs_run_in_due_order(sched: Scheduler, clock: FakeClock, ran: Ran) -> None:
    for key, at in (("c", 30), ("a", 10), ("b", 20)):
        await remind(sched, key, at)
    clock.advance(30)
    assert await sched.run_due() == 3
    assert ran.keys == ["a", "b", "c"]


async def test_earlier_job_added_while_sleeping_runs_first(
    sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "later", 50)
    async with serving(sched, clock):
        before = clock.sleeps
        await remind(sched, "sooner", 5)
        await clock.asleep_after(before)
        await clock.tick(5)
        assert ran.keys == ["sooner"]
        await clock.tick(45)
    assert ran.keys == ["sooner", "later"]


async def test_restart_continues_pending_jobs(db_path: Path, clock: FakeClock, ran: Ran) -> None:
    kinds = [JobKind("onboarding", "remind", ran)]
    first = await connect(db_path)
    await remind(Scheduler(first, kinds, clock=clock), "day-3", 10)
    await first.close()
    again = await connect(db_path)
    try:
        sched = Scheduler(again, kinds, clock=clock)
        await sched.start()
        clock.advance(10)
        await sched.run_due()
    finally:
        await again.close()
    assert ran.keys == ["day-3"]


async def test_job_due_while_down_runs_late_within_grace(
    db: aiosqlite.Connection, sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "day-3", 10)
    clock.advance(600)  # the bot was down
    restarted = Scheduler(db, [JobKind("onboarding", "remind", ran)], clock=clock)
    assert (await restarted.start()).late == 1
    await restarted.run_due()
    assert [job.late for job in ran.jobs] == [True]
    assert (await row(db, "day-3"))["late"] == 1


async def test_job_past_grace_is_missed_reported_and_kept(
    db: aiosqlite.Connection, sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "day-3", 10)
    clock.advance(2 * 3600)
    reported = Reported()
    restarted = Scheduler(db, [JobKind("onboarding", "remind", ran)], clock=clock, report=reported)
    report = await restarted.start()
    assert [p.key for p in report.missed] == ["day-3"]
    assert reported.problems == list(report.missed)
    assert await restarted.run_due() == 0
    assert (await row(db, "day-3"))["state"] == "missed"


async def test_two_schedulers_run_each_job_once(
    db_path: Path, sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    keys = [f"job-{i}" for i in range(40)]
    for i, key in enumerate(keys):
        await remind(sched, key, i)
    other = await connect(db_path)
    try:
        twin = Scheduler(other, [JobKind("onboarding", "remind", ran)], clock=clock)
        clock.advance(60)
        counts = await asyncio.gather(sched.run_due(), twin.run_due())
    finally:
        await other.close()
    assert sorted(ran.keys) == sorted(keys)
    assert sum(counts) == len(keys)


async def test_disabled_features_jobs_are_kept_and_counted(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran
) -> None:
    kinds = [JobKind("onboarding", "remind", ran), JobKind("meetings", "soon", ran)]
    both = Scheduler(db, kinds, clock=clock)
    for key in ("m1", "m2"):
        await both.add("meetings", "soon", T0 + 10, {}, key)
    await both.add("onboarding", "remind", T0 + 10, {}, "o1")
    clock.advance(10)
    only_onboarding = Scheduler(db, [JobKind("onboarding", "remind", ran)], clock=clock)
    assert (await only_onboarding.start()).disabled == {"meetings": 2}
    await only_onboarding.run_due()
    assert ran.keys == ["o1"]
    assert await only_onboarding.next_due() is None  # nothing left that it could run
    assert (await row(db, "m1"))["state"] == (await row(db, "m2"))["state"] == "pending"


async def test_a_job_added_for_a_disabled_feature_is_kept_not_refused(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran
) -> None:
    # An outbox replayed after a restart that left the feature out.
    only_onboarding = Scheduler(db, [JobKind("onboarding", "remind", ran)], clock=clock)
    assert await only_onboarding.add("meetings", "soon", T0 + 10, {"any": "thing"}, "m1")
    assert (await row(db, "m1"))["state"] == "pending"
    assert (await only_onboarding.start()).disabled == {"meetings": 1}
    # A kind the enabled feature does not have is a mistake, not a setting.
    with pytest.raises(ValueError, match="unknown job kind onboarding/nudge"):
        await only_onboarding.add("onboarding", "nudge", T0 + 10, {}, "o1")
    # Enabled again, the job runs (late).
    kinds = [JobKind("onboarding", "remind", ran), JobKind("meetings", "soon", ran)]
    clock.advance(10)
    both = Scheduler(db, kinds, clock=clock)
    assert (await both.start()).late == 1
    await both.run_due()
    assert ran.keys == ["m1"]


@pytest.mark.parametrize("bad", ["{not json", '{"other": 1}', "[1, 2]"])
async def test_unparsable_payload_is_failed_and_reported_and_the_next_runs(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran, bad: str
) -> None:
    reported = Reported()
    kinds = [JobKind("onboarding", "remind", ran, parse=needs_room)]
    sched = Scheduler(db, kinds, clock=clock, report=reported)
    for key, at in (("a", 10), ("b", 20), ("c", 30)):
        await remind(sched, key, at, room="!r:example.org")
    await db.execute("UPDATE scheduled_jobs SET payload = ? WHERE key = 'b'", (bad,))
    await db.commit()
    clock.advance(30)
    await sched.run_due()
    assert ran.keys == ["a", "c"]
    assert [(p.key, p.what) for p in reported.problems] == [("b", "failed")]
    b = await row(db, "b")
    assert b["state"] == "failed"
    assert b["problem"].startswith("payload does not parse")


async def test_unparsable_payload_is_reported_at_start(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran
) -> None:
    kinds = [JobKind("onboarding", "remind", ran, parse=needs_room)]
    sched = Scheduler(db, kinds, clock=clock)
    await remind(sched, "far", 86400, room="!r:example.org")
    await db.execute("UPDATE scheduled_jobs SET payload = '{}'")
    await db.commit()
    assert [p.key for p in (await sched.start()).failed] == ["far"]


async def test_payload_the_kind_rejects_is_refused_on_add(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran
) -> None:
    kinds = [JobKind("onboarding", "remind", ran, parse=needs_room)]
    with pytest.raises(KeyError):
        await remind(Scheduler(db, kinds, clock=clock), "x", 10)


async def test_duplicate_key_is_not_added_twice(db: aiosqlite.Connection, sched: Scheduler) -> None:
    assert await remind(sched, "day-3", 10)
    assert not await remind(sched, "day-3", 99)
    assert (await row(db, "day-3"))["due"] == T0 + 10


async def test_clock_jumping_backwards_does_not_run_a_job_early(
    sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "day-3", 10)
    async with serving(sched, clock):
        clock.jump(-3600)
        await clock.tick(10)  # the sleep planned before the jump ends
        await clock.tick(60)
    assert ran.keys == []


async def test_clock_jumping_forwards_runs_due_jobs(
    sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "day-3", 600)
    async with serving(sched, clock):
        clock.jump(600)
        await clock.tick(60)  # the capped sleep ends and sees the new time
        assert ran.keys == ["day-3"]


async def test_an_idle_scheduler_wakes_without_reading_the_table(
    sched: Scheduler, clock: FakeClock, ran: Ran, monkeypatch: pytest.MonkeyPatch
) -> None:
    await remind(sched, "next-week", 7 * 86400)
    looks = 0
    real_next_due = sched.next_due

    async def counting() -> float | None:
        nonlocal looks
        looks += 1
        return await real_next_due()

    async with serving(sched, clock):
        monkeypatch.setattr(sched, "next_due", counting)
        for _ in range(5):
            await clock.tick(60)
        assert looks == 0
        # A wall clock that jumps is noticed at the next wake-up.
        clock.jump(7 * 86400)
        await clock.tick(60)
        assert ran.keys == ["next-week"]


async def test_runner_that_raises_does_not_stop_the_loop(
    db: aiosqlite.Connection, clock: FakeClock, ran: Ran
) -> None:
    reported = Reported()
    broken = Ran(fail=True)
    kinds = [JobKind("onboarding", "remind", ran), JobKind("mutes", "lift", broken)]
    sched = Scheduler(db, kinds, clock=clock, report=reported)
    await sched.add("mutes", "lift", T0 + 5, {}, "lift")
    await remind(sched, "day-3", 10)
    async with serving(sched, clock):
        await clock.tick(5)
        await clock.tick(5)
    assert (broken.keys, ran.keys) == (["lift"], ["day-3"])
    assert [(p.key, p.what, p.detail) for p in reported.problems] == [
        ("lift", "failed", "runner raised RuntimeError")
    ]
    lift = await row(db, "lift")
    assert (lift["state"], lift["attempts"]) == ("failed", 1)


async def test_job_left_running_by_a_dead_process_runs_again(
    db: aiosqlite.Connection, sched: Scheduler, clock: FakeClock, ran: Ran
) -> None:
    await remind(sched, "day-3", 10)
    await db.execute("UPDATE scheduled_jobs SET state = 'running', attempts = 1")
    await db.commit()
    assert (await sched.start()).recovered == 1
    clock.advance(10)
    await sched.run_due()
    assert ran.keys == ["day-3"]


async def test_job_interrupted_too_often_is_failed_not_retried(
    db: aiosqlite.Connection, sched: Scheduler, ran: Ran
) -> None:
    await remind(sched, "day-3", 10)
    await db.execute("UPDATE scheduled_jobs SET state = 'running', attempts = 3")
    await db.commit()
    assert [p.detail for p in (await sched.start()).failed] == ["interrupted too often"]
    assert (await row(db, "day-3"))["state"] == "failed"


async def test_cancel_drops_a_pending_job(sched: Scheduler, clock: FakeClock, ran: Ran) -> None:
    await remind(sched, "day-3", 10)
    assert await sched.cancel("day-3")
    assert not await sched.cancel("day-3")
    clock.advance(10)
    assert await sched.run_due() == 0


async def test_prune_removes_only_old_finished_jobs(
    db: aiosqlite.Connection, sched: Scheduler, clock: FakeClock
) -> None:
    await remind(sched, "done", 10)
    await remind(sched, "pending", 10_000)
    clock.advance(10)
    await sched.run_due()
    clock.advance(86400)
    assert await sched.prune(3600) == 1
    async with db.execute("SELECT key FROM scheduled_jobs") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["pending"]


async def test_naive_datetime_is_rejected(sched: Scheduler) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await sched.add("onboarding", "remind", datetime(2030, 1, 1), {}, "k")


async def test_aware_datetime_is_stored_as_utc_epoch(
    db: aiosqlite.Connection, sched: Scheduler
) -> None:
    paris = datetime(2030, 1, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    await sched.add("onboarding", "remind", paris, {}, "k")
    assert (await row(db, "k"))["due"] == datetime(2030, 1, 1, 8, tzinfo=UTC).timestamp()


async def test_schema_survives_the_migration_split(tmp_path: Path) -> None:
    db = await connect(tmp_path / "fresh.db")
    try:
        for statement in filter(str.strip, SCHEMA.split(";")):  # as Storage.migrate does
            await db.execute(statement)
        sched = Scheduler(db, [JobKind("onboarding", "remind", Ran())])
        assert await sched.add("onboarding", "remind", T0, {}, "k")
    finally:
        await db.close()
