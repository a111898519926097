"""People as the browser tests need them: a member of the moderation
scene's group, signed in to Element and joined, as they would be after
accepting the admin's invitation."""

from __future__ import annotations

from tests.browser import element
from tests.browser.driver import Browser, Session
from tests.support.homeserver import Homeserver, User
from tests.support.moderation_scene import Scene


async def in_the_group(
    hs: Homeserver, scene: Scene, user: User, browser: Browser, url: str, name: str
) -> Session:
    """*user*, invited to the group's room, signed in to Element as *name*'s
    session and joined from the invitation."""
    await (await hs.api(scene.admin)).invite(scene.room, user.user_id)
    page = await browser.session(name, url)
    await element.log_in(page, user.localpart, user.password)
    await element.accept_room_invite(page, "Carers")
    return page
