"""The scheduler's loop: claims each due job in the database, runs it,
and reports what was missed or failed (see :mod:`bots.framework.scheduler`)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bots.framework.logging import get_logger
from bots.framework.scheduler.jobs import (
    CLOCK_JUMP_S,
    COLUMNS,
    ERROR_PAUSE_S,
    MAX_ATTEMPTS,
    MAX_SLEEP_S,
    Clock,
    Job,
    JobKind,
    Problem,
    Row,
    StartReport,
    SystemClock,
    What,
    epoch,
    parse_payload,
    why_not_run,
)

log = get_logger(__name__)


class Scheduler:
    """Durable jobs for every feature; see the module docstring."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        kinds: Iterable[JobKind],
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
        report: Callable[[Problem], Awaitable[None]] | None = None,
        max_sleep_s: float = MAX_SLEEP_S,
    ) -> None:
        self._db = db
        self._kinds: dict[tuple[str, str], JobKind] = {}
        for kind in kinds:
            if (kind.feature, kind.name) in self._kinds:
                raise ValueError(f"job kind {kind.feature}/{kind.name} registered twice")
            self._kinds[(kind.feature, kind.name)] = kind
        self._clock: Clock = clock or SystemClock()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._report = report
        self._max_sleep = max_sleep_s
        # Only enabled kinds are ever due: a disabled feature's jobs would
        # otherwise be "due now" forever and spin the loop.
        pairs = ", ".join("(?, ?)" for _ in self._kinds)
        self._enabled = f"(feature, kind) IN (VALUES {pairs})" if self._kinds else "0"
        self._enabled_args = tuple(part for pair in self._kinds for part in pair)
        self._wake = asyncio.Event()
        self._io = asyncio.Lock()
        self._stopping = False
        self._started = False

    async def add(
        self, feature: str, kind: str, due: float | datetime, payload: Mapping[str, Any], key: str
    ) -> bool:
        """Schedule a job; False, changing nothing, if *key* was already used."""
        job_kind = self._kinds.get((feature, kind))
        if job_kind is None and any(f == feature for f, _ in self._kinds):
            raise ValueError(f"unknown job kind {feature}/{kind}")
        when = epoch(due)
        text = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"), allow_nan=False)
        if job_kind is not None:
            # The caller learns of a bad payload now, not when it is due.
            parse_payload(job_kind, text)
        else:
            # Decided before a restart that left its feature out (an outbox
            # replayed): kept, like the feature's other jobs, and reported
            # at each start until the feature is back.
            log.warning("scheduled job kept for a disabled feature", feature=feature, kind=kind)
        added = await self._write(
            "INSERT INTO scheduled_jobs (due, feature, kind, payload, key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (when, feature, kind, text, key, self._clock.now()),
        )
        if added:
            self._wake.set()  # it may fall due before the loop's planned wake-up
        return added == 1

    async def cancel(self, key: str) -> bool:
        """Drop a pending job; False if there is none under *key*."""
        sql = "DELETE FROM scheduled_jobs WHERE key = ? AND state = 'pending'"
        return await self._write(sql, (key,)) == 1

    async def start(self) -> StartReport:
        """Recover after a stop or crash and sort out what fell due meanwhile.

        Assumes no other live process runs jobs from this database: any row
        found running is taken to be left by a dead one and runs again.
        """
        self._started = True
        now = self._clock.now()
        rows = [
            Row(*r)
            for r in await self._read(
                f"SELECT {COLUMNS} FROM scheduled_jobs WHERE state IN ('pending', 'running')", ()
            )
        ]
        disabled: Counter[str] = Counter()
        problems: list[Problem | None] = []
        recovered: list[tuple[int]] = []
        late: list[tuple[int]] = []
        for row in rows:
            kind = self._kinds.get((row.feature, row.kind))
            if row.state == "running":
                if row.attempts >= MAX_ATTEMPTS:
                    problems.append(await self._finish(row, "failed", "interrupted too often"))
                    continue
                recovered.append((row.id,))
            if kind is None:
                disabled[row.feature] += 1
                continue
            # Every payload is checked now, so a change of format shows up at
            # start, not at the hour the job falls due.
            verdict = why_not_run(row, kind, now)
            if verdict is not None:
                problems.append(await self._finish(row, *verdict))
            elif row.due <= now:
                late.append((row.id,))
        await self._write_many(
            "UPDATE scheduled_jobs SET state = 'pending', claimed_by = NULL"
            " WHERE id = ? AND state = 'running'",
            recovered,
        )
        await self._write_many(
            "UPDATE scheduled_jobs SET late = 1 WHERE id = ? AND state = 'pending'", late
        )
        for feature, count in sorted(disabled.items()):
            log.warning("scheduled jobs kept for a disabled feature", feature=feature, jobs=count)
        missed = tuple(p for p in problems if p is not None and p.what == "missed")
        failed = tuple(p for p in problems if p is not None and p.what == "failed")
        log.info(
            "scheduler started",
            pending=len(rows) - len(missed) - len(failed),
            recovered=len(recovered),
            late=len(late),
            missed=len(missed),
            failed=len(failed),
        )
        return StartReport(len(recovered), len(late), missed, failed, dict(disabled))

    async def run_due(self) -> int:
        """Claim and run every job due now, late ones first; return how many ran."""
        found = await self._read(
            f"SELECT {COLUMNS} FROM scheduled_jobs"
            f" WHERE state = 'pending' AND due <= ? AND {self._enabled}"
            " ORDER BY late DESC, due, id",
            (self._clock.now(), *self._enabled_args),
        )
        rows = [Row(*r) for r in found]
        ran = 0
        for row in rows:
            if self._stopping:
                break
            ran += await self._run_one(row, self._kinds[(row.feature, row.kind)])
        return ran

    async def _run_one(self, row: Row, kind: JobKind) -> int:
        now = self._clock.now()
        verdict = why_not_run(row, kind, now)  # past grace: a suspended machine, a clock step
        if verdict is not None:
            await self._finish(row, *verdict)
            return 0
        payload, parsed = parse_payload(kind, row.payload)
        # Later than one capped sleep explains: the loop was not there on time.
        late = bool(row.late) or now - row.due > self._max_sleep
        # The claim is one conditional UPDATE: of two schedulers (or a run
        # and a cancel) exactly one sees a row change.
        claimed = await self._write(
            "UPDATE scheduled_jobs SET state = 'running', claimed_by = ?,"
            " attempts = attempts + 1, late = ? WHERE id = ? AND state = 'pending'",
            (self.worker_id, late, row.id),
        )
        if claimed != 1:
            return 0
        try:
            await kind.run(
                Job(row.id, row.feature, row.kind, row.due, payload, row.key, late, parsed)
            )
        except Exception as exc:
            # The runtime logs a handler's failure the same way; the stored
            # problem keeps only the type, as the text may quote the payload.
            log.exception("scheduled job failed", job_id=row.id, feature=row.feature, kind=row.kind)
            await self._finish(
                row._replace(state="running"), "failed", f"runner raised {type(exc).__name__}"
            )
            return 1
        await self._write(
            "UPDATE scheduled_jobs SET state = 'done', finished_at = ? WHERE id = ?",
            (self._clock.now(), row.id),
        )
        return 1

    async def next_due(self) -> float | None:
        """Due time of the earliest pending job of an enabled kind."""
        found = await self._read(
            f"SELECT due FROM scheduled_jobs WHERE state = 'pending' AND {self._enabled}"
            " ORDER BY due LIMIT 1",
            self._enabled_args,
        )
        return float(found[0][0]) if found else None

    async def serve(self) -> None:
        """Run jobs as they fall due, until cancelled or stop() is called.

        Cancelled mid-job, that job stays running in the table and the next
        start() runs it again."""
        if not self._started:
            await self.start()
        while not self._stopping:
            self._wake.clear()  # before looking, so an add() during this pass counts
            try:
                await self.run_due()
                nxt = await self.next_due()
            except Exception:
                log.exception("scheduler pass failed")
                delay = ERROR_PAUSE_S
            else:
                delay = self._max_sleep
                if nxt is not None:
                    delay = min(delay, nxt - self._clock.now())
            if delay > 0 and not self._stopping:
                await self._idle(delay, nxt)

    def stop(self) -> None:
        """End serve() after the job running now; a stopped scheduler stays stopped."""
        self._stopping = True
        self._wake.set()

    async def prune(self, older_than_s: float) -> int:
        """Delete jobs that ended over *older_than_s* ago. Their keys can then
        be added again: keep this longer than any handler could be re-run."""
        return await self._write(
            "DELETE FROM scheduled_jobs WHERE state IN ('done', 'missed', 'failed')"
            " AND finished_at < ?",
            (self._clock.now() - older_than_s,),
        )

    async def _idle(self, delay: float, nxt: float | None) -> None:
        """Sleep until *nxt* (or the cap), then return for a full pass.

        Waking at the cap with nothing due and the clock where it should be,
        it sleeps on without touching the database: an idle bot costs next
        to nothing. A wake-up call, a jump of the wall clock (set by hand, or
        a suspended machine) or a due time reached returns at once.
        """
        while True:
            before = self._clock.now()
            if await self._sleep_or_wake(delay) or self._stopping:
                return
            now = self._clock.now()
            if abs((now - before) - delay) > CLOCK_JUMP_S:
                return
            delay = self._max_sleep if nxt is None else min(self._max_sleep, nxt - now)
            if delay <= 0:
                return

    async def _sleep_or_wake(self, seconds: float) -> bool:
        """Whether an add() or stop() woke it before *seconds* passed."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)
        return waker.done() and not waker.cancelled()

    # Every use of the connection goes through _read or _write, one at a
    # time. The loop's SELECT and an add() from a room worker used to
    # interleave: an INSERT run while the SELECT's cursor was still open
    # had to upgrade that read to a write, and if Storage's connection had
    # committed in between SQLite refused at once ("database is locked",
    # no busy wait), which stopped the bot.

    async def _read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._io, self._db.execute(sql, args) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def _write(self, sql: str, args: Sequence[Any]) -> int:
        """One statement, committed at once; returns the rows changed."""
        async with self._io:
            cur = await self._db.execute(sql, args)
            await self._db.commit()
            return cur.rowcount

    async def _write_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            async with self._io:
                await self._db.executemany(sql, rows)
                await self._db.commit()

    async def _finish(self, row: Row, what: What, detail: str) -> Problem | None:
        """Record and report a job that ended without running to completion."""
        changed = await self._write(
            "UPDATE scheduled_jobs SET state = ?, finished_at = ?, problem = ?, claimed_by = NULL"
            " WHERE id = ? AND state = ?",
            (what, self._clock.now(), detail, row.id, row.state),
        )
        if changed != 1:
            return None  # another scheduler, or a cancel, got there first
        problem = Problem(row.id, row.feature, row.kind, row.key, what, detail)
        await self._tell(problem)
        return problem

    async def _tell(self, problem: Problem) -> None:
        log.warning(
            f"scheduled job {problem.what}",
            job_id=problem.job_id,
            feature=problem.feature,
            kind=problem.kind,
            detail=problem.detail,
        )
        if self._report is not None:
            try:
                await self._report(problem)
            except Exception:
                log.exception("reporting a scheduled job's problem failed", job_id=problem.job_id)
