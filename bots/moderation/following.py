"""Following other ban lists: members of the community who match a banning
rule of a followed policy room are banned from every community room.

A service looks every policy_poll_s at the followed rooms' rules (kept from
sync by the runtime) and the community rooms' members. Each (member, rule)
is acted on once, under its own key: if a moderator later lifts that ban,
the list does not impose it again. A rule whose glob is refused (it would
sweep up a whole server, or is too complex to match) is never applied;
the moderators' room hears of it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from bots.framework.actions import Action, Ban, JoinRoom, RedactRecent, SendNotice
from bots.framework.feature import Context, Running
from bots.framework.logging import get_logger
from bots.moderation.commands.sanctions import MAX_REDACT
from bots.moderation.config import ModerationConfig
from bots.moderation.policy import (
    RULE_TYPES,
    Refused,
    Rule,
    ban_rules,
    banned_by,
    refused_rules,
)
from provisioning.schema import CommunityFile

log = get_logger(__name__)


def bans_due(
    rules: Sequence[Rule],
    members: Mapping[str, frozenset[str]],
    exempt: frozenset[str],
) -> dict[tuple[str, Rule], list[str]]:
    """Pure: (member, rule) → the community rooms to ban them from."""
    due: dict[tuple[str, Rule], list[str]] = {}
    for room, present in members.items():
        for user in sorted(present):
            rule = banned_by(rules, user, exempt)
            if rule is not None:
                due.setdefault((user, rule), []).append(room)
    return due


def _rules(ctx: Context[ModerationConfig], follow: Sequence[str]) -> list[Rule]:
    state: dict[str, Any] = {t: ctx.keyed_state(t) for t in RULE_TYPES}
    return ban_rules(follow, state)


# A hostile list could hold thousands of refused rules: the moderators hear
# of this many by name, then once of how many more there are.
NOTES_PER_LIST = 5


def refused_note(r: Refused) -> str:
    """What the moderators are told of a followed list's rule never applied."""
    return (
        f"Not applied: the rule for '{r.entity}' on the ban list {r.room_id} that this "
        f"community follows. {r.why}. Nobody was banned by it."
    )


def refusal_notes(refused: Sequence[Refused]) -> list[tuple[str, str, str, str]]:
    """Pure: (idempotency key, list room, text, reason code) of each note for
    the moderators' room: one per refused rule, up to NOTES_PER_LIST a
    list, then one for the rest of that list."""
    notes: list[tuple[str, str, str, str]] = []
    by_list: dict[str, list[Refused]] = {}
    for r in refused:
        by_list.setdefault(r.room_id, []).append(r)
    for room, rules in by_list.items():
        for r in rules[:NOTES_PER_LIST]:
            notes.append((f"policy-refused:{room}:{r.entity}", room, refused_note(r), r.code))
        if len(rules) > NOTES_PER_LIST:
            text = (
                f"Not applied either: more rules on the ban list {room} that would sweep up "
                f"whole servers or are too complex to match ({len(rules)} in all so far). "
                "Consider no longer following it."
            )
            notes.append((f"policy-refused-more:{room}", room, text, "more"))
    return notes


async def _tell_refused(
    run: Running[ModerationConfig],
    ctx: Context[ModerationConfig],
    follow: Sequence[str],
    told: set[str],
) -> None:
    """The followed lists' refused rules: logged (without their entities,
    which may name someone) and told to the moderators' room, once."""
    state: dict[str, Any] = {t: ctx.keyed_state(t) for t in RULE_TYPES}
    for key, room, text, code in refusal_notes(refused_rules(follow, state)):
        if key in told:
            continue
        told.add(key)
        log.warning("ban list rule refused", list_room=room, why=code)
        if ctx.moderators_room is not None:
            await run.submit(key, [SendNotice(ctx.moderators_room, text, mentions=())])


async def follow_lists(run: Running[ModerationConfig], ctx: Context[ModerationConfig]) -> None:
    config = ctx.config
    if not config.follow:
        return
    for room in config.follow:  # joined once; an invitation is accepted by core
        await run.submit(f"follow:{room}", [JoinRoom(room)])
    told: set[str] = set()
    while True:
        ctx = run.fresh()
        await _tell_refused(run, ctx, config.follow, told)
        community = ctx.community()
        cfg, rooms = community.file(CommunityFile), community.rooms
        ours = (*([rooms.space] if rooms.space else []), *rooms.group_rooms())
        members = {room: ctx.members(room) for room in ours}
        exempt = frozenset({ctx.me, *cfg.all_users()})
        for (user, rule), where in bans_due(_rules(ctx, config.follow), members, exempt).items():
            reason = "On a ban list this community follows" + (
                f": {rule.reason}" if rule.reason else ""
            )
            actions: list[Action] = [Ban(room, user, reason) for room in ours]
            if rule.takedown:
                # MSC4204: what they posted goes too, in the rooms they were in.
                gone = "Taken down: on a ban list this community follows"
                actions += [RedactRecent(room, user, MAX_REDACT, None, gone) for room in where]
            if rooms.moderation_log is not None:
                text = f"Banned {user} across the community: {reason}."
                actions.append(SendNotice(rooms.moderation_log, text, mentions=()))
            log.info("ban list applied", rooms=len(where))
            await run.submit(f"policy:{rule.room_id}:{rule.entity}:{user}", actions)
        await asyncio.sleep(config.policy_poll_s)
