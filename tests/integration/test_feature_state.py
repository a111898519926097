"""What features keep and watch: records written with their decisions, and
long-running services, none of which the runtime knows about."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bots.core.feature import FEATURE as CORE
from tests.support.features import MailboxConfig, mailbox_feature, tally_feature
from tests.support.homeserver import Homeserver, cast, member, running_bot, wait_joined
from tests.support.member_client import MemberClient

pytestmark = pytest.mark.integration


async def test_a_features_records_outlive_a_restart(homeserver: Homeserver, state: Path) -> None:
    c = await cast(homeserver, state)
    features = [CORE, tally_feature()]
    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(c.config, features):
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            for expected in ("tally 1", "tally 2"):
                reply = await m.wait_for_reply(await m.send(c.room, "!tally"))
                assert reply.content["body"] == expected
        async with running_bot(c.config, features):
            reply = await m.wait_for_reply(await m.send(c.room, "!tally"), timeout=60)
    assert reply.content["body"] == "tally 3"


async def test_a_service_acts_once_on_each_thing_it_sees(
    homeserver: Homeserver, state: Path
) -> None:
    folder = state / "mailbox"
    folder.mkdir()
    c = await cast(homeserver, state)
    section = MailboxConfig(folder=str(folder), room_id=c.room)
    config = c.config.model_copy(update={"feature_sections": {"mailbox": section}})
    features = [CORE, mailbox_feature()]

    def notices(m: MemberClient, text: str) -> int:
        return sum(1 for ev in m.received if ev.content.get("body") == text)

    async with member(homeserver, c.alice, state / "alice") as m:
        async with running_bot(config, features):
            await wait_joined(homeserver, c.mod, c.room, c.bot.user_id)
            await m.join(c.room)
            (folder / "first.txt").write_text("first drop")
            await m.wait_for(lambda ev: ev.content.get("body") == "first drop")
            # The same item again (a crash before it was cleared): not twice.
            (folder / "first.txt").write_text("first drop")
            for _ in range(50):
                if not (folder / "first.txt").exists():
                    break
                await asyncio.sleep(0.1)
        async with running_bot(config, features):
            (folder / "second.txt").write_text("second drop")
            await m.wait_for(lambda ev: ev.content.get("body") == "second drop", timeout=60)
        assert notices(m, "first drop") == 1
        assert notices(m, "second drop") == 1
