"""The bot lost an Olm session a member's device still has (its crypto
store restored from before it, say), against a real Synapse and Element's
crypto (matrix-js-sdk with Rust crypto). The member's next room key
travels in that session and cannot be read. The usual recovery follows:
the bot makes a new session with the device and sends an "unwedging"
``m.dummy`` over it, asks again for the key, and the member's client,
which had shared that key with the bot's device, sends it. The message is
read and answered; nothing is lost. The bot makes a session with the
device ahead, as it starts, before the lost one is used: nio would not
unwedge a device whose newest session is under an hour old, and the bot
does it all the same for one the device has never heard of."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.homeserver import Homeserver, member, running_bot, wait_joined
from tests.support.js_client import JsMember

pytestmark = [pytest.mark.integration, pytest.mark.interop]


def forget_olm_sessions(state_dir: Path) -> int:
    """Delete every Olm session in the bot's crypto store; how many."""
    lost = 0
    for db in state_dir.rglob("*.db"):
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "olmsessions" in tables:
                lost += conn.execute("DELETE FROM olmsessions").rowcount
    return lost


async def test_a_session_the_bot_lost_is_replaced_and_the_message_is_read(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    bot, mod, erin, dan = await hs.users("bot", "mod", "erin", "dan")
    room = await hs.encrypted_room(mod, [bot, erin, dan], power={bot.user_id: 100})
    config = hs.bot_config(bot, state / "bot")
    go = state / "go"
    js = JsMember(hs, erin, room, bot.user_id, sends=("!ping", "!ping"), go_file=go, timeout=120)
    async with member(hs, dan, state / "dan") as d:
        async with running_bot(config):
            await wait_joined(hs, mod, room, bot.user_id)
            await d.join(room)
            await js.start()
            first = await js.step()
        lost = forget_olm_sessions(state / "bot")
        # Dan leaves: Erin's client makes a new room key for her next
        # message, and sends it to the bot in the session the bot lost.
        await d.client.room_leave(room)
    async with running_bot(config):
        js.go(1)
        again = await js.step()
        result = await js.result()
    assert first["ok"], first
    assert lost >= 1, "the bot had no Olm session to lose"
    assert again["ok"], again
    # The bot read the message itself: not its "could not read" notice.
    assert again["reply_body"] == "pong", again
    assert again["reply_encrypted"]
    assert result["ok"], result
