"""The group room a meetings command was typed in: its group, zone and
meetings, and who answered their dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.framework.actions import Action, Reply
from bots.framework.commands.spec import Invocation
from bots.framework.feature import Context
from bots.framework.markdown import code, md
from bots.meetings.config import MeetingsConfig
from bots.meetings.model import Meeting, answered_kind, meetings_kind, rsvp_kind
from provisioning.schema import CommunityFile

NOT_A_GROUP = "Meetings belong to a group's rooms: use this in one of them."


@dataclass(frozen=True)
class Here:
    """The group room a command was typed in, and its meetings."""

    ctx: Context[MeetingsConfig]
    config: MeetingsConfig
    group: str
    group_name: str
    zone: str
    meetings: dict[int, Meeting]

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.now, UTC)

    @property
    def horizon(self) -> timedelta:
        """How far ahead a typed date may be."""
        return self.config.horizon


async def here(inv: Invocation, ctx: Context[MeetingsConfig]) -> Here | None:
    community = ctx.community()
    cfg = community.file(CommunityFile)
    group = community.rooms.group_of(inv.room_id)
    decl = cfg.group(group) if group else None
    if group is None or decl is None:
        return None
    found = await ctx.records(meetings_kind(inv.room_id))
    meetings = {int(k): Meeting.from_record(v) for k, v in found.items()}
    zone = decl.timezone or cfg.community.timezone
    return Here(ctx, ctx.config, group, decl.name, zone, meetings)


def reply(inv: Invocation, text: str) -> list[Action]:
    return [Reply(inv.room_id, inv.event_id, text)]


def store(ctx: Context[MeetingsConfig], m: Meeting) -> Action:
    return ctx.put(meetings_kind(m.room), str(m.number), m.to_record())


def meeting_of(h: Here, inv: Invocation) -> Meeting | str:
    number = inv.args.get("id")
    m = h.meetings.get(number) if isinstance(number, int) else None
    if m is None:
        return md("There's no meeting {} in this room. {} lists them.", number, code("!meetings"))
    if m.cancelled:
        return f"Meeting {number} ({m.title}) was cancelled."
    return m


async def goers(ctx: Context[MeetingsConfig], m: Meeting, occ: str) -> list[str]:
    """Members who said they are going to a date, and are still in the room."""
    answers = await ctx.records(rsvp_kind(m.room, m.number, occ))
    members = ctx.members(m.room)
    return sorted(u for u, v in answers.items() if v.get("answer") == "yes" and u in members)


async def answered(
    ctx: Context[MeetingsConfig], room: str, number: int, polls: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Who answered each still-open poll's date: forgotten when it closes."""
    return {
        key: list(await ctx.records(rsvp_kind(room, number, key)))
        for key, poll in polls.items()
        if not poll.get("ended")
    }


async def dated(ctx: Context[MeetingsConfig], room: str, number: int) -> dict[str, list[str]]:
    """Who answered each date of a meeting that has answers, polled or not."""
    return {
        key: list(await ctx.records(rsvp_kind(room, number, key)))
        for key in await ctx.records(answered_kind(room, number))
    }
