"""Shared ban lists with Draupnir, both ways, on a real Synapse.

Draupnir's side is its own policy-list code (@gnuxie/matrix-protection-
suite, the library Draupnir is built on), driven from the project's Node
tooling by ``tests/interop/js/policy_list.mjs``: it reads the ban list a
Hearth community publishes and finds the rules Draupnir would act on; it
writes rules into a list of its own, as Draupnir's ban and hashed takedown
commands do, and the Hearth bot that follows that list acts on them."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from bots.base.errors import HomeserverError
from bots.moderation.config import ModerationConfig
from provisioning.provision import provision
from tests.support.community import make_community
from tests.support.homeserver import (
    Homeserver,
    User,
    member,
    running_bot,
    until_membership,
    wait_joined,
)
from tests.support.js_client import run_script

pytestmark = [pytest.mark.integration, pytest.mark.interop]

TAKEDOWN = "org.matrix.msc4204.takedown"


async def draupnir(hs: Homeserver, account: User, action: str, room: str, *args: str) -> Any:
    common = ["--homeserver", hs.base_url, "--user", account.user_id, "--room", room]
    return await run_script("policy_list.mjs", [action, *common, *args], account.password, 120)


async def until_state(api: Any, room: str, event_type: str, key: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            try:
                return dict(await api.state(room, event_type, key))
            except HomeserverError:
                await asyncio.sleep(0.2)


async def test_draupnir_reads_hearths_ban_list_and_hearth_follows_draupnirs(
    homeserver: Homeserver, state: Path
) -> None:
    hs = homeserver
    mod, bot, reader = await hs.users("mod", "bot", "draupnir")
    troll, spreader, spam_1, pirate, amy = await hs.users(
        "troll", "spreader", "spam-1", "pirate", "amy"
    )
    community = await make_community(
        hs,
        state,
        [{"key": "carers", "name": "Carers"}],
        moderators=[mod],
        bots=[bot],
        extra={"ban_list": {"share_with": [reader.user_id]}},
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    ban_list, group = ids["ban-list"], ids["group/carers/general"]
    admin = await hs.api(community.admin)
    # Draupnir's own list: a room of its account, with the Hearth bot in it.
    theirs = await hs.encrypted_room(reader, [bot])
    for user in (troll, spreader, spam_1, pirate, amy):
        await admin.invite(group, user.user_id)
        await (await hs.api(user)).request("POST", f"/_matrix/client/v3/join/{quote(group)}", {})
    following = ModerationConfig(community=community.path, follow=(theirs,), policy_poll_s=1)
    config = hs.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        feature_sections={"moderation": following},
    )
    async with running_bot(config), member(hs, mod, state / "mod") as m:
        await wait_joined(hs, community.admin, ids["moderators"], bot.user_id)
        await wait_joined(hs, community.admin, group, bot.user_id)
        await wait_joined(hs, reader, theirs, bot.user_id)
        reader_api = await hs.api(reader)
        await reader_api.request("POST", f"/_matrix/client/v3/join/{quote(ban_list)}", {})
        # Posted once the bot is in the room: a takedown is to remove it.
        posted = await (await hs.api(pirate)).request(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(group)}/send/m.room.message/pirate-1",
            {"msgtype": "m.text", "body": "cheap pills here"},
        )

        # Hearth publishes; Draupnir's code reads.
        await m.join(ids["moderators"])
        for said in (f"!ban {troll.user_id} spam", f"!ban {spreader.user_id} takedown spam"):
            reply = await m.wait_for_reply(await m.send(ids["moderators"], said))
            assert "across the community" in reply.content["body"]
        await until_state(admin, ban_list, "m.policy.rule.user", f"rule:{spreader.user_id}")
        seen = await draupnir(
            hs, reader, "read", ban_list,
            "--check", troll.user_id, "--check", spreader.user_id, "--check", amy.user_id,
        )  # fmt: skip
        assert seen["matches"] == {
            troll.user_id: ["m.ban"],
            spreader.user_id: [TAKEDOWN],
            amy.user_id: [],
        }

        # Draupnir's code writes (a ban by glob, a takedown by hash alone);
        # Hearth's bot follows the list and acts.
        wrote = await draupnir(
            hs, reader, "write", theirs,
            "--ban", "@spam-*:localhost", "--takedown-hashed", pirate.user_id,
        )  # fmt: skip
        assert wrote == {"written": 2}
        state_events = await reader_api.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(theirs)}/state"
        )
        hashed = [
            e["content"] for e in state_events
            if e["type"] == "m.policy.rule.user" and "entity" not in e["content"]
        ]  # fmt: skip
        assert hashed, "Draupnir's takedown named the user in clear"
        assert pirate.user_id not in json.dumps(hashed)
        for user in (spam_1, pirate):
            await until_membership(admin, group, user.user_id, "ban")
        path = f"/_matrix/client/v3/rooms/{quote(group)}/event/{posted['event_id']}"
        async with asyncio.timeout(30):
            while (await admin.request("GET", path)).get("content"):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    assert (await admin.state(group, "m.room.member", amy.user_id))["membership"] == "join"
