"""!redact @user [N | since 1h]: remove a member's latest messages, bounded.

At most MAX_REDACT at a time, whatever is asked (a slip of `!redact @x
10000` must not hold the bot for an hour); the effector pages back
through the room and removes them within the bot's send rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, RedactRecent, Reply
from bots.framework.commands.parse import parse_duration
from bots.framework.commands.spec import Arg, ArgType, Command, Invocation
from bots.framework.feature import Context
from bots.framework.markdown import Md
from bots.moderation.commands.handlers import (
    OUTRANKED,
    refusal,
    typed,
)
from bots.moderation.commands.sanctions import MAX_REDACT
from bots.moderation.config import ModerationConfig

DEFAULT_REDACT = 20
USAGE = Md(
    "Use `!redact <user> [number | since <duration>]`, e.g. `!redact @x:server 50` or `since 2h`."
)


def redact_amount(text: str) -> tuple[int, float | None, str] | str:
    """Pure: (how many, how far back in seconds or None, how to say it), or
    why *text* is wrong."""
    words = text.split()
    if not words:
        return DEFAULT_REDACT, None, f"the last {DEFAULT_REDACT}"
    if words[0] == "since" and len(words) == 2:
        span = parse_duration(words[1])
        if span is None:
            return USAGE
        return MAX_REDACT, span.total_seconds(), f"those of the last {words[1]}"
    if len(words) == 1 and words[0].isdigit() and int(words[0]) > 0:
        asked = int(words[0])
        if asked > MAX_REDACT:
            limit = f"the last {MAX_REDACT} (at most {MAX_REDACT} at a time; ask again for more)"
            return MAX_REDACT, None, limit
        return asked, None, f"the last {asked}"
    return USAGE


async def _redact(inv: Invocation, ctx: Context[ModerationConfig]) -> Sequence[Action]:
    t = typed(inv, ctx)
    scope = t.scope
    if scope is None or t.refused(inv, t.config.levels.redact):
        return refusal(inv)
    target = str(inv.args["user"])
    if any(
        ctx.power(room, target).in_room >= ctx.power(room, inv.sender).in_room
        for room in scope.chat_rooms
    ):
        return [Reply(inv.room_id, inv.event_id, OUTRANKED)]
    amount = redact_amount(str(inv.args.get("amount") or ""))
    if isinstance(amount, str):
        return [Reply(inv.room_id, inv.event_id, amount)]
    limit, since_s, what = amount
    since_ms = int((ctx.now - since_s) * 1000) if since_s is not None else None
    reason = f"Removed by a moderator ({inv.sender})"
    out: list[Action] = [
        RedactRecent(room, target, limit, since_ms, reason) for room in scope.chat_rooms
    ]
    said = f"{inv.sender} is removing {what} of {target}'s messages in {scope.label}."
    out += t.logged(said)
    audit = {
        "at": ctx.now,
        "moderator": inv.sender,
        "action": "redact",
        "target": target,
        "reason": what,
    }
    out.append(ctx.put("audit", f"{ctx.now:.6f}:{inv.event_id}", audit))
    out.append(ctx.put("last", inv.sender, {"action": "redact", "target": target}))
    return [*out, Reply(inv.room_id, inv.event_id, said)]


REDACT = Command(
    "redact",
    "Remove a member's latest messages (here, or in every group from the moderators' room)",
    _redact,
    (
        Arg("user", "the member, as @name:server", type=ArgType.USER),
        Arg("amount", "how many, or since <duration>", required=False, rest=True),
    ),
    power_level=1,
)
