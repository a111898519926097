"""Onboarding end to end, on a real Synapse that loads Hearth's module: a
newcomer registers with a group's token, is welcomed in a DM, accepts the
code of conduct, answers, and a moderator lets them in."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bots.base.errors import HomeserverError
from bots.devserver.synapse_config import registrations_dir
from bots.framework.commands.authorize import REFUSAL
from bots.framework.commands.spec import MODERATOR, REVIEWER
from bots.onboarding.config import OnboardingConfig
from bots.onboarding.leaving import DM_ONLY, ERASING
from bots.onboarding.texts import AGREE_HINT
from provisioning.provision import provision
from provisioning.tokens import Tokens
from tests.support.community import running_agent
from tests.support.homeserver import Homeserver, User, member, running_bot, wait_joined
from tests.support.member_client import MemberClient
from tests.support.onboarding_scene import (
    QUESTION,
    accept_dm,
    newcomer_with_token,
    onboarding,
    set_up,
)
from tests.support.registration import register

pytestmark = pytest.mark.integration

HOSTILE_ANSWER = "My <b>mum</b> **[click here](https://evil.example/login)**\u202e"
HOSTILE_NAME = "**[Moderator](https://evil.example)** <i>Team</i>"


async def test_the_token_path_from_registration_to_the_group(
    homeserver: Homeserver, state: Path
) -> None:
    async with onboarding(homeserver, state) as scene:
        user = await newcomer_with_token(homeserver, scene)
        async with member(homeserver, user, state / "newcomer") as n:
            # A display name that tries to pass for staff, with a link.
            await n.client.set_displayname(HOSTILE_NAME)
            dm = await accept_dm(n)
            welcome = await n.wait_for(lambda ev: ev.room_id == dm, timeout=30)
            assert welcome.sender == scene.bot.user_id
            assert welcome.decrypted
            assert "Be kind." in welcome.content["body"]  # the community's code of conduct
            assert "display name" in welcome.content["body"]  # the privacy advice
            assert AGREE_HINT in welcome.content["body"]

            await n.send(dm, "!agree")
            question = await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
            assert question.room_id == dm
            await n.send(dm, HOSTILE_ANSWER)
            await n.wait_for(lambda ev: "A moderator will look" in ev.content.get("body", ""))

            m, mods_room = scene.mod, scene.ids["moderators"]
            application = await m.wait_for(
                lambda ev: ev.room_id == mods_room and user.user_id in ev.content.get("body", "")
            )
            body = application.content["body"]
            assert "registered with an invitation code" in body
            # The answer is shown as typed: neither its HTML nor its Markdown is
            # rendered, and its link leads nowhere.
            assert f"Q: {QUESTION}\nA: {HOSTILE_ANSWER.rstrip(chr(0x202E))}" in body
            assert "\u202e" not in body
            html = application.content["formatted_body"]
            assert "<strong>Q:</strong>" in html  # the bot's own Markdown is formatted
            assert "&lt;b&gt;mum&lt;/b&gt; **[click here](https://evil.example/login)**" in html
            assert "evil.example" not in html.replace("(https://evil.example/login)", "")
            assert "<b>" not in html
            assert "<a " not in html

            await m.send(mods_room, f"!approve {user.user_id}")
            approved = f"{m.user_id} approved {user.user_id}'s application to Carers."
            await m.wait_for(lambda ev: ev.content.get("body") == approved)
            await n.wait_for(lambda ev: "you're in" in ev.content.get("body", ""))
            group_room = scene.ids["group/carers/general"]
            async with asyncio.timeout(30):
                while group_room not in n.client.invited_rooms:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            assert scene.ids["space"] in n.client.invited_rooms
            await n.join(group_room)
            greeting = await n.wait_for(
                lambda ev: ev.room_id == group_room and "welcome" in ev.content.get("body", "")
            )
            assert greeting.content["m.mentions"] == {"user_ids": [user.user_id]}
            # Named by a pill to their ID: Element shows their name, the bot never does.
            pill = f'<a href="https://matrix.to/#/{user.user_id}">{user.user_id}</a>'
            assert pill in greeting.content["formatted_body"]
            for said in (welcome, application, greeting):
                assert "[Moderator]" not in said.content.get("formatted_body", "")

            # A second moderator's decision changes nothing and says so.
            await m.send(mods_room, f"!deny {user.user_id} late")
            late = await m.wait_for(lambda ev: "was already approved" in ev.content.get("body", ""))
            assert (
                late.content["body"]
                == f"{user.user_id}'s application was already approved by {m.user_id}."
            )


async def test_a_restart_mid_way_repeats_nothing_and_a_denial_is_kind(
    homeserver: Homeserver, state: Path
) -> None:
    setup = await set_up(homeserver, state)
    ids, mods_room = setup.ids, setup.ids["moderators"]
    group_room = ids["group/carers/general"]
    user = await newcomer_with_token(homeserver, setup)
    async with (
        running_agent(setup.community, state / "agent-home"),
        member(homeserver, setup.mod, state / "mod") as m,
        member(homeserver, user, state / "newcomer") as n,
    ):
        async with running_bot(setup.config):
            await wait_joined(homeserver, setup.community.admin, mods_room, setup.bot.user_id)
            await m.join(mods_room)
            dm = await accept_dm(n)
            await n.wait_for(lambda ev: ev.room_id == dm)
            await n.send(dm, "!agree")
            await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
        # Stopped while the newcomer is answering; started again.
        async with running_bot(setup.config):
            await n.send(dm, "My dad")
            await n.wait_for(lambda ev: "A moderator will look" in ev.content.get("body", ""))
            bodies = [ev.content.get("body", "") for ev in n.received if ev.room_id == dm]
            assert sum("code of conduct" in b for b in bodies) == 1
            assert sum(QUESTION in b for b in bodies) == 1

            # Decisions are taken in the moderators' room only.
            await m.join(group_room)
            refused = await m.wait_for_reply(await m.send(group_room, f"!approve {user.user_id}"))
            assert refused.content["body"] == REFUSAL
            nobody = await m.wait_for_reply(await m.send(mods_room, "!approve @nobody:localhost"))
            assert nobody.content["body"] == "There's no application from @nobody:localhost."

            await m.send(mods_room, f"!deny {user.user_id} This group is for carers only.")
            denied = await n.wait_for(lambda ev: "could not" in ev.content.get("body", ""))
            said = "The moderators said: This group is for carers only."
            assert said in denied.content["body"]
            await m.wait_for(lambda ev: "denied" in ev.content.get("body", ""))
            assert group_room not in n.client.invited_rooms


async def test_a_knock_and_then_join(homeserver: Homeserver, state: Path) -> None:
    setup = await set_up(homeserver, state, join="knock")
    ids, mods_room = setup.ids, setup.ids["moderators"]
    group_room = ids["group/carers/general"]
    alice = await homeserver.user("alice")
    async with (
        running_agent(setup.community, state / "agent-home"),
        member(homeserver, setup.mod, state / "mod") as m,
        member(homeserver, alice, state / "alice") as a,
        running_bot(setup.config),
    ):
        await wait_joined(homeserver, setup.community.admin, mods_room, setup.bot.user_id)
        await wait_joined(homeserver, setup.community.admin, group_room, setup.bot.user_id)
        await m.join(mods_room)
        api = await homeserver.api(alice)
        await api.request(
            "POST", f"/_matrix/client/v3/knock/{group_room}", {"reason": "I care for my mum"}
        )
        dm = await accept_dm(a)
        await a.wait_for(
            lambda ev: ev.room_id == dm and "code of conduct" in ev.content.get("body", "")
        )
        # Knocking again while the request is open starts nothing new.
        await api.request(
            "POST", f"/_matrix/client/v3/knock/{group_room}", {"reason": "Hello? It's me again"}
        )
        await a.send(dm, "!agree")
        await a.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
        await a.send(dm, "My mum")
        note = await m.wait_for(lambda ev: "asked to join (knock)" in ev.content.get("body", ""))
        assert "Their note: I care for my mum" in note.content["body"]

        await m.send(mods_room, f"!deny {alice.user_id} Please ask again in a month.")
        await a.wait_for(lambda ev: "Please ask again in a month." in ev.content.get("body", ""))
        admin_api = await homeserver.api(setup.community.admin)
        for _ in range(100):
            knock = await admin_api.state(group_room, "m.room.member", alice.user_id)
            if knock["membership"] == "leave":
                break
            await asyncio.sleep(0.1)
        assert knock["membership"] == "leave"  # the knock was turned down

        assert sum("code of conduct" in ev.content.get("body", "") for ev in a.received) == 1
        assert sum("asked to join" in ev.content.get("body", "") for ev in m.received) == 1

        # A month later (or so), from the DM: !join asks again.
        await a.send(dm, "!join Carers")
        await until_count(a, "code of conduct", 2)
        await a.send(dm, "!agree")
        await until_count(a, QUESTION, 2)
        await a.send(dm, "Still my mum")
        await m.wait_for(lambda ev: "asked to join with !join" in ev.content.get("body", ""))
        await m.send(mods_room, f"!approve {alice.user_id}")
        async with asyncio.timeout(30):
            while group_room not in a.client.invited_rooms:  # noqa: ASYNC110
                await asyncio.sleep(0.1)


async def until_count(m: MemberClient, text: str, n: int, timeout: float = 30) -> None:
    """Until *n* received messages contain *text*."""
    async with asyncio.timeout(timeout):
        while sum(text in ev.content.get("body", "") for ev in m.received) < n:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_leaving_and_erasing_ones_account(homeserver: Homeserver, state: Path) -> None:
    async with onboarding(homeserver, state) as scene:
        user = await newcomer_with_token(homeserver, scene)
        m, mods_room = scene.mod, scene.ids["moderators"]
        group_room = scene.ids["group/carers/general"]
        admin_api = await homeserver.api(scene.community.admin)
        async with member(homeserver, user, state / "newcomer") as n:
            dm = await accept_dm(n)
            await n.wait_for(lambda ev: ev.room_id == dm)
            await n.send(dm, "!agree")
            await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
            await n.send(dm, "My mum")
            await m.wait_for(lambda ev: user.user_id in ev.content.get("body", ""))
            await m.send(mods_room, f"!approve {user.user_id}")
            async with asyncio.timeout(30):
                while group_room not in n.client.invited_rooms:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await n.join(group_room)
            await wait_joined(homeserver, scene.community.admin, group_room, user.user_id)

            elsewhere = await n.wait_for_reply(await n.send(group_room, "!leave"))
            assert elsewhere.content["body"] == DM_ONLY
            left = await n.wait_for_reply(await n.send(dm, "!leave"))
            assert "taken you out of the community's rooms" in left.content["body"]
            for _ in range(100):
                membership = await admin_api.state(group_room, "m.room.member", user.user_id)
                if membership["membership"] == "leave":
                    break
                await asyncio.sleep(0.1)
            assert membership["membership"] == "leave"

            explained = await n.wait_for_reply(await n.send(dm, "!erase-me"))
            assert "cannot be undone" in explained.content["body"]
            assert "stay, still encrypted" in explained.content["body"]
            bye = await n.wait_for_reply(await n.send(dm, "!erase-me confirm"))
            assert bye.content["body"] == ERASING
            path = f"/_synapse/admin/v2/users/{user.user_id}"
            for _ in range(100):
                account = await admin_api.request("GET", path)
                if account.get("deactivated"):
                    break
                await asyncio.sleep(0.2)
    assert account["deactivated"] is True
    assert account["erased"] is True


# Synapse's own defaults, but for sign-up: the 50 newcomers come from one
# address here, where in life each has their own.
DEFAULT_LIMITS: dict[str, Any] = {
    "rc_message": {"per_second": 0.2, "burst_count": 10},
    "rc_room_creation": {"per_second": 0.016, "burst_count": 10},
    "rc_joins": {"local": {"per_second": 0.1, "burst_count": 10}},
    "rc_invites": {
        "per_room": {"per_second": 0.3, "burst_count": 10},
        "per_user": {"per_second": 0.003, "burst_count": 5},
        "per_issuer": {"per_second": 0.3, "burst_count": 10},
    },
}


async def test_fifty_newcomers_at_once_are_each_welcomed_once(tmp_path: Path) -> None:
    hs = await Homeserver.start(tmp_path / "hs", overrides=DEFAULT_LIMITS)
    try:
        setup = await set_up(hs, tmp_path)
        section = setup.config.feature_sections["onboarding"]
        assert isinstance(section, OnboardingConfig)
        # Straight away: these newcomers never start a client.
        quick = section.model_copy(update={"wait_for_verification_s": 0})
        config = setup.config.model_copy(update={"feature_sections": {"onboarding": quick}})
        admin = setup.community.admin
        tokens = Tokens(await hs.api(admin), admin.user_id)
        token = (await tokens.create(50, timedelta(days=1), "carers")).token
        async with running_agent(setup.community, tmp_path / "agent-home"), running_bot(config):
            newcomers: list[User] = []
            for _ in range(50):
                status, data, user = await register(hs.base_url, token)
                assert status == 200, data
                assert user is not None
                newcomers.append(user)
            bot_api = await hs.api(setup.bot)
            direct_path = f"/_matrix/client/v3/user/{setup.bot.user_id}/account_data/m.direct"
            async with asyncio.timeout(240):
                while True:
                    with contextlib.suppress(HomeserverError):
                        direct = await bot_api.request("GET", direct_path)
                        if all(u.user_id in direct for u in newcomers):
                            break
                    await asyncio.sleep(1)
            admin_api = await hs.api(admin)
            for user in newcomers:
                (dm,) = direct[user.user_id]
                path = f"/_synapse/admin/v1/rooms/{dm}/messages?dir=b&limit=100"
                events = (await admin_api.request("GET", path))["chunk"]
                said = [e for e in events if e["sender"] == setup.bot.user_id]
                said = [e for e in said if e["type"] == "m.room.encrypted"]
                assert len(said) == 1, f"{len(said)} welcomes"
        assert list(registrations_dir(hs.dir).glob("*.json")) == []
    finally:
        await hs.stop()


async def test_a_removed_groups_token_a_withdrawal_and_a_stranger(
    homeserver: Homeserver, state: Path
) -> None:
    async with onboarding(homeserver, state) as scene:
        admin = scene.community.admin
        tokens = Tokens(await homeserver.api(admin), admin.user_id)
        # A token made for a group since taken out of the community file.
        token = (await tokens.create(1, timedelta(days=1), "gone")).token
        status, data, user = await register(homeserver.base_url, token)
        assert status == 200, data
        assert user is not None
        m, mods_room = scene.mod, scene.ids["moderators"]
        api = await homeserver.api(user)
        # A display name made to look like a moderator's changes nothing:
        # the bot names people by their Matrix ID.
        await api.request(
            "PUT", f"/_matrix/client/v3/profile/{user.user_id}/displayname", {"displayname": "mod"}
        )
        async with member(homeserver, user, state / "newcomer") as n:
            dm = await accept_dm(n)
            await n.wait_for(lambda ev: ev.room_id == dm)
            await n.send(dm, "!agree")
            await until_count(n, "Which group are you looking for?", 1, timeout=60)
            await n.send(dm, "the one for gardeners")
            await until_count(n, "Which group are you looking for?", 2, timeout=60)
            await n.send(dm, "Carers")
            await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
            await n.send(dm, "My sister")
            application = await m.wait_for(
                lambda ev: ev.room_id == mods_room and user.user_id in ev.content.get("body", "")
            )
            assert "registered without a group's invitation code" in application.content["body"]
            # Leaving the DM withdraws the application; the moderators are told.
            await n.client.room_leave(dm)
            gone = await m.wait_for(lambda ev: "withdrew" in ev.content.get("body", ""))
            assert gone.content["body"] == f"{user.user_id} withdrew their application to Carers."

        # Someone who never applied, in a DM they opened with the bot.
        alice = await homeserver.user("alice")
        async with member(homeserver, alice, state / "alice") as a:
            room = await (await homeserver.api(alice)).create_room(
                {"preset": "trusted_private_chat", "is_direct": True, "invite": [scene.bot.user_id]}
            )
            await wait_joined(homeserver, alice, room, scene.bot.user_id)
            await a.sync_until_joined(room)
            await a.send(room, "hello, is anyone there?")
            nothing = await a.wait_for_reply(await a.send(room, "!agree"))
            assert nothing.content["body"] == "There's nothing to agree to here."
            assert not [ev for ev in a.received if ev.sender == scene.bot.user_id][1:]


async def test_a_stalled_application_is_reminded_expires_late_and_is_reopened(
    homeserver: Homeserver, state: Path
) -> None:
    """The reminder and the expiry fall due while the bot is down: they run,
    late and in order, when it is back; a moderator then reopens."""
    setup = await set_up(homeserver, state)
    mods_room = setup.ids["moderators"]
    user = await newcomer_with_token(homeserver, setup)
    async with (
        running_agent(setup.community, state / "agent-home"),
        member(homeserver, setup.mod, state / "mod") as m,
        member(homeserver, user, state / "newcomer") as n,
    ):
        async with running_bot(setup.config):
            await wait_joined(homeserver, setup.community.admin, mods_room, setup.bot.user_id)
            await m.join(mods_room)
            dm = await accept_dm(n)
            await n.wait_for(lambda ev: ev.room_id == dm)
            await n.send(dm, "!agree")
            await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
            await m.send(mods_room, f"!reopen {user.user_id}")
            not_yet = await m.wait_for(lambda ev: "Only an expired" in ev.content.get("body", ""))
            assert not_yet.content["body"].endswith(f"{user.user_id}'s is answering.")
        # Down for two weeks, as far as the bot's jobs can tell.
        with sqlite3.connect(setup.config.state_dir / "bot.db") as db:
            now = time.time()
            for kind, ago in (("remind", 20), ("expire", 10)):
                db.execute(
                    "UPDATE scheduled_jobs SET due = ? WHERE kind = ? AND state = 'pending'",
                    (now - ago, kind),
                )
        async with running_bot(setup.config):
            await n.wait_for(lambda ev: "gentle reminder" in ev.content.get("body", ""))
            await n.wait_for(lambda ev: "closed your application" in ev.content.get("body", ""))
            bodies = [ev.content.get("body", "") for ev in n.received if ev.room_id == dm]
            reminder = next(i for i, b in enumerate(bodies) if "gentle reminder" in b)
            assert "closed your application" in bodies[reminder + 1]
            await m.send(mods_room, f"!approve {user.user_id}")
            late = await m.wait_for(lambda ev: "not ready for" in ev.content.get("body", ""))
            assert late.content["body"].endswith("(expired).")

            await m.send(mods_room, f"!reopen {user.user_id}")
            await n.wait_for(lambda ev: "reopened your application" in ev.content.get("body", ""))
            await until_count(n, QUESTION, 2)
            await n.send(dm, "My brother")
            application = await m.wait_for(
                lambda ev: ev.room_id == mods_room and "A: My brother" in ev.content.get("body", "")
            )
            assert user.user_id in application.content["body"]


async def test_a_restart_at_every_step_repeats_nothing(homeserver: Homeserver, state: Path) -> None:
    """Registered while the bot is down, then a restart after each step:
    each message arrives exactly once, and the newcomer ends up in the group."""
    setup = await set_up(homeserver, state)
    mods_room, group_room = setup.ids["moderators"], setup.ids["group/carers/general"]
    admin = setup.community.admin
    user = await newcomer_with_token(homeserver, setup)  # the bot is not running
    async with (
        running_agent(setup.community, state / "agent-home"),
        member(homeserver, setup.mod, state / "mod") as m,
        member(homeserver, user, state / "newcomer") as n,
    ):
        async with running_bot(setup.config):
            await wait_joined(homeserver, admin, mods_room, setup.bot.user_id)
            await m.join(mods_room)
            dm = await accept_dm(n)
            await n.wait_for(
                lambda ev: ev.room_id == dm and AGREE_HINT in ev.content.get("body", "")
            )
        async with running_bot(setup.config):  # the code of conduct is waiting
            await n.send(dm, "!agree")
            await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
        async with running_bot(setup.config):  # answering
            await n.send(dm, "My partner")
            await m.wait_for(lambda ev: "A: My partner" in ev.content.get("body", ""))
        async with running_bot(setup.config):  # pending review
            await m.send(mods_room, f"!approve {user.user_id}")
            await n.wait_for(lambda ev: "you're in" in ev.content.get("body", ""))
            async with asyncio.timeout(30):
                while group_room not in n.client.invited_rooms:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        async with running_bot(setup.config):  # approved, not yet joined
            await n.join(group_room)
            await n.wait_for(
                lambda ev: ev.room_id == group_room and "welcome" in ev.content.get("body", "")
            )
            await m.send(mods_room, "!onboarding stats")
            stats = await m.wait_for(lambda ev: "Applications:" in ev.content.get("body", ""))
            assert "approved: 1" in stats.content["body"]

        def said_to(who: MemberClient, room: str) -> list[str]:
            return [
                ev.content.get("body", "")
                for ev in who.received
                if ev.sender == setup.bot.user_id and ev.room_id == room
            ]

        to_newcomer, to_moderators = said_to(n, dm), said_to(m, mods_room)
        for text in (AGREE_HINT, QUESTION, "A moderator will look", "you're in"):
            assert sum(text in b for b in to_newcomer) == 1, text
        assert sum("A: My partner" in b for b in to_moderators) == 1
        assert sum("Please welcome" in b for b in said_to(n, group_room)) == 1


async def test_only_the_groups_own_moderators_decide(homeserver: Homeserver, state: Path) -> None:
    """A member's !approve is refused, and so is one from the moderator of
    another group, who reviews in the same room; the carers' own moderator
    decides."""
    young_mod, carers_mod = await homeserver.users("young-mod", "carers-mod")
    setup = await set_up(
        homeserver,
        state,
        more_groups=({"key": "young", "name": "Young adults", "moderators": [young_mod.user_id]},),
    )
    setup.community.data["groups"][0]["moderators"] = [carers_mod.user_id]
    setup.community.save()
    ids = (
        await provision(setup.community.load(), setup.community.path, out=io.StringIO())
    ).room_ids
    mods_room = ids["moderators"]
    user = await newcomer_with_token(homeserver, setup)
    async with (
        running_agent(setup.community, state / "agent-home"),
        running_bot(setup.config),
        member(homeserver, young_mod, state / "young-mod") as y,
        member(homeserver, carers_mod, state / "carers-mod") as c,
        member(homeserver, user, state / "newcomer") as n,
    ):
        await wait_joined(homeserver, setup.community.admin, mods_room, setup.bot.user_id)
        await y.join(mods_room)
        await c.join(mods_room)
        dm = await accept_dm(n)
        await n.wait_for(lambda ev: ev.room_id == dm)
        await n.send(dm, "!agree")
        await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
        await n.send(dm, "My aunt")
        # Both see the application in the moderators' room.
        await y.wait_for(lambda ev: "A: My aunt" in ev.content.get("body", ""))
        await c.wait_for(lambda ev: "A: My aunt" in ev.content.get("body", ""))

        mine = await n.wait_for_reply(await n.send(dm, f"!approve {user.user_id}"))
        assert mine.content["body"] == REFUSAL
        other = await y.wait_for_reply(await y.send(mods_room, f"!approve {user.user_id}"))
        assert other.content["body"] == REFUSAL
        nothing = await y.wait_for_reply(await y.send(mods_room, "!pending"))
        assert nothing.content["body"] == "No applications are waiting for you."
        # Reviewing is all a group's moderator may do in that room: their
        # level there is below a moderator's.
        admin_api = await homeserver.api(setup.community.admin)
        levels = await admin_api.state(mods_room, "m.room.power_levels", "")
        assert levels["users"][young_mod.user_id] == REVIEWER < MODERATOR

        waiting = await c.wait_for_reply(await c.send(mods_room, "!pending"))
        assert user.user_id in waiting.content["body"]
        await c.send(mods_room, f"!approve {user.user_id}")
        await n.wait_for(lambda ev: "you're in" in ev.content.get("body", ""))


async def test_a_day_after_approval_one_reminder_to_keep_ones_history(
    homeserver: Homeserver, state: Path
) -> None:
    """A member who has not said their backup is set up is reminded once, a
    day after approval, even if the bot was down at the time; 👍 on the
    reminder ends it. One who said `!backup done` first is never reminded."""
    setup = await set_up(homeserver, state)
    # The bot's clock is set a day ahead below: events stay recent enough.
    config = setup.config.model_copy(update={"max_event_age_s": 3 * 86400})
    mods_room = setup.ids["moderators"]
    first = await newcomer_with_token(homeserver, setup)
    second = await newcomer_with_token(homeserver, setup)
    reminder = "unless you have Secure Backup"
    async with (
        running_agent(setup.community, state / "agent-home"),
        member(homeserver, setup.mod, state / "mod") as m,
        member(homeserver, first, state / "first") as a,
        member(homeserver, second, state / "second") as b,
    ):
        dms: dict[str, str] = {}
        async with running_bot(config):
            await wait_joined(homeserver, setup.community.admin, mods_room, setup.bot.user_id)
            await m.join(mods_room)
            for n in (a, b):
                dms[n.user_id] = dm = await accept_dm(n)
                await n.wait_for(lambda ev, dm=dm: ev.room_id == dm)
                await n.send(dm, "!agree")
                await n.wait_for(lambda ev: QUESTION in ev.content.get("body", ""))
                await n.send(dm, "My dad")
                await n.wait_for(lambda ev: "A moderator will look" in ev.content.get("body", ""))
                await m.send(mods_room, f"!approve {n.user_id}")
                await n.wait_for(lambda ev: "you're in" in ev.content.get("body", ""))
            done = await a.send(dms[a.user_id], "!backup done")
            thanks = await a.wait_for_reply(done)
            assert "won't mention it again" in thanks.content["body"]

        # A day and a minute later (the bot was down when it fell due).
        def later() -> float:
            return time.time() + 86400 + 60

        async with running_bot(config, clock=later):
            reminded = await b.wait_for(lambda ev: reminder in ev.content.get("body", ""), 60)
            assert reminded.room_id == dms[b.user_id]
            assert "Settings → Security & Privacy → Secure Backup" in reminded.content["body"]
            await b.send_event(
                dms[b.user_id],
                "m.reaction",
                {
                    "m.relates_to": {
                        "rel_type": "m.annotation",
                        "event_id": reminded.event_id,
                        "key": "👍",
                    }
                },
            )
            await b.wait_for(lambda ev: "won't mention it again" in ev.content.get("body", ""))
        async with running_bot(config, clock=lambda: time.time() + 3 * 86400):
            await asyncio.sleep(3)
        for n in (a, b):
            said = [ev for ev in n.received if reminder in ev.content.get("body", "")]
            assert len(said) == (0 if n is a else 1), n.user_id
