"""Meetings: a group's calendar, one-tap RSVPs, reminders and a calendar file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bots.dates.recurrence import occurrence
from bots.framework.actions import Action
from bots.framework.config import BotConfig
from bots.framework.events import PollResponse
from bots.framework.feature import Context, EventHandler, Feature, Job, JobSpec, Service
from bots.framework.logging import get_logger
from bots.framework.storage import Migration
from bots.meetings import plan
from bots.meetings.commands import COMMANDS
from bots.meetings.config import MeetingsConfig
from bots.meetings.declared import keep_declared
from bots.meetings.here import answered, dated, goers
from bots.meetings.model import FEATURE as NAME
from bots.meetings.model import (
    INDEX_ANSWERS,
    Meeting,
    answered_kind,
    meetings_kind,
    poll_kind,
    read_answer_id,
    rsvp_kind,
    sent_kind,
)
from provisioning.meetings import MEETING
from provisioning.schema import section_problem

log = get_logger(__name__)


async def _meeting(ctx: Context[MeetingsConfig], room: str, number: int) -> Meeting | None:
    found = await ctx.record(meetings_kind(room), str(number))
    return Meeting.from_record(found) if found else None


def _parse_announce(p: Mapping[str, Any]) -> tuple[str, int]:
    return str(p["room"]), int(p["number"])


async def run_announce(job: Job[tuple[str, int]], ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    room, number = job.parsed
    m = await _meeting(ctx, room, number)
    if m is None:
        return []
    sent = await ctx.records(sent_kind(room, number))
    announced = frozenset(k.split("/")[0] for k in sent if k.endswith("/announce"))
    polls = await ctx.records(poll_kind(room, number))
    who = await answered(ctx, room, number, polls)
    answers = await dated(ctx, room, number)
    return plan.announce(m, plan.utc(ctx.now), announced, polls, who, answers)


async def run_remind(job: Job[plan.Remind], ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    r = job.parsed
    m = await _meeting(ctx, r.room, r.number)
    now = plan.utc(ctx.now)
    occ, why = plan.still_due(m, r, now)
    if m is None or occ is None:
        if m is not None and why == "missed":
            log.info("meeting reminder missed", late_s=round(ctx.now - job.due))
            return [plan.missed(m, r, now)]
        return []
    if await ctx.record(sent_kind(r.room, r.number), r.ledger_key):
        return []
    return plan.reminder(m, occ, r, now, job.late, await goers(ctx, m, r.occ))


async def on_poll_response(ev: PollResponse, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    """A tap on a meeting poll. Counted only from someone in the room, on
    the poll the bot posted for that date while it is open, for a date
    still ahead (as of the vote) of a meeting not cancelled; a later vote
    replaces an earlier one, whatever order they are handled in. (An answer
    ID is the voter's to write: one naming a date that has no poll would
    leave an answer that no poll's closing ever deletes.)"""
    read = read_answer_id(ev.answers[0]) if len(ev.answers) == 1 else None
    if read is None:
        return []
    number, key, answer = read
    m = await _meeting(ctx, ev.room_id, number)
    if m is None or m.cancelled or ev.sender not in ctx.members(ev.room_id):
        return []
    poll = await ctx.record(poll_kind(ev.room_id, number), key)
    if poll is None or poll.get("ended") or poll.get("event_id") != ev.poll_id:
        return []
    occ = occurrence(m.schedule, key)
    if occ is None or occ.start <= datetime.fromtimestamp(ev.server_ts_ms / 1000, UTC):
        return []
    kind = rsvp_kind(ev.room_id, number, key)
    before = await ctx.record(kind, ev.sender)
    if before is not None and float(before.get("ts", 0)) > ev.server_ts_ms:
        return []
    return [
        ctx.put(kind, ev.sender, {"answer": answer.value, "ts": ev.server_ts_ms}),
        ctx.put(answered_kind(ev.room_id, number), key, {}),
    ]


def _config_error(config: BotConfig) -> str | None:
    return section_problem(config, NAME)


FEATURE = Feature(
    name=NAME,
    summary="a group's meetings: polls to RSVP, reminders and a calendar file",
    commands=COMMANDS,
    handlers=(EventHandler(PollResponse, on_poll_response),),
    services=(Service("declared meetings", keep_declared),),
    jobs=(
        # The chain of announcements survives any downtime: late, it plans
        # from the clock as it is then.
        JobSpec(plan.ANNOUNCE, run_announce, grace_s=365 * 86400, parse=_parse_announce),
        # A reminder is still worth sending late until its meeting begins
        # (checked when it runs); past a day it is recorded as missed.
        JobSpec(
            plan.REMIND,
            run_remind,
            grace_s=plan.REMIND_GRACE.total_seconds(),
            parse=plan.Remind.parse,
        ),
    ),
    migrations=(
        Migration(
            1,
            "the dates that have answers, so a date never polled loses them too",
            INDEX_ANSWERS,
            namespace=NAME,
        ),
    ),
    config_model=MeetingsConfig,
    state_types=(MEETING,),
    unavailable=_config_error,
)
