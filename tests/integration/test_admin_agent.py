"""The admin agent on a real Synapse: what it does, for whom, what it
refuses, what it records. The bots ask on one socket, the operator on the
other (here both are this process's user, as in `hearth dev`)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import (
    CreateGroup,
    CreateToken,
    EraseAccount,
    ExemptFromRateLimits,
    ListReports,
    ListTokens,
    RevokeToken,
    TokenGroups,
)
from provisioning.provision import provision
from tests.support.community import Community, make_community, running_agent
from tests.support.homeserver import Homeserver, User

pytestmark = pytest.mark.integration


async def community_with(hs: Homeserver, state: Path) -> tuple[Community, User, User, User]:
    mod, bot, alice = await hs.users("mod", "bot", "alice")
    community = await make_community(
        hs, state, [{"key": "carers", "name": "Carers"}], moderators=[mod], bots=[bot]
    )
    return community, mod, bot, alice


async def override(hs: Homeserver, admin: User, user: User) -> dict[str, object]:
    api = await hs.api(admin)
    path = f"/_synapse/admin/v1/users/{quote(user.user_id)}/override_ratelimit"
    result: dict[str, object] = await api.request("GET", path)
    return result


def audit_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_bots_are_exempted_from_rate_limits_and_nobody_else(
    homeserver: Homeserver, state: Path
) -> None:
    community, _mod, bot, alice = await community_with(homeserver, state)
    async with running_agent(community, state) as agent:
        # At start, for every bot in the community file.
        assert await override(homeserver, community.admin, bot) == {
            "messages_per_second": 0,
            "burst_count": 0,
        }
        # By the operator: the bots cannot lift anyone's limits.
        operator = AgentClient(agent.admin_socket)
        await operator.ask(ExemptFromRateLimits(user_id=bot.user_id))
        with pytest.raises(AgentError, match="only the community's bots"):
            await operator.ask(ExemptFromRateLimits(user_id=alice.user_id))
        with pytest.raises(AgentError, match="not for this socket"):
            await AgentClient(agent.socket).ask(ExemptFromRateLimits(user_id=alice.user_id))
    assert await override(homeserver, community.admin, alice) == {}
    lines = audit_lines(agent.audit)
    assert [(x["request"], x["outcome"]) for x in lines] == [
        ("exempt_from_rate_limits", "ok"),
        ("exempt_from_rate_limits", "ok"),
        ("exempt_from_rate_limits", "refused"),
        ("exempt_from_rate_limits", "refused"),
    ]
    text = agent.audit.read_text()
    assert alice.user_id not in text
    assert bot.user_id not in text
    assert agent.audit.stat().st_mode & 0o777 == 0o600


async def test_registration_tokens_for_a_group_and_never_in_the_audit_log(
    homeserver: Homeserver, state: Path
) -> None:
    community, *_ = await community_with(homeserver, state)
    async with running_agent(community, state) as agent:
        client = AgentClient(agent.admin_socket)
        made = await client.ask(CreateToken(uses=3, expires_s=3600, group="carers"))
        token = str(made["token"])
        # The homeserver is shared with other tests: look for this token only.
        listed = await client.ask(ListTokens())
        (mine,) = [t for t in listed["tokens"] if t["token"] == token]
        assert mine["group"] == "carers"
        with pytest.raises(AgentError, match="no group 'nobody'"):
            await client.ask(CreateToken(uses=1, expires_s=3600, group="nobody"))
        # The bots learn a token's group by its reference, never the token.
        bots = AgentClient(agent.socket)
        for request in (ListTokens(), RevokeToken(token=token), CreateToken(uses=1, expires_s=60)):
            with pytest.raises(AgentError, match="not for this socket"):
                await bots.ask(request)
        assert (await bots.ask(TokenGroups(refs=("0" * 24,))))["groups"] == {}
        assert (await client.ask(RevokeToken(token=token)))["revoked"] is True
        left = (await client.ask(ListTokens()))["tokens"]
        assert token not in {t["token"] for t in left}
    assert token not in agent.audit.read_text()


async def test_an_account_is_erased_only_at_its_owners_request_and_never_staff(
    homeserver: Homeserver, state: Path
) -> None:
    community, mod, _bot, alice = await community_with(homeserver, state)
    # A server admin the community file does not name (the operator's own).
    other_admin = await homeserver.user("operator", admin=True)
    async with running_agent(community, state) as agent:
        client = AgentClient(agent.socket)
        with pytest.raises(AgentError, match="owner's own request"):
            await client.ask(EraseAccount(user_id=alice.user_id, requested_by=mod.user_id))
        with pytest.raises(AgentError, match="staff or a bot"):
            await client.ask(EraseAccount(user_id=mod.user_id, requested_by=mod.user_id))
        with pytest.raises(AgentError, match="server admin"):
            await client.ask(
                EraseAccount(user_id=other_admin.user_id, requested_by=other_admin.user_id)
            )
        await client.ask(EraseAccount(user_id=alice.user_id, requested_by=alice.user_id))
    admin_api = await homeserver.api(community.admin)
    user = await admin_api.request("GET", f"/_synapse/admin/v2/users/{quote(alice.user_id)}")
    assert user["deactivated"] is True
    assert user["erased"] is True
    kept = await admin_api.request("GET", f"/_synapse/admin/v2/users/{quote(other_admin.user_id)}")
    assert kept["deactivated"] is False


async def test_a_group_is_opened_only_for_a_community_moderator(
    homeserver: Homeserver, state: Path
) -> None:
    # (test_group_create opens one for a moderator, through the bot.)
    community, _mod, bot, alice = await community_with(homeserver, state)
    async with running_agent(community, state) as agent:
        client = AgentClient(agent.socket)
        for who in (alice, bot, community.admin):
            with pytest.raises(AgentError, match="only the community's moderators"):
                await client.ask(CreateGroup(key="sneaky", name="Sneaky", requested_by=who.user_id))
    outcomes = [(x["request"], x["outcome"]) for x in audit_lines(agent.audit)]
    assert outcomes.count(("create_group", "refused")) == 3


async def test_abuse_reports_reach_the_moderators_through_the_agent(
    homeserver: Homeserver, state: Path
) -> None:
    community, _mod, _bot, alice = await community_with(homeserver, state)
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    room = ids["group/carers/general"]
    admin_api = await homeserver.api(community.admin)
    await admin_api.invite(room, alice.user_id)
    alice_api = await homeserver.api(alice)
    await alice_api.join(room)
    sent = await alice_api.request(
        "PUT",
        f"/_matrix/client/v3/rooms/{quote(room)}/send/m.room.message/report-test",
        {"msgtype": "m.text", "body": "something to report"},
    )
    await alice_api.request(
        "POST",
        f"/_matrix/client/v3/rooms/{quote(room)}/report/{quote(sent['event_id'])}",
        {"reason": "spam"},
    )
    async with running_agent(community, state) as agent:
        reports = (await AgentClient(agent.socket).ask(ListReports(limit=50)))["reports"]
    # Other tests on this homeserver report too: this room's reports only.
    assert [
        (r["room_id"], r["event_id"], r["reason"]) for r in reports if r["room_id"] == room
    ] == [(room, sent["event_id"], "spam")]


async def test_anything_outside_the_allow_list_is_refused_and_recorded(
    homeserver: Homeserver, state: Path
) -> None:
    community, *_ = await community_with(homeserver, state)
    async with running_agent(community, state) as agent:
        connector = aiohttp.UnixConnector(path=str(agent.socket))
        async with aiohttp.ClientSession(connector=connector) as http:
            for body in (
                {"type": "make_admin", "user_id": "@x:localhost"},
                {"type": "create_token", "uses": 0, "expires_s": 10},
                {"type": "list_tokens", "extra": True},
            ):
                async with http.post("http://agent/request", json=body) as resp:
                    assert resp.status == 400
                    answer = await resp.json()
                    assert answer["ok"] is False
                    assert answer["error"].startswith("not an allowed request")
            async with http.post("http://agent/request", data=b"not json") as resp:
                assert resp.status == 400
    outcomes = [x["outcome"] for x in audit_lines(agent.audit)]
    assert outcomes.count("refused") == 4
    assert agent.socket.exists() is False, "the socket outlived the agent"
