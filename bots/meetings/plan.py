"""What the meeting jobs decide: announcing the next date, reminding, and
closing polls. Pure: given a meeting, the clock and what was already sent,
return the actions.

Only the next date of a meeting is ever planned. Announcing it schedules
its reminders and, at its start, the next announcement: a chain of one
job at a time per meeting, however long the series. Every job re-checks
the meeting as it is now, so a job planned before a skip, move, edit or
cancel finds that it no longer applies and does nothing; the ledger of
what was sent keeps a re-planned reminder from being sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.dates.recurrence import Occurrence, iter_occurrences, occurrence
from bots.framework.actions import (
    Action,
    DeleteRecord,
    EndPoll,
    PutRecord,
    ScheduleJob,
    SendNotice,
    SendPoll,
)
from bots.framework.markdown import Md, mention
from bots.meetings import texts
from bots.meetings.model import (
    ANSWER_TEXT,
    FEATURE,
    Answer,
    Meeting,
    answer_id,
    answered_kind,
    poll_kind,
    rsvp_kind,
    sent_kind,
)

ANNOUNCE = "announce"
REMIND = "remind"


@dataclass(frozen=True)
class Remind:
    """A reminder job's payload, checked against the meeting when it runs."""

    room: str
    number: int
    occ: str
    start: float
    before_s: int

    @property
    def ledger_key(self) -> str:
        """Its line in the ledger: a moved date's reminders are new ones."""
        return f"{self.occ}/{int(self.start)}/remind/{self.before_s}"

    @classmethod
    def parse(cls, p: Mapping[str, Any]) -> Remind:
        return cls(
            str(p["room"]), int(p["number"]), str(p["occ"]), float(p["start"]), int(p["before_s"])
        )


def next_occurrence(m: Meeting, now: datetime) -> Occurrence | None:
    return next(iter_occurrences(m.schedule, now), None)


def announce_job(m: Meeting, due: float, tag: str) -> ScheduleJob:
    return ScheduleJob(
        FEATURE,
        ANNOUNCE,
        due,
        f"meetings:announce:{m.room}:{m.number}:{tag}",
        {"room": m.room, "number": m.number},
    )


def announce(
    m: Meeting,
    now: datetime,
    announced: frozenset[str],
    polls: Mapping[str, Mapping[str, Any]],
    answered: Mapping[str, Sequence[str]] | None = None,
    dated: Mapping[str, Sequence[str]] | None = None,
) -> list[Action]:
    """Post the poll for the next date (once), plan its reminders, plan the
    announcement after it, and close polls whose date has begun or gone.
    *answered*: who answered each open poll's date; their answers are
    deleted when it closes (who went to a support group is kept no longer
    than it is needed). *dated*: who answered each date that has answers;
    those of a date that will never be polled go now (:func:`forget_unpolled`)."""
    actions: list[Action] = list(close_polls(m, now, polls, answered or {}))
    actions += forget_unpolled(m, now, polls, dated or {})
    if m.cancelled:
        return actions
    nxt = next_occurrence(m, now)
    if nxt is None:
        return actions
    if nxt.key not in announced:
        ids = tuple(answer_id(m.number, nxt.key, a) for a in Answer)
        actions += [
            SendPoll(
                m.room,
                texts.question(m, nxt),
                tuple(ANSWER_TEXT[a] for a in Answer),
                answer_ids=ids,
                record_as=(FEATURE, poll_kind(m.room, m.number), nxt.key),
            ),
            PutRecord(
                FEATURE, sent_kind(m.room, m.number), f"{nxt.key}/announce", {"at": _ts(now)}
            ),
        ]
    actions += reminder_jobs(m, nxt, now)
    actions.append(announce_job(m, nxt.start_ts, f"{nxt.key}:{int(nxt.start_ts)}"))
    return actions


def reminder_jobs(m: Meeting, occ: Occurrence, now: datetime) -> list[ScheduleJob]:
    """A job per reminder still ahead. One that is already past when the
    date is planned (a meeting added an hour before it starts) is not
    sent late: it was never due."""
    jobs = []
    for before in m.reminders:
        due = occ.start - before
        if due <= now:
            continue
        secs = int(before.total_seconds())
        payload = Remind(m.room, m.number, occ.key, occ.start_ts, secs)
        jobs.append(
            ScheduleJob(
                FEATURE,
                REMIND,
                due.timestamp(),
                f"meetings:remind:{m.room}:{m.number}:{occ.key}:{int(occ.start_ts)}:{secs}",
                payload.__dict__,
            )
        )
    return jobs


def close_polls(
    m: Meeting,
    now: datetime,
    polls: Mapping[str, Mapping[str, Any]],
    answered: Mapping[str, Sequence[str]] | None = None,
) -> list[Action]:
    actions: list[Action] = []
    for key, poll in sorted(polls.items()):
        if poll.get("ended"):
            continue
        occ = occurrence(m.schedule, key)
        gone = m.cancelled or occ is None
        if not gone and occ is not None and occ.start > now:
            continue
        text = (
            f"This poll is closed: {m.title} on that date was called off."
            if gone
            else f"This poll is closed: {m.title} has begun."
        )
        actions += [
            EndPoll(m.room, str(poll["event_id"]), text),
            PutRecord(FEATURE, poll_kind(m.room, m.number), key, {**poll, "ended": True}),
            *(
                DeleteRecord(FEATURE, rsvp_kind(m.room, m.number, key), user)
                for user in (answered or {}).get(key, ())
            ),
            DeleteRecord(FEATURE, answered_kind(m.room, m.number), key),
        ]
    return actions


def forget_unpolled(
    m: Meeting,
    now: datetime,
    polls: Mapping[str, Mapping[str, Any]],
    dated: Mapping[str, Sequence[str]],
) -> list[Action]:
    """Delete the answers (``!rsvp`` ahead of the poll) of every date that
    will never be polled: skipped, no longer a date of the meeting, begun
    without a poll (the bot was down), or of a cancelled meeting; and any
    left on a date whose poll has closed. An open poll's answers go when it
    closes (:func:`close_polls`); a date still to come keeps them.
    *dated*: date key → who answered it."""
    actions: list[Action] = []
    for key, users in sorted(dated.items()):
        poll = polls.get(key)
        if poll is not None and not poll.get("ended"):
            continue
        if poll is None and not m.cancelled:
            occ = occurrence(m.schedule, key)
            if occ is not None and occ.start > now:
                continue
        actions += [DeleteRecord(FEATURE, rsvp_kind(m.room, m.number, key), u) for u in users]
        actions.append(DeleteRecord(FEATURE, answered_kind(m.room, m.number), key))
    return actions


def still_due(m: Meeting | None, job: Remind, now: datetime) -> tuple[Occurrence | None, str]:
    """The occurrence a reminder is for, if the job still applies; else why not."""
    if m is None or m.cancelled:
        return None, "cancelled"
    occ = occurrence(m.schedule, job.occ)
    if occ is None:
        return None, "skipped"
    if int(occ.start_ts) != int(job.start):
        return None, "moved"
    if job.before_s not in {int(d.total_seconds()) for d in m.reminders}:
        return None, "reminders changed"
    if occ.start <= now:
        return None, "missed"
    return occ, ""


def reminder(
    m: Meeting, occ: Occurrence, job: Remind, now: datetime, late: bool, going: Sequence[str]
) -> list[Action]:
    """The reminder, and its line in the ledger. The last reminder before a
    date pings the members who said they are going (``m.mentions``), and
    only them; earlier ones ping nobody."""
    last = job.before_s == min(int(d.total_seconds()) for d in m.reminders)
    pinged = tuple(sorted(going)) if last else ()
    body = texts.reminder(m, occ, late, len(going))
    if pinged:
        body += Md(" ") + Md(" ").join(mention(user) for user in pinged)
    return [
        SendNotice(m.room, body, mentions=pinged),
        PutRecord(
            FEATURE,
            sent_kind(m.room, m.number),
            job.ledger_key,
            {"at": _ts(now), "late": late},
        ),
    ]


def missed(m: Meeting, job: Remind, now: datetime) -> PutRecord:
    """A reminder whose date had begun by the time it could be sent: never
    sent, and written down."""
    return PutRecord(
        FEATURE,
        sent_kind(m.room, m.number),
        job.ledger_key,
        {"at": _ts(now), "missed": True},
    )


def _ts(now: datetime) -> float:
    return now.astimezone(UTC).timestamp()


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


REMIND_GRACE = timedelta(days=1)
