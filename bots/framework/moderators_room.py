"""Finding the moderators' room at start: the configured alias resolved,
and, for a community, the room checked against the staff who must have
made it, before anything is routed by it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from nio import AsyncClient, RoomResolveAliasResponse

from bots.base.backoff import Backoff
from bots.base.errors import ConfigError, HomeserverError
from bots.framework.community import STATE_TYPES, CommunityRoles, verify
from bots.framework.logging import get_logger
from bots.framework.room_state import ServerState
from bots.framework.session import TRANSIENT
from bots.matrix.nio_client import api_of
from bots.matrix.transport import RequestError

log = get_logger(__name__)
KEY = "bot.moderators_room"


async def find(
    client: AsyncClient, ref: str | None, roles: CommunityRoles | None, me: str
) -> str | None:
    """The configured moderators' room *ref*, resolved and, for a community
    (*roles*), checked against the staff who must have made it."""
    room = await resolve(client, ref)
    if room is not None and roles is not None:
        await check(client, room, roles, me)
    return room


async def resolve(client: AsyncClient, ref: str | None) -> str | None:
    """The room ID of *ref* (an ID, or an alias asked of the homeserver).

    Raises:
        ConfigError: the alias does not exist.
    """
    if ref is None or not ref.startswith("#"):
        return ref
    backoff = Backoff()
    while True:
        try:
            resp = await client.room_resolve_alias(ref)
        except TRANSIENT:
            resp = None
        if isinstance(resp, RoomResolveAliasResponse):
            return str(resp.room_id)
        if getattr(resp, "status_code", None) == "M_NOT_FOUND":
            raise ConfigError("bot config", KEY, f"the alias {ref} does not exist")
        # A 5xx or a refused connection at start is the homeserver's
        # trouble, not the config's: wait it out.
        delay = backoff.next_delay()
        log.warning("moderators' room not resolved yet, retrying", retry_in_s=round(delay, 1))
        await asyncio.sleep(delay)


async def check(client: AsyncClient, room: str, roles: CommunityRoles, me: str) -> None:
    """That *room* is the community's moderators' room, as provisioning made
    it (bots/framework/community.py), from its state as the server holds it.
    The bot joins it first (provisioning invites the bots), as it would on
    its first sync.

    Raises:
        ConfigError: it is not, or the bot is neither in it nor invited.
    """
    backoff = Backoff()
    while True:
        try:
            api = api_of(client)
            await api.join(room)
            events = await api.request(
                "GET", f"/_matrix/client/v3/rooms/{quote(room, safe='')}/state"
            )
            break
        except RequestError as exc:
            if exc.status < 500:
                raise ConfigError(
                    "bot config",
                    KEY,
                    f"the bot cannot join {room} ({exc.errcode or exc.status}); expected the "
                    "community's moderators' room, to which hearth provision invites the bots",
                ) from None
        except (HomeserverError, *TRANSIENT):
            pass
        delay = backoff.next_delay()
        log.warning("moderators' room not checked yet, retrying", retry_in_s=round(delay, 1))
        await asyncio.sleep(delay)
    state = ServerState(STATE_TYPES)
    state.take(room, events if isinstance(events, list) else [])
    if verify(state, roles, me).rooms.moderators != room:
        raise ConfigError(
            "bot config",
            KEY,
            f"{room} is not the moderators' room of the community {roles.key!r}: expected "
            "the room hearth provision made (its creator and its org.hearth.room marker "
            f"must be {roles.admin} or one of the community's bots); "
            "`hearth provision --record FILE` writes its ID",
        )
