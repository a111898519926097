"""Sharing the bot's room keys by the trust policy: the layer around nio.

nio shares a room key either with every device (``ignore_unverified_devices``)
or only with devices marked verified in its own store, and tells a device
left out nothing. Hearth decides per device instead (:mod:`.policy`), before
each send:

- devices allowed by the policy get the key, Olm-encrypted over the bot's
  Olm channel (:mod:`.olm_sender`: sessions claimed, ``sender_device_keys``,
  250 devices per request);
- every other device is sent ``m.room_key.withheld`` with the code
  ``m.unverified``, so its client shows why it cannot read the message;
- a device with no one-time key left is told ``m.no_olm`` once and tried
  again later, with a later message (:mod:`.unreachable`).

The session itself stays nio's: this module creates and marks nio's
``OutboundGroupSession`` the way nio's own ``share_group_session`` does, so
``room_send`` then only encrypts. It reads nio internals (``olm``'s stores
and outbound sessions), written for matrix-nio 0.26.0 as pinned in
constraints.txt; ``tests/unit/test_history_bundle.py`` fails on another nio version.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from nio import AsyncClient, JoinedMembersError, KeysQueryError

from bots.base.errors import HomeserverError
from bots.framework.logging import get_logger
from bots.framework.trust.bundle import MEGOLM, SHARED_HISTORY
from bots.framework.trust.identities import Identities
from bots.framework.trust.olm_sender import OlmSender
from bots.framework.trust.policy import KeySharing, Recipient, SessionFlag, split_recipients

log = get_logger(__name__)

WITHHELD = "m.room_key.withheld"
UNVERIFIED_REASON = "The sender shares keys only with devices their owner has verified."


def withheld_content(room_id: str, session_id: str, sender_key: str) -> dict[str, Any]:
    return {
        "algorithm": MEGOLM,
        "room_id": room_id,
        "session_id": session_id,
        "sender_key": sender_key,
        "code": "m.unverified",
        "reason": UNVERIFIED_REASON,
    }


NO_OLM_REASON = (
    "The sender could not set up an encrypted channel with this device: "
    "it had no one-time keys left."
)


def no_olm_content(sender_key: str) -> dict[str, Any]:
    # Per device, not per session: no room or session is named.
    return {
        "algorithm": MEGOLM,
        "sender_key": sender_key,
        "code": "m.no_olm",
        "reason": NO_OLM_REASON,
    }


class KeySharer(OlmSender):
    def __init__(
        self,
        client: AsyncClient,
        identities: Identities,
        policy: KeySharing = KeySharing.CROSS_SIGNED,
        shared_history: Callable[[str], bool] = lambda _room: False,
        on_session: Callable[[SessionFlag], Awaitable[None]] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, identities, now)
        # Rooms with a device that had no one-time key, and when to try again.
        self._retry_rooms: dict[str, float] = {}
        self.no_olm_sent = 0
        self.policy = policy
        self.shared_history = shared_history
        self.on_session = on_session
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Rooms whose members' devices changed since their key was shared.
        self._recheck: set[str] = set()
        # Each room's current session, and whether it was made shareable.
        self._made_shareable: dict[str, tuple[str, bool]] = {}
        self.withheld_sent = 0

    def devices_changed(self, users: Iterable[str]) -> None:
        """A sync said these users' devices or signatures changed."""
        changed = set(users)
        if not changed:
            return
        self.identities.forget(changed)
        for room in self.client.rooms.values():
            if room.encrypted and changed & set(room.users):
                self._recheck.add(room.room_id)

    def _flag_changed(self, room_id: str) -> bool:
        """Whether the room's session was made under the other history
        setting: its history became shared, or stopped being shared."""
        olm = self.client.olm
        assert olm is not None
        session = olm.outbound_group_sessions.get(room_id)
        made = self._made_shareable.get(room_id)
        return session is not None and made != (session.id, self.shared_history(room_id))

    def _needs_sharing(self, room_id: str) -> bool:
        olm = self.client.olm
        assert olm is not None
        retry = self._retry_rooms.get(room_id)
        return (
            room_id in self._recheck
            or olm.should_share_group_session(room_id)
            or self._flag_changed(room_id)
            or (retry is not None and self.now() >= retry)
        )

    async def ensure_shared(self, room_id: str) -> None:
        """Make sure the room's current key is with every allowed device, so
        nio's ``room_send`` only has to encrypt. Raises HomeserverError when a
        request it needs fails (the effector retries)."""
        room = self.client.rooms.get(room_id)
        if room is None or not room.encrypted or self.client.olm is None:
            return
        lock = self._locks[room_id]
        # A share of this room in flight has already cleared what asked for
        # it (a member's new device, a retry) but not yet sent the key: a
        # send now would encrypt with a session that device does not have.
        if not lock.locked() and not self._needs_sharing(room_id):
            return
        async with lock:
            if self._needs_sharing(room_id):
                await self._share(room_id)

    async def _share(self, room_id: str) -> None:
        client, olm = self.client, self.client.olm
        assert olm is not None
        assert client.user_id
        assert client.device_id
        room = client.rooms[room_id]
        if not room.members_synced and isinstance(
            await client.joined_members(room_id), JoinedMembersError
        ):
            raise HomeserverError("reading the room's members failed")
        if client.should_query_keys and isinstance(await self.channel.query_keys(), KeysQueryError):
            raise HomeserverError("querying members' device keys failed")
        self._recheck.discard(room_id)
        users = list(room.users)
        me = client.user_id
        identities = await self.identities.get([*users, me])
        devices = [
            Recipient(user, d.id, d.curve25519, d.ed25519)
            for user in users
            for d in olm.device_store.active_user_devices(user)
            if not (user == me and d.id == client.device_id)
        ]
        allowed, withheld = split_recipients(devices, identities, self.policy)
        session = olm.outbound_group_sessions.get(room_id)
        allowed_pairs = {(d.user_id, d.device_id) for d in allowed}
        if (
            session is None
            or session.expired
            or not session.users_shared_with <= allowed_pairs
            or self._flag_changed(room_id)
        ):
            # A device that had the key is gone or no longer trusted, or the
            # room's history setting changed: a new session, so neither that
            # device nor a later member given the old one reads what follows.
            olm.create_outbound_group_session(room_id)
            session = olm.outbound_group_sessions[room_id]
        to_share = [d for d in allowed if (d.user_id, d.device_id) not in session.users_shared_with]
        shareable = self.shared_history(room_id)
        self._made_shareable[room_id] = (session.id, shareable)
        key: dict[str, Any] = {
            "algorithm": MEGOLM,
            "room_id": room_id,
            "session_id": session.id,
            "session_key": session.session_key,
        }
        if shareable:
            key[SHARED_HISTORY] = True
        if self.on_session is not None:
            own_key = olm.account.identity_keys["curve25519"]
            await self.on_session(SessionFlag(room_id, own_key, session.id, shareable))
        shared = await self.send_encrypted(to_share, [("m.room_key", key)])
        session.users_shared_with.update(shared)
        reached = set(shared)
        missed = [d for d in to_share if (d.user_id, d.device_id) not in reached]
        no_session = len(missed)
        await self._tell_no_olm(missed)
        retry = self.unreachable.retry_at(d.curve25519 for d in missed)
        if retry is None:
            self._retry_rooms.pop(room_id, None)
        else:
            self._retry_rooms[room_id] = retry
        told = [d for d in withheld if (d.user_id, d.device_id) not in session.users_ignored]
        if told:
            sender_key = olm.account.identity_keys["curve25519"]
            content = withheld_content(room_id, session.id, sender_key)
            notices: dict[str, dict[str, Any]] = {}
            for device in told:
                notices.setdefault(device.user_id, {})[device.device_id] = content
            await self._send_to_devices(WITHHELD, notices)
            session.users_ignored.update((d.user_id, d.device_id) for d in told)
            self.withheld_sent += len(told)
        session.shared = True
        if no_session or told:
            log.info(
                "room key shared",
                devices=len(shared),
                withheld=len(told),
                unreachable=no_session,
            )

    async def _tell_no_olm(self, devices: Sequence[Recipient]) -> None:
        """``m.no_olm`` to each of *devices* not told before, so its client
        can say why it cannot read what follows."""
        olm = self.client.olm
        assert olm is not None
        keys = set(self.unreachable.to_tell(d.curve25519 for d in devices))
        if not keys:
            return
        content = no_olm_content(olm.account.identity_keys["curve25519"])
        notices: dict[str, dict[str, Any]] = {}
        for device in devices:
            if device.curve25519 in keys:
                notices.setdefault(device.user_id, {})[device.device_id] = content
        await self._send_to_devices(WITHHELD, notices)
        self.no_olm_sent += len(keys)

    async def ensure_device_keys(self, users: Sequence[str]) -> None:
        """Make nio's device store know *users*' devices (someone the bot
        shares no room with yet, such as an invitee)."""
        olm = self.client.olm
        assert olm is not None
        unknown = [u for u in users if u not in olm.device_store.users]
        if unknown:
            olm.users_for_key_query.update(unknown)
        if self.client.should_query_keys and isinstance(
            await self.channel.query_keys(), KeysQueryError
        ):
            raise HomeserverError("querying device keys failed")
