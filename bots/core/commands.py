"""Commands every Hearth bot answers, and the invitations it accepts."""

from __future__ import annotations

from collections.abc import Sequence

from bots.framework.actions import Action, JoinRoom, Reply
from bots.framework.commands.spec import Command, Invocation
from bots.framework.events import Membership, MembershipChange
from bots.framework.feature import Context


async def ping(inv: Invocation) -> Sequence[Action]:
    return [Reply(inv.room_id, inv.event_id, "pong")]


PING = Command("ping", "Check that the bot is alive and can read this room", ping)


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[-1]


async def accept_invite(event: Membership, ctx: Context) -> Sequence[Action]:
    """Join rooms the bot is invited to, but only by people on its own
    homeserver: nobody elsewhere may pull it into their rooms."""
    if event.change is not MembershipChange.INVITE or event.target != ctx.me:
        return []
    if server_of(event.sender) != server_of(ctx.me):
        return []
    return [JoinRoom(event.room_id)]
