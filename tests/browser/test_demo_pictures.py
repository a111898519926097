"""The README's pictures, made from the demo community as `hearth dev` runs
it (the README's first command): the same Synapse set-up, the example
community file, the admin agent and the bot. A newcomer signs up in Element
with a group's token, reads the welcome, agrees and answers; a moderator,
in Element too, approves and adds a meeting; the newcomer joins the group
and answers the meeting's poll.

The pictures are written to the test's temporary folder, and to
`docs/screenshots/` when HEARTH_README_SCREENSHOTS=1, so the README's stay
true to what Element shows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bots.app import build_bot
from bots.base.tasks import until_ready
from bots.devserver.devstack import (
    ADMIN,
    SERVER_NAME,
    DevStack,
    start_admin_agent,
    start_dev_stack,
)
from bots.devserver.supervisor import stop_process
from bots.devserver.synapse_config import free_port
from bots.framework.secrets import read_secret
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.tokens import Tokens
from tests.browser import element
from tests.browser.driver import Browser, Session, element_copy, missing, serving

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
README_SHOTS = ROOT / "docs" / "screenshots"
# Element's sign-up form, without the photograph around it.
CROP = {"signup": (280, 90, 1000, 590)}
# The example community's zone, in which meetings are written.
LONDON = "Europe/London"


@contextlib.asynccontextmanager
async def demo(state: Path) -> AsyncIterator[DevStack]:
    """What `hearth dev` starts, until the block ends."""
    stack = await start_dev_stack(state, port=free_port())
    agent = None
    try:
        agent = await start_admin_agent(
            state / "community.yaml", stack.admin_socket, state / "admin-agent" / "audit.log"
        )
        runtime = build_bot(stack.bot_config())
        task = asyncio.create_task(runtime.run())
        try:
            await until_ready(task, runtime.ready, "the bot")
            yield stack
        finally:
            runtime.stop()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 30)
    finally:
        if agent is not None:
            await stop_process(agent)
        await stack.synapse.stop()


async def picture(page: Session, name: str, kept: dict[str, Path]) -> None:
    kept[name] = await page.screenshot(name)


async def test_the_demo_community_as_a_newcomer_sees_it(tmp_path: Path) -> None:
    why = missing()
    if why is not None:
        pytest.skip(f"browser tests skipped: {why}")
    kept: dict[str, Path] = {}
    async with demo(tmp_path / "dev") as stack, Transport() as http:
        token_file = stack.state_dir / "secrets" / f"{ADMIN}.token"
        admin = ClientAPI(stack.base_url, read_secret(token_file), http)
        admin_id = f"@{ADMIN}:{SERVER_NAME}"
        token = (
            await Tokens(admin, admin_id).create(1, timedelta(days=1), "newly-diagnosed")
        ).token
        webapp = element_copy(tmp_path / "element", stack.base_url, SERVER_NAME)
        async with serving(webapp) as url, Browser.running(tmp_path / "shots") as browser:
            # The moderator is signed in, in the moderators' room, before anyone applies.
            mod = await browser.session("moderator", url)
            await element.log_in(
                mod, stack.moderator.user_id.split(":")[0][1:], stack.moderator.password
            )
            await element.accept_room_invite(mod, "moderators")
            page = await browser.session("newcomer", url)
            username = f"sam-{secrets.token_hex(2)}"
            await element.register(
                page, username, secrets.token_urlsafe(16), token, picture="signup"
            )
            kept["signup"] = next(browser.shots.glob("newcomer-*-signup.png"))
            await element.accept_invite(page, stack.bot.user_id.split(":")[0][1:])
            await element.wait_message(page, "Our code of conduct")
            await asyncio.sleep(3)  # Element's shields settle once it has the bot's keys
            await picture(page, "welcome", kept)
            await element.send(page, "!agree")
            await element.wait_message(page, "How did you hear about us?")
            await element.send(page, "From my nurse at the clinic.")
            await element.wait_message(page, "What would you like from the group?")
            await element.send(page, "To talk to people who have been through it.")
            await element.wait_message(page, "A moderator will look")
            await page.screenshot("answered")

            # A moderator, in Element, reads the application and approves it.
            await element.wait_message(mod, "New application to Newly diagnosed")
            await element.send(mod, f"!approve @{username}:{SERVER_NAME}")
            await element.wait_message(mod, "approved")
            await picture(mod, "application", kept)

            await element.wait_message(page, "you're in")
            await element.accept_room_invite(page, "General")
            await element.wait_message(page, "has just joined us")
            await asyncio.sleep(2)
            await picture(page, "group", kept)

            # The moderator adds a meeting; its poll, as Element draws it,
            # answered with one tap.
            await element.accept_room_invite(page, "Meetings")
            await element.accept_room_invite(mod, "Meetings")
            day = (datetime.now(ZoneInfo(LONDON)) + timedelta(days=2)).date()
            await element.send(mod, f'!meeting add "Coffee and questions" on {day} 11:00')
            await page.wait_text(element.POLL, "Coffee and questions", timeout=60_000)
            await page.click(f"{element.POLL} .mx_PollOption ::-p-text(Going)")
            await asyncio.sleep(2)
            await picture(page, "poll", kept)
            for name in ("welcome", "application", "group", "poll"):
                assert name in kept
    if os.environ.get("HEARTH_README_SCREENSHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        for name, shot in kept.items():
            # A 256-colour palette keeps each picture small enough for git.
            with Image.open(shot) as image:
                framed = image.crop(CROP[name]) if name in CROP else image
                small = framed.convert("RGB").quantize(256)
                small.save(README_SHOTS / f"{name}.png", optimize=True)
