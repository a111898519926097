"""Restarts, outages and refused logins: the bot recovers without replaying."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest

from bots.base.errors import LoginError
from bots.core.feature import FEATURE as CORE
from bots.framework.runtime import BotRuntime
from bots.framework.secrets import write_secret
from bots.matrix.client_api import ClientAPI
from tests.support.homeserver import Homeserver, cast, member, running_bot, wait_joined

pytestmark = pytest.mark.integration


async def replies_to(m: object, event_id: str, wait: float) -> int:
    """How many replies to *event_id* arrived within *wait* seconds."""
    await asyncio.sleep(wait)
    from tests.support.member_client import MemberClient, reply_target

    assert isinstance(m, MemberClient)
    return sum(1 for ev in m.received if reply_target(ev.content) == event_id)


async def test_a_command_sent_while_the_bot_is_down_is_answered_once_after_restart(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    room, config = c.room, c.config
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(config):
            await wait_joined(homeserver, c.mod, room, c.bot.user_id)
            await m.join(room)
            first = await m.send(room, "!ping")
            await m.wait_for_reply(first)
        device_before = (state / "bot" / "credentials.json").read_text()

        while_down = await m.send(room, "!ping")
        async with running_bot(config):
            reply = await m.wait_for_reply(while_down)
            assert reply.content["body"] == "pong"
            after = await m.send(room, "!ping")
            await m.wait_for_reply(after)
        # A third start has nothing left to do: nothing is answered twice.
        async with running_bot(config):
            last = await m.send(room, "!ping")
            await m.wait_for_reply(last)
            assert await replies_to(m, first, 1.0) == 1, "an old command was replayed"
            assert await replies_to(m, while_down, 0) == 1
            assert await replies_to(m, after, 0) == 1
        # The saved login and device were reused, not replaced.
        assert (state / "bot" / "credentials.json").read_text() == device_before


async def test_a_command_older_than_the_maximum_age_is_not_acted_on(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state, max_event_age_s=60)
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(c.config):
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        stale = await m.send(c.room, "!ping")
        # The bot comes back with its clock 61 s ahead: to it the command
        # is as old as one sent a minute before it returned.
        async with running_bot(c.config, clock=lambda: time.time() + 61) as runtime:
            for _ in range(100):
                if await runtime.inbox_empty():
                    break
                await asyncio.sleep(0.1)
        async with running_bot(c.config):
            await m.wait_for_reply(await m.send(c.room, "!ping"))
        assert await replies_to(m, stale, 0) == 0, "a stale command was acted on"


async def test_homeserver_down_at_start_and_mid_run(tmp_path: Path) -> None:
    """A private Synapse for this test, so stopping it disturbs no one else."""
    hs = await Homeserver.start(tmp_path / "hs")
    try:
        c = await cast(hs, tmp_path)
        room = c.room
        async with member(hs, c.alice, tmp_path / "alice") as m:
            await m.join(room)
            # Down at start: the bot waits it out and logs in once it is back.
            await hs.process.stop()
            runtime = BotRuntime(c.config, [CORE])
            task = asyncio.create_task(runtime.run())
            await asyncio.sleep(3)
            assert not task.done(), "the bot gave up while the homeserver was down"
            await hs.process.start()
            await asyncio.wait_for(runtime.ready.wait(), 60)
            await wait_joined(hs, c.mod, room, c.bot.user_id)
            # The bot's device was made while Alice was already online.
            assert runtime.session.client is not None
            await m.knows_device(c.bot.user_id, str(runtime.session.client.device_id))
            before = await m.send(room, "!ping")
            await m.wait_for_reply(before)

            # Down mid-run: the sync loop retries; afterwards commands work
            # again and the earlier one is not answered twice.
            await hs.process.stop()
            await asyncio.sleep(3)
            assert not task.done()
            await hs.process.start()
            after = await m.send(room, "!ping")
            reply = await m.wait_for_reply(after, timeout=60)
            assert reply.content["body"] == "pong"
            assert await replies_to(m, before, 1.0) == 1
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await hs.stop()


async def test_wrong_password_is_a_clear_error(homeserver: Homeserver, state: Path) -> None:
    bot = await homeserver.user("bot")
    config = homeserver.bot_config(bot, state / "bot")
    write_secret(config.password_file, "not-the-password")
    with pytest.raises(LoginError, match="refused the bot's login") as err:
        async with running_bot(config):
            pass
    assert "not-the-password" not in str(err.value)


async def claim_all_one_time_keys(api: ClientAPI, user_id: str, device_id: str) -> int:
    """Take every one-time key the server holds for a device, as a crowd of
    new devices would (or as a restore from a dump without them leaves it)."""
    claimed = 0
    while True:
        body = {"one_time_keys": {user_id: {device_id: "signed_curve25519"}}}
        resp = await api.request("POST", "/_matrix/client/v3/keys/claim", body)
        if not resp.get("one_time_keys", {}).get(user_id, {}).get(device_id):
            return claimed
        claimed += 1


async def test_bot_restocks_one_time_keys_the_server_no_longer_holds(
    homeserver: Homeserver, state: Path
) -> None:
    c = await cast(homeserver, state)
    async with running_bot(c.config):
        await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
    device_id = json.loads((state / "bot" / "credentials.json").read_text())["device_id"]
    mod_api = await homeserver.api(c.mod)
    assert await claim_all_one_time_keys(mod_api, c.bot.user_id, device_id) > 0

    async with running_bot(c.config), member(homeserver, c.alice, state / "alice") as m:
        # A device the bot has never met needs one of those keys to share
        # the room key with it; without them the bot could not read it.
        await m.join(c.room)
        ping = await m.send(c.room, "!ping")
        reply = await m.wait_for_reply(ping)
        assert reply.content["body"].startswith("pong")
