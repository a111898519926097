"""What the scheduler keeps: its table, its job kinds and jobs, and
why a job must not run. See :mod:`bots.framework.scheduler`."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import aiosqlite

# Registered as a storage migration, which splits on semicolons: none inside.
SCHEMA = """
CREATE TABLE scheduled_jobs (
    id INTEGER PRIMARY KEY,
    due REAL NOT NULL,
    feature TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'done', 'missed', 'failed')),
    claimed_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    late INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    finished_at REAL,
    problem TEXT
);
CREATE INDEX scheduled_jobs_state_due ON scheduled_jobs (state, due);
"""

# The longest single sleep. Sleeps run on the monotonic clock but due times
# are wall-clock times: a clock step or a suspend is noticed within this.
MAX_SLEEP_S = 60.0
# A job interrupted this often (it may be what kills the process) is failed
# rather than run again, so it cannot become a crash loop.
MAX_ATTEMPTS = 3
# After a database error, wait this long (or for add()) before trying again.
ERROR_PAUSE_S = 5.0
# A wall clock that moved this much more (or less) than the loop slept has
# jumped: look at the table again rather than trust the due times in hand.
CLOCK_JUMP_S = 2.0
What = Literal["missed", "failed"]


class Clock(Protocol):
    def now(self) -> float: ...  # wall clock, epoch seconds UTC

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The wall clock, or *wall* in its place (the runtime's own clock, so
    jobs fall due by the same "now" their handlers see)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall

    def now(self) -> float:
        return self._wall()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Job:
    id: int
    feature: str
    kind: str
    due: float
    payload: Mapping[str, Any]
    key: str
    late: bool  # ran after a downtime (or a stalled loop): the runner may say so
    parsed: Any  # what the kind's parse() returned; None without one


@dataclass(frozen=True)
class JobKind:
    feature: str
    name: str
    run: Callable[[Job], Awaitable[None]]
    grace_s: float = 3600.0  # how late the job is still worth running
    parse: Callable[[Mapping[str, Any]], Any] | None = None  # raise to reject a payload


@dataclass(frozen=True)
class Problem:
    job_id: int
    feature: str
    kind: str
    key: str
    what: What
    detail: str


@dataclass(frozen=True)
class StartReport:
    recovered: int  # jobs left running by a dead process, to run again
    late: int  # overdue jobs within their grace, to run now
    missed: tuple[Problem, ...]
    failed: tuple[Problem, ...]
    disabled: Mapping[str, int]  # feature -> pending jobs kept for it


class Row(NamedTuple):
    id: int
    feature: str
    kind: str
    due: float
    payload: str
    key: str
    late: int
    state: str
    attempts: int


COLUMNS = ", ".join(Row._fields)


def epoch(due: float | datetime) -> float:
    if isinstance(due, datetime):
        if due.utcoffset() is None:
            raise ValueError("a job's due time must be timezone-aware")
        return due.timestamp()
    when = float(due)
    if not math.isfinite(when):
        raise ValueError("a job's due time must be a finite epoch time")
    return when


def parse_payload(kind: JobKind, text: str) -> tuple[dict[str, Any], Any]:
    payload = json.loads(text)
    if not isinstance(payload, dict):
        raise TypeError("payload is not a JSON object")
    return payload, kind.parse(payload) if kind.parse is not None else None


def why_not_run(row: Row, kind: JobKind, now: float) -> tuple[What, str] | None:
    """Why the job must not run, if it must not."""
    try:
        parse_payload(kind, row.payload)
    except Exception as exc:  # only the type: a validation error's text quotes the payload
        return "failed", f"payload does not parse ({type(exc).__name__})"
    if now - row.due > kind.grace_s:
        return "missed", f"{now - row.due:.0f} s past due, grace {kind.grace_s:.0f} s"
    return None


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection for the scheduler alone, set up like Storage's."""
    db = await aiosqlite.connect(path)
    try:
        # busy_timeout: the room workers write through Storage's connection;
        # wait for them rather than fail with "database is locked".
        pragmas = (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "secure_delete=ON",
            "busy_timeout=10000",
        )
        for pragma in pragmas:
            await db.execute(f"PRAGMA {pragma}")
    except BaseException:
        await db.close()  # its thread would keep the process alive
        raise
    return db
