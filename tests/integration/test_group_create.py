"""`!group create`: moderators open a peer group at runtime, through the same applier."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bots.framework.commands.authorize import REFUSAL
from provisioning.desired import MARKER
from provisioning.provision import provision
from tests.support.community import make_community, running_agent
from tests.support.homeserver import Homeserver, member, running_bot, wait_joined
from tests.support.room_state import full_state

pytestmark = pytest.mark.integration


async def test_moderator_creates_a_group_that_provision_then_leaves_alone(
    homeserver: Homeserver, state: Path
) -> None:
    mod, bot, alice = await homeserver.users("mod", "bot", "alice")
    community = await make_community(
        homeserver, state, [{"key": "carers", "name": "Carers"}], moderators=[mod], bots=[bot]
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    admin_api = await homeserver.api(community.admin)
    await admin_api.invite(ids["group/carers/general"], alice.user_id)
    agent_dir = state / "agent-home"
    config = homeserver.bot_config(
        bot,
        state / "bot",
        moderators_room=ids["moderators"],
        admin_socket=agent_dir / "agent" / "agent.sock",
    )
    async with (
        running_agent(community, agent_dir),
        running_bot(config),
        member(homeserver, mod, state / "mod") as m,
        member(homeserver, alice, state / "alice") as a,
    ):
        await wait_joined(homeserver, community.admin, ids["moderators"], bot.user_id)
        await wait_joined(homeserver, community.admin, ids["moderation-log"], bot.user_id)
        await m.join(ids["moderators"])
        await m.join(ids["moderation-log"])
        await a.join(ids["group/carers/general"])
        await wait_joined(homeserver, community.admin, ids["group/carers/general"], bot.user_id)

        reply = await m.wait_for_reply(
            await m.send(ids["moderators"], '!group create young-adults "Young adults"'), 60
        )
        assert reply.content["body"].startswith('Created the group "Young adults"')
        logged = await m.wait_for(
            lambda ev: (
                ev.room_id == ids["moderation-log"] and "young-adults" in ev.content.get("body", "")
            ),
        )
        assert logged.sender == bot.user_id

        again = await m.wait_for_reply(
            await m.send(ids["moderators"], "!group create young-adults Again"), 60
        )
        assert "already exists" in again.content["body"]
        bad = await m.wait_for_reply(await m.send(ids["moderators"], "!group create Bad_Key X"))
        assert "The key must be" in bad.content["body"]
        refused = await a.wait_for_reply(
            await a.send(ids["group/carers/general"], "!group create sneaky Sneaky")
        )
        assert refused.content["body"] == REFUSAL

    # The bot asked the agent, which alone holds the admin token and kept a
    # record: who asked is a keyed hash, not the account.
    audit = (agent_dir / "agent" / "audit.log").read_text()
    assert '"request": "create_group"' in audit
    assert mod.user_id not in audit
    assert "admin_socket" in config.model_dump_json()
    assert "access_token" not in config.model_dump_json()

    out = io.StringIO()
    outcome = await provision(community.load(), community.path, dry_run=True, out=out)
    assert outcome.plan.empty, out.getvalue()
    assert "group/young-adults/general exists on the server but not in the config" in out.getvalue()
    new_room = outcome.room_ids["group/young-adults/general"]
    st = await full_state(admin_api, new_room)
    assert st[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
    assert st[("m.room.join_rules", "")]["join_rule"] == "invite"
    assert st[(MARKER, "")]["group"] == "young-adults"
    assert st[("m.room.name", "")]["name"] == "Young adults"
    space = await full_state(admin_api, ids["space"])
    assert space[("m.space.child", new_room)]["via"] == ["localhost"]
    assert "sneaky" not in str(outcome.room_ids)
