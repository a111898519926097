"""A message the bot cannot decrypt: it asks for the key, waits, then tells the sender once."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from urllib.parse import quote

import pytest
import vodozemac

from bots.framework.undecryptable import undecryptable_reply
from bots.matrix.client_api import ClientAPI
from tests.support.homeserver import (
    Homeserver,
    bot_and_member,
    cast,
    member,
    running_bot,
    wait_joined,
)
from tests.support.member_client import reply_target

pytestmark = pytest.mark.integration


async def send_undecryptable(api: ClientAPI, room_id: str, session: vodozemac.GroupSession) -> str:
    """Send a Megolm message whose room key was never shared with anyone."""
    payload = {
        "type": "m.room.message",
        "room_id": room_id,
        "content": {"msgtype": "m.text", "body": "!ping"},
    }
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "sender_key": vodozemac.Curve25519SecretKey().public_key().to_base64(),
        "ciphertext": session.encrypt(json.dumps(payload).encode()).to_base64(),
        "session_id": session.session_id,
        "device_id": "NOKEYSHARED",
    }
    txn = secrets.token_hex(8)
    resp = await api.request(
        "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.encrypted/{txn}", content
    )
    return str(resp["event_id"])


async def test_sender_is_told_once_per_session(homeserver: Homeserver, state: Path) -> None:
    async with bot_and_member(homeserver, state, undecryptable_wait_s=2) as scene:
        m, room, bot = scene.member, scene.room, scene.bot
        api = await homeserver.api(scene.alice)
        session = vodozemac.GroupSession()
        first = await send_undecryptable(api, room, session)
        notice = await m.wait_for_reply(first, timeout=30)
        expected = undecryptable_reply(room, first).body
        assert notice.content["body"] == expected
        assert notice.decrypted
        assert notice.sender == bot.user_id

        # Same broken session again: no second notice.
        second = await send_undecryptable(api, room, session)
        await asyncio.sleep(5)
        assert not [ev for ev in m.received if reply_target(ev.content) == second]

        # A normal message still works afterwards.
        pong = await m.wait_for_reply(await m.send(room, "!ping"))
        assert pong.content["body"] == "pong"


async def test_a_wait_cut_short_by_a_restart_resumes(homeserver: Homeserver, state: Path) -> None:
    c = await cast(homeserver, state, undecryptable_wait_s=600)
    api = await homeserver.api(c.alice)
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(c.config) as runtime:
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            sent = await send_undecryptable(api, c.room, vodozemac.GroupSession())
            assert runtime.storage is not None
            for _ in range(100):
                if [e for e, _, _ in await runtime.storage.awaiting_keys() if e == sent]:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the bot did not record the message it is waiting for")
        # Stopped mid-wait; the next run waits again (briefly, this time).
        assert not [ev for ev in m.received if reply_target(ev.content) == sent]
        restarted = c.config.model_copy(update={"undecryptable_wait_s": 2})
        async with running_bot(restarted) as runtime:
            notice = await m.wait_for_reply(sent, timeout=30)
            assert runtime.storage is not None
            assert await runtime.storage.awaiting_keys() == []
    assert notice.content["body"] == undecryptable_reply(c.room, sent).body
