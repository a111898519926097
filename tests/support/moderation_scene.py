"""A group with protections, its moderator and the bot (not running), on
the test Synapse, and what tests of moderation read back from the server:
shared by the integration, adversarial and browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.framework.config import BotConfig
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import Community, make_community
from tests.support.homeserver import (
    Homeserver,
    User,
    member,
    running_bot,
    wait_joined,
)
from tests.support.member_client import MemberClient

GROUP_ROOM = "group/carers/general"


@dataclass
class Scene:
    community: Community
    ids: dict[str, str]
    bot: User
    mod: User
    config: BotConfig

    @property
    def room(self) -> str:
        return self.ids[GROUP_ROOM]

    @property
    def admin(self) -> User:
        return self.community.admin


async def set_up(
    hs: Homeserver, state: Path, protections: dict[str, Any], more_moderators: tuple[User, ...] = ()
) -> Scene:
    mod, bot = await hs.users("mod", "bot")
    groups = [{"key": "carers", "name": "Carers", "protections": protections}]
    community = await make_community(
        hs, state, groups, moderators=[mod, *more_moderators], bots=[bot]
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    config = hs.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        feature_sections={"moderation": ModerationConfig(community=community.path)},
    )
    return Scene(community, ids, bot, mod, config)


@contextlib.asynccontextmanager
async def watching(hs: Homeserver, scene: Scene, state: Path) -> AsyncIterator[MemberClient]:
    """The bot running, in the group's room; the moderator in the moderators' room."""
    async with running_bot(scene.config), member(hs, scene.mod, state / "mod") as m:
        await wait_joined(hs, scene.admin, scene.ids["moderators"], scene.bot.user_id)
        await wait_joined(hs, scene.admin, scene.room, scene.bot.user_id)
        await m.join(scene.ids["moderators"])
        yield m


@contextlib.asynccontextmanager
async def in_group(
    hs: Homeserver, scene: Scene, user: User, store: Path
) -> AsyncIterator[MemberClient]:
    """*user*, invited by the admin, joined to the group's room."""
    await (await hs.api(scene.admin)).invite(scene.room, user.user_id)
    async with member(hs, user, store) as m:
        await m.join(scene.room)
        yield m


async def content_of(hs: Homeserver, scene: Scene, event_id: str) -> dict[str, Any]:
    api = await hs.api(scene.admin)
    path = f"/_matrix/client/v3/rooms/{scene.room}/event/{event_id}"
    event = await api.request("GET", path)
    return dict(event.get("content") or {})


async def until_redacted(hs: Homeserver, scene: Scene, event_id: str) -> None:
    async with asyncio.timeout(30):
        while await content_of(hs, scene, event_id):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def level_of(hs: Homeserver, scene: Scene, user: str) -> int | None:
    levels = await (await hs.api(scene.admin)).state(scene.room, "m.room.power_levels")
    found = levels.get("users", {}).get(user)
    return found if isinstance(found, int) else None


async def until_level(hs: Homeserver, scene: Scene, user: str, wanted: int | None) -> None:
    async with asyncio.timeout(30):
        while await level_of(hs, scene, user) != wanted:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def membership(hs: Homeserver, scene: Scene, room: str, user: str) -> str:
    found = await (await hs.api(scene.admin)).state(room, "m.room.member", user)
    return str(found.get("membership"))


def with_reports(scene: Scene, state: Path) -> Scene:
    """*scene*'s bot reading the homeserver's reports (Element's Report)
    through the admin agent, every five seconds."""
    section = ModerationConfig(community=scene.community.path, reports_poll_s=5)
    scene.config = scene.config.model_copy(
        update={
            "admin_socket": state / "agent-home" / "agent" / "agent.sock",
            "feature_sections": {"moderation": section},
        }
    )
    return scene
