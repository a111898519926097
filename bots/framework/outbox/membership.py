"""Performers of joins, leaves, invites (each with the room's history for
the invitee first), kicks, bans and unbans."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from bots.base.errors import HomeserverError
from bots.framework.actions import Ban, Invite, JoinRoom, Kick, LeaveRoom, Unban
from bots.framework.outbox.means import DONE, Failed, Means
from bots.framework.outbox.registry import performs
from bots.framework.trust.history import HistoryOutcome
from bots.matrix.nio_client import api_of
from bots.matrix.transport import RequestError

# The invite's reason, which Element shows on the invitation, when the
# room's history could not go with it. (A message would not do: it would be
# encrypted for verified devices only.)
HISTORY_NOT_SHARED_NOTE = (
    "Members here can read earlier messages, but they could not be shared with you "
    "because none of your sessions is verified yet. In Element, verify your session "
    "(Settings → Sessions), then ask to be invited again."
)


@performs(JoinRoom)
async def join(means: Means, action: JoinRoom, txn: str) -> Any:
    return await means.client.join(action.room_id)


@performs(LeaveRoom)
async def leave(means: Means, action: LeaveRoom, txn: str) -> Any:
    return await means.client.room_leave(action.room_id)


@performs(Kick)
async def kick(means: Means, action: Kick, txn: str) -> Any:
    return await means.client.room_kick(action.room_id, action.user_id, action.reason)


@performs(Ban)
async def ban(means: Means, action: Ban, txn: str) -> Any:
    return await means.client.room_ban(action.room_id, action.user_id, action.reason)


@performs(Unban)
async def unban(means: Means, action: Unban, txn: str) -> Any:
    return await means.client.room_unban(action.room_id, action.user_id)


@performs(Invite)
async def invite(means: Means, action: Invite, txn: str) -> Any:
    reason = action.reason
    if means.history is not None:
        try:
            shared = await means.history.before_invite(action.room_id, action.user_id)
        except HomeserverError as exc:
            # Before the invite: retried whole, never an invite without it.
            raise Failed("history bundle failed") from exc
        if shared is HistoryOutcome.ALREADY_JOINED:
            return DONE
        if shared is HistoryOutcome.NO_SIGNED_DEVICE:
            reason = f"{reason}\n\n{HISTORY_NOT_SHARED_NOTE}" if reason else HISTORY_NOT_SHARED_NOTE
    # Through the account's transport as a call of Hearth's own: nio's
    # room_invite takes no reason.
    body = {"user_id": action.user_id, **({"reason": reason} if reason else {})}
    path = f"/_matrix/client/v3/rooms/{quote(action.room_id, safe='')}/invite"
    try:
        await api_of(means.client).request("POST", path, body, what="invite")
    except RequestError as exc:
        raise Failed(exc.errcode or str(exc.status)) from exc
    return DONE
