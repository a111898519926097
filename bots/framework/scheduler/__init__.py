"""One durable scheduler that every bot feature shares.

Jobs live in SQLite; the loop sleeps until the next one is due or add()
wakes it. A job is claimed in the database before it runs, so two
schedulers never both run it. Across a crash it is at least once: a job
interrupted while running runs again at the next start.

Give it a connection of its own (:func:`connect`): Storage holds explicit
transactions across awaits, which would take in the scheduler's commits.
Logs name jobs by id, feature and kind; never payloads or keys (keys often
hold user IDs).
"""

from bots.framework.scheduler.jobs import (
    SCHEMA,
    Clock,
    Job,
    JobKind,
    Problem,
    StartReport,
    SystemClock,
    connect,
)
from bots.framework.scheduler.loop import Scheduler

__all__ = [
    "SCHEMA",
    "Clock",
    "Job",
    "JobKind",
    "Problem",
    "Scheduler",
    "StartReport",
    "SystemClock",
    "connect",
]
