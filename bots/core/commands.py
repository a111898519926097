"""Commands every Hearth bot answers, and the invitations it accepts."""

from __future__ import annotations

from collections.abc import Sequence

from bots.core.config import CoreConfig
from bots.framework.actions import Action, JoinRoom, LeaveRoom, Reply
from bots.framework.commands.spec import Command, Invocation
from bots.framework.community import accepts_invitation
from bots.framework.events import Membership, MembershipChange
from bots.framework.feature import Context
from bots.framework.logging import get_logger

log = get_logger(__name__)


async def ping(inv: Invocation, ctx: Context[CoreConfig]) -> Sequence[Action]:
    return [Reply(inv.room_id, inv.event_id, "pong")]


PING = Command("ping", "Check that the bot is alive and can read this room", ping)


async def accept_invite(event: Membership, ctx: Context[CoreConfig]) -> Sequence[Action]:
    """Join the rooms the community's staff invite the bot to, and members'
    direct messages; decline the rest (bots/framework/community.py says why)."""
    if event.change is not MembershipChange.INVITE or event.target != ctx.me:
        return []
    community = ctx.community()
    if accepts_invitation(
        event.sender,
        ctx.me,
        event.room_id,
        is_direct=event.is_direct,
        roles=community.roles,
        named=community.named_rooms,
    ):
        return [JoinRoom(event.room_id)]
    # Who invited is not logged; the room is enough to look into it.
    log.info("invitation declined", room_id=event.room_id)
    return [LeaveRoom(event.room_id)]
