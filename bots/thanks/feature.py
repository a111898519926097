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


async def one_more(room: str, key: str, ctx: Context[ThanksConfig]) -> list[Action]:
    """Count a thank-you in *room*; its week's first also schedules the digest."""
    week = await ctx.record("week", room)
    count = int(week["count"]) + 1 if week else 1
    due = ctx.now + ctx.config.week_s
    digest_job = ScheduleJob(NAME, "digest", due, key=f"digest:{key}", payload={"room": room})
    return [ctx.put("week", room, {"count": count}), *([] if week else [digest_job])]


async def thank(inv: Invocation, ctx: Context[ThanksConfig]) -> Sequence[Action]:
    who = str(inv.args["who"])
    if who == inv.sender:
        return [Reply(inv.room_id, inv.event_id, "That one doesn't count, but well done you.")]
    done = Reply(inv.room_id, inv.event_id, f"Thank you passed on to {who}.")
    return [*await one_more(inv.room_id, inv.event_id, ctx), done]


async def on_reaction(event: Reaction, ctx: Context[ThanksConfig]) -> Sequence[Action]:
    """A 🙏 on a message counts too."""
    return await one_more(event.room_id, event.event_id, ctx) if event.key == "🙏" else []


async def tell_week(job: Job, ctx: Context[ThanksConfig]) -> Sequence[Action]:
    room = str(job.payload["room"])
    week = await ctx.record("week", room)
    count = int(week["count"]) if week else 0
    return [ctx.delete("week", room), SendNotice(room, digest(count), mentions=())]


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
    jobs=(JobSpec("digest", tell_week, grace_s=86400),),
)
