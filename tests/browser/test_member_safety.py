"""What a member sees of the group's protections, in Element Web: a flood
brings a warning, then a mute. The mute's notice says why and for how long,
Element's composer is blocked while it lasts, and the member can post again
once it is lifted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.browser import element
from tests.browser.driver import Browser
from tests.support.homeserver import Homeserver, running_bot, wait_joined
from tests.support.moderation_scene import level_of, set_up

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_a_flood_mute_as_the_member_sees_it_then_posting_again(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str
) -> None:
    # More than three messages a minute is a flood; a mute lasts a minute
    # (the shortest a community file allows), so the test sees it lifted.
    scene = await set_up(
        homeserver, state, {"flood": {"messages": 3, "seconds": 60}, "mute_minutes": 1}
    )
    patient = await homeserver.user("patient")
    async with running_bot(scene.config):
        await wait_joined(homeserver, scene.admin, scene.room, scene.bot.user_id)
        await (await homeserver.api(scene.admin)).invite(scene.room, patient.user_id)
        page = await browser.session("flooder", element_url)
        await element.log_in(page, patient.localpart, patient.password)
        await element.accept_room_invite(page, "Carers")

        for n in range(1, 6):
            await element.send(page, f"Is anyone there? ({n})")
        # The mute: Element takes the composer away and says why.
        await page.wait(element.NO_PERMISSION, timeout=60_000)
        await page.screenshot("muted")
        # The bot's notice, in its DM: why, for how long, and what then.
        await element.accept_invite(page, scene.bot.localpart)
        await element.wait_message(page, "for 1 minute: you sent a lot of messages")
        notice = (await page.texts(element.BODY))[-1]
        assert notice.startswith("You've been muted in Carers")
        assert "5 messages in 60 s (limit 3)" in notice
        assert "post again" in notice
        assert "Next time, wait a little between messages" in notice

        # A minute later the mute is lifted, and the composer is back.
        async with asyncio.timeout(150):
            while await level_of(homeserver, scene, patient.user_id) is not None:  # noqa: ASYNC110
                await asyncio.sleep(1)
        await element.open_room(page, "Carers")
        await page.wait(element.COMPOSER, timeout=60_000)
        assert not await page.present(element.NO_PERMISSION)
        await element.send(page, "Sorry, I'll slow down.")
        await element.wait_message(page, "Sorry, I'll slow down.")
        await page.close()
