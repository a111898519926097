"""The moderation feature: protections that read each message of a
group's (encrypted) rooms and act on the group's settings.

Judging is pure (:mod:`bots.moderation.protections`); this module only
finds the room's group and settings, asks the guard, and returns what
:mod:`bots.moderation.protections.respond` decides, for the platform to
perform. The guard's memory (recent messages' times, offences) lives in
this process only: after a restart the windows start empty, while a mute
already given is lifted on time by the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import Action, SetPower
from bots.framework.community import CommunityRooms
from bots.framework.config import BotConfig
from bots.framework.event_types import POWER_LEVELS
from bots.framework.events import Membership, MembershipChange, Message
from bots.framework.feature import Context, EventHandler, Feature, Job, JobSpec, Service
from bots.moderation.commands.handlers import COMMANDS, parse_unban, unban
from bots.moderation.commands.protections import PROTECTIONS, settings_of
from bots.moderation.commands.redact import REDACT
from bots.moderation.commands.rooms import COMMANDS as ROOM_COMMANDS
from bots.moderation.commands.undo import UNDO
from bots.moderation.config import ModerationConfig
from bots.moderation.following import follow_lists
from bots.moderation.performers import PERFORMERS
from bots.moderation.policy import RULE_TYPES
from bots.moderation.protections.guard import Guard
from bots.moderation.protections.respond import FEATURE as NAME
from bots.moderation.protections.respond import Where, respond
from bots.moderation.protections.seen import Joined, seen_of
from bots.moderation.reports import REPORT, room_label, watch_reports
from provisioning.protections import OVERRIDES
from provisioning.schema import (
    CommunityFile,
    GroupDecl,
    moderators_room_problem,
    section_problem,
)

# One guard per bot account (tests run several bots in one process).
_guards: dict[str, Guard] = {}


def _guard(ctx: Context[ModerationConfig]) -> Guard:
    return _guards.setdefault(ctx.me, Guard())


@dataclass(frozen=True)
class Group:
    """The group a room belongs to, as read once for an event."""

    cfg: CommunityFile
    decl: GroupDecl
    rooms: CommunityRooms


def _group(ctx: Context[ModerationConfig], room_id: str) -> Group | None:
    community = ctx.community()
    cfg, rooms = community.file(CommunityFile), community.rooms
    key = rooms.group_of(room_id)
    decl = cfg.group(key) if key else None
    return Group(cfg, decl, rooms) if decl is not None else None


def _exempt(ctx: Context[ModerationConfig], cfg: CommunityFile, room_id: str, user: str) -> bool:
    """Moderators (anyone who may kick here) and the community's bots."""
    if user == ctx.me or any(b.user_id == user for b in cfg.bots):
        return True
    levels = ctx.room_state(POWER_LEVELS).get(room_id, {})
    kick = levels.get("kick", 50)
    return ctx.power(room_id, user).in_room >= (kick if isinstance(kick, int) else 50)


def _where(ctx: Context[ModerationConfig], g: Group, room_id: str) -> Where:
    return Where(
        room_id,
        room_label(g.rooms.markers, g.cfg, room_id) or g.decl.name,
        ctx.room_state(POWER_LEVELS).get(room_id, {}),
        ctx.moderators_room or g.rooms.moderators,
        g.cfg.community.crisis_resources,
    )


async def on_message(event: Message, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    g = _group(ctx, event.room_id)
    if g is None:
        return []
    exempt = _exempt(ctx, g.cfg, event.room_id, event.sender)
    slow = await ctx.record("slowmode", event.room_id)
    slow_s = float(slow.get("seconds", 0)) if slow else 0.0
    settings = settings_of(ctx, g.decl, g.rooms)
    decision = _guard(ctx).message(seen_of(event), settings, exempt, slow_s)
    where = _where(ctx, g, event.room_id)
    ts = event.server_ts_ms / 1000
    return respond(decision, where, event.sender, event.event_id, ts, settings)


async def on_membership(event: Membership, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    if event.change is not MembershipChange.JOIN:
        return []
    g = _group(ctx, event.room_id)
    if g is None:
        return []
    exempt = _exempt(ctx, g.cfg, event.room_id, event.target)
    joined = Joined(event.room_id, event.target, event.server_ts_ms / 1000)
    settings = settings_of(ctx, g.decl, g.rooms)
    decision = _guard(ctx).join(joined, settings, exempt)
    where = _where(ctx, g, event.room_id)
    return respond(decision, where, event.target, None, joined.ts, settings)


async def unmute(
    job: Job[tuple[str, str, int | None]], ctx: Context[ModerationConfig]
) -> Sequence[Action]:
    room, user, level = job.parsed
    return [SetPower(room, user, level)]


def _parse_unmute(payload: Mapping[str, Any]) -> tuple[str, str, int | None]:
    room, user, level = payload.get("room_id"), payload.get("user_id"), payload.get("level")
    if not isinstance(room, str) or not isinstance(user, str):
        raise ValueError("room_id and user_id must be strings")
    if level is not None and not isinstance(level, int):
        raise ValueError("level must be a whole number")
    return room, user, level


def _config_error(config: BotConfig) -> str | None:
    return section_problem(config, NAME) or moderators_room_problem(config)


FEATURE = Feature(
    name=NAME,
    summary="moderators' commands, and protections for the groups' rooms",
    commands=(*COMMANDS, *ROOM_COMMANDS, REDACT, UNDO, PROTECTIONS, REPORT),
    services=(Service("reports", watch_reports), Service("ban lists", follow_lists)),
    handlers=(EventHandler(Message, on_message), EventHandler(Membership, on_membership)),
    # Mutes and bans are lifted however late the bot comes back.
    jobs=(
        JobSpec("unmute", unmute, grace_s=365 * 86400, parse=_parse_unmute),
        JobSpec("unban", unban, grace_s=365 * 86400, parse=parse_unban),
    ),
    config_model=ModerationConfig,
    state_types=(POWER_LEVELS, OVERRIDES, *RULE_TYPES),
    unavailable=_config_error,
    named_rooms=lambda config: config.follow,
    performers=PERFORMERS,
)
