"""Restarts, outages and refused logins: the bot recovers without replaying."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from bots.core.commands import core_commands
from bots.errors import LoginError
from bots.framework.runtime import BotRuntime
from bots.framework.secrets import write_secret
from tests.support.homeserver import Homeserver, member, running_bot, wait_joined

pytestmark = pytest.mark.integration


async def replies_to(m: object, event_id: str, wait: float) -> int:
    """How many replies to *event_id* arrived within *wait* seconds."""
    await asyncio.sleep(wait)
    from bots.homeserver.member_client import MemberClient, reply_target

    assert isinstance(m, MemberClient)
    return sum(1 for ev in m.received if reply_target(ev.content) == event_id)


async def test_restart_ignores_commands_sent_while_down_and_never_replays(
    homeserver: Homeserver, state: Path
) -> None:
    bot, mod, alice = await homeserver.users("bot", "mod", "alice")
    room = await homeserver.encrypted_room(mod, [bot, alice], power={bot.user_id: 100})
    config = homeserver.bot_config(bot, state / "bot")
    async with member(homeserver, alice, state / "alice") as m:
        async with running_bot(config):
            await wait_joined(homeserver, mod, room, bot.user_id)
            await m.join(room)
            first = await m.send(room, "!ping")
            await m.wait_for_reply(first)
        device_before = (state / "bot" / "credentials.json").read_text()

        while_down = await m.send(room, "!ping")
        async with running_bot(config):
            after = await m.send(room, "!ping")
            await m.wait_for_reply(after)
            assert await replies_to(m, first, 2.0) == 1, "an old command was replayed"
            assert await replies_to(m, while_down, 0) == 0, "a command from before start ran"
        # The saved login and device were reused, not replaced.
        assert (state / "bot" / "credentials.json").read_text() == device_before


async def test_homeserver_down_at_start_and_mid_run(tmp_path: Path) -> None:
    """A private Synapse for this test, so stopping it disturbs no one else."""
    hs = await Homeserver.start(tmp_path / "hs")
    try:
        bot, mod, alice = await hs.users("bot", "mod", "alice")
        room = await hs.encrypted_room(mod, [bot, alice], power={bot.user_id: 100})
        async with member(hs, alice, tmp_path / "alice") as m:
            await m.join(room)
            # Down at start: the bot waits it out and logs in once it is back.
            await hs.process.stop()
            runtime = BotRuntime(hs.bot_config(bot, tmp_path / "bot"), core_commands())
            task = asyncio.create_task(runtime.run())
            await asyncio.sleep(3)
            assert not task.done(), "the bot gave up while the homeserver was down"
            await hs.process.start()
            await asyncio.wait_for(runtime.ready.wait(), 60)
            await wait_joined(hs, mod, room, bot.user_id)
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
