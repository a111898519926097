"""A member makes a room of their own claim a role in the community.

A room's role comes only from a room the community's staff made
(SECURITY.md, "A room's role"): the attacker's rooms here carry the
community's marker in their real, server-held state, and the bot is
invited. Each test asserts what the attacker gets and what the moderators
see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bots.app import build_bot
from bots.base.errors import ConfigError
from bots.core.feature import FEATURE as CORE
from bots.framework.commands.authorize import REFUSAL
from bots.framework.runtime import BotRuntime
from tests.adversarial.conftest import Stage, in_group
from tests.support.homeserver import User, member, running_bot, wait_joined
from tests.support.member_client import body

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]


async def members_room(
    stage: Stage, owner: User, kind: str, *, direct: bool, invite: list[str], **marker: str
) -> str:
    """A room *owner* made, carrying the community's marker for *kind*."""
    key = stage.community.data["community"]["key"]
    body_: dict[str, Any] = {
        "preset": "private_chat",
        "is_direct": direct,
        "invite": invite,
        "initial_state": [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            },
            {
                "type": "org.hearth.room",
                "state_key": "",
                "content": {"community": key, "kind": kind, **marker},
            },
        ],
    }
    return await (await stage.hs.api(owner)).create_room(body_)


async def bot_membership(stage: Stage, owner: User, room: str) -> str | None:
    api = await stage.hs.api(owner)
    found = await api.state(room, "m.room.member", stage.bot.user_id)
    return found.get("membership")


async def test_the_bot_declines_a_member_s_room_claiming_to_be_the_moderators(
    stage: Stage,
) -> None:
    mallory = await stage.hs.user("mallory")
    room = await members_room(
        stage, mallory, "moderators", direct=False, invite=[stage.bot.user_id]
    )
    async with asyncio.timeout(30):
        while await bot_membership(stage, mallory, room) == "invite":  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    assert await bot_membership(stage, mallory, room) == "leave"


async def test_a_member_s_direct_message_claiming_a_group_gets_no_power_over_it(
    stage: Stage,
) -> None:
    """The issue's attack: an account in no group makes a room whose marker
    says it is the group's, and bans a member "there"."""
    mallory, victim = await stage.hs.users("mallory", "victim")
    async with (
        member(stage.hs, mallory, stage.dir / "mallory-dm") as m,
        in_group(stage, victim),
    ):
        # A direct message is the one kind of member's room the bot joins.
        room = await members_room(
            stage,
            mallory,
            "group",
            direct=True,
            invite=[stage.bot.user_id],
            group="carers",
            room="general",
        )
        await wait_joined(stage.hs, mallory, room, stage.bot.user_id)
        await m.sync_until_joined(room)
        ban = await m.wait_for_reply(await m.send(room, f"!ban {victim.user_id} spam"))
        assert body(ban) == REFUSAL
        api = await stage.hs.api(stage.community.admin)
        real = await api.state(stage.room, "m.room.member", victim.user_id)
        assert real["membership"] == "join"
        # The moderators hear who tried, and where.
        alarm = await stage.moderator.wait_for(
            lambda ev: ev.room_id == stage.mods_room and room in body(ev)
        )
        assert mallory.user_id in body(alarm)
        assert "a group's room" in body(alarm)


async def test_the_bot_leaves_a_direct_message_that_others_join(stage: Stage) -> None:
    """A direct message is joined as one: once its owner adds people, what
    members tell the bot there would no longer be private, and the bot's
    commands there could be shown to others."""
    mallory, friend = await stage.hs.users("mallory", "friend")
    async with member(stage.hs, mallory, stage.dir / "mallory-crowd") as m:
        room = await members_room(
            stage, mallory, "moderators", direct=True, invite=[stage.bot.user_id]
        )
        await wait_joined(stage.hs, mallory, room, stage.bot.user_id)
        await m.sync_until_joined(room)
        await (await stage.hs.api(mallory)).invite(room, friend.user_id)
        notice = await m.wait_for(
            lambda ev: (
                ev.room_id == room and ev.sender == stage.bot.user_id and "leaving" in body(ev)
            )
        )
        assert "direct message" in body(notice)
        async with asyncio.timeout(30):
            while await bot_membership(stage, mallory, room) != "leave":  # noqa: ASYNC110
                await asyncio.sleep(0.2)


async def test_trust_is_refused_in_a_member_s_room(stage: Stage) -> None:
    """`!trust` changes whose moderator commands count everywhere: a room
    its sender made, where they hold all power, must not carry it."""
    mallory = await stage.hs.user("mallory")
    bot = await stage.hs.user("plainbot")
    # A bot of no community (the core features alone) joins any local room,
    # so the room is the member's own, with all power theirs.
    config = stage.hs.bot_config(bot, stage.dir / "plainbot")
    async with (
        running_bot(config, [CORE]),
        member(stage.hs, mallory, stage.dir / "mallory-t") as m,
    ):
        room = await stage.hs.encrypted_room(mallory, [bot])
        await wait_joined(stage.hs, mallory, room, bot.user_id)
        await m.sync_until_joined(room)
        trust = await m.wait_for_reply(await m.send(room, f"!trust {stage.mod.user_id}"))
        assert body(trust) == REFUSAL
    # In the community, a moderator's !trust outside the moderators' room too.
    elsewhere = await stage.moderator.wait_for_reply(
        await stage.moderator.send(stage.room, f"!trust {mallory.user_id}")
    )
    assert body(elsewhere) == REFUSAL


async def test_a_bot_pointed_at_a_forged_moderators_room_refuses_to_start(
    stage: Stage,
) -> None:
    mallory, bot = await stage.hs.users("mallory", "bot2")
    room = await members_room(stage, mallory, "moderators", direct=False, invite=[bot.user_id])
    config = stage.hs.bot_config(
        bot,
        stage.dir / "bot2",
        moderators_room=room,
        feature_sections=dict(stage.runtime.config.feature_sections),
    )
    runtime: BotRuntime = build_bot(config)
    with pytest.raises(ConfigError, match=r"bot\.moderators_room") as refused:
        await asyncio.wait_for(runtime.run(), 60)
    assert room in str(refused.value)
