"""!undo: revert the moderator's own latest action where that is possible,
and say so where it is not.

An undo is a moderation command of its own: it is checked as the command it
reverts was, now. Typed where that command could act on every room it
touched (the same group's room, or the moderators' room), by someone who
still holds the level that command needs there; and a reversal that
sanctions (re-banning after an unban, re-muting) is refused against someone
at or above the moderator's level, as a !ban or a !mute would be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bots.framework.actions import (
    Action,
    Ban,
    CancelJob,
    DeleteRecord,
    Reply,
    SetPower,
    SetState,
    Unban,
)
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import Command, Invocation
from bots.framework.event_types import POWER_LEVELS
from bots.framework.feature import Context
from bots.moderation.commands.handlers import (
    OUTRANKED,
    refusal,
    typed,
)
from bots.moderation.commands.rooms import lock_plan
from bots.moderation.commands.sanctions import Scope
from bots.moderation.config import CommandLevels, ModerationConfig
from bots.moderation.policy import PUBLISHED, rule_key
from bots.moderation.protections.respond import FEATURE, muted_level

CANNOT = {
    "kick": "A kick can't be undone: invite them back if you want them in.",
    "warn": "A warning can't be unsent.",
    "redact": "Removed messages can't be brought back.",
}


def needed_level(action: str, levels: CommandLevels) -> int | None:
    """The level the command behind *action* needs; None for what !undo
    cannot revert (it only says so)."""
    match action:
        case "ban" | "unban":
            return levels.ban
        case "mute" | "unmute":
            return levels.mute
        case "locked" | "unlocked":
            return levels.lock
    return None


# Reversals that sanction their target, as a !ban or a !mute does.
SANCTIONING = frozenset({"unban", "unmute"})


def undo_refusal(
    moderator: str,
    last: Mapping[str, Any] | None,
    scope: Scope | None,
    level_here: int,
    levels: CommandLevels,
    level_of: Callable[[str, str], int],
) -> str | None:
    """Pure: why *moderator* may not undo *last* from where they typed !undo
    (*scope*, where they now hold *level_here*), or None if they may.

    *level_of* is (room, user) → that user's level there now."""
    action = str((last or {}).get("action"))
    needed = needed_level(action, levels)
    if not last or needed is None:
        return None  # nothing to undo, or what cannot be: only said
    rooms = [str(r) for r in last.get("rooms") or []]
    if scope is None or level_here < needed:
        return REFUSAL
    if not scope.community and not set(rooms) <= set(scope.rooms):
        # Typed in a group's room: it covers that room, not the community.
        return REFUSAL
    target = str(last.get("target"))
    if action in SANCTIONING and any(
        level_of(room, target) >= level_of(room, moderator) for room in rooms
    ):
        return OUTRANKED
    return None


def undo_plan(
    moderator: str,
    last: Mapping[str, Any] | None,
    power_levels: Callable[[str], Mapping[str, Any]],
    locks: Mapping[str, Mapping[str, Any]],
) -> tuple[str, list[Action]]:
    """Pure: (what to say, what to do) to revert *last*, the moderator's latest action."""
    if not last:
        return "You have nothing to undo.", []
    action, target = str(last.get("action")), str(last.get("target"))
    rooms = [str(r) for r in last.get("rooms") or []]
    label = str(last.get("label") or "")
    if action in CANNOT:
        return CANNOT[action], []
    cancel: list[Action] = [CancelJob(str(k)) for k in last.get("jobs") or []]
    done: list[Action]
    match action:
        case "ban":
            done, verb = [Unban(room, target) for room in rooms], f"unbanned {target}"
            if isinstance(last.get("published"), str):  # the published rule is withdrawn
                done.append(SetState(str(last["published"]), PUBLISHED, {}, rule_key(target)))
        case "unban":
            done, verb = [Ban(room, target, "undone unban") for room in rooms], f"banned {target}"
        case "mute":
            done, verb = [SetPower(room, target, None) for room in rooms], f"unmuted {target}"
        case "unmute":
            done = [SetPower(room, target, muted_level(power_levels(room))) for room in rooms]
            verb = f"muted {target}"
        case "locked" | "unlocked":
            done = lock_plan(
                rooms, {r: power_levels(r) for r in rooms}, locks, action == "unlocked"
            )
            verb = "locked" if action == "unlocked" else "unlocked"
        case _:
            return "I don't know how to undo that.", []
    said = f"{moderator} undid their last action: {verb}" + (f" in {label}" if label else "") + "."
    if last.get("takedown"):
        said += " The messages the takedown removed stay removed."
    return said, [*cancel, *done, DeleteRecord(FEATURE, "last", moderator)]


async def _undo(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    t = typed(inv, ctx)
    last = await ctx.record("last", inv.sender)
    refused = undo_refusal(
        inv.sender,
        last,
        t.scope,
        inv.power.in_room,
        t.config.levels,
        lambda room, user: ctx.power(room, user).in_room,
    )
    if refused == REFUSAL:
        return refusal(inv)
    if refused is not None:
        return [Reply(inv.room_id, inv.event_id, refused)]
    said, actions = undo_plan(
        inv.sender,
        last,
        lambda room: ctx.room_state(POWER_LEVELS).get(room, {}),
        await ctx.records("lock"),
    )
    if actions:
        actions += t.logged(said)
        target = (last or {}).get("target")
        audit = {"at": ctx.now, "moderator": inv.sender, "action": "undo", "target": target}
        actions.append(ctx.put("audit", f"{ctx.now:.6f}:{inv.event_id}", audit))
    return [*actions, Reply(inv.room_id, inv.event_id, said)]


# A moderator may only undo their own action, and only while they hold the
# level it needs where they type !undo (undo_refusal).
UNDO = Command("undo", "Revert your own latest moderation action", _undo, power_level=1)
