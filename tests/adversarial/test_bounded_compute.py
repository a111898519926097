"""A member, or a followed ban list, makes the bot compute for nothing.

The bot handles every room on one event loop: a handler that computes for
seconds holds up every room, and the sync that feeds them. Here the real
bot (meetings and moderation, following a ban list) meets the worst inputs
found: a far-date `!rsvp` on a daily meeting, which had dateutil step day
by day to the year 9999, and a list's glob bomb and server-wide glob. Each test asserts what
the attacker gets, that a `!ping` in another room is still answered
promptly, and what the moderators see.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from bots.meetings.config import MeetingsConfig
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import Community, make_community
from tests.support.homeserver import (
    Homeserver,
    User,
    member,
    running_bot,
    until_membership,
    wait_joined,
)
from tests.support.member_client import MemberClient, body

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

GROUP_ROOM = "group/carers/general"
# Far longer than a pong takes on an idle bot (well under a second), and
# shorter than the old code held the loop for each far-date !rsvp (about
# nine seconds here, back to back).
PROMPT_MS = 5000
RULE = "m.policy.rule.user"


@dataclass
class Arena:
    hs: Homeserver
    community: Community
    ids: dict[str, str]
    moderator: MemberClient  # in the moderators' room and the group's room
    attacker: MemberClient  # a member of the group
    attacker_user: User
    spammer: User  # a member a legitimate rule of the list names
    lister: User  # owns the followed ban list
    ban_list: str

    @property
    def room(self) -> str:
        return self.ids[GROUP_ROOM]

    @property
    def mods_room(self) -> str:
        return self.ids["moderators"]


@pytest.fixture(scope="module")
async def arena(
    homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Arena]:
    hs, state = homeserver, tmp_path_factory.mktemp("bounded")
    mod, bot, lister, attacker, spammer = await hs.users("mod", "bot", "lister", "mallory", "spam")
    groups = [{"key": "carers", "name": "Carers", "timezone": "Europe/Berlin"}]
    community = await make_community(hs, state, groups, moderators=[mod], bots=[bot])
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    # A ban list of someone else's: public, so the bot joins it as it follows it.
    ban_list = await (await hs.api(lister)).create_room({"preset": "public_chat"})
    admin = await hs.api(community.admin)
    await admin.invite(ids[GROUP_ROOM], spammer.user_id)
    await (await hs.api(spammer)).request(
        "POST", f"/_matrix/client/v3/join/{quote(ids[GROUP_ROOM])}", {}
    )
    config = hs.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        feature_sections={
            "meetings": MeetingsConfig(community=community.path),
            "moderation": ModerationConfig(
                community=community.path, follow=(ban_list,), policy_poll_s=1
            ),
        },
    )
    async with (
        running_bot(config) as runtime,
        member(hs, mod, state / "mod") as m,
        member(hs, attacker, state / "mallory") as a,
    ):
        for label in ("moderators", GROUP_ROOM):
            await wait_joined(hs, community.admin, ids[label], bot.user_id)
        await wait_joined(hs, lister, ban_list, bot.user_id)
        await m.join(ids["moderators"])
        await m.join(ids[GROUP_ROOM])
        await admin.invite(ids[GROUP_ROOM], attacker.user_id)
        await a.join(ids[GROUP_ROOM])
        device = str(runtime.session.client.device_id)
        for client in (m, a):
            await client.knows_device(bot.user_id, device)
        arena = Arena(hs, community, ids, m, a, attacker, spammer, lister, ban_list)
        # Answered once before any attack: the first reply also sets up the
        # moderator's room key, which no later measure should include.
        assert body(await m.wait_for_reply(await m.send(arena.mods_room, "!ping"), 60)) == "pong"
        yield arena


async def pong(arena: Arena) -> None:
    """A `!ping` in the moderators' room is answered promptly, as the
    server's clock has it: the bot runs in this test's process, so a loop
    it blocks stops the test's own clock too."""
    sent = await arena.moderator.send(arena.mods_room, "!ping")
    reply = await arena.moderator.wait_for_reply(sent, 120)
    assert body(reply) == "pong"
    api = await arena.hs.api(arena.community.admin)
    room = quote(arena.mods_room)
    ping_ts, pong_ts = [
        (await api.request("GET", f"/_matrix/client/v3/rooms/{room}/event/{quote(e)}"))[
            "origin_server_ts"
        ]
        for e in (sent, reply.event_id)
    ]
    assert pong_ts - ping_ts < PROMPT_MS


async def test_a_far_date_rsvp_is_refused_and_other_rooms_are_answered_meanwhile(
    arena: Arena,
) -> None:
    mod, attacker = arena.moderator, arena.attacker
    added = await mod.wait_for_reply(
        await mod.send(arena.room, '!meeting add "Daily check-in" every day 19:00'), 60
    )
    assert body(added).startswith("Meeting 1 added: Daily check-in.")
    # Five at once, then a moderator's !ping elsewhere while they are handled.
    sent = [await attacker.send(arena.room, "!rsvp 1 yes 9999-12-31") for _ in range(5)]
    await asyncio.sleep(0.5)
    await pong(arena)
    for s in sent:
        said = body(await attacker.wait_for_reply(s, 60))
        assert said.startswith("31 December 9999 is too far ahead: dates can be at most 2 years")
    # A date within reach is still taken.
    near = await attacker.wait_for_reply(await attacker.send(arena.room, "!rsvp 1 yes"), 60)
    assert body(near).startswith("Noted: you're going to Daily check-in")


async def test_a_followed_list_s_glob_bomb_and_sweeping_glob_ban_nobody(arena: Arena) -> None:
    lister = await arena.hs.api(arena.lister)
    rules = {
        "bomb": "@********:*.invalid",  # ~1 s per member with Python's re
        "everyone": "@*:localhost",  # every member of this server
        "spam": "@spam-*:localhost",  # a list's ordinary glob
    }
    for key, entity in rules.items():
        await lister.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(arena.ban_list)}/state/{RULE}/{key}",
            {"entity": entity, "recommendation": "m.ban", "reason": key},
        )
    await asyncio.sleep(0.5)
    await pong(arena)
    # The ordinary rule is applied: the list has been read, the others with it.
    admin = await arena.hs.api(arena.community.admin)
    await until_membership(admin, arena.room, arena.spammer.user_id, "ban")
    mallory = await admin.state(arena.room, "m.room.member", arena.attacker_user.user_id)
    assert mallory["membership"] == "join"
    # The moderators hear of each refused rule, naming the list and the rule.
    for entity in (rules["bomb"], rules["everyone"]):
        note = await arena.moderator.wait_for(
            lambda ev, e=entity: ev.room_id == arena.mods_room and f"'{e}'" in body(ev)
        )
        assert body(note).startswith(f"Not applied: the rule for '{entity}' on the ban list")
        assert arena.ban_list in body(note)
        assert "names no one in particular" in body(note)
    # Once each, however many times the list is looked at (every second here).
    await asyncio.sleep(3)
    await pong(arena)
    notes = [
        ev
        for ev in arena.moderator.received
        if ev.room_id == arena.mods_room and body(ev).startswith("Not applied:")
    ]
    assert len(notes) == 2
    mallory = await admin.state(arena.room, "m.room.member", arena.attacker_user.user_id)
    assert mallory["membership"] == "join"
