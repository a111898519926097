"""The bot answers members in encrypted rooms on a real Synapse."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bots.core.feature import FEATURE as CORE
from bots.framework.actions import Action, Reply
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import MODERATOR, Arg, Command, Invocation, Scope
from bots.framework.feature import Context, Feature, FeatureConfig
from tests.support.homeserver import (
    Homeserver,
    bot_and_member,
    member,
    running_bot,
    wait_joined,
)

pytestmark = pytest.mark.integration


def with_moderation() -> list[Feature[Any]]:
    """The core feature plus one defined only here, with moderator commands."""

    async def secret(inv: Invocation, ctx: Context[FeatureConfig]) -> Sequence[Action]:
        return [Reply(inv.room_id, inv.event_id, f"done for {inv.args['who']}")]

    warn = Command("warn", "Warn a member", secret, (Arg("who", "member"),), power_level=MODERATOR)
    lockdown = Command(
        "lockdown",
        "Community-wide",
        secret,
        (Arg("who", "member"),),
        power_level=MODERATOR,
        scope=Scope.COMMUNITY,
    )
    testmod = Feature("testmod", "moderation for tests", FeatureConfig, commands=(warn, lockdown))
    return [CORE, testmod]


async def test_ping_and_help_in_encrypted_room(homeserver: Homeserver, state: Path) -> None:
    async with bot_and_member(homeserver, state) as scene:
        m, room, bot = scene.member, scene.room, scene.bot
        ping = await m.send(room, "!ping")
        reply = await m.wait_for_reply(ping)
        assert reply.sender == bot.user_id
        assert reply.decrypted, "the bot's reply must be encrypted"
        assert reply.content["msgtype"] == "m.notice"
        assert reply.content["body"] == "pong"

        helped = await m.wait_for_reply(await m.send(room, "!help"))
        assert "!ping" in helped.content["body"]
        assert "!help [command]" in helped.content["body"]

        detail = await m.wait_for_reply(await m.send(room, "!help ping"))
        assert detail.content["body"].startswith("!ping\n\nCheck that the bot is alive")
        # Formatted as Element shows it: the usage a heading, in code.
        assert detail.content["formatted_body"].startswith("<h3><code>!ping</code></h3>")


async def test_bad_input_gets_helpful_replies_and_never_crashes(
    homeserver: Homeserver, state: Path
) -> None:
    async with bot_and_member(homeserver, state) as scene:
        m, room = scene.member, scene.room
        cases = {
            "!pnig": "Unknown command !pnig. Did you mean !ping?",
            # Synapse caps events at 64 KiB, and encryption grows a body by a third,
            # so ~40 KB is the most a member can send; the parser test covers 100 KB.
            "!ping " + "x" * 40_000: "That command is too long",
            "!ping \x00\x1b[31m": "Commands can't contain control characters.",
            '!help "unclosed': "A quote is not closed.",
            "!ping héllo 🎗️ مرحبا": "Too many arguments. Usage: !ping",
            "!ŝŧřäñğé": "Unknown command",
        }
        for body, expected in cases.items():
            reply = await m.wait_for_reply(await m.send(room, body))
            assert expected in reply.content["body"], body[:40]
            assert reply.content["msgtype"] == "m.notice"
        # Still alive and well afterwards.
        pong = await m.wait_for_reply(await m.send(room, "!ping"))
        assert pong.content["body"] == "pong"


async def test_power_levels_gate_commands_without_leaking_detail(
    homeserver: Homeserver, state: Path
) -> None:
    bot, owner, mod, alice = await homeserver.users("bot", "owner", "mod", "alice")
    room = await homeserver.encrypted_room(
        owner, [bot, mod, alice], power={bot.user_id: 100, mod.user_id: 50}
    )
    alias = f"mods-{owner.localpart}"
    mods_room = await homeserver.encrypted_room(
        owner, [bot, mod], power={bot.user_id: 100, mod.user_id: 50}, alias=alias
    )
    # Configured by alias, as an organiser would write it.
    config = homeserver.bot_config(bot, state / "bot", moderators_room=f"#{alias}:localhost")
    async with (
        running_bot(config, with_moderation()),
        member(homeserver, alice, state / "alice") as a,
        member(homeserver, mod, state / "mod") as md,
    ):
        await wait_joined(homeserver, owner, room, bot.user_id)
        await wait_joined(homeserver, owner, mods_room, bot.user_id)
        await a.join(room)
        await md.join(room)
        await md.join(mods_room)

        refused = await a.wait_for_reply(await a.send(room, "!warn @x:localhost"))
        assert refused.content["body"] == REFUSAL
        assert "50" not in refused.content["body"]
        # A malformed call to a forbidden command gets the same refusal,
        # not its usage.
        refused2 = await a.wait_for_reply(await a.send(room, "!warn"))
        assert refused2.content["body"] == REFUSAL

        allowed = await md.wait_for_reply(await md.send(room, "!warn @x:localhost"))
        assert allowed.content["body"] == "done for @x:localhost"

        # Community-wide commands are authorised by the moderators' room.
        community = await md.wait_for_reply(await md.send(room, "!lockdown @y:localhost"))
        assert community.content["body"] == "done for @y:localhost"
        refused3 = await a.wait_for_reply(await a.send(room, "!lockdown @y:localhost"))
        assert refused3.content["body"] == REFUSAL

        # Members only see what they may use.
        member_help = await a.wait_for_reply(await a.send(room, "!help"))
        assert "!warn" not in member_help.content["body"]
        mod_help = await md.wait_for_reply(await md.send(room, "!help"))
        assert "!warn <who>" in mod_help.content["body"]
