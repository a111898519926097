"""A homeserver that rate-limits the bot's to-device sends half-way through
a key-sharing round: the round waits as asked and carries on, every member
reads the answer, and the answer shows once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.flaky_proxy import flaky_proxy
from tests.support.homeserver import Homeserver, member, running_bot, wait_joined

pytestmark = pytest.mark.integration


async def test_a_429_half_way_through_sending_room_keys(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    bot, mod, alice, bob, carol = await hs.users("bot", "mod", "alice", "bob", "carol")
    room = await hs.encrypted_room(mod, [bot, alice, bob, carol], power={bot.user_id: 100})

    def second_key_send(method: str, path: str, before: int) -> bool:
        # The second request carrying room keys, once.
        return method == "PUT" and "/sendToDevice/m.room.encrypted/" in path and before == 1

    async with (
        flaky_proxy(hs.base_url, second_key_send) as proxy,
        running_bot(hs.bot_config(bot, state / "bot", homeserver=proxy.url)) as runtime,
        member(hs, alice, state / "alice") as a,
        member(hs, bob, state / "bob") as b,
        member(hs, carol, state / "carol") as c,
    ):
        assert runtime.keys is not None
        # One device a request, so that the round spans several requests.
        runtime.keys.devices_per_request = 1
        await wait_joined(hs, mod, room, bot.user_id)
        for m in (a, b, c):
            await m.join(room)
        asked = await a.send(room, "!ping")
        replies = [await m.wait_for_reply(asked, timeout=60) for m in (a, b, c)]
        assert proxy.refused == [proxy.refused[0]]  # one 429, and it was a key send
        assert "/sendToDevice/m.room.encrypted/" in proxy.refused[0]
        # The round went on after the pause: a request for each device, and
        # the refused one again.
        sent = proxy.seen[("PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted")]
        assert sent >= 4
        api = await hs.api(mod)
        messages = await api.request(
            "GET", f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b", "limit": 50}
        )
    for reply in replies:
        assert reply.decrypted
        assert reply.content["body"] == "pong"
    answers = [e for e in messages["chunk"] if e["sender"] == bot.user_id]
    answers = [e for e in answers if e["type"] == "m.room.encrypted"]
    assert len(answers) == 1, "the answer shows once"


async def test_a_device_added_during_a_round_reads_the_next_message(
    homeserver: Homeserver, state: Path
) -> None:
    """Alice signs in on a new device while the bot's round is held up by a
    429: the message in flight was encrypted before the device existed, and
    the next one reaches it."""
    hs = homeserver
    bot, mod, alice, bob = await hs.users("bot", "mod", "alice", "bob")
    room = await hs.encrypted_room(mod, [bot, alice, bob], power={bot.user_id: 100})
    paused = asyncio.Event()

    def first_key_send(method: str, path: str, before: int) -> bool:
        if method == "PUT" and "/sendToDevice/m.room.encrypted/" in path and before == 0:
            paused.set()
            return True
        return False

    async with (
        flaky_proxy(hs.base_url, first_key_send) as proxy,
        running_bot(hs.bot_config(bot, state / "bot", homeserver=proxy.url)) as runtime,
        member(hs, alice, state / "alice") as a,
        member(hs, bob, state / "bob") as b,
    ):
        proxy.retry_after_ms = 3000
        assert runtime.keys is not None
        await wait_joined(hs, mod, room, bot.user_id)
        await a.join(room)
        await b.join(room)
        first = await b.send(room, "!ping")
        await asyncio.wait_for(paused.wait(), 30)
        # The round is waiting out its 429: Alice's new, cross-signed device.
        async with member(hs, alice, state / "alice") as phone:
            assert (await b.wait_for_reply(first, timeout=60)).decrypted
            second = await b.send(room, "!ping")
            reply = await phone.wait_for_reply(second, timeout=60)
    assert reply.decrypted
    assert reply.content["body"] == "pong"
