"""A patient's first hour, in Element Web itself: signing up with a group's
token on Element's own page, the bot's welcome in a DM, agreeing, the
question, a moderator's approval (in js-sdk, as Element), the invitations,
and the greeting in the group."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from pathlib import Path

import pytest

from provisioning.tokens import Tokens
from tests.browser import element
from tests.browser.driver import Browser
from tests.support.community import running_agent
from tests.support.homeserver import Homeserver, running_bot, wait_joined
from tests.support.js_client import run_js_client
from tests.support.onboarding_scene import QUESTION, set_up

pytestmark = [pytest.mark.integration, pytest.mark.interop, pytest.mark.browser]


@pytest.mark.parametrize("agree", ["👍", "!agree"])
async def test_a_patient_signs_up_in_element_and_is_greeted_in_their_group(
    homeserver: Homeserver, state: Path, browser: Browser, element_url: str, agree: str
) -> None:
    setup = await set_up(homeserver, state)
    community, ids = setup.community, setup.ids
    admin = community.admin
    token = (await Tokens(await homeserver.api(admin), admin.user_id).create(
        1, timedelta(days=1), "carers"
    )).token  # fmt: skip
    username = f"patient-{secrets.token_hex(3)}"
    user_id = f"@{username}:localhost"
    async with running_agent(community, state / "agent-home"), running_bot(setup.config):
        await wait_joined(homeserver, admin, ids["moderators"], setup.bot.user_id)
        page = await browser.session(
            f"patient-{'reaction' if agree == '👍' else 'command'}", element_url
        )
        registered = await element.register(page, username, secrets.token_urlsafe(16), token)

        # The bot's DM: an invitation, accepted as Element offers it.
        await element.accept_invite(page, setup.bot.localpart)
        await element.wait_message(page, "Be kind.")
        welcomed = time.perf_counter()
        print(f"registration complete to the welcome rendered: {welcomed - registered:.1f} s")
        await page.screenshot("welcome")
        assert not await page.present(element.UNDECRYPTABLE)

        # Agreeing, with a 👍 on the welcome or the command it names; then
        # the group's question.
        if agree == "👍":
            await element.react(page, "Be kind.", agree)
        else:
            await element.send(page, agree)
        await element.wait_message(page, QUESTION)
        await element.send(page, "My mother, since her stroke.")
        await element.wait_message(page, "A moderator will look")

        # A moderator approves, from Element's own crypto (js-sdk).
        mod = setup.mod
        # (What the bot says of it goes to the patient, below.)
        result = await run_js_client(
            homeserver,
            mod,
            ids["moderators"],
            setup.bot,
            sends=(f"!approve {user_id}",),
            expect="none",
        )
        assert result.get("sent"), str(result)

        # The invitations, the group joined, the greeting with a mention.
        await element.wait_message(page, "you're in")
        await element.accept_room_invite(page, "Carers")
        await element.wait_message(page, "has just joined us")
        await page.screenshot("greeted")
        greeting = (await page.html(element.BODY))[-1]
        assert "has just joined us" in greeting
        # The patient is named with a link to them, as Element shows a mention.
        assert f'href="https://matrix.to/#/{user_id}"' in greeting, greeting
        assert not await page.present(element.UNDECRYPTABLE)
        await page.close()
