"""`!leave` and `!erase-me`: a member's way out, asked for in their DM with
the bot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bots.framework.actions import Action, CancelJob, DeleteRecord, Extension, Kick, Reply
from bots.framework.commands.spec import Arg, Command, Invocation
from bots.framework.feature import Context
from bots.framework.markdown import Md, code
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.plan import BACKUP, FEATURE, KIND, backup_key
from bots.onboarding.scene import Scene

ERASE_EXPLAINED = Md(
    "**Erasing your account cannot be undone.** Here is exactly what it does and does not "
    "do:\n\n"
    "- Your account is closed and its name can never be used again, by you or anyone.\n"
    "- The server marks your messages as erased: people who join later will not see them.\n"
    "- Messages you already sent stay, still encrypted, on the devices of the members who "
    "received them: nobody can take those back.\n"
    "- You leave every room of the community.\n\n"
    "If you only want to step away, {leave} takes you out of the community's rooms and "
    "keeps your account. To erase it, send: {confirm}\n\n"
    "I'll accept that only from a verified session (in Element: **Settings → Sessions**), "
    "so that nobody who got hold of your login can erase your account. If you can't verify "
    "one, a moderator can help."
)
ERASING = "Erasing your account now. Thank you for having been part of this community; take care."
LEFT = Md(
    "Done: I've taken you out of the community's rooms. Your account stays; you're welcome "
    "back any time (ask a moderator, or {join} a group)."
)
DM_ONLY = "Please ask me that in our direct conversation, so nobody else sees it."


@dataclass(frozen=True)
class EraseMe(Extension):
    """Ask the admin agent to deactivate and erase the sender's own account
    (performed in :mod:`bots.onboarding.performers`)."""

    user_id: str
    room_id: str


async def _in_dm(inv: Invocation, ctx: Context[OnboardingConfig]) -> bool:
    dm = await ctx.direct_room(inv.sender) if ctx.direct_room is not None else None
    return dm == inv.room_id


def _out_of_rooms(ctx: Context[OnboardingConfig], user: str, reason: str) -> list[Action]:
    """Kicks from every community room *user* is in (groups first, the Space last)."""
    rooms = Scene.of(ctx).rooms
    targets = [r for group in rooms.groups.values() for r in group]
    if rooms.space:
        targets.append(rooms.space)
    return [Kick(room, user, reason) for room in targets if user in ctx.members(room)]


def _forget_backup(user: str) -> list[Action]:
    """The backup reminder not yet sent, and what was noted of it."""
    return [CancelJob(backup_key(user)), DeleteRecord(FEATURE, BACKUP, user)]


async def leave(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    if not await _in_dm(inv, ctx):
        return [Reply(inv.room_id, inv.event_id, DM_ONLY)]
    prefix = ctx.bot.command_prefix
    return [
        *_out_of_rooms(ctx, inv.sender, "left at their own request"),
        DeleteRecord(FEATURE, KIND, inv.sender),
        *_forget_backup(inv.sender),
        Reply(inv.room_id, inv.event_id, LEFT.format(join=code(prefix + "join"))),
    ]


async def erase_me(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """`!erase-me`: what erasure does and does not do, and how to ask for it."""
    if not await _in_dm(inv, ctx):
        return [Reply(inv.room_id, inv.event_id, DM_ONLY)]
    return [
        Reply(
            inv.room_id,
            inv.event_id,
            ERASE_EXPLAINED.format(
                leave=code(ctx.bot.command_prefix + "leave"),
                confirm=code(ctx.bot.command_prefix + "erase-me confirm"),
            ),
        )
    ]


async def erase_me_confirmed(inv: Invocation, ctx: Context[OnboardingConfig]) -> Sequence[Action]:
    """`!erase-me confirm`, which the router runs only when it came from one
    of the sender's verified devices (ERASE_CONFIRMED.verified_device)."""
    if not await _in_dm(inv, ctx):
        return [Reply(inv.room_id, inv.event_id, DM_ONLY)]
    return [
        # Said first: once the account is erased its owner reads nothing more.
        Reply(inv.room_id, inv.event_id, ERASING),
        DeleteRecord(FEATURE, KIND, inv.sender),
        DeleteRecord(FEATURE, "greeted", inv.sender),
        *_forget_backup(inv.sender),
        EraseMe(inv.sender, inv.room_id),
    ]


LEAVE = Command("leave", "Leave all the community's rooms (your account stays)", leave)
ERASE = Command(
    "erase-me",
    "What erasing your account does, and how to ask for it",
    erase_me,
    # Anything after it but "confirm" (which is the next command) is explained.
    (
        Arg(
            "confirm",
            "the word confirm, once you have read what it does",
            required=False,
            rest=True,
        ),
    ),
)
# A stolen access token alone must not erase an account for good: the
# member's own verified (cross-signed) session is needed, which Element sets
# up at sign-up. A password typed into the chat was the other way; it would
# sit in the bot's inbox and on the member's devices, and teach members to
# type their password where someone asks for it.
ERASE_CONFIRMED = Command(
    "erase-me confirm",
    "Close and erase your account for good (from a verified session)",
    erase_me_confirmed,
    verified_device=True,
)
