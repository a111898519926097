"""What the bot's Olm machine knows about keys it received: which device's
keys an encrypted event proves. Reads nio's inbound session store (matrix-nio
0.26.0, pinned in constraints.txt)."""

from __future__ import annotations

from typing import Any

from nio import AsyncClient

from bots.framework.events import SenderDevice


def sender_device_of(client: AsyncClient, room_id: str, event: Any) -> SenderDevice | None:
    """The keys of the device that sent a decrypted *event*, or None.

    nio files each Megolm session under the Curve25519 key of the Olm channel
    that delivered it, with the Ed25519 key that channel claimed; a session
    that reached us forwarded by another device is marked so.
    """
    olm = client.olm
    sender_key = getattr(event, "sender_key", None)
    session_id = getattr(event, "session_id", None)
    if olm is None or not getattr(event, "decrypted", False):
        return None
    if not isinstance(sender_key, str) or not isinstance(session_id, str):
        return None
    session = olm.inbound_group_store.get(room_id, sender_key, session_id)
    if session is None or not isinstance(session.ed25519, str):
        return None
    return SenderDevice(sender_key, session.ed25519, forwarded=bool(session.forwarding_chain))
