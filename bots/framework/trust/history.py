"""History for newcomers (MSC4268): before the bot invites someone into a
room whose history is shared, it hands their verified devices the room's
keys in an encrypted bundle, so Element shows them what was said before.

In order, for one invite:

1. the room's Megolm sessions that their senders marked shareable (recorded
   on arrival, :meth:`HistorySharer.record_received`; nio keeps no such
   flag) are exported at their first known index, and the rest listed as
   withheld (``m.history_not_shared``);
2. the bundle is encrypted as an attachment and uploaded;
3. ``m.room_key_bundle`` (and its unstable name) goes, Olm-encrypted with the
   bot's signed device keys, to each device the invitee has cross-signed;
4. then the invite.

A failure anywhere raises before the invite, so the effector retries the
whole invite: a retried bundle is a new upload and a new to-device message,
which a receiving client imports idempotently; nothing is half-sent.
Reads nio's inbound session store (matrix-nio 0.26.0, constraints.txt).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from nio import AsyncClient, RoomKeyEvent

from bots.base.errors import HomeserverError
from bots.framework.logging import get_logger
from bots.framework.trust.bundle import (
    BUNDLE_EVENT_TYPES,
    ExportedSession,
    build_bundle,
    bundle_event_content,
    marked_shareable,
)
from bots.framework.trust.channel import CryptoChannel
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import Recipient, SessionFlag, history_is_shared
from bots.framework.trust.sharing import KeySharer

log = get_logger(__name__)


class HistoryOutcome(Enum):
    SENT = "sent"
    NOT_SHARED_HERE = "the room's history is not shared"
    NO_SIGNED_DEVICE = "the invitee has no verified device"
    ALREADY_JOINED = "the invitee is already in the room"


@dataclass(frozen=True)
class BundleStats:
    sessions: int
    withheld: int
    devices: int
    size: int


class SessionFlags:
    """Where the shareable flags are kept (the bot's database)."""

    def __init__(
        self,
        record: Callable[[Sequence[SessionFlag]], Awaitable[None]],
        shareable: Callable[[str], Awaitable[set[tuple[str, str]]]],
    ) -> None:
        self.record = record
        self.shareable = shareable


class HistorySharer:
    def __init__(
        self,
        client: AsyncClient,
        identities: Identities,
        keys: KeySharer,
        flags: SessionFlags,
    ) -> None:
        self.client = client
        self.identities = identities
        self.keys = keys
        self.flags = flags
        self.bundles_sent = 0
        self.last: BundleStats | None = None

    async def record_received(self, events: Iterable[Any]) -> None:
        """Note which room keys in a sync's to-device events their senders
        marked shareable (nio decrypts them and drops the flag)."""
        flags = [
            SessionFlag(e.room_id, e.sender_key, e.session_id, marked_shareable(e.source))
            for e in events
            # A forwarded key is not the sender's word on sharing.
            if isinstance(e, RoomKeyEvent) and type(e) is RoomKeyEvent
        ]
        await self.flags.record(flags)

    def shared_here(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return room is not None and room.encrypted and history_is_shared(room.history_visibility)

    async def before_invite(self, room_id: str, invitee: str) -> HistoryOutcome:
        """Send *invitee* the room's history bundle, if the room shares history."""
        room = self.client.rooms.get(room_id)
        if room is not None and invitee in room.users and invitee not in room.invited_users:
            return HistoryOutcome.ALREADY_JOINED
        if not self.shared_here(room_id):
            return HistoryOutcome.NOT_SHARED_HERE
        self.identities.forget([invitee])  # their devices as they are now
        identity = (await self.identities.get([invitee]))[invitee]
        signed = [d for d in identity.devices.values() if d.signed_by_owner]
        if not signed:
            log.info("history not shared: the invitee has no verified device")
            return HistoryOutcome.NO_SIGNED_DEVICE
        sessions = await self._sessions(room_id)
        plaintext = json.dumps(build_bundle(room_id, sessions), separators=(",", ":")).encode()
        file = await self.upload(plaintext)
        recipients = [Recipient(invitee, d.device_id, d.curve25519, d.ed25519) for d in signed]
        await self.keys.ensure_device_keys([invitee])
        sent = await self.keys.send_encrypted(
            recipients, [(t, bundle_event_content(room_id, file)) for t in BUNDLE_EVENT_TYPES]
        )
        if not sent:
            raise HomeserverError("no Olm session with any of the invitee's devices")
        self.bundles_sent += 1
        self.last = BundleStats(
            sessions=sum(1 for s in sessions if s.shareable),
            withheld=sum(1 for s in sessions if not s.shareable),
            devices=len(sent),
            size=len(plaintext),
        )
        log.info(
            "history bundle sent",
            sessions=self.last.sessions,
            withheld=self.last.withheld,
            devices=self.last.devices,
            bytes=self.last.size,
        )
        return HistoryOutcome.SENT

    async def _sessions(self, room_id: str) -> list[ExportedSession]:
        olm = self.client.olm
        assert olm is not None
        shareable = await self.flags.shareable(room_id)
        out: list[ExportedSession] = []
        for sender_key, by_id in olm.inbound_group_store[room_id].items():
            for session_id, session in by_id.items():
                ok = (sender_key, session_id) in shareable and not session.forwarding_chain
                out.append(
                    ExportedSession(
                        room_id=room_id,
                        sender_key=sender_key,
                        session_id=session_id,
                        signing_key=session.ed25519,
                        session_key=session.export_session(session.first_known_index)
                        if ok
                        else None,
                    )
                )
        return out

    async def upload(self, plaintext: bytes) -> dict[str, Any]:
        return await CryptoChannel(self.client).upload_encrypted(plaintext, "room-key-bundle")
