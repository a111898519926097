"""!ban, !unban, !kick, !mute, !unmute and !warn: who may, where, and on whom.

Each is declared at the lowest level a command can need, so it is hidden
from members and accepted only from a verified device; the level it really
needs comes from the moderation section of the bot's config and is checked
here, in the room it is typed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import Action, Reply, SendNotice, Unban
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import Arg, ArgType, Command, Handler, Invocation
from bots.framework.community import CommunityRooms
from bots.framework.event_types import POWER_LEVELS
from bots.framework.feature import Context, Job
from bots.framework.markdown import Md
from bots.moderation.commands.sanctions import (
    Levels,
    Request,
    Sanction,
    Scope,
    outranked,
    plan,
    split_duration,
)
from bots.moderation.config import ModerationConfig
from provisioning.schema import CommunityFile

OUTRANKED = "You can't act on someone whose power level is at or above yours."


@dataclass(frozen=True)
class Typed:
    """Where a moderators' command was typed, and the community it acts in."""

    ctx: Context[ModerationConfig]
    config: ModerationConfig
    cfg: CommunityFile
    rooms: CommunityRooms
    scope: Scope | None  # None: not a room such commands act from

    def refused(self, inv: Invocation, needed: int) -> bool:
        return self.scope is None or inv.power.in_room < needed

    def logged(self, said: str) -> list[Action]:
        """*said*, in the moderation log room if the community has one."""
        log = self.rooms.moderation_log
        return [SendNotice(log, said, mentions=())] if log is not None else []


def typed(inv: Invocation, ctx: Context[ModerationConfig]) -> Typed:
    community = ctx.community()
    cfg, rooms = community.file(CommunityFile), community.rooms
    scope = scope_of(inv.room_id, rooms, ctx.moderators_room or rooms.moderators, cfg)
    return Typed(ctx, ctx.config, cfg, rooms, scope)


def refusal(inv: Invocation) -> list[Action]:
    return [Reply(inv.room_id, inv.event_id, REFUSAL)]


def scope_of(
    room_id: str, rooms: CommunityRooms, mods_room: str | None, cfg: CommunityFile
) -> Scope | None:
    if room_id == mods_room:
        chat = rooms.group_rooms()
        everywhere = (*([rooms.space] if rooms.space else []), *chat)
        return Scope(everywhere, chat, "the community", community=True)
    group = rooms.group_of(room_id)
    decl = cfg.group(group) if group else None
    if decl is None:
        return None
    return Scope((room_id,), (room_id,), decl.name)


async def _sanction(
    inv: Invocation, ctx: Context[ModerationConfig], sanction: Sanction
) -> Sequence[Action]:
    t = typed(inv, ctx)
    cfg, rooms, scope = t.cfg, t.rooms, t.scope
    if scope is None or t.refused(inv, t.config.levels.needed(sanction)):
        return refusal(inv)
    target = str(inv.args["user"])
    text = inv.args.get("reason")
    text = text if isinstance(text, str) else ""
    duration, reason = (
        split_duration(text) if sanction in (Sanction.BAN, Sanction.MUTE) else (None, text.strip())
    )
    takedown = sanction is Sanction.BAN and reason.split(maxsplit=1)[:1] == ["takedown"]
    if takedown:
        # "!ban @x takedown spam": banned, and what they posted removed.
        reason = reason.split(maxsplit=1)[1] if len(reason.split(maxsplit=1)) > 1 else ""
        if duration is not None:
            return [
                Reply(
                    inv.room_id,
                    inv.event_id,
                    Md(
                        "A takedown is for good: leave out the duration "
                        "(`!ban <user> takedown <reason>`)."
                    ),
                )
            ]
    if sanction is Sanction.WARN and not reason:
        return [
            Reply(
                inv.room_id,
                inv.event_id,
                Md("Say what the warning is about: `!warn <user> <reason>`"),
            )
        ]
    if target == inv.sender:
        return [Reply(inv.room_id, inv.event_id, "You can't do that to yourself.")]
    levels = Levels(
        of=lambda room, user: ctx.power(room, user).in_room,
        power_levels=lambda room: ctx.room_state(POWER_LEVELS).get(room, {}),
        members=ctx.members,
    )
    req = Request(sanction, inv.sender, target, inv.event_id, ctx.now, duration, reason, takedown)
    if sanction not in (Sanction.UNBAN, Sanction.UNMUTE) and outranked(req, scope, levels):
        return [Reply(inv.room_id, inv.event_id, OUTRANKED)]
    said, actions = plan(
        req, scope, levels, rooms.moderation_log, cfg.community.name, rooms.ban_list
    )
    return [*actions, Reply(inv.room_id, inv.event_id, said)]


def _handler(sanction: Sanction) -> Handler[Context[ModerationConfig]]:
    async def handle(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
        return await _sanction(inv, ctx, sanction)

    return handle


USER = Arg("user", "the member, as @name:server", type=ArgType.USER)
REASON = Arg("reason", "why (the log keeps it)", required=False, rest=True)
TIMED = Arg(
    "reason", "optionally a duration first (30m, 2h, 7d), then why", required=False, rest=True
)
BANNED = Arg(
    "reason",
    "optionally a duration (30m, 2h, 7d) or 'takedown' (their messages removed too), then why",
    required=False,
    rest=True,
)

COMMANDS = (
    Command(
        "ban",
        "Ban a member: from this room, or from the whole community in the moderators' room",
        _handler(Sanction.BAN),
        (USER, BANNED),
        power_level=1,
    ),
    Command("unban", "Lift a ban", _handler(Sanction.UNBAN), (USER, REASON), power_level=1),
    Command(
        "kick",
        "Remove a member (they may come back)",
        _handler(Sanction.KICK),
        (USER, REASON),
        power_level=1,
    ),
    Command(
        "mute",
        "Stop a member posting, optionally for a while",
        _handler(Sanction.MUTE),
        (USER, TIMED),
        power_level=1,
    ),
    Command(
        "unmute",
        "Let a muted member post again",
        _handler(Sanction.UNMUTE),
        (USER, REASON),
        power_level=1,
    ),
    Command(
        "warn",
        "Send a member a private warning from the moderators",
        _handler(Sanction.WARN),
        (USER, Arg("reason", "what the warning is about", rest=True, required=False)),
        power_level=1,
    ),
)


async def unban(
    job: Job[tuple[tuple[str, ...], str]], ctx: Context[ModerationConfig]
) -> Sequence[Action]:
    rooms, user = job.parsed
    log = ctx.community().rooms.moderation_log
    out: list[Action] = [Unban(room, user) for room in rooms]
    if log is not None:
        out.append(SendNotice(log, f"The ban on {user} ended, as set.", mentions=()))
    return out


def parse_unban(payload: Mapping[str, Any]) -> tuple[tuple[str, ...], str]:
    rooms, user = payload.get("rooms"), payload.get("user_id")
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise ValueError("rooms must be a list of room IDs")
    if not isinstance(user, str):
        raise ValueError("user_id must be a string")
    return tuple(rooms), user
