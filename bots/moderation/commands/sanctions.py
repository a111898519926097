"""What a moderator's !ban, !unban, !kick, !mute, !unmute and !warn do, as
actions. Pure: who is where and at what level comes in as values.

A command typed in the moderators' room covers the whole community; typed
in a group's room, that room only. A moderator never acts on someone at
or above their own level, in any room the command covers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bots.base.spans import span_words
from bots.framework.actions import (
    Action,
    Ban,
    Kick,
    PutRecord,
    RedactRecent,
    ScheduleJob,
    SendDirect,
    SendNotice,
    SetPower,
    SetState,
    Unban,
)
from bots.framework.commands.parse import parse_duration
from bots.framework.markdown import md
from bots.moderation.policy import PUBLISHED, ban_rule, rule_key
from bots.moderation.protections.respond import FEATURE, muted_level

# The most messages one removal takes out of a room (!redact, takedowns): a
# slip must not hold the bot for an hour.
MAX_REDACT = 1000


class Sanction(StrEnum):
    BAN = "ban"
    UNBAN = "unban"
    KICK = "kick"
    MUTE = "mute"
    UNMUTE = "unmute"
    WARN = "warn"


PAST = {
    Sanction.BAN: "banned",
    Sanction.UNBAN: "unbanned",
    Sanction.KICK: "kicked",
    Sanction.MUTE: "muted",
    Sanction.UNMUTE: "unmuted",
    Sanction.WARN: "warned",
}


@dataclass(frozen=True)
class Scope:
    """The rooms a command covers, and how to name them."""

    rooms: tuple[str, ...]  # every room the sanction may apply in
    chat_rooms: tuple[str, ...]  # of those, the groups' rooms (where muting means something)
    label: str  # "the community" or "Carers · General"
    community: bool = False  # typed in the moderators' room: the whole community


@dataclass(frozen=True)
class Request:
    sanction: Sanction
    moderator: str
    target: str
    event_id: str
    now: float
    duration: timedelta | None
    reason: str
    # A ban that also removes what they posted (MSC4204's takedown).
    takedown: bool = False


@dataclass(frozen=True)
class Levels:
    """Power levels as the bot sees them."""

    of: Callable[[str, str], int]  # (room, user) → level
    power_levels: Callable[[str], Mapping[str, Any]]  # room → m.room.power_levels content
    members: Callable[[str], frozenset[str]]  # room → its members


def split_duration(text: str) -> tuple[timedelta | None, str]:
    """`2h spamming` → (2 hours, "spamming"); a first word that is not a
    duration is part of the reason."""
    first, _, rest = text.strip().partition(" ")
    duration = parse_duration(first) if first else None
    return (duration, rest.strip()) if duration is not None else (None, text.strip())


def outranked(req: Request, scope: Scope, levels: Levels) -> bool:
    """Whether the target is at or above the moderator in any covered room."""
    return any(
        levels.of(room, req.target) >= levels.of(room, req.moderator) for room in scope.rooms
    )


def plan(
    req: Request,
    scope: Scope,
    levels: Levels,
    log_room: str | None,
    community: str,
    ban_list: str | None = None,
) -> tuple[str, list[Action]]:
    """(the moderator's confirmation, the actions). A permanent ban of the
    whole community is published in *ban_list*, and lifting it withdraws
    the rule."""
    s, target, reason = req.sanction, req.target, req.reason
    out: list[Action] = []
    where: Sequence[str] = scope.rooms
    if s is Sanction.BAN:
        out += [Ban(room, target, reason or None) for room in where]
        if req.takedown:
            gone = f"Taken down by a moderator ({req.moderator})"
            out += [RedactRecent(room, target, MAX_REDACT, None, gone) for room in scope.chat_rooms]
    elif s is Sanction.UNBAN:
        out += [Unban(room, target) for room in where]
    elif s is Sanction.KICK:
        where = [room for room in where if target in levels.members(room)]
        if not where:
            return f"{target} is not in {scope.label}.", []
        out += [Kick(room, target, reason or None) for room in where]
    elif s is Sanction.MUTE:
        where = [room for room in scope.chat_rooms if target in levels.members(room)]
        if not where:
            return f"{target} is not in {scope.label}.", []
        out += [SetPower(room, target, muted_level(levels.power_levels(room))) for room in where]
    elif s is Sanction.UNMUTE:
        out += [SetPower(room, target, None) for room in scope.chat_rooms]
    elif s is Sanction.WARN:
        if not any(target in levels.members(room) for room in where):
            return f"{target} is not in {scope.label}.", []
        text = md("**A message from the moderators of {}:** {}", community, reason)
        out.append(SendDirect(target, text))
    timed = s in (Sanction.BAN, Sanction.MUTE)
    until = req.now + req.duration.total_seconds() if req.duration and timed else None
    jobs: list[ScheduleJob] = []
    if until is not None and s is Sanction.BAN:
        payload: dict[str, Any] = {"rooms": list(where), "user_id": target}
        jobs.append(ScheduleJob(FEATURE, "unban", until, f"unban:{req.event_id}", payload))
    elif until is not None:
        jobs += [
            ScheduleJob(
                FEATURE,
                "unmute",
                until,
                f"unmute:{room}:{target}:{req.event_id}",
                {"room_id": room, "user_id": target, "level": None},
            )
            for room in where
        ]
    out += jobs
    published = None
    if ban_list is not None and scope.community:
        if s is Sanction.BAN and until is None:
            rule = ban_rule(target, reason or "banned by the community's moderators", req.takedown)
            out.append(SetState(ban_list, PUBLISHED, rule, rule_key(target)))
            published = ban_list
        elif s is Sanction.UNBAN:
            out.append(SetState(ban_list, PUBLISHED, {}, rule_key(target)))
    span = (
        f" for {span_words(req.duration)}" if until is not None and req.duration is not None else ""
    )
    said = f"{req.moderator} {PAST[s]} {target}"
    said += (
        ""
        if s is Sanction.WARN
        else f" in {scope.label}"
        if len(where) == 1
        else f" across {scope.label}"
    )
    said += span + (f": {reason}" if reason else "") + "."
    if s is Sanction.BAN and not any(target in levels.members(room) for room in where):
        said += f" ({target} is not in any of these rooms now: check the spelling.)"
    if log_room is not None:
        out.append(SendNotice(log_room, said, mentions=()))
    out.append(
        PutRecord(
            FEATURE,
            "audit",
            f"{req.now:.6f}:{req.event_id}",
            {
                "at": req.now,
                "moderator": req.moderator,
                "action": s.value,
                "target": target,
                "rooms": len(where),
                "reason": reason,
                "until": until,
            },
        )
    )
    # What !undo would revert: this moderator's latest action.
    last = {
        "action": s.value,
        "target": target,
        "rooms": list(where),
        "jobs": [j.key for j in jobs],
        "published": published,
        "takedown": req.takedown,
    }
    out.append(PutRecord(FEATURE, "last", req.moderator, last | {"label": scope.label}))
    return said, out
