"""The features' scheduled jobs: each declared job kind run with its
feature's context, what it decides queued in the outbox; and what the
moderators hear of jobs missed, failed or kept for a feature left out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiosqlite

from bots.framework.actions import Action
from bots.framework.feature import Context, Feature, Job
from bots.framework.logging import get_logger
from bots.framework.scheduler.jobs import Clock, JobKind, Problem
from bots.framework.scheduler.jobs import Job as StoredJob
from bots.framework.scheduler.loop import Scheduler

log = get_logger(__name__)

# Queue and perform what was decided, under an idempotency key.
Submit = Callable[[str, Sequence[Action]], Awaitable[None]]
# Send the moderators a notice.
Tell = Callable[[str], Awaitable[None]]


def job_kinds(
    features: Sequence[Feature[Any]],
    context_of: Callable[[Feature[Any]], Context[Any] | None],
    submit: Submit,
) -> list[JobKind]:
    """Every feature's job kinds, as the scheduler runs them."""
    kinds = []
    for feature in features:
        for spec in feature.jobs:

            async def run(
                job: StoredJob, feature: Feature[Any] = feature, spec: Any = spec
            ) -> None:
                ctx = context_of(feature)
                assert ctx is not None
                view = Job(spec.kind, job.key, job.due, job.payload, job.late, job.parsed)
                await submit(f"job:{job.key}", await spec.run(view, ctx))

            kinds.append(JobKind(feature.name, spec.kind, run, spec.grace_s, spec.parse))
    return kinds


async def report_job(tell: Tell, problem: Problem) -> None:
    """Tell the moderators about a job that was missed or failed (the
    scheduler has logged it); its payload is never quoted."""
    await tell(
        f"A scheduled {problem.feature} job ({problem.kind}) was {problem.what}: {problem.detail}."
    )


async def report_kept_jobs(tell: Tell, kept: Mapping[str, int]) -> None:
    """Jobs of features this configuration leaves out are kept, not run:
    the moderators hear of them at each start until they are resolved."""
    for feature, count in sorted(kept.items()):
        jobs = "1 scheduled job" if count == 1 else f"{count} scheduled jobs"
        are = "is" if count == 1 else "are"
        await tell(
            f"{jobs} of the {feature} feature {are} kept but not run, because {feature} "
            "is not enabled in my configuration. Enable it again and they run "
            "(late, if still within their grace period)."
        )


def features_scheduler(
    db: aiosqlite.Connection,
    features: Sequence[Feature[Any]],
    context_of: Callable[[Feature[Any]], Context[Any] | None],
    submit: Submit,
    clock: Clock,
    tell: Tell,
) -> Scheduler:
    """The scheduler of *features*' jobs, over the bot's database *db*;
    what it misses or fails is told to the moderators."""
    return Scheduler(
        db,
        job_kinds(features, context_of, submit),
        clock=clock,
        report=lambda problem: report_job(tell, problem),
    )


async def start_jobs(
    scheduler: Scheduler, features: Sequence[Feature[Any]], tell: Tell, retention_s: float
) -> None:
    """Sort out what fell due while the bot was down, forget finished jobs
    older than *retention_s*, and tell the moderators of jobs kept for a
    feature left out."""
    report = await scheduler.start()
    await scheduler.prune(retention_s)
    log.info(
        "features started",
        features=[f.name for f in features],
        late_jobs=report.late,
        missed_jobs=len(report.missed),
        kept_jobs=dict(report.disabled),
    )
    await report_kept_jobs(tell, report.disabled)
