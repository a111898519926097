"""The moderators' meeting commands: !meeting add|skip|move|edit|cancel.

Each is declared at a moderator's level (see `commands.py`); what a change
does is decided in `changes.py`, and here it is stored, told to the room
(pinging those going to the date it touches) and re-planned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bots.dates.reading import parse_add
from bots.dates.recurrence import occurrences
from bots.dates.words import Unclear
from bots.framework.actions import Action, Reply, SendNotice
from bots.framework.commands.spec import Invocation
from bots.framework.feature import Context
from bots.framework.markdown import code, md
from bots.meetings import texts
from bots.meetings.changes import (
    Change,
    decide_cancel,
    decide_edit,
    decide_move,
    decide_skip,
)
from bots.meetings.config import MeetingsConfig
from bots.meetings.here import (
    NOT_A_GROUP,
    Here,
    answered,
    dated,
    goers,
    here,
    meeting_of,
    reply,
    store,
)
from bots.meetings.model import Meeting, poll_kind
from bots.meetings.plan import announce_job, close_polls, forget_unpolled


async def add(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    h = await here(inv, ctx)
    if h is None:
        return reply(inv, NOT_A_GROUP)
    active = [m for m in h.meetings.values() if not m.cancelled]
    if len(active) >= h.config.max_per_room:
        return reply(
            inv,
            md(
                "This room already has {} meetings, the most it can hold. "
                "Cancel one first ({} lists them).",
                len(active),
                code("!meetings"),
            ),
        )
    try:
        spec = parse_add(str(inv.args.get("details") or ""), h.now, h.zone, h.horizon)
    except Unclear as exc:
        return reply(inv, str(exc))
    # Chat meetings count from 1; the file's are numbered from 101.
    chat = [n for n, m in h.meetings.items() if m.source == "chat"]
    number = max(chat, default=0) + 1
    if number in h.meetings:  # past 100 chat meetings: after every number in use
        number = max(h.meetings) + 1
    m = Meeting(inv.room_id, number, spec.title, spec.schedule, spec.reminders, spec.link)
    nxt = occurrences(m.schedule, h.now, 3)
    return [
        store(h.ctx, m),
        Reply(inv.room_id, inv.event_id, texts.confirm(m, nxt)),
        announce_job(m, h.ctx.now, f"added:{inv.event_id}"),
    ]


async def skip(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    return await _change(inv, ctx, decide_skip)


async def move(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    return await _change(inv, ctx, decide_move)


async def edit(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    return await _change(inv, ctx, decide_edit)


async def cancel(inv: Invocation, ctx: Context[MeetingsConfig]) -> Sequence[Action]:
    return await _change(inv, ctx, decide_cancel)


async def _change(
    inv: Invocation, ctx: Context[MeetingsConfig], decide: Callable[[Here, Meeting, str], Change]
) -> Sequence[Action]:
    h = await here(inv, ctx)
    if h is None:
        return reply(inv, NOT_A_GROUP)
    m = meeting_of(h, inv)
    if isinstance(m, str):
        return reply(inv, m)
    try:
        change: Change = decide(h, m, str(inv.args.get("details") or ""))
    except Unclear as exc:
        return reply(inv, str(exc))
    going = await goers(h.ctx, m, change.affected.key) if change.affected else []
    pings = f" ({', '.join(going)})" if going else ""
    actions: list[Action] = [
        store(h.ctx, change.meeting),
        Reply(inv.room_id, inv.event_id, "Done."),
        SendNotice(inv.room_id, change.said + pings, mentions=tuple(going)),
    ]
    polls = await h.ctx.records(poll_kind(m.room, m.number))
    if change.meeting.cancelled:
        # Its open polls close now, and who answered them is forgotten, as
        # when a date begins.
        who = await answered(h.ctx, m.room, m.number, polls)
        actions += close_polls(change.meeting, h.now, polls, who)
    # Answers to a date that will now never be polled (skipped, or the
    # meeting cancelled) are forgotten with the change.
    actions += forget_unpolled(change.meeting, h.now, polls, await dated(h.ctx, m.room, m.number))
    if not change.meeting.cancelled:
        # Re-plan now: the next date's poll and reminders follow the change.
        actions.append(announce_job(change.meeting, h.ctx.now, f"changed:{inv.event_id}"))
    return actions
