"""Key sharing with devices that cannot take a key yet, against a real
Synapse: a device whose one-time keys are all used up is told ``m.no_olm``
once, and gets the room key with a later message once it has fresh keys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig, MegolmEvent, RoomMessage

from bots.framework.cross_signing import ensure_cross_signed
from bots.framework.trust.unreachable import Unreachable
from tests.support.homeserver import Homeserver, bot_and_member

pytestmark = pytest.mark.integration


async def exhaust_one_time_keys(hs: Homeserver, claimer: Any, user_id: str, device: str) -> int:
    """Claim the device's one-time keys until none is left; how many."""
    api = await hs.api(claimer)
    for taken in range(200):
        reply = await api.request(
            "POST",
            "/_matrix/client/v3/keys/claim",
            {"one_time_keys": {user_id: {device: "signed_curve25519"}}},
        )
        if not reply.get("one_time_keys", {}).get(user_id, {}).get(device):
            return taken
    raise AssertionError("the device's one-time keys never ran out")


async def to_device(client: AsyncClient, event_type: str) -> list[dict[str, Any]]:
    resp = await client.sync(timeout=0)
    return [
        e.source.get("content", {})
        for e in getattr(resp, "to_device_events", [])
        if e.source.get("type") == event_type
    ]


async def test_a_device_without_one_time_keys_is_told_once_then_reached(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    async with bot_and_member(hs, state) as scene:
        keys = scene.runtime.keys
        assert keys is not None
        keys.unreachable = Unreachable(first_retry_s=1.0, max_retry_s=1.0)
        alice, room, m = scene.alice, scene.room, scene.member
        # Alice's second device: cross-signed by her, every one-time key then
        # claimed by someone else, and not online to upload more.
        second = AsyncClient(
            hs.base_url,
            alice.user_id,
            store_path=str(_dir(state / "alice-2")),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        try:
            await second.login(alice.password, device_name="phone")
            await second.keys_upload()
            signing = state / "alice" / "cross_signing.json"
            await ensure_cross_signed(second, alice.password, signing)
            mod = (await hs.users("claimer"))[0]
            assert await exhaust_one_time_keys(hs, mod, alice.user_id, second.device_id) > 0
            await second.sync(timeout=0, full_state=True)

            # The bot answers; the phone is told why it cannot read the answer.
            notices: list[dict[str, Any]] = []
            for _ in range(10):
                await m.wait_for_reply(await m.send(room, "!ping"), timeout=30)
                notices += await to_device(second, "m.room_key.withheld")
                if notices:
                    break
            assert [n["code"] for n in notices] == ["m.no_olm"]
            assert "room_id" not in notices[0]
            # Told once: more answers (and retries) send it no second notice.
            for _ in range(2):
                await asyncio.sleep(1.2)
                await m.wait_for_reply(await m.send(room, "!ping"), timeout=30)
            assert await to_device(second, "m.room_key.withheld") == []
            assert keys.no_olm_sent == 1

            # Back online: it uploads fresh keys, and a later answer reaches it.
            # (nio ignores a count of zero from the server, as the bot's
            # session layer notes: told it, as Element would see it.)
            assert second.olm is not None
            second.olm.uploaded_key_count = 0
            await second.keys_upload()
            await asyncio.sleep(1.2)
            asked = await m.send(room, "!ping")
            reply = await m.wait_for_reply(asked, timeout=30)
            read = await read_on(second, room, reply.event_id)
        finally:
            await second.close()
    assert read == reply.content["body"]


async def read_on(client: AsyncClient, room_id: str, event_id: str, timeout: float = 30) -> str:
    """The body of *event_id* as *client* decrypts it (syncing until it can)."""
    async with asyncio.timeout(timeout):
        while True:
            resp = await client.sync(timeout=1000)
            room = getattr(resp, "rooms", None)
            joined = room.join.get(room_id) if room is not None else None
            for event in joined.timeline.events if joined is not None else []:
                if event.event_id != event_id:
                    continue
                # Its key comes in the same sync, before the room's events.
                assert not isinstance(event, MegolmEvent), "the phone could not decrypt it"
                assert isinstance(event, RoomMessage)
                return str(event.source["content"]["body"])


def _dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
