"""Thanks: members thank each other; each week the room hears how often.

The example of docs/writing-a-feature.md: a command, an event handler, a
job and a record. Not one of bots/app.py's features: a bot runs it only
when built with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, Reply, ScheduleJob, SendNotice
from bots.framework.commands.spec import Arg, ArgType, Command, Invocation
from bots.framework.events import Reaction
from bots.framework.feature import Context, EventHandler, Feature, Job, JobSpec
from bots.thanks.config import ThanksConfig

NAME = "thanks"


def digest(count: int) -> str:
    """Pure: what the room hears at the end of its week (a count, no names)."""
    said = "one thank-you was" if count == 1 else f"{count} thank-yous were"
    return f"This week {said} said here. Thank you for looking after each other."


async def one_more(room: str, ctx: Context[ThanksConfig]) -> list[Action]:
    """Count a thank-you in *room*; the room's first starts its weekly digest."""
    said = await ctx.record("said", room)
    count = int(said["count"]) + 1 if said else 1
    return [ctx.put("said", room, {"count": count}), *([] if said else [week(room, 0, 0, ctx)])]


def week(room: str, n: int, told: int, ctx: Context[ThanksConfig]) -> ScheduleJob:
    """Week *n*'s digest, told the room's count as it was at the last one."""
    due, payload = ctx.now + ctx.config.week_s, {"room": room, "n": n, "told": told}
    return ScheduleJob(NAME, "digest", due, key=f"digest:{room}:{n}", payload=payload)


async def thank(inv: Invocation, ctx: Context[ThanksConfig]) -> Sequence[Action]:
    who = str(inv.args["who"])
    if who == inv.sender:
        return [Reply(inv.room_id, inv.event_id, "That one doesn't count, but well done you.")]
    done = Reply(inv.room_id, inv.event_id, f"Thank you passed on to {who}.")
    return [*await one_more(inv.room_id, ctx), done]


async def on_reaction(event: Reaction, ctx: Context[ThanksConfig]) -> Sequence[Action]:
    """A 🙏 on a message counts too."""
    return await one_more(event.room_id, ctx) if event.key == "🙏" else []


async def tell_week(job: Job[None], ctx: Context[ThanksConfig]) -> Sequence[Action]:
    """The thank-yous since the last digest, if any; then the next week's."""
    room, n, told = str(job.payload["room"]), int(job.payload["n"]), int(job.payload["told"])
    said = await ctx.record("said", room)
    count = int(said["count"]) if said else 0
    news = [SendNotice(room, digest(count - told), mentions=())] if count > told else []
    return [*news, week(room, n + 1, count, ctx)]


FEATURE = Feature(
    name=NAME,
    summary="!thanks: members thank each other, and the room hears the week's count",
    config_model=ThanksConfig,
    commands=(
        Command(
            "thanks",
            "Thank someone who helped you",
            thank,
            (
                Arg("who", "who, as @name:server", ArgType.USER),
                Arg("why", "what for, if you like", required=False, rest=True),
            ),
        ),
    ),
    handlers=(EventHandler(Reaction, on_reaction),),
    # Run however late: each digest carries the count on to the next.
    jobs=(JobSpec("digest", tell_week, grace_s=366 * 86400),),
)
