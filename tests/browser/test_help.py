"""`!help` as Element shows it: a member's and a moderator's, formatted,
each with the commands that person may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import element
from tests.browser.driver import Browser
from tests.browser.people import in_the_group
from tests.support.homeserver import Homeserver, running_bot, wait_joined
from tests.support.moderation_scene import set_up

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_help_is_formatted_with_the_commands_each_person_may_use(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str
) -> None:
    scene = await set_up(homeserver, state, {})
    (patient,) = await homeserver.users("patient")
    async with running_bot(scene.config):
        await wait_joined(homeserver, scene.admin, scene.room, scene.bot.user_id)
        await wait_joined(homeserver, scene.admin, scene.ids["moderators"], scene.bot.user_id)
        page = await in_the_group(homeserver, scene, patient, browser, element_url, "member")

        # A member's help: headings, command names in code, lists as lists,
        # and no moderators' commands.
        await element.send(page, "!help")
        overview = await element.rendered(page, "Commands you can use here")
        await page.screenshot("member-help")
        assert "<h3>Commands you can use here</h3>" in overview, overview
        assert "<li><code>!help [command]</code>" in overview, overview
        assert "<code>!report" in overview, overview
        assert "Moderators' commands" not in overview, overview
        assert "!ban" not in overview, overview

        # `!help ban` explains the command, and that it is not theirs.
        await element.send(page, "!help ban")
        ban = await element.rendered(page, "Only the room's moderators may use it")
        assert "<h3><code>!ban &lt;user&gt;" in ban, ban
        assert "<li><code>user</code> (user):" in ban, ban
        assert "<li><code>reason</code> (optional):" in ban, ban

        # A moderator's help, in the moderators' room, adds their section.
        mod_page = await browser.session("moderator", element_url)
        await element.log_in(mod_page, scene.mod.localpart, scene.mod.password)
        await element.accept_room_invite(mod_page, "moderators")
        await element.send(mod_page, "!help")
        mods = await element.rendered(mod_page, "Moderators' commands")
        await mod_page.screenshot("moderator-help")
        assert "<h3>Commands you can use here</h3>" in mods, mods
        assert "<li><code>!ban &lt;user&gt;" in mods, mods
        assert "<li><code>!unban &lt;user&gt;" in mods, mods
        await element.send(mod_page, "!help ban")
        mod_ban = await element.rendered(mod_page, "reason (optional)")
        assert "<h3><code>!ban &lt;user&gt;" in mod_ban, mod_ban
        await page.close()
        await mod_page.close()
