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
- a device with no one-time key left is told ``m.no_olm`` once and tried
  again later, with a later message (:mod:`.unreachable`);
- to-device messages go out up to 250 devices per request.

The session itself stays nio's: this module creates and marks nio's
``OutboundGroupSession`` the way nio's own ``share_group_session`` does, so
``room_send`` then only encrypts. It reads nio internals (``olm``'s stores
and outbound sessions), written for matrix-nio 0.26.0 as pinned in
constraints.txt; ``tests/unit/test_history_bundle.py`` fails on another nio version.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from nio import (
    AsyncClient,
    JoinedMembersError,
    KeysClaimError,
    KeysClaimResponse,
    KeysQueryError,
)

from bots.base.errors import HomeserverError
from bots.framework.cross_signing import unpadded_b64
from bots.framework.logging import get_logger
from bots.framework.trust.bundle import MEGOLM, SHARED_HISTORY
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import KeySharing, Recipient, SessionFlag, split_recipients
from bots.framework.trust.store import saving_in_rounds
from bots.framework.trust.unreachable import Unreachable

log = get_logger(__name__)

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


def first_hand_key(
    content: Mapping[str, Any],
    forwarder_curve25519: str,
    forwarder_ed25519: str | None,
    asked: tuple[str, str] | None,
) -> bool:
    """Whether a re-sent (forwarded) room key is one the bot asked for
    (*asked*: room and session), sent by the very device that made the
    session (its keys, as known, match the ones the key claims) and not
    passed on by anyone else: the ``m.room_key`` it missed, first-hand."""
    return (
        asked is not None
        and forwarder_ed25519 is not None
        and content.get("algorithm") == MEGOLM
        and (content.get("room_id"), content.get("session_id")) == asked
        and content.get("sender_key") == forwarder_curve25519
        and content.get("sender_claimed_ed25519_key") == forwarder_ed25519
        and not content.get("forwarding_curve25519_key_chain")
    )


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
        on_session: Callable[[SessionFlag], Awaitable[None]] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = CryptoChannel(client)
        self.now = now
        self.unreachable = Unreachable()
        self.devices_per_request = DEVICES_PER_REQUEST
        # Rooms with a device that had no one-time key, and when to try again.
        self._retry_rooms: dict[str, float] = {}
        self.no_olm_sent = 0
        self.identities = identities
        self.policy = policy
        self.shared_history = shared_history
        self.on_session = on_session
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # One claim at a time: a share waits for the sessions a claim in
        # flight (the warmer's) is making, rather than claiming a second
        # one-time key for the same device.
        self._claiming = asyncio.Lock()
        # Rooms whose members' devices changed since their key was shared.
        self._recheck: set[str] = set()
        # Each room's current session, and whether it was made shareable.
        self._made_shareable: dict[str, tuple[str, bool]] = {}
        self.withheld_sent = 0
        # Olm sessions claimed here (made ahead, most of them) and not yet
        # sent on: their peer does not know them.
        self._unsent: set[str] = set()
        if client.olm is not None:
            self._recover_lost_sessions(client.olm)

    def _recover_lost_sessions(self, olm: Any) -> None:
        """The usual recovery when the bot lost an Olm session a device still
        uses (its store restored from before it): nio makes a new session,
        sends an "unwedging" ``m.dummy`` over it and asks again for the room
        keys it missed. Two of nio's rules stop that short for a bot, and
        are relaxed here, wrapping nio 0.26.0's ``Olm`` (pinned):

        - nio does not unwedge a device whose newest session is under an
          hour old, as a fresh session the peer has received would be. One
          made ahead (:mod:`.warming`) and never sent on is no such session:
          the peer has not heard of it, so the device is marked all the same;
        - nio takes a re-sent key only from the bot's own verified devices.
          It is also taken first-hand from the device that made the session,
          over the authenticated Olm channel, for a key the bot asked for:
          that is the ``m.room_key`` the bot missed, from the same sender.
        """
        mark_original = olm._mark_device_for_unwedging
        accept_original = olm._should_accept_forward

        def mark(sender: str, sender_key: str) -> None:
            device = olm.device_store.device_from_sender_key(sender, sender_key)
            newest = olm.session_store.get(sender_key)
            if (
                device is not None
                and newest is not None
                and newest.id in self._unsent
                and device not in olm.wedged_devices
            ):
                olm.wedged_devices.append(device)
                return
            mark_original(sender, sender_key)

        def accept(sender: str, sender_key: str, event: Any) -> bool:
            if accept_original(sender, sender_key, event):
                return True
            source = event.source if isinstance(event.source, dict) else {}
            request = olm.outgoing_key_requests.get(event.session_id)
            device = olm.device_store.device_from_sender_key(sender, sender_key)
            return first_hand_key(
                source.get("content") or {},
                sender_key,
                device.ed25519 if device is not None else None,
                (request.room_id, request.session_id) if request is not None else None,
            )

        olm._mark_device_for_unwedging = mark
        olm._should_accept_forward = accept

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

    async def send_encrypted(
        self, devices: Sequence[Recipient], events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[Pair]:
        """Olm-encrypt each of *events* to each of *devices* and send them;
        the devices reached (those with an Olm session, claimed if missing)."""
        olm = self.client.olm
        assert olm is not None
        await self.claim_missing(devices)
        own = (await self.identities.get([self.client.user_id or ""])).get(
            self.client.user_id or ""
        )
        own_device = own.devices.get(self.client.device_id or "") if own else None
        reached = [d for d in devices if olm.session_store.get(d.curve25519) is not None]
        # A request's worth of devices at a time, so that the event loop (the
        # bot's replies elsewhere) waits at most one batch's encryption.
        step = self.devices_per_request
        for start in range(0, len(reached), step):
            batch = reached[start : start + step]
            requests: list[dict[str, dict[str, Any]]] = []
            # Encrypting advances each Olm session: saved in one round,
            # before anything encrypted with them is sent.
            with saving_in_rounds(olm.store):
                for event_type, content in events:
                    encrypted: dict[str, dict[str, Any]] = {}
                    for device in batch:
                        olm_session = olm.session_store.get(device.curve25519)
                        encrypted.setdefault(device.user_id, {})[device.device_id] = (
                            self._olm_encrypt(
                                olm_session,
                                device,
                                event_type,
                                content,
                                own_device.raw if own_device else None,
                            )
                        )
                    requests.append(encrypted)
            for encrypted in requests:
                await self._send_to_devices("m.room.encrypted", encrypted)
        return [(d.user_id, d.device_id) for d in reached]

    async def claim_missing(self, devices: Sequence[Recipient]) -> None:
        """One /keys/claim for every device without an Olm session; the
        sessions are made and saved in one round."""
        async with self._claiming:
            await self._claim(devices)

    async def _claim(self, devices: Sequence[Recipient]) -> None:
        olm = self.client.olm
        assert olm is not None
        now = self.now()
        missing: dict[str, dict[str, str]] = {}
        for device in devices:
            # A device that had no key a moment ago is not asked again yet.
            if olm.session_store.get(device.curve25519) is None and self.unreachable.due(
                device.curve25519, now
            ):
                missing.setdefault(device.user_id, {})[device.device_id] = "signed_curve25519"
        if not missing:
            return
        reply = await self.channel.claim(missing)
        claimed = KeysClaimResponse.from_dict(reply if isinstance(reply, dict) else {})
        if isinstance(claimed, KeysClaimError):
            raise HomeserverError("claiming one-time keys failed")
        with saving_in_rounds(olm.store):
            olm.handle_response(claimed)
        for device in devices:
            if device.device_id not in missing.get(device.user_id, {}):
                continue
            session = olm.session_store.get(device.curve25519)
            if session is None:
                self.unreachable.failed(device.curve25519, now)
            else:
                self.unreachable.reached(device.curve25519)
                self._unsent.add(session.id)

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
        self._unsent.discard(session.id)
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
        for chunk in chunks(messages, self.devices_per_request):
            # One transaction id per chunk: a retried request is not delivered twice.
            await self.channel.send_to_device(event_type, chunk)
