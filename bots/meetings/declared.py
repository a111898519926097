"""Meetings declared in the community file, kept in step by the bot.

``hearth provision`` publishes each group's declared meetings as state
events in the group's first room (``provisioning.meetings``). A service
reads them every ``declared_poll_s`` and decides, purely
(:func:`reconcile`), what to do about each: add a meeting the bot does not
have yet, change one whose declaration changed (its fingerprint says so),
cancel one withdrawn from the file. Each decision is submitted under a key
naming the declaration's fingerprint, so it is acted on once.

Declared meetings are numbered from 101, chat ones from 1, so a command
and the service adding a meeting in the same room at the same moment
never take the same number.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bots.dates.reading import parse_when
from bots.dates.recurrence import occurrences
from bots.dates.words import Unclear, parse_length, parse_link, parse_reminders
from bots.framework.actions import Action, PutRecord, SendNotice
from bots.framework.feature import Context, Running
from bots.framework.logging import get_logger
from bots.meetings import texts
from bots.meetings.config import MeetingsConfig
from bots.meetings.model import FEATURE, Meeting, meetings_kind
from bots.meetings.plan import announce_job
from provisioning.meetings import MEETING

log = get_logger(__name__)

FIRST_DECLARED = 101


def fingerprint(content: Mapping[str, Any]) -> str:
    text = json.dumps(dict(content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Decision:
    """What to do about one declaration: *actions* under *key*, or a
    *problem* for the moderators."""

    key: str
    actions: tuple[Action, ...] = ()
    problem: str | None = None


def read(content: Mapping[str, Any], now: datetime) -> tuple[Any, ...]:
    """(title, schedule, reminders, link) of a declaration; raises Unclear."""
    zone = str(content.get("zone") or "UTC")
    length = parse_length(str(content.get("for") or "60m"))
    schedule = parse_when(str(content.get("when") or "").split(), now, zone, length)
    remind = content.get("remind")
    reminders = parse_reminders(",".join(map(str, remind)) if remind else "none")
    link = content.get("link")
    return (
        str(content.get("title") or "Meeting"),
        schedule,
        reminders,
        parse_link(str(link)) if link else None,
    )


def reconcile(
    room: str,
    declared: Mapping[str, Mapping[str, Any]],
    meetings: Mapping[int, Meeting],
    now: datetime,
) -> list[Decision]:
    """Pure: what the room's declared meetings call for."""
    by_source = {m.source: m for m in meetings.values() if m.source != "chat" and not m.cancelled}
    next_number = max([FIRST_DECLARED - 1, *(n for n in meetings if n >= FIRST_DECLARED)]) + 1
    decisions: list[Decision] = []
    for key, content in sorted(declared.items()):
        have = by_source.get(key)
        fp = fingerprint(content) if content else "withdrawn"
        tag = f"meetings:declared:{room}:{key}:{fp}"
        if not content:
            if have is not None:
                gone = replace(have, cancelled=True)
                said = f"{have.title} was taken out of the community file, so it is cancelled."
                decisions.append(Decision(tag, _saved(gone, now, said, tag)))
            continue
        if have is not None and have.fingerprint == fp:
            continue
        try:
            title, schedule, reminders, link = read(content, now)
        except Unclear as exc:
            decisions.append(Decision(tag, problem=f"meeting {key!r}: {exc}"))
            continue
        if have is None:
            m = Meeting(room, next_number, title, schedule, reminders, link, source=key)
            next_number += 1
            said = texts.confirm(
                m, occurrences(m.schedule, now, 3), "added from the community file"
            )
        else:
            same_rule = have.schedule.repeat == schedule.repeat and have.schedule.zone == (
                schedule.zone
            )
            kept = (
                replace(
                    have.schedule,
                    start=datetime.combine(have.schedule.start.date(), schedule.start.time()),
                    duration=schedule.duration,
                )
                if same_rule
                else schedule
            )
            m = replace(have, title=title, schedule=kept, reminders=reminders, link=link)
            nxt = next(iter(occurrences(m.schedule, now, 1)), None)
            said = f"Meeting {m.number} was changed in the community file: {m.title}." + (
                f" Next: {texts.when(nxt)}." if nxt else ""
            )
        decisions.append(Decision(tag, _saved(replace(m, fingerprint=fp), now, said, tag)))
    return decisions


def _saved(m: Meeting, now: datetime, said: str, tag: str) -> tuple[Action, ...]:
    return (
        PutRecord(FEATURE, meetings_kind(m.room), str(m.number), m.to_record()),
        SendNotice(m.room, said, mentions=()),
        # Plans the next date's poll and reminders, or closes polls.
        announce_job(m, now.timestamp(), tag),
    )


async def keep_declared(run: Running[MeetingsConfig], ctx: Context[MeetingsConfig]) -> None:
    while True:
        ctx = run.fresh()
        rooms = ctx.community().rooms
        now = datetime.fromtimestamp(ctx.now, UTC)
        for room, declared in ctx.keyed_state(MEETING).items():
            if rooms.group_of(room) is None:
                continue  # only provisioning's groups' rooms are read
            found = await ctx.records(meetings_kind(room))
            meetings = {int(k): Meeting.from_record(v) for k, v in found.items()}
            for d in reconcile(room, declared, meetings, now):
                if d.problem is not None:
                    log.warning("declared meeting unreadable")
                    where = ctx.moderators_room or rooms.moderators
                    if where is not None:
                        text = f"The community file's {d.problem}. Fix it and run hearth provision."
                        await run.submit(d.key, [SendNotice(where, text, mentions=())])
                    continue
                await run.submit(d.key, list(d.actions))
        await asyncio.sleep(ctx.config.declared_poll_s)
