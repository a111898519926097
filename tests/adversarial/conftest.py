"""One provisioned community, its moderation bot and its moderator, shared
by an attack module's tests; each test brings its own attacker."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from bots.framework.runtime import BotRuntime
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import Community, make_community
from tests.support.homeserver import Homeserver, User, member, running_bot, wait_joined
from tests.support.member_client import MemberClient

GROUP_ROOM = "group/carers/general"
M = TypeVar("M", bound=MemberClient)


@dataclass
class Stage:
    hs: Homeserver
    community: Community
    ids: dict[str, str]
    bot: User
    mod: User
    moderator: MemberClient  # the community moderator's client, in the moderators' room
    runtime: BotRuntime
    dir: Path

    @property
    def room(self) -> str:
        return self.ids[GROUP_ROOM]

    @property
    def mods_room(self) -> str:
        return self.ids["moderators"]


@pytest.fixture(scope="module")
async def stage(
    homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    hs, state = homeserver, tmp_path_factory.mktemp("stage")
    mod, bot = await hs.users("mod", "bot")
    community = await make_community(
        hs, state, [{"key": "carers", "name": "Carers"}], moderators=[mod], bots=[bot]
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    config = hs.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        feature_sections={"moderation": ModerationConfig(community=community.path)},
    )
    async with running_bot(config) as runtime, member(hs, mod, state / "mod") as m:
        for label in ("moderators", "space", GROUP_ROOM):
            await wait_joined(hs, community.admin, ids[label], bot.user_id)
        await m.join(ids["moderators"])
        await m.join(ids[GROUP_ROOM])
        yield Stage(hs, community, ids, bot, mod, m, runtime, state)


@contextlib.asynccontextmanager
async def in_group(
    stage: Stage,
    user: User,
    kind: type[M] = MemberClient,  # type: ignore[assignment]
) -> AsyncIterator[M]:
    """*user*'s client (an attacker's, with *kind*), invited by the
    community's admin and joined to the group's room."""
    async with member(stage.hs, user, stage.dir / user.localpart, kind=kind) as client:
        await (await stage.hs.api(stage.community.admin)).invite(stage.room, user.user_id)
        await client.join(stage.room)
        yield client
