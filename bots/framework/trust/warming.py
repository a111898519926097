"""Olm sessions set up ahead of time, so a first message into a big room
only has to send the room key.

Before the bot can send a room key to a device it needs an Olm session
with it: a one-time key claimed from the server, and the session made. On
migration day hundreds of members join at once, and the bot's first
announcement would otherwise do all of that while members wait. So the
runtime tells the :class:`SessionWarmer` who joined each encrypted room
(everyone, on the first sync after a start); in the background it makes
sessions with those of their devices the trust policy would give keys to,
a batch at a time with a pause between batches, so that the bot's replies
are never kept waiting behind it. Devices that already have a session
cost nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from nio import RoomMemberEvent, SyncResponse

from bots.base.backoff import Backoff
from bots.base.errors import HomeserverError
from bots.framework.logging import get_logger
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import KeySharing, Recipient, split_recipients
from bots.framework.trust.sharing import KeySharer

log = get_logger(__name__)

# Users looked at per batch, and the pause after each: at most about 200
# users' devices a second, in small steps the bot's own sends slip between.
USERS_PER_BATCH = 50
PAUSE_S = 0.25


def joined_users(resp: SyncResponse, me: str, encrypted: Callable[[str], bool]) -> set[str]:
    """Who a sync shows joined to an encrypted room (its state, on a first
    sync, or a join in its timeline), the bot itself left out."""
    found: set[str] = set()
    for room_id, room in resp.rooms.join.items():
        if not encrypted(room_id):
            continue
        for event in (*room.state, *room.timeline.events):
            if (
                isinstance(event, RoomMemberEvent)
                and event.membership == "join"
                and event.state_key != me
            ):
                found.add(event.state_key)
    return found


class SessionWarmer:
    def __init__(self, keys: KeySharer, identities: Identities, policy: KeySharing) -> None:
        self.keys = keys
        self.identities = identities
        self.policy = policy
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self.sessions_made = 0

    def note(self, users: Iterable[str]) -> None:
        new = set(users) - self._pending
        if new:
            self._pending |= new
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled: warm the users noted, a batch at a time."""
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = sorted(self._pending)[:USERS_PER_BATCH]
                self._pending.difference_update(batch)
                try:
                    self.sessions_made += await self.warm(batch)
                    backoff.reset()
                except HomeserverError:
                    # Tried again later; a send in the meantime makes its own.
                    self._pending.update(batch)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                await asyncio.sleep(PAUSE_S)
            log.info("olm sessions made ahead", devices=self.sessions_made)

    async def warm(self, users: list[str]) -> int:
        """Make sessions with *users*' devices that the policy gives keys
        to and that have none yet; how many were made."""
        client = self.keys.client
        olm = client.olm
        if olm is None:
            return 0
        await self.keys.ensure_device_keys(users)
        identities = await self.identities.get(users)
        devices = [
            Recipient(user, d.id, d.curve25519, d.ed25519)
            for user in users
            for d in olm.device_store.active_user_devices(user)
            if olm.session_store.get(d.curve25519) is None
        ]
        allowed, _ = split_recipients(devices, identities, self.policy)
        if not allowed:
            return 0
        await self.keys.claim_missing(allowed)
        return sum(1 for d in allowed if olm.session_store.get(d.curve25519) is not None)
