"""Protections in a group's encrypted room, on a real Synapse, with real
members' clients sending real encrypted messages."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from bots.base.errors import HomeserverError
from bots.framework.commands.authorize import REFUSAL
from bots.moderation.commands.handlers import OUTRANKED
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import make_community, running_agent
from tests.support.homeserver import (
    Homeserver,
    member,
    running_bot,
    until_membership,
    wait_joined,
)
from tests.support.member_client import body
from tests.support.moderation_scene import (
    content_of,
    in_group,
    membership,
    set_up,
    until_level,
    until_redacted,
    watching,
    with_reports,
)

pytestmark = pytest.mark.integration


async def test_crisis_words_and_a_flood_then_the_mute_is_lifted_after_a_restart(
    homeserver: Homeserver, state: Path
) -> None:
    scene = await set_up(
        homeserver,
        state,
        {"flood": {"messages": 3, "seconds": 60}, "words": {"patterns": [r"\bmiracle cure\b"]}},
    )
    mods_room = scene.ids["moderators"]
    alice = await homeserver.user("alice")
    async with (
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        # Crisis language: the moderators are told privately, the member
        # gets the crisis resources, and the message stays.
        crisis = await a.send(scene.room, "Some days I just want to die")
        alert = await m.wait_for(lambda ev: ev.room_id == mods_room and "may need" in body(ev))
        assert crisis in body(alert)  # a link to the message, not its words
        assert "want to die" not in body(alert)
        dm = await a.accept_invite()
        resources = await a.wait_for(lambda ev: ev.room_id == dm and "Call 112." in body(ev))
        assert resources.decrypted

        # A listed phrase: removed, and a gentle word by DM.
        spam = await a.send(scene.room, "Try this miracle cure, it works")
        await until_redacted(homeserver, scene, spam)
        warned = await a.wait_for(lambda ev: "A gentle note" in body(ev))
        assert "doesn't allow" in body(warned)
        assert "miracle" not in body(warned)

        # Two more: the fourth message within a minute is a flood, the
        # second offence: muted for the group's mute time.
        await a.send(scene.room, "sorry")
        flood = await a.send(scene.room, "sorry again")
        await until_level(homeserver, scene, alice.user_id, -1)
        await until_redacted(homeserver, scene, flood)
        await a.wait_for(lambda ev: "You've been muted" in body(ev))
        await m.wait_for(lambda ev: f"Muted {alice.user_id}" in body(ev))
        assert await content_of(homeserver, scene, crisis)  # never removed

    # The mute ran out while the bot was down: it is lifted when it is back.
    with sqlite3.connect(scene.config.state_dir / "bot.db") as db:
        db.execute("UPDATE scheduled_jobs SET due = ? WHERE kind = 'unmute'", (time.time() - 5,))
    async with running_bot(scene.config):
        await until_level(homeserver, scene, alice.user_id, None)


async def test_a_join_wave_closes_the_room_and_a_newcomers_link_is_removed(
    homeserver: Homeserver, state: Path
) -> None:
    scene = await set_up(homeserver, state, {"join_wave": {"joins": 3, "minutes": 60}})
    mods_room = scene.ids["moderators"]
    first, second, third = [await homeserver.user(name) for name in ("jo", "kim", "lee")]
    async with (
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, first, state / "jo") as j,
    ):
        # A newcomer's first message with a link: removed, with a word by DM.
        link = await j.send(scene.room, "great deals at https://pills.example")
        await until_redacted(homeserver, scene, link)
        await j.accept_invite()
        await j.wait_for(lambda ev: "newcomer's first message" in body(ev))
        # Their next link is no first message: it stays.
        later = await j.send(scene.room, "the leaflet: https://hospital.example/leaflet")

        admin_api = await homeserver.api(scene.admin)
        for user in (second, third):
            await admin_api.invite(scene.room, user.user_id)
            await (await homeserver.api(user)).request(
                "POST", f"/_matrix/client/v3/join/{scene.room}", {}
            )
        # Jo, Kim and Lee: three joins, the most an hour allows here (the
        # bot's and the admin's own do not count). Max's is one too many.
        fourth = await homeserver.user("max")
        await admin_api.invite(scene.room, fourth.user_id)
        await (await homeserver.api(fourth)).request(
            "POST", f"/_matrix/client/v3/join/{scene.room}", {}
        )
        notice = await m.wait_for(lambda ev: ev.room_id == mods_room and "Join wave" in body(ev))
        assert "ask-to-join" in body(notice)
        rules = await admin_api.state(scene.room, "m.room.join_rules")
        assert rules["join_rule"] == "knock"
        assert await content_of(homeserver, scene, later)


async def test_commands_a_timed_mute_a_community_ban_and_refusals(
    homeserver: Homeserver, state: Path
) -> None:
    peer = await homeserver.user("peer-mod")
    scene = await set_up(homeserver, state, {}, more_moderators=(peer,))
    mods_room, log_room = scene.ids["moderators"], scene.ids["moderation-log"]
    alice = await homeserver.user("alice")
    async with (
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        await m.join(log_room)
        await m.join(scene.room)
        # A member's !ban is refused, without detail.
        refused = await a.wait_for_reply(await a.send(scene.room, f"!ban {scene.mod.user_id}"))
        assert refused.content["body"] == REFUSAL
        # A moderator cannot act on another moderator.
        peer_ban = await m.wait_for_reply(await m.send(mods_room, f"!ban {peer.user_id} rude"))
        assert peer_ban.content["body"] == OUTRANKED

        # !redact takes the member's latest messages, no more.
        said = [await a.send(scene.room, f"message {i}") for i in range(4)]
        removing = await m.wait_for_reply(await m.send(scene.room, f"!redact {alice.user_id} 2"))
        assert "the last 2" in body(removing)
        for event_id in said[2:]:
            await until_redacted(homeserver, scene, event_id)
        assert all([await content_of(homeserver, scene, e) for e in said[:2]])

        muted = await m.wait_for_reply(
            await m.send(scene.room, f"!mute {alice.user_id} 30m calm down")
        )
        assert (
            body(muted)
            == f"{scene.mod.user_id} muted {alice.user_id} in Carers for 30 minutes: calm down."
        )
        await until_level(homeserver, scene, alice.user_id, -1)
        logged = await m.wait_for(lambda ev: ev.room_id == log_room and "muted" in body(ev))
        assert body(logged) == body(muted)
        # Undone: unmuted at once, and its timer cancelled. Then muted again.
        undone = await m.wait_for_reply(await m.send(scene.room, "!undo"))
        assert (
            body(undone)
            == f"{scene.mod.user_id} undid their last action: unmuted {alice.user_id} in Carers."
        )
        await until_level(homeserver, scene, alice.user_id, None)
        await m.wait_for_reply(await m.send(scene.room, f"!mute {alice.user_id} 30m"))
        await until_level(homeserver, scene, alice.user_id, -1)

        # By pill, as Element sends a mention: the display name in the plain
        # body (Alice chose one like a moderator's) is not what is read.
        await (await homeserver.api(alice)).request(
            "PUT",
            f"/_matrix/client/v3/profile/{alice.user_id}/displayname",
            {"displayname": "mod"},
        )
        pill = f'<a href="https://matrix.to/#/{alice.user_id}">mod</a>'
        sent = await m.client.room_send(
            mods_room,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "!warn mod Please be gentle",
                "format": "org.matrix.custom.html",
                "formatted_body": f"!warn {pill} Please be gentle",
            },
            ignore_unverified_devices=True,
        )
        warned = await m.wait_for_reply(str(getattr(sent, "event_id", "")))
        assert body(warned).startswith(f"{scene.mod.user_id} warned {alice.user_id}")
        await a.accept_invite()
        await a.wait_for(lambda ev: "Please be gentle" in body(ev))

    # The mute ends while the bot is down: lifted when it is back.
    with sqlite3.connect(scene.config.state_dir / "bot.db") as db:
        db.execute("UPDATE scheduled_jobs SET due = ? WHERE kind = 'unmute'", (time.time() - 5,))
    async with watching(homeserver, scene, state) as m:  # the same identity, a new session
        await until_level(homeserver, scene, alice.user_id, None)
        # A ban typed in the moderators' room: every room of the community.
        banned = await m.wait_for_reply(await m.send(mods_room, f"!ban {alice.user_id} spam"))
        assert "across the community" in body(banned)
        for room in (scene.ids["space"], scene.room):
            async with asyncio.timeout(30):
                while await membership(homeserver, scene, room, alice.user_id) != "ban":  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        unbanned = await m.wait_for_reply(await m.send(mods_room, "!undo"))
        assert "unbanned" in body(unbanned)
        for room in (scene.ids["space"], scene.room):
            async with asyncio.timeout(30):
                while await membership(homeserver, scene, room, alice.user_id) != "leave":  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        await m.send(mods_room, f"!ban {alice.user_id} spam, after all")

        # A raid: every group room locked from the moderators' room, then unlocked.
        await m.wait_for_reply(await m.send(mods_room, "!lock"))
        api = await homeserver.api(scene.admin)
        levels = await api.state(scene.room, "m.room.power_levels")
        assert levels["events_default"] == 50
        await m.wait_for_reply(await m.send(mods_room, "!unlock"))
        async with asyncio.timeout(30):
            while (await api.state(scene.room, "m.room.power_levels"))["events_default"] != 0:  # noqa: ASYNC110
                await asyncio.sleep(0.2)

        trail = await m.wait_for_reply(await m.send(mods_room, f"!audit {alice.user_id}"))
        # A heading, then one list item each: "- <date> <time> UTC <moderator> <action> …".
        actions = [line.split()[5] for line in body(trail).splitlines()[2:]]
        assert actions == ["redact", "mute", "undo", "mute", "warn", "ban", "undo", "ban"]


async def test_reports_from_elements_menu_and_by_command_reach_the_moderators(
    homeserver: Homeserver, state: Path
) -> None:
    scene = with_reports(await set_up(homeserver, state, {}), state)
    mods_room = scene.ids["moderators"]
    alice, bob = await homeserver.user("alice"), await homeserver.user("bob")
    async with (
        running_agent(scene.community, state / "agent-home"),
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, alice, state / "alice") as a,
        in_group(homeserver, scene, bob, state / "bob") as b,
    ):
        rude = await b.send(scene.room, "something unkind")
        # Element's "Report": the client API's report endpoint.
        await (await homeserver.api(alice)).request(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(scene.room)}/report/{quote(rude)}",
            {"reason": HOSTILE_REASON},
        )
        forwarded = await m.wait_for(
            lambda ev: ev.room_id == mods_room and "unkind to a newcomer" in body(ev)
        )
        assert quote(rude, safe="$") in body(forwarded)
        assert alice.user_id not in body(forwarded)
        # The reporter's words are shown as typed: no link of theirs, no markup.
        assert HOSTILE_REASON in body(forwarded)
        html = forwarded.content["formatted_body"]
        assert "evil.example" not in html.replace("(https://evil.example/login)", "")
        assert "<b>" not in html
        assert html.count("<a ") == 1  # the bot's own link to the message

        # !report in reply to the message: removed from the room at once,
        # confirmed to the reporter alone.
        sent = await a.client.room_send(
            scene.room,
            "m.room.message",
            {
                "msgtype": "m.text",
                "body": "!report mocking my diagnosis",
                "m.relates_to": {"m.in_reply_to": {"event_id": rude}},
            },
            ignore_unverified_devices=True,
        )
        notice = await m.wait_for(lambda ev: "mocking my diagnosis" in body(ev))
        assert alice.user_id not in body(notice)
        await a.accept_invite()
        await a.wait_for(lambda ev: "the moderators have your report" in body(ev))
        await until_redacted(homeserver, scene, str(getattr(sent, "event_id", "")))


HOSTILE_REASON = "unkind to a newcomer [log in here](https://evil.example/login) <b>now</b>"


async def test_mention_spam_and_slow_mode(homeserver: Homeserver, state: Path) -> None:
    scene = await set_up(homeserver, state, {"mentions": {"mentions": 3, "seconds": 60}})
    alice = await homeserver.user("alice")
    async with (
        watching(homeserver, scene, state) as m,
        in_group(homeserver, scene, alice, state / "alice") as a,
    ):
        people = [f"@someone{i}:localhost" for i in range(4)]
        sent = await a.client.room_send(
            scene.room,
            "m.room.message",
            {"msgtype": "m.text", "body": "look at this", "m.mentions": {"user_ids": people}},
            ignore_unverified_devices=True,
        )
        await until_redacted(homeserver, scene, str(getattr(sent, "event_id", "")))
        await a.accept_invite()
        note = await a.wait_for(lambda ev: "A gentle note" in body(ev))
        assert "mentioned a lot of people" in body(note)

        # A moderator raises the group's mention limit in chat: kept as the
        # bot's own state, shown by !protections, and applied at once.
        await m.join(scene.room)
        raised = await m.wait_for_reply(
            await m.send(scene.room, "!protections set mentions.mentions 10")
        )
        assert body(raised) == f"{scene.mod.user_id} set Carers's mentions.mentions to 10."
        shown = await m.wait_for_reply(await m.send(scene.room, "!protections"))
        assert "Changed in chat: mentions.mentions = 10" in body(shown)
        kept = await (await homeserver.api(scene.admin)).state(
            scene.room, "org.hearth.protections", "carers"
        )
        assert kept == {"mentions.mentions": 10}
        allowed = await a.client.room_send(
            scene.room,
            "m.room.message",
            {"msgtype": "m.text", "body": "thanks all", "m.mentions": {"user_ids": people}},
            ignore_unverified_devices=True,
        )

        # Slow mode, set by a moderator: a second message too soon is removed.
        await m.wait_for_reply(await m.send(scene.room, "!slowmode 5"))
        await asyncio.sleep(5)  # Alice's last message above was less than 5 s ago
        first = await a.send(scene.room, "one thought")
        second = await a.send(scene.room, "and another")
        await until_redacted(homeserver, scene, second)
        assert await content_of(homeserver, scene, first)
        assert await content_of(homeserver, scene, str(getattr(allowed, "event_id", "")))


@pytest.mark.parametrize(
    ("said", "recommendation"),
    [("spam", "m.ban"), ("takedown spam", "org.matrix.msc4204.takedown")],
)
async def test_a_ban_published_by_one_community_is_applied_by_anothers_bot(
    homeserver: Homeserver, state: Path, said: str, recommendation: str
) -> None:
    """Community A publishes its bans as a policy list and shares it with
    community B's bot, which follows it: a troll A bans is banned in B. A
    takedown (MSC4204) also removes what the troll posted there."""
    mod_a, bot_a, mod_b, bot_b, troll = [
        await homeserver.user(name) for name in ("mod-a", "bot-a", "mod-b", "bot-b", "troll")
    ]
    a = await make_community(
        homeserver,
        state / "a",
        [{"key": "carers", "name": "Carers"}],
        moderators=[mod_a],
        bots=[bot_a],
        extra={"ban_list": {"share_with": [bot_b.user_id]}},
    )
    b = await make_community(
        homeserver,
        state / "b",
        [{"key": "walkers", "name": "Walkers"}],
        moderators=[mod_b],
        bots=[bot_b],
        key="harbour",
    )
    ids_a = (await provision(a.load(), a.path, out=io.StringIO())).room_ids
    ids_b = (await provision(b.load(), b.path, out=io.StringIO())).room_ids
    ban_list, b_room = ids_a["ban-list"], ids_b["group/walkers/general"]
    await (await homeserver.api(b.admin)).invite(b_room, troll.user_id)
    troll_api = await homeserver.api(troll)
    await troll_api.request("POST", f"/_matrix/client/v3/join/{b_room}", {})
    config_a = homeserver.bot_config(
        bot_a,
        state / "bot-a",
        moderators_room=ids_a["moderators"],
        feature_sections={"moderation": ModerationConfig(community=a.path)},
    )
    following = ModerationConfig(community=b.path, follow=(ban_list,), policy_poll_s=1)
    config_b = homeserver.bot_config(
        bot_b,
        state / "bot-b",
        moderators_room=ids_b["moderators"],
        feature_sections={"moderation": following},
    )
    async with (
        running_bot(config_a),
        running_bot(config_b),
        member(homeserver, mod_a, state / "mod-a") as m,
    ):
        await wait_joined(homeserver, a.admin, ids_a["moderators"], bot_a.user_id)
        await wait_joined(homeserver, a.admin, ban_list, bot_b.user_id)
        await wait_joined(homeserver, b.admin, b_room, bot_b.user_id)
        # Posted once B's bot is in the room (its history starts at joining).
        posted = await troll_api.request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(b_room)}/send/m.room.message/troll-1",
            {"msgtype": "m.text", "body": "buy my cure"},
        )
        await m.join(ids_a["moderators"])
        banned = await m.wait_for_reply(
            await m.send(ids_a["moderators"], f"!ban {troll.user_id} {said}")
        )
        assert "across the community" in body(banned)
        # The rule, in the spec's shape Draupnir and Meowlnir read.
        api_a = await homeserver.api(a.admin)
        async with asyncio.timeout(30):
            while True:
                try:
                    rule = await api_a.state(
                        ban_list, "m.policy.rule.user", f"rule:{troll.user_id}"
                    )
                    break
                except HomeserverError:
                    await asyncio.sleep(0.2)
        assert rule == {"entity": troll.user_id, "recommendation": recommendation, "reason": "spam"}
        # Community B's bot follows the list: the troll is banned there too.
        api_b = await homeserver.api(b.admin)
        await until_membership(api_b, b_room, troll.user_id, "ban")
        path = f"/_matrix/client/v3/rooms/{b_room}/event/{posted['event_id']}"
        if recommendation == "m.ban":
            assert (await api_b.request("GET", path))["content"]["body"] == "buy my cure"
        else:
            async with asyncio.timeout(30):
                while (await api_b.request("GET", path)).get("content"):  # noqa: ASYNC110
                    await asyncio.sleep(0.2)


async def test_two_moderators_conflicting_at_once_end_as_the_later_said(
    homeserver: Homeserver, state: Path
) -> None:
    """A ban and an unban of the same member, sent at the same moment by two
    moderators: both are answered, and the member ends as the one handled
    last left them (events of one room are handled in order)."""
    peer = await homeserver.user("peer-mod")
    scene = await set_up(homeserver, state, {}, more_moderators=(peer,))
    mods_room = scene.ids["moderators"]
    alice = await homeserver.user("alice")
    async with (
        watching(homeserver, scene, state) as m,
        member(homeserver, peer, state / "peer") as p,
        in_group(homeserver, scene, alice, state / "alice"),
    ):
        await p.join(mods_room)
        ban, unban = await asyncio.gather(
            m.send(mods_room, f"!ban {alice.user_id} spam"),
            p.send(mods_room, f"!unban {alice.user_id}"),
        )
        banned, unbanned = await m.wait_for_reply(ban), await m.wait_for_reply(unban)
        replies = [
            ev.event_id for ev in m.received if ev.event_id in (banned.event_id, unbanned.event_id)
        ]
        wanted = "ban" if replies[-1] == banned.event_id else "leave"
        await until_membership(await homeserver.api(scene.admin), scene.room, alice.user_id, wanted)
        assert await membership(homeserver, scene, scene.room, alice.user_id) == wanted
