"""Least privilege, tried as an attacker would: from the bots' side of the
admin agent (what a compromised bot process could ask), from a process of
another user, as a moderator since demoted, and with a member's stolen
access token.

One community for the module: provisioned, its admin agent and its bot
(moderation and onboarding) running; each test uses accounts of its own.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.requests import (
    CreateGroup,
    CreateToken,
    EraseAccount,
    ListTokens,
    RevokeToken,
)
from bots.framework.commands.authorize import REFUSAL, UNVERIFIED_REFUSAL
from bots.framework.commands.spec import REVIEWER
from bots.framework.markdown import render
from bots.matrix.client_api import ClientAPI
from bots.moderation.config import ModerationConfig
from bots.onboarding.config import OnboardingConfig
from provisioning.provision import provision
from provisioning.tokens import Tokens
from tests.support.community import Community, RunningAgent, make_community, running_agent
from tests.support.homeserver import (
    Homeserver,
    User,
    member,
    running_bot,
    until_membership,
    wait_joined,
)

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

GROUP_ROOM = "group/carers/general"


@dataclass
class Stack:
    hs: Homeserver
    community: Community
    agent: RunningAgent
    ids: dict[str, str]
    bot: User
    mod: User  # a community moderator
    group_mod: User  # the carers group's own moderator
    bridge: User  # the archive bot's account
    state: Path

    @property
    def admin(self) -> User:
        return self.community.admin

    async def admin_api(self) -> ClientAPI:
        return await self.hs.api(self.admin)

    async def account(self, user_id: str) -> dict[str, object]:
        path = f"/_synapse/admin/v2/users/{quote(user_id, safe='')}"
        found: dict[str, object] = await (await self.admin_api()).request("GET", path)
        return found


@pytest.fixture(scope="module")
async def stack(
    homeserver: Homeserver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    state = tmp_path_factory.mktemp("least-privilege")
    mod, group_mod, bot, bridge = await homeserver.users("mod", "group-mod", "bot", "bridge")
    groups = [
        {"key": "carers", "name": "Carers", "moderators": [group_mod.user_id]},
        {"key": "parents", "name": "Parents"},
    ]
    community = await make_community(
        homeserver,
        state,
        groups,
        moderators=[mod],
        bots=[bot],
        extra={"bridge": {"user_id": bridge.user_id}},
    )
    ids = (await provision(community.load(), community.path, out=io.StringIO())).room_ids
    async with running_agent(community, state / "agent-home") as agent:
        config = homeserver.bot_config(
            bot,
            state / "bot",
            admin_socket=agent.socket,
            moderators_room=ids["moderators"],
            feature_sections={
                "moderation": ModerationConfig(community=community.path),
                "onboarding": OnboardingConfig(community=community.path),
            },
        )
        async with running_bot(config):
            for room in (ids["moderators"], ids[GROUP_ROOM]):
                await wait_joined(homeserver, community.admin, room, bot.user_id)
            yield Stack(homeserver, community, agent, ids, bot, mod, group_mod, bridge, state)


# --- the admin agent, asked from the bots' side ---


async def test_the_bots_socket_hands_out_no_registration_token(stack: Stack) -> None:
    admin = stack.admin
    tokens = Tokens(await stack.admin_api(), admin.user_id)
    existing = await tokens.create(1, timedelta(days=1), "carers")
    before = {t.token for t in await tokens.list()}
    bots = AgentClient(stack.agent.socket)
    for request in (
        CreateToken(uses=1000, expires_s=90 * 86400),
        ListTokens(),
        RevokeToken(token=existing.token),
    ):
        with pytest.raises(AgentError, match="not for this socket"):
            await bots.ask(request)
    # No token was made, and the existing one still works.
    assert {t.token for t in await tokens.list()} == before
    assert existing.token in before
    audit = stack.agent.audit.read_text()
    assert existing.token not in audit


async def test_no_group_is_opened_for_someone_who_is_not_a_community_moderator(
    stack: Stack,
) -> None:
    bots = AgentClient(stack.agent.socket)
    admin_api = await stack.admin_api()
    joined = "/_matrix/client/v3/joined_rooms"
    before = set((await admin_api.request("GET", joined))["joined_rooms"])
    # A member, and a group's own moderator (not the community's).
    for who in (await stack.hs.user("member"), stack.group_mod):
        with pytest.raises(AgentError, match="only the community's moderators"):
            await bots.ask(CreateGroup(key="sneaky", name="Sneaky", requested_by=who.user_id))
    # The agent creates a group's rooms as the admin: none was made.
    assert set((await admin_api.request("GET", joined))["joined_rooms"]) == before


async def test_no_staff_or_bridge_account_is_erased(stack: Stack) -> None:
    bots = AgentClient(stack.agent.socket)
    protected = (
        stack.bridge,  # the archive bot
        stack.admin,
        stack.bot,
        stack.mod,
        stack.group_mod,
    )
    for who in protected:
        with pytest.raises(AgentError, match="staff or a bot"):
            await bots.ask(EraseAccount(user_id=who.user_id, requested_by=who.user_id))
    for who in protected:
        assert (await stack.account(who.user_id))["deactivated"] is False, who.user_id


def _ask_as(uid: int, gid: int, path: Path, body: bytes) -> tuple[int, bytes]:
    """Fork a child that drops to *uid*, asks the agent on *path* and hands
    back what it was told; (the child's exit status, its answer)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no event loop, no logging, nothing but the socket
        answer = b""
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(str(path))
                s.sendall(
                    b"POST /request HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                while chunk := s.recv(65536):
                    answer += chunk
        except BaseException as exc:
            answer = f"child failed: {type(exc).__name__}: {exc}".encode()
        finally:
            os.write(write_end, answer[:60000])
            os._exit(0)
    os.close(write_end)
    _pid, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as fh:
        return status, fh.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a child as another user")
async def test_a_process_of_another_user_that_can_open_the_socket_is_refused(
    stack: Stack,
) -> None:
    from bots.adminagent.server import serve_agent

    # A socket anyone can open (a mode loosened by hand, say), in a folder
    # anyone can pass through: only the uid check stands in the way.
    folder = Path(tempfile.mkdtemp(prefix="hearth-agent-"))
    folder.chmod(0o711)
    sock, audit = folder / "agent.sock", folder / "audit.log"
    ready = asyncio.Event()
    task = asyncio.create_task(
        serve_agent(stack.community.path, sock, audit, socket_mode=0o666, ready=ready)
    )
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        body = json.dumps({"type": "token_groups", "refs": ["0" * 24]}).encode()
        status, answer = await asyncio.to_thread(_ask_as, 65534, 65534, sock, body)
        audit_lines = audit.read_text().splitlines()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        shutil.rmtree(folder, ignore_errors=True)
    assert status == 0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403"), answer[:200]
    assert json.loads(payload) == {
        "ok": False,
        "error": "this process's user may not use this socket of the admin agent",
    }
    (line,) = [json.loads(x) for x in audit_lines if '"caller_uid": 65534' in x]
    assert line["outcome"] == "refused"


# --- through the bot ---


async def test_undo_after_the_moderators_demotion_is_refused(stack: Stack) -> None:
    hs, mods_room, group_room = stack.hs, stack.ids["moderators"], stack.ids[GROUP_ROOM]
    troll = await hs.user("troll")
    admin_api = await stack.admin_api()
    async with member(hs, stack.mod, stack.state / "mod-undo") as m:
        await m.join(mods_room)
        banned = await m.wait_for_reply(await m.send(mods_room, f"!ban {troll.user_id} spam"))
        assert "across the community" in banned.content["body"]
        await until_membership(admin_api, group_room, troll.user_id, "ban")
        # Demoted: from community moderator to a group's moderator, the
        # level provisioning gives those in the moderators' room.
        levels = await admin_api.state(mods_room, "m.room.power_levels")
        levels["users"][stack.mod.user_id] = REVIEWER
        await admin_api.put_state(mods_room, "m.room.power_levels", "", levels)
        undone = await m.wait_for_reply(await m.send(mods_room, "!undo"))
        assert undone.content["body"] == REFUSAL
    # The ban stands.
    member_of = await admin_api.state(group_room, "m.room.member", troll.user_id)
    assert member_of["membership"] == "ban"


async def test_erase_me_confirm_from_an_unverified_session_is_refused(stack: Stack) -> None:
    hs, group_room = stack.hs, stack.ids[GROUP_ROOM]
    alice = await hs.user("alice")
    await (await stack.admin_api()).invite(group_room, alice.user_id)
    async with member(hs, alice, stack.state / "alice") as a:
        await a.join(group_room)
        # Asking for another group opens her DM with the bot.
        await a.send(group_room, "!join parents")
        dm = await a.accept_invite()
        await a.wait_for(lambda ev: ev.room_id == dm and ev.sender == stack.bot.user_id)
        # Someone with her access token: a session, not her keys, so a
        # device her identity never signed.
        async with member(hs, alice, stack.state / "thief", cross_sign=False) as thief:
            await thief.sync_until_joined(dm)
            sent = await thief.send(dm, "!erase-me confirm")
            # The reply is withheld from that session; her own reads it.
            refused = await a.wait_for_reply(sent, timeout=60)
            assert refused.content["body"] == render(UNVERIFIED_REFUSAL).body
    account = await stack.account(alice.user_id)
    assert account["deactivated"] is False
    assert account["erased"] is False
