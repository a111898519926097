"""A member's client, modified as an attacker would: it encrypts whatever
plaintext it likes, including what no honest client sends (a room's state
inside an encrypted message). It is otherwise an ordinary member: its own
device, cross-signed by its own identity like a person who set up Element,
so the bot shares keys with it and accepts its commands' device. Start one
with ``member(hs, user, store, kind=AttackerClient)``.
"""

from __future__ import annotations

from typing import Any

from nio import RoomSendError

from bots.base.errors import HomeserverError
from tests.support.member_client import MemberClient


class AttackerClient(MemberClient):
    async def send_forged_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> str:
        """An encrypted event whose Megolm plaintext claims to be state:
        ``{"type": event_type, "state_key": state_key, "content": content}``."""
        client = self.client
        honest = client.encrypt

        def encrypt(room: str, message_type: str, body: dict[Any, Any]) -> tuple[str, Any]:
            assert client.olm is not None
            plaintext = {"type": message_type, "state_key": state_key, "content": body}
            return "m.room.encrypted", client.olm.group_encrypt(room, plaintext)

        client.encrypt = encrypt  # type: ignore[method-assign]
        try:
            resp = await client.room_send(
                room_id, event_type, content, ignore_unverified_devices=True
            )
        finally:
            client.encrypt = honest  # type: ignore[method-assign]
        if isinstance(resp, RoomSendError):
            raise HomeserverError(f"send failed: {resp.status_code}")
        return str(resp.event_id)
