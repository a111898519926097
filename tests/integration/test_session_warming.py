"""Olm sessions made ahead, against a real Synapse: members who join an
encrypted room get a session with the bot before it has anything to say,
so its first message there claims no one-time key. Stopped part-way
through warming, the bot stops promptly and, restarted, warms the rest."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.support.bot_process import bot_process
from tests.support.flaky_proxy import flaky_proxy
from tests.support.homeserver import Homeserver, member, wait_joined, write_bot_yaml

pytestmark = pytest.mark.integration

CLAIM = ("POST", "/_matrix/client/v3/keys/claim")


async def warmed(log: Path, devices: int, timeout: float = 60) -> None:
    """Until the bot's log says it has made sessions with *devices*."""
    async with asyncio.timeout(timeout):
        while True:
            for line in log.read_text().splitlines():
                if '"olm sessions made ahead"' in line and f'"devices": {devices}' in line:
                    return
            await asyncio.sleep(0.2)


async def test_sessions_are_made_ahead_and_survive_a_stop_part_way(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    bot, mod, alice, bob = await hs.users("bot", "mod", "alice", "bob")
    room = await hs.encrypted_room(mod, [bot, alice, bob], power={bot.user_id: 100})

    def first_claim(method: str, path: str, before: int) -> bool:
        # The warmer's first claim reaches Synapse (the keys are taken) and
        # its answer never comes back: the bot is stopped while it waits.
        return (method, path) == CLAIM and before == 0

    async with (
        flaky_proxy(hs.base_url, hold=first_claim) as proxy,
        member(hs, alice, state / "alice") as a,
        member(hs, bob, state / "bob") as b,
    ):
        config = hs.bot_config(bot, state / "bot", homeserver=proxy.url)
        config_path = write_bot_yaml(config, state / "bot.yaml", sync_timeout_ms=5000)
        async with bot_process(config_path, state / "bot-1.log") as proc:
            await wait_joined(hs, mod, room, bot.user_id)
            await a.join(room)
            await b.join(room)
            await asyncio.wait_for(proxy.holding.wait(), 60)
            stopped_at = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
            stop_s = time.monotonic() - stopped_at
        async with bot_process(config_path, state / "bot-2.log"):
            # Restarted, the first sync shows both members: their sessions
            # are made now, before anyone asks the bot anything.
            await warmed(state / "bot-2.log", 2)
            claims_before = proxy.seen.get(CLAIM, 0)
            asked = await a.send(room, "!ping")
            replies = [await m.wait_for_reply(asked, timeout=60) for m in (a, b)]
            claims_after = proxy.seen.get(CLAIM, 0)
    assert proxy.held == [" ".join(CLAIM)], "warming was not cut short"
    assert code == 0, "the bot did not stop cleanly while warming"
    assert stop_s < 20, f"the stop waited on warming for {stop_s:.0f} s"
    assert claims_before == 2, "the restarted bot did not claim keys ahead"
    for reply in replies:
        assert reply.decrypted
        assert reply.content["body"] == "pong"
    assert claims_after == claims_before, "the first message still had to claim keys"
    for log in ("bot-1.log", "bot-2.log"):
        text = (state / log).read_text()
        assert alice.user_id not in text, "a member reached the log"
        assert bob.user_id not in text, "a member reached the log"
