"""The bot's first message into a room of fifty members, each reading with
Element's crypto (matrix-js-sdk, Rust): every one of them decrypts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.homeserver import Homeserver, member, running_bot, wait_joined
from tests.support.js_client import JsReaders

pytestmark = [pytest.mark.integration, pytest.mark.interop]

MEMBERS = 50


async def test_fifty_members_decrypt_the_bot_s_first_message(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    bot, mod, alice = await hs.users("bot", "mod", "alice")
    readers = await hs.users(*["reader"] * MEMBERS)
    room = await hs.encrypted_room(mod, [bot, alice, *readers], power={bot.user_id: 100})
    async with (
        running_bot(hs.bot_config(bot, state / "bot")) as runtime,
        member(hs, alice, state / "alice") as a,
    ):
        await wait_joined(hs, mod, room, bot.user_id)
        await a.join(room)
        js = JsReaders(hs, readers, room, bot.user_id, body="pong")
        ready = await js.start()
        assert ready == {"ready": True, "members": MEMBERS}
        # The bot has said nothing in the room yet: its answer is its first
        # message there, and the first key-sharing round for every device.
        reply = await a.wait_for_reply(await a.send(room, "!ping"), timeout=120)
        assert reply.decrypted
        result = await js.result()
        assert runtime.keys is not None
        withheld = runtime.keys.withheld_sent
    assert result["ok"], result
    assert result["decrypted"] == MEMBERS
    assert withheld == 0, "every reader's device is cross-signed: none is left out"
