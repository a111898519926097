"""Keeping members' history: a day after approval, one reminder in the
member's DM to set up Element's Secure Backup, which keeps their room keys
when they change phone. The bot cannot see another account's backup, so the
member says it is done: `!backup done`, or 👍 on the reminder. Either stops
a reminder not yet sent; nothing is ever sent twice.

What is kept: the member's ID and when they were reminded or said done,
never anything about their keys."""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, CancelJob, PutRecord, Reply, SendDirect
from bots.framework.commands.spec import Command, Invocation
from bots.framework.feature import Context, Job, JobSpec
from bots.framework.markdown import Md, code, md
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.plan import BACKUP as KIND
from bots.onboarding.plan import FEATURE, backup_key
from bots.onboarding.scene import Scene


def reminder_text(prefix: str) -> Md:
    return md(
        "#### Keep your history\n\n"
        "One thing that keeps your group conversations safe: your messages are "
        "encrypted, and the keys to read them live on your device. If you lose your "
        "phone, or sign out of Element, every group message you had goes with it, "
        "unless you have Secure Backup.\n\n"
        "In Element: **Settings → Security & Privacy → Secure Backup → Set up**. Keep the "
        "recovery key it gives you somewhere safe (a password manager, or written down "
        "at home). Without it nobody, not even the moderators, can bring your old "
        "messages back.\n\n"
        "When it's done, reply {} or react to this message with 👍.",
        code(prefix + "backup done"),
    )


async def remind(job: Job[None], ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """The reminder, unless the member has already said it is done or has
    left the community meanwhile."""
    user = job.payload.get("user_id")
    if not isinstance(user, str) or await ctx.record(KIND, user) is not None:
        return []
    app = await Scene.of(ctx).application(user)
    if app is None:
        return []
    return [
        PutRecord(FEATURE, KIND, user, {"reminded_at": ctx.now}),
        SendDirect(user, reminder_text(ctx.bot.command_prefix)),
    ]


def done(user: str, now: float) -> list[Action]:
    """The member has set up their backup: no reminder from now on."""
    return [PutRecord(FEATURE, KIND, user, {"done_at": now}), CancelJob(backup_key(user))]


THANKS = "Thank you: your conversations are safer for it. I won't mention it again."


async def _backup_done(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    dm = await ctx.direct_room(inv.sender) if ctx.direct_room is not None else None
    if dm != inv.room_id:
        return [Reply(inv.room_id, inv.event_id, "Tell me that in our direct messages, please.")]
    return [*done(inv.sender, ctx.now), Reply(inv.room_id, inv.event_id, THANKS)]


async def on_thumbs_up(user: str, ctx: Context[OnboardingConfig]) -> Sequence[Action] | None:
    """A 👍 in the member's DM after the reminder: done. None when it is not
    about the backup (the reminder was never sent, or it is already done)."""
    said = await ctx.record(KIND, user)
    if said is None or "reminded_at" not in said or "done_at" in said:
        return None
    return [*done(user, ctx.now), SendDirect(user, THANKS)]


COMMAND = Command(
    "backup done", "Tell me you've set up Secure Backup (in your DM with me)", _backup_done
)
JOB = JobSpec(KIND, remind, grace_s=7 * 86400)
