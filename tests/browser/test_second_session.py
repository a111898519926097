"""A patient's second Element session, before and after they verify it:
Element's own explanation on the bot's messages it may not read (the bot
withholds room keys from devices their owner has not cross-signed), and,
once the first session has verified it, the bot's new messages readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import element
from tests.browser.driver import Browser
from tests.browser.people import in_the_group
from tests.support.homeserver import Homeserver, running_bot, wait_joined
from tests.support.moderation_scene import set_up

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_a_second_session_reads_the_bot_once_verified_from_the_first(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str
) -> None:
    scene = await set_up(homeserver, state, {})
    (patient,) = await homeserver.users("patient")
    async with running_bot(scene.config):
        await wait_joined(homeserver, scene.admin, scene.room, scene.bot.user_id)
        first = await in_the_group(homeserver, scene, patient, browser, element_url, "first")
        assert await element.ask(first, "!ping") == "pong"

        # The same patient signs in on a second device and does not verify it.
        second = await browser.session("second", element_url)
        await element.log_in_unverified(second, patient.localpart, patient.password)
        await element.open_room(second, "Carers")
        await element.send(second, "!ping")
        # The bot answers; the first session reads it, the second is told why not.
        await element.wait_count_of(first, "pong", 2)
        await second.wait_text(element.UNDECRYPTABLE, element.WITHHELD_UNVERIFIED, 60_000)
        await second.screenshot("withheld")

        # Verified from the first session, by comparing emoji.
        await element.verify_from_other_session(second, first)
        await second.screenshot("verified")
        await element.send(second, "!help")
        await element.wait_message(second, "Commands you can use here", timeout=90_000)
        await second.screenshot("readable")
        await first.close()
        await second.close()
