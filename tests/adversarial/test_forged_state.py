"""A member with a modified client hides room state in an encrypted message.

Room state comes only from the server (SECURITY.md, "Room state"): each
attack here sends, Megolm-encrypted from a cross-signed device of the
member's own, a payload claiming to be state, then tries to use what it
would have given them. Each asserts what the attacker gets (nothing), that
the room is unchanged, and that the moderators heard of it once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nio import EncryptionError, MegolmEvent

from bots.framework.commands.authorize import REFUSAL
from tests.adversarial.conftest import Stage, in_group
from tests.support.attacker import AttackerClient
from tests.support.homeserver import member
from tests.support.member_client import body

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

# In every forged payload: it must never reach the moderators' alarm.
CONTENT_MARKER = "FORGED-CONTENT-3141"


async def alarms_about(stage: Stage, user_id: str) -> list[str]:
    """The moderators' room's security notices naming *user_id*, so far."""
    return [
        body(ev)
        for ev in stage.moderator.received
        if ev.room_id == stage.mods_room
        and ev.sender == stage.bot.user_id
        and body(ev).startswith("Security:")
        and user_id in body(ev)
    ]


async def one_alarm(stage: Stage, user_id: str, claimed: str) -> str:
    alarm = await stage.moderator.wait_for(
        lambda ev: ev.room_id == stage.mods_room and user_id in body(ev) and claimed in body(ev)
    )
    text = body(alarm)
    assert stage.room in text
    assert CONTENT_MARKER not in text
    return text


async def levels(stage: Stage) -> dict[str, Any]:
    api = await stage.hs.api(stage.community.admin)
    return await api.state(stage.room, "m.room.power_levels")


async def membership(stage: Stage, user_id: str) -> str | None:
    api = await stage.hs.api(stage.community.admin)
    try:
        found = await api.state(stage.room, "m.room.member", user_id)
    except Exception:
        return None
    return found.get("membership")


async def forge_then(
    stage: Stage, a: AttackerClient, event_type: str, content: dict[str, Any], key: str = ""
) -> None:
    """The forgery, in the Megolm session the bot already holds (an answered
    `!ping` first), so the bot decrypts it as it syncs it, as nio would
    apply it."""
    warm = await a.wait_for_reply(await a.send(stage.room, "!ping"))
    assert body(warm) == "pong"
    await a.send_forged_state(stage.room, event_type, {**content, "note": CONTENT_MARKER}, key)


async def test_forged_power_levels_give_no_power_and_the_moderators_hear_of_it(
    stage: Stage,
) -> None:
    mallory, victim = await stage.hs.users("mallory", "victim")
    async with (
        in_group(stage, mallory, AttackerClient) as a,
        in_group(stage, victim),
    ):
        before = await levels(stage)
        forged = {"users": {mallory.user_id: 100, stage.bot.user_id: 100}, "events_default": 0}
        await forge_then(stage, a, "m.room.power_levels", forged)
        lock = await a.wait_for_reply(await a.send(stage.room, "!lock"))
        ban = await a.wait_for_reply(await a.send(stage.room, f"!ban {victim.user_id} spam"))
        assert body(lock) == REFUSAL
        assert body(ban) == REFUSAL
        assert await levels(stage) == before
        assert await membership(stage, victim.user_id) == "join"
        await one_alarm(stage, mallory.user_id, "m.room.power_levels")
        # A second attempt in the same room is not reported again.
        await forge_then(stage, a, "m.room.power_levels", forged)
        again = await a.wait_for_reply(await a.send(stage.room, "!lock"))
        assert body(again) == REFUSAL
        assert len(await alarms_about(stage, mallory.user_id)) == 1


async def test_a_forged_create_event_makes_no_creator(stage: Stage) -> None:
    mallory, victim = await stage.hs.users("mallory", "victim")
    async with (
        in_group(stage, mallory, AttackerClient) as a,
        in_group(stage, victim),
    ):
        # Room version 12 gives creators power above any level.
        await forge_then(
            stage,
            a,
            "m.room.create",
            {"room_version": "12", "additional_creators": [mallory.user_id]},
        )
        kick = await a.wait_for_reply(await a.send(stage.room, f"!kick {victim.user_id}"))
        assert body(kick) == REFUSAL
        assert await membership(stage, victim.user_id) == "join"
        await one_alarm(stage, mallory.user_id, "m.room.create")


async def test_a_forged_membership_gets_an_outsider_no_room_key(stage: Stage) -> None:
    mallory, outsider = await stage.hs.users("mallory", "outsider")
    async with (
        in_group(stage, mallory, AttackerClient) as a,
        member(stage.hs, outsider, stage.dir / "outsider") as o,
    ):
        # The outsider never joins; the forgery says they did.
        await forge_then(stage, a, "m.room.member", {"membership": "join"}, key=outsider.user_id)
        pong = await a.wait_for_reply(await a.send(stage.room, "!ping"))
        assert body(pong) == "pong"
        assert await membership(stage, outsider.user_id) is None
        # Long enough for a room key sent to the outsider to arrive.
        await asyncio.sleep(2)
        api = await stage.hs.api(stage.community.admin)
        raw = await api.request(
            "GET", f"/_matrix/client/v3/rooms/{stage.room}/event/{pong.event_id}"
        )
        with pytest.raises(EncryptionError):
            o.client.decrypt_event(MegolmEvent.from_dict(raw))
        await one_alarm(stage, mallory.user_id, "m.room.member")


async def test_forged_protections_do_not_switch_off_crisis_alerts(stage: Stage) -> None:
    mallory = await stage.hs.user("mallory")
    async with in_group(stage, mallory, AttackerClient) as a:
        await forge_then(
            stage, a, "org.hearth.protections", {"crisis.enabled": False}, key="carers"
        )
        crisis = await a.send(stage.room, "Some days I just want to die")
        alert = await stage.moderator.wait_for(
            lambda ev: ev.room_id == stage.mods_room and crisis in body(ev)
        )
        assert "want to die" not in body(alert)
        await one_alarm(stage, mallory.user_id, "org.hearth.protections")


async def test_a_forged_marker_does_not_take_the_group_s_room_away(stage: Stage) -> None:
    """A marker in an encrypted payload saying the group's room is the
    moderators' room: the group's moderator can still act there."""
    mallory, victim = await stage.hs.users("mallory", "victim")
    async with (
        in_group(stage, mallory, AttackerClient) as a,
        in_group(stage, victim),
    ):
        key = stage.community.data["community"]["key"]
        await forge_then(stage, a, "org.hearth.room", {"community": key, "kind": "moderators"})
        # The forgery is taken in before the moderator's command.
        pong = await a.wait_for_reply(await a.send(stage.room, "!ping"))
        assert body(pong) == "pong"
        kicked = await stage.moderator.wait_for_reply(
            await stage.moderator.send(stage.room, f"!kick {victim.user_id} testing")
        )
        assert body(kicked) != REFUSAL
        assert await membership(stage, victim.user_id) == "leave"
        await one_alarm(stage, mallory.user_id, "org.hearth.room")


async def test_forged_history_visibility_shares_no_history(stage: Stage) -> None:
    """The group hides history from newcomers ("joined"); a forged "shared"
    would have the bot mark its room keys shareable with later members."""
    mallory = await stage.hs.user("mallory")
    async with in_group(stage, mallory, AttackerClient) as a:
        await forge_then(stage, a, "m.room.history_visibility", {"history_visibility": "shared"})
        pong = await a.wait_for_reply(await a.send(stage.room, "!ping"))
        assert body(pong) == "pong"
        api = await stage.hs.api(stage.community.admin)
        visibility = await api.state(stage.room, "m.room.history_visibility")
        assert visibility["history_visibility"] == "joined"
        # The bot's view, which decides whether its keys go to later members.
        assert not stage.runtime.facts.history_shared(stage.room)
        await one_alarm(stage, mallory.user_id, "m.room.history_visibility")
