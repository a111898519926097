"""Sharing the bot's room keys by the trust policy: the layer around nio.

nio shares a room key either with every device (``ignore_unverified_devices``)
or only with devices marked verified in its own store, and tells a device
left out nothing. Hearth decides per device instead (:mod:`.policy`), before
each send:

- devices allowed by the policy get the key, Olm-encrypted, with the bot's
  own signed device keys in the plaintext (``sender_device_keys``, MSC4147,
  which Element's Rust crypto requires before it trusts what a bot sends);
- every other device is sent ``m.room_key.withheld`` with the code
  ``m.unverified``, so its client shows why it cannot read the message;
- to-device messages go out up to 250 devices per request.

The session itself stays nio's: this module creates and marks nio's
``OutboundGroupSession`` the way nio's own ``share_group_session`` does, so
``room_send`` then only encrypts. It reads nio internals (``olm``'s stores
and outbound sessions), written for matrix-nio 0.26.0 as pinned in
constraints.txt; ``tests/unit/test_key_sharing.py`` fails if they move.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from nio import AsyncClient, JoinedMembersError, KeysClaimError, KeysQueryError

from bots.base.errors import HomeserverError
from bots.framework.cross_signing import api_of, unpadded_b64
from bots.framework.logging import get_logger
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import KeySharing, Recipient, split_recipients

log = get_logger(__name__)

MEGOLM = "m.megolm.v1.aes-sha2"
OLM = "m.olm.v1.curve25519-aes-sha2"
# Rust crypto sends room keys to 250 devices per request; nio to 20.
DEVICES_PER_REQUEST = 250
WITHHELD = "m.room_key.withheld"
UNVERIFIED_REASON = "The sender shares keys only with devices their owner has verified."

Pair = tuple[str, str]


def withheld_content(room_id: str, session_id: str, sender_key: str) -> dict[str, Any]:
    return {
        "algorithm": MEGOLM,
        "room_id": room_id,
        "session_id": session_id,
        "sender_key": sender_key,
        "code": "m.unverified",
        "reason": UNVERIFIED_REASON,
    }


def chunks(
    messages: dict[str, dict[str, Any]], size: int = DEVICES_PER_REQUEST
) -> list[dict[str, dict[str, Any]]]:
    """``{user: {device: content}}`` split into requests of at most *size* devices."""
    out: list[dict[str, dict[str, Any]]] = []
    current: dict[str, dict[str, Any]] = {}
    count = 0
    for user, devices in messages.items():
        for device, content in devices.items():
            if count == size:
                out.append(current)
                current, count = {}, 0
            current.setdefault(user, {})[device] = content
            count += 1
    if current:
        out.append(current)
    return out


class KeySharer:
    def __init__(
        self,
        client: AsyncClient,
        identities: Identities,
        policy: KeySharing = KeySharing.CROSS_SIGNED,
        shared_history: Callable[[str], bool] = lambda _room: False,
    ) -> None:
        self.client = client
        self.identities = identities
        self.policy = policy
        self.shared_history = shared_history
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Rooms whose members' devices changed since their key was shared.
        self._recheck: set[str] = set()
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

    def _needs_sharing(self, room_id: str) -> bool:
        olm = self.client.olm
        assert olm is not None
        return room_id in self._recheck or olm.should_share_group_session(room_id)

    async def ensure_shared(self, room_id: str) -> None:
        """Make sure the room's current key is with every allowed device, so
        nio's ``room_send`` only has to encrypt. Raises HomeserverError when a
        request it needs fails (the effector retries)."""
        room = self.client.rooms.get(room_id)
        if room is None or not room.encrypted or self.client.olm is None:
            return
        if not self._needs_sharing(room_id):
            return
        async with self._locks[room_id]:
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
        if client.should_query_keys and isinstance(await client.keys_query(), KeysQueryError):
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
        if session is None or session.expired or not session.users_shared_with <= allowed_pairs:
            # A device that had the key is gone or no longer trusted: a new
            # session, so it cannot read what follows.
            olm.create_outbound_group_session(room_id)
            session = olm.outbound_group_sessions[room_id]
        to_share = [d for d in allowed if (d.user_id, d.device_id) not in session.users_shared_with]
        await self._claim_missing(to_share)
        own_device = identities[me].devices.get(client.device_id)
        key = {
            "algorithm": MEGOLM,
            "room_id": room_id,
            "session_id": session.id,
            "session_key": session.session_key,
        }
        encrypted: dict[str, dict[str, Any]] = {}
        shared: list[Pair] = []
        no_session = 0
        for device in to_share:
            olm_session = olm.session_store.get(device.curve25519)
            if olm_session is None:
                no_session += 1  # no one-time key left: the device cannot be reached
                continue
            encrypted.setdefault(device.user_id, {})[device.device_id] = self._olm_encrypt(
                olm_session, device, "m.room_key", key, own_device.raw if own_device else None
            )
            shared.append((device.user_id, device.device_id))
        await self._send_to_devices("m.room.encrypted", encrypted)
        session.users_shared_with.update(shared)
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

    async def _claim_missing(self, devices: Sequence[Recipient]) -> None:
        olm = self.client.olm
        assert olm is not None
        missing: dict[str, list[str]] = {}
        for device in devices:
            if olm.session_store.get(device.curve25519) is None:
                missing.setdefault(device.user_id, []).append(device.device_id)
        if missing and isinstance(await self.client.keys_claim(missing), KeysClaimError):
            raise HomeserverError("claiming one-time keys failed")

    def _olm_encrypt(
        self,
        session: Any,
        device: Recipient,
        event_type: str,
        content: dict[str, Any],
        sender_device_keys: Any,
    ) -> dict[str, Any]:
        """nio's ``Olm._olm_encrypt``, plus ``sender_device_keys`` (MSC4147)."""
        olm = self.client.olm
        assert olm is not None
        payload: dict[str, Any] = {
            "sender": self.client.user_id,
            "sender_device": self.client.device_id,
            "keys": {"ed25519": olm.account.identity_keys["ed25519"]},
            "recipient": device.user_id,
            "recipient_keys": {"ed25519": device.ed25519},
            "type": event_type,
            "content": content,
        }
        if sender_device_keys:
            payload["sender_device_keys"] = dict(sender_device_keys)
        message = session.encrypt(json.dumps(payload, separators=(",", ":")))
        olm.store.save_session(device.curve25519, session)
        message_type, ciphertext = message.to_parts()
        return {
            "algorithm": OLM,
            "sender_key": olm.account.identity_keys["curve25519"],
            "ciphertext": {
                device.curve25519: {"type": message_type, "body": unpadded_b64(ciphertext)}
            },
        }

    async def _send_to_devices(self, event_type: str, messages: dict[str, dict[str, Any]]) -> None:
        api = api_of(self.client)
        for chunk in chunks(messages):
            # One transaction id per chunk: a retried request is not delivered twice.
            path = f"/_matrix/client/v3/sendToDevice/{event_type}/{uuid.uuid4().hex}"
            await api.request("PUT", path, {"messages": chunk}, what="sending room keys")
