"""A group's meeting as a patient meets it in Element Web: the bot's poll
rendered by Element, one tap on "Going", and `!meetings` counting it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import element
from tests.browser.driver import Browser
from tests.support.homeserver import Homeserver
from tests.support.meetings_scene import (
    ask,
    bot_at,
    bot_joined,
    in_group,
    know_bot,
    set_up,
    tomorrow_at,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_a_meeting_poll_answered_with_one_tap_is_counted(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str
) -> None:
    scene = await set_up(homeserver, state)
    patient = await homeserver.user("patient")
    start = tomorrow_at(48)
    device = await bot_joined(scene, homeserver)
    await (await homeserver.api(scene.community.admin)).invite(scene.room, patient.user_id)
    page = await browser.session("meeting-goer", element_url)
    await element.log_in(page, patient.localpart, patient.password)
    await element.accept_room_invite(page, "Carers")
    async with in_group(homeserver, scene, scene.mod, state / "mod") as mod:
        await know_bot(scene, device, mod)
        async with bot_at(scene, homeserver):
            said = await ask(
                mod, scene, f'!meeting add "Carers check-in" on {start:%Y-%m-%d} {start:%H:%M}'
            )
            assert said.startswith("Meeting 1 added")

            # Element draws the bot's poll with its three answers.
            await page.wait_text(element.POLL, "Carers check-in", timeout=60_000)
            answers = await page.texts(f"{element.POLL} .mx_PollOption")
            assert [a.split("\n")[0] for a in answers] == ["Going", "Maybe", "Can't make it"]
            await page.click(f"{element.POLL} .mx_PollOption ::-p-text(Going)")
            await page.screenshot("poll-answered")

            # Counted: asked again until the bot has decrypted the vote.
            for _ in range(20):
                listing = await element.ask(page, "!meetings")
                if "1 going" in listing:
                    break
            assert "1 · Carers check-in" in listing
            assert "1 going" in listing
    await page.close()
