"""The bot's Olm channel to each device: what the key sharing
(:mod:`.sharing`), the history bundle (:mod:`.history`) and the session
warmer (:mod:`.warming`) send to devices, encrypted one device at a time.

- Olm sessions are claimed (one ``/keys/claim`` for every device without
  one) and made and saved in one round, before anything is sent with them;
- each event is Olm-encrypted with the bot's own signed device keys in the
  plaintext (``sender_device_keys``, MSC4147, which Element's Rust crypto
  requires before it trusts what a bot sends);
- to-device messages go out up to 250 devices per request, through the
  crypto channel (:mod:`.channel`);
- a device whose Olm session the bot lost is recovered from (see
  :meth:`OlmSender._recover_lost_sessions`).

It reads nio internals (``olm``'s stores and sessions), written for
matrix-nio 0.26.0 as pinned in constraints.txt.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nio import AsyncClient, KeysClaimError, KeysClaimResponse

from bots.base.errors import HomeserverError
from bots.framework.cross_signing import unpadded_b64
from bots.framework.trust.bundle import MEGOLM
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import Recipient
from bots.framework.trust.store import saving_in_rounds
from bots.framework.trust.unreachable import Unreachable

OLM = "m.olm.v1.curve25519-aes-sha2"
# Rust crypto sends room keys to 250 devices per request; nio to 20.
DEVICES_PER_REQUEST = 250

Pair = tuple[str, str]


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


class OlmSender:
    """Olm-encrypted to-device messages, from the bot's device."""

    def __init__(
        self,
        client: AsyncClient,
        identities: Identities,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.channel = CryptoChannel(client)
        self.identities = identities
        self.now = now
        self.unreachable = Unreachable()
        self.devices_per_request = DEVICES_PER_REQUEST
        # One claim at a time: a share waits for the sessions a claim in
        # flight (the warmer's) is making, rather than claiming a second
        # one-time key for the same device.
        self._claiming = asyncio.Lock()
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
