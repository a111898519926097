"""!lock and !unlock (only moderators may post), and !audit (the trail).

Typed in a group's room they act on that room; !lock in the moderators'
room locks every group room at once, for a raid.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from bots.framework.actions import (
    Action,
    DeleteRecord,
    PutRecord,
    Reply,
    SetPostingLevel,
)
from bots.framework.commands.spec import MODERATOR, Arg, ArgType, Command, Invocation
from bots.framework.event_types import POWER_LEVELS
from bots.framework.feature import Context
from bots.framework.markdown import bullets, code, md
from bots.moderation.commands.handlers import (
    refusal,
    typed,
)
from bots.moderation.config import ModerationConfig
from bots.moderation.protections.respond import FEATURE

AUDIT_LINES = 15


def lock_plan(
    rooms: Sequence[str],
    power_levels: Mapping[str, Mapping[str, Any]],
    locks: Mapping[str, Mapping[str, Any]],
    lock: bool,
) -> list[Action]:
    """Pure: lock (posting at the moderators' level) or unlock each room,
    remembering the level it had so !unlock puts it back."""
    out: list[Action] = []
    for room in rooms:
        current = power_levels.get(room, {}).get("events_default", 0)
        current = current if isinstance(current, int) else 0
        if lock and room not in locks and current < MODERATOR:
            out += [
                PutRecord(FEATURE, "lock", room, {"previous": current}),
                SetPostingLevel(room, MODERATOR),
            ]
        elif not lock and room in locks:
            previous = locks[room].get("previous", 0)
            out += [
                DeleteRecord(FEATURE, "lock", room),
                SetPostingLevel(room, previous if isinstance(previous, int) else 0),
            ]
    return out


async def _lock(inv: Invocation, ctx: Context[ModerationConfig], lock: bool) -> Sequence[Action]:
    t = typed(inv, ctx)
    scope = t.scope
    if scope is None or t.refused(inv, t.config.levels.lock):
        return refusal(inv)
    actions = lock_plan(
        scope.chat_rooms, ctx.room_state(POWER_LEVELS), await ctx.records("lock"), lock
    )
    if not actions:
        state = "locked" if lock else "unlocked"
        return [Reply(inv.room_id, inv.event_id, f"{scope.label} is already {state}.")]
    what = "locked" if lock else "unlocked"
    said = f"{inv.sender} {what} {scope.label}" + (
        ": only moderators can post until !unlock." if lock else "."
    )
    actions += t.logged(said)
    audit = {"at": ctx.now, "moderator": inv.sender, "action": what, "target": scope.label}
    actions.append(ctx.put("audit", f"{ctx.now:.6f}:{inv.event_id}", audit))
    last = {"action": what, "target": scope.label, "rooms": list(scope.chat_rooms), "jobs": []}
    actions.append(ctx.put("last", inv.sender, last))
    return [*actions, Reply(inv.room_id, inv.event_id, said)]


async def _lock_room(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    return await _lock(inv, ctx, True)


async def _unlock_room(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    return await _lock(inv, ctx, False)


MAX_SLOW_S = 3600


def slow_seconds(text: str) -> int | str:
    """Pure: the slow mode's seconds (0 for off), or why *text* is wrong."""
    word = text.strip().lower()
    if word in ("off", "0"):
        return 0
    if word.isdigit() and 0 < int(word) <= MAX_SLOW_S:
        return int(word)
    return md(
        "Use {} (1 to {}) or {}.", code("!slowmode <seconds>"), MAX_SLOW_S, code("!slowmode off")
    )


async def _slowmode(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    t = typed(inv, ctx)
    scope = t.scope
    if scope is None or t.refused(inv, t.config.levels.lock):
        return refusal(inv)
    seconds = slow_seconds(str(inv.args.get("seconds") or ""))
    if isinstance(seconds, str):
        return [Reply(inv.room_id, inv.event_id, seconds)]
    out: list[Action] = [
        ctx.put("slowmode", room, {"seconds": seconds}) if seconds else ctx.delete("slowmode", room)
        for room in scope.chat_rooms
    ]
    said = (
        f"{inv.sender} set slow mode in {scope.label}: one message every {seconds} s per member."
        if seconds
        else f"{inv.sender} turned slow mode off in {scope.label}."
    )
    out += t.logged(said)
    return [*out, Reply(inv.room_id, inv.event_id, said)]


def audit_lines(records: Mapping[str, Mapping[str, Any]], who: str | None) -> list[str]:
    """Pure: the latest entries, newest last, about or by *who* if given."""
    chosen = [
        r for r in records.values() if who is None or who in (r.get("target"), r.get("moderator"))
    ]
    chosen.sort(key=lambda r: float(r.get("at", 0)))
    lines = []
    for r in chosen[-AUDIT_LINES:]:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(r.get("at", 0))))
        reason = f": {r['reason']}" if r.get("reason") else ""
        lines.append(f"{when}  {r.get('moderator')} {r.get('action')} {r.get('target')}{reason}")
    return lines


async def _audit(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    t = typed(inv, ctx)
    # The trail is read in the moderators' room only: it names members.
    if t.scope is None or not t.scope.community or t.refused(inv, t.config.levels.audit):
        return refusal(inv)
    who = inv.args.get("user")
    lines = audit_lines(await ctx.records("audit"), who if isinstance(who, str) else None)
    if not lines:
        return [Reply(inv.room_id, inv.event_id, "Nothing in the audit trail.")]
    return [Reply(inv.room_id, inv.event_id, md("#### Audit trail\n\n{}", bullets(lines)))]


COMMANDS = (
    Command(
        "lock",
        "Only moderators may post (here, or in every group from the moderators' room)",
        _lock_room,
        power_level=1,
    ),
    Command("unlock", "Let members post again", _unlock_room, power_level=1),
    Command(
        "slowmode",
        "One message per member every so many seconds (or off)",
        _slowmode,
        (Arg("seconds", "seconds between one member's messages, or off"),),
        power_level=1,
    ),
    Command(
        "audit",
        "The moderation trail, optionally about one member",
        _audit,
        (Arg("user", "the member, as @name:server", type=ArgType.USER, required=False),),
        power_level=1,
    ),
)
