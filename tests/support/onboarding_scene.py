"""A community with a carers group and onboarding, its moderator and the
bot (not running or running), on the test Synapse, and a newcomer with the
group's token: shared by the integration, browser and bench code."""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bots.devserver.synapse_config import registrations_dir
from bots.framework.config import BotConfig
from bots.onboarding.config import OnboardingConfig
from provisioning.provision import provision
from provisioning.tokens import Tokens
from tests.support.community import Community, make_community, running_agent
from tests.support.homeserver import Homeserver, User, member, running_bot, wait_joined
from tests.support.member_client import MemberClient
from tests.support.registration import register

QUESTION = "Whom do you care for?"


@dataclass
class Onboarding:
    community: Community
    ids: dict[str, str]
    mod: MemberClient
    bot: User


@dataclass
class Setup:
    community: Community
    ids: dict[str, str]
    mod: User
    bot: User
    config: BotConfig


async def set_up(
    hs: Homeserver,
    state: Path,
    join: str = "invite",
    carers_moderators: tuple[str, ...] = (),
    more_groups: tuple[dict[str, Any], ...] = (),
) -> Setup:
    """A provisioned community with a carers group, its bot's config (not running)."""
    mod_user, bot = await hs.users("mod", "bot")
    carers = {"key": "carers", "name": "Carers", "questions": [QUESTION], "join": join}
    if carers_moderators:
        carers["moderators"] = list(carers_moderators)
    groups = [carers, *more_groups]
    community = await make_community(hs, state, groups, moderators=[mod_user], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    spool = registrations_dir(hs.dir)
    for left in spool.glob("*.json"):  # other tests' newcomers: not this community's
        left.unlink()
    section = OnboardingConfig(community=community.path, registrations=spool, poll_s=0.2)
    # The moderators' room as `hearth provision --record` gives it; the
    # bot checks it is the room provisioning made before routing anything there.
    config = hs.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        admin_socket=state / "agent-home" / "agent" / "agent.sock",
        feature_sections={"onboarding": section},
    )
    return Setup(community, ids, mod_user, bot, config)


@contextlib.asynccontextmanager
async def onboarding(hs: Homeserver, state: Path) -> AsyncIterator[Onboarding]:
    setup = await set_up(hs, state)
    community, ids = setup.community, setup.ids
    async with (
        running_agent(community, state / "agent-home"),
        running_bot(setup.config) as runtime,
        member(hs, setup.mod, state / "mod") as mod,
    ):
        assert "onboarding" in [f.name for f in runtime.features]
        await wait_joined(hs, community.admin, ids["moderators"], setup.bot.user_id)
        await wait_joined(hs, community.admin, ids["group/carers/general"], setup.bot.user_id)
        await mod.join(ids["moderators"])
        yield Onboarding(community, ids, mod, setup.bot)


async def newcomer_with_token(hs: Homeserver, scene: Onboarding | Setup) -> User:
    admin = scene.community.admin
    tokens = Tokens(await hs.api(admin), admin.user_id)
    info = await tokens.create(1, timedelta(days=1), "carers")
    status, data, user = await register(hs.base_url, info.token)
    assert status == 200, data
    assert user is not None
    return user


async def accept_dm(m: MemberClient, timeout: float = 60) -> str:
    return await m.accept_invite(timeout)
