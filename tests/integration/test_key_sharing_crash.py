"""The bot killed part-way through a key-sharing round: the homeserver has
delivered the room keys (and with them new Olm sessions) to the members'
devices, but the bot never heard back. Restarted on the same state, it
still holds every session a member received (they were saved before the
send), and every member decrypts its next message."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.support.bot_process import bot_process
from tests.support.flaky_proxy import flaky_proxy
from tests.support.homeserver import Homeserver, member, wait_joined, write_bot_yaml
from tests.support.js_client import JsMember

pytestmark = [pytest.mark.integration, pytest.mark.interop]


async def test_killed_mid_round_every_member_reads_the_next_message(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    bot, mod, alice, bob, erin = await hs.users("bot", "mod", "alice", "bob", "erin")
    room = await hs.encrypted_room(mod, [bot, alice, bob, erin], power={bot.user_id: 100})

    def first_key_send(method: str, path: str, before: int) -> bool:
        return method == "PUT" and "/sendToDevice/m.room.encrypted/" in path and before == 0

    async with (
        flaky_proxy(hs.base_url, hold=first_key_send) as proxy,
        member(hs, alice, state / "alice") as a,
        member(hs, bob, state / "bob") as b,
    ):
        config = hs.bot_config(bot, state / "bot", homeserver=proxy.url)
        config_path = write_bot_yaml(config, state / "bot.yaml", sync_timeout_ms=5000)
        # Erin reads with Element's crypto (matrix-js-sdk, Rust); her first
        # ping starts the round that the kill cuts short.
        go = state / "go"
        js = JsMember(
            hs, erin, room, bot.user_id, sends=("!ping", "!ping"), go_file=go, timeout=120
        )
        async with bot_process(config_path, state / "bot.log") as proc:
            await wait_joined(hs, mod, room, bot.user_id)
            await a.join(room)
            await b.join(room)
            await js.start()
            # The keys are delivered; the bot waits for an answer that never comes.
            await asyncio.wait_for(proxy.holding.wait(), 90)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
        async with bot_process(config_path, state / "bot.log"):
            # Erin's ping from before the kill is answered, and her next one.
            first = await js.step()
            js.go(1)
            again = await js.step()
            asked = await a.send(room, "!ping")
            replies = [await m.wait_for_reply(asked, timeout=60) for m in (a, b)]
            result = await js.result()
    assert proxy.held, "the round was not cut short"
    assert first["ok"], first
    assert again["ok"], again
    assert again["reply_encrypted"]
    for reply in replies:
        assert reply.decrypted
        assert reply.content["body"] == "pong"
    assert result["ok"], result
