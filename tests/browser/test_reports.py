"""Element's own "Report" on a message: a member reports it from the
message's menu, and the moderators read the report in their room, in a
moderator's Element, without the reporter's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import element
from tests.browser.driver import Browser
from tests.support.community import running_agent
from tests.support.homeserver import Homeserver, member, running_bot, wait_joined
from tests.support.moderation_scene import set_up, with_reports

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_a_report_from_elements_menu_reaches_the_moderators_element(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str
) -> None:
    scene = with_reports(await set_up(homeserver, state, {}), state)
    patient, rude = await homeserver.users("patient", "rude")
    api = await homeserver.api(scene.admin)
    async with (
        running_agent(scene.community, state / "agent-home"),
        running_bot(scene.config),
    ):
        await wait_joined(homeserver, scene.admin, scene.room, scene.bot.user_id)
        await wait_joined(homeserver, scene.admin, scene.ids["moderators"], scene.bot.user_id)
        # The moderator, in Element, in the moderators' room.
        mod_page = await browser.session("moderator", element_url)
        await element.log_in(mod_page, scene.mod.localpart, scene.mod.password)
        await element.accept_room_invite(mod_page, "moderators")

        await api.invite(scene.room, patient.user_id)
        page = await browser.session("reporter", element_url)
        await element.log_in(page, patient.localpart, patient.password)
        await element.accept_room_invite(page, "Carers")
        await api.invite(scene.room, rude.user_id)
        async with member(homeserver, rude, state / "rude") as r:
            await r.join(scene.room)
            await r.send(scene.room, "nobody wants to hear about your diagnosis")

        # The member reports it from the message's own menu.
        await element.wait_message(page, "nobody wants to hear")
        await element.report(page, "nobody wants to hear", "mocking a newcomer's illness")
        await page.screenshot("reported")

        # The moderators read it in their Element: the reason and a link to
        # the message, never who reported it.
        await element.wait_message(mod_page, "mocking a newcomer's illness", timeout=90_000)
        await mod_page.screenshot("report-received")
        forwarded = [t for t in await mod_page.texts(element.BODY) if "mocking" in t][-1]
        assert patient.user_id not in forwarded
        assert patient.localpart not in forwarded
        await page.close()
        await mod_page.close()
