"""A homeserver that rate-limits the bot's to-device sends half-way through
a key-sharing round: the round waits as asked and carries on, every member
reads the answer, and the answer shows once."""

from __future__ import annotations

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
