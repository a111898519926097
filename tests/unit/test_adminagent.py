"""The admin agent's allow-list, its doors and its audit log, without a homeserver."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import get_args

import aiohttp
import pytest
from pydantic import ValidationError

from bots.adminagent.audit import AuditLog
from bots.adminagent.client import AgentClient, AgentError
from bots.adminagent.handlers import Agent, protected_accounts
from bots.adminagent.requests import (
    ALLOWED,
    AgentRequest,
    CreateGroup,
    CreateToken,
    EraseAccount,
    ExemptFromRateLimits,
    ListTokens,
    RevokeToken,
    Role,
    TokenGroups,
    parse_request,
    subject_of,
)
from bots.adminagent.server import AgentServer, Door, open_door
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from provisioning.schema import load_community


@pytest.mark.parametrize(
    "user_id",
    [
        "@a/../../../v2/users/x:example.org",  # a path out of the allow-list
        "@a+b:example.org",
        "@Alice:example.org",
        "alice:example.org",
        "@alice",
    ],
)
def test_user_ids_that_could_bend_an_admin_path_are_refused(user_id: str) -> None:
    with pytest.raises(ValidationError):
        parse_request({"type": "erase_account", "user_id": user_id, "requested_by": user_id})


def test_an_allowed_request_is_typed() -> None:
    request = parse_request({"type": "create_token", "uses": 2, "expires_s": 3600})
    assert request == CreateToken(uses=2, expires_s=3600)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "make_admin", "user_id": "@x:example.org"},
        {"type": "list_tokens", "extra": 1},
        {"type": "create_token", "uses": 0, "expires_s": 3600},
        {"type": "create_token", "uses": 1, "expires_s": 91 * 86400},
        {"user_id": "@x:example.org"},
    ],
)
def test_anything_else_is_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_request(body)


def test_the_subject_of_an_erasure_is_the_account() -> None:
    request = EraseAccount(user_id="@a:example.org", requested_by="@a:example.org")
    assert subject_of(request) == "@a:example.org"


def test_the_audit_log_is_private_and_names_nobody(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "agent" / "audit.log")
    audit.record("erase_account", 1000, "@alice:example.org", "ok", "")
    assert audit.path.stat().st_mode & 0o777 == 0o600
    text = audit.path.read_text()
    assert "@alice" not in text
    line = json.loads(text)
    assert line["subject"].startswith("user:")
    assert line["caller_uid"] == 1000


def test_only_recent_successes_count_towards_the_daily_limit(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    audit.record("erase_account", 1, "@a:x.org", "ok", "")
    audit.record("erase_account", 1, "@b:x.org", "refused", "staff")
    audit.record("exempt_from_rate_limits", 1, "@bot:x.org", "ok", "")
    old = {"time": time.time() - 2 * 86400, "request": "erase_account", "outcome": "ok"}
    with audit.path.open("a") as fh:
        fh.write(json.dumps(old) + "\n")
    assert audit.count_ok("erase_account", within_s=86400) == 1


# --- who may ask what, and the community's own checks (no homeserver is reached) ---

COMMUNITY_YAML = """
community:
  key: circle
  name: Circle
  homeserver: http://127.0.0.1:9
  admin: {user_id: "@admin:x.org", access_token_file: admin.token}
  code_of_conduct: Be kind.
  crisis_resources: Call 112.
  moderators: ["@mod:x.org"]
bots: [{user_id: "@bot:x.org"}]
groups:
  - {key: carers, name: Carers, moderators: ["@carers-mod:x.org"]}
bridge: {user_id: "@archive:x.org"}
"""


@pytest.fixture
def community(tmp_path: Path) -> Path:
    path = tmp_path / "community.yaml"
    path.write_text(COMMUNITY_YAML)
    return path


@contextlib.asynccontextmanager
async def agent_on(
    community: Path, tmp: Path, role: Role, uids: frozenset[int]
) -> AsyncIterator[tuple[Path, AuditLog]]:
    """One door of the agent on a real socket. Its ClientAPI points nowhere:
    every request these tests make is refused before it would be used."""
    audit = AuditLog(tmp / "audit.log")
    door = Door(role, tmp / "agent.sock", 0o600, uids)
    async with aiohttp.ClientSession() as http:
        agent = Agent(community, ClientAPI("http://127.0.0.1:9", "unused", Transport(http)), audit)
        runner = await open_door(door, AgentServer(agent, audit, door))
        try:
            yield door.path, audit
        finally:
            await runner.cleanup()


def test_each_request_belongs_to_one_caller_and_the_bots_get_no_token() -> None:
    bot, admin = ALLOWED[Role.BOT], ALLOWED[Role.ADMIN]
    assert not bot & admin
    every = {m.model_fields["type"].default for m in get_args(get_args(AgentRequest)[0])}
    assert bot | admin == every
    assert {"create_token", "list_tokens", "revoke_token", "exempt_from_rate_limits"} <= admin


def test_staff_and_the_archive_bot_are_protected_from_erasure(community: Path) -> None:
    assert protected_accounts(load_community(community)) == {
        "@admin:x.org",
        "@mod:x.org",
        "@carers-mod:x.org",
        "@bot:x.org",
        "@archive:x.org",
    }


async def test_the_bots_socket_refuses_the_operators_requests(
    community: Path, tmp_path: Path
) -> None:
    async with agent_on(community, tmp_path, Role.BOT, frozenset({os.getuid()})) as (sock, audit):
        client = AgentClient(sock)
        for request in (
            CreateToken(uses=1000, expires_s=3600),
            ListTokens(),
            RevokeToken(token="abc"),
            ExemptFromRateLimits(user_id="@alice:x.org"),
        ):
            with pytest.raises(AgentError, match="not for this socket"):
                await client.ask(request)
    lines = [json.loads(x) for x in audit.path.read_text().splitlines()]
    assert [(x["request"], x["outcome"], x["caller_uid"]) for x in lines] == [
        (kind, "refused", os.getuid())
        for kind in ("create_token", "list_tokens", "revoke_token", "exempt_from_rate_limits")
    ]


async def test_the_operators_socket_refuses_the_bots_requests(
    community: Path, tmp_path: Path
) -> None:
    async with agent_on(community, tmp_path, Role.ADMIN, frozenset({os.getuid()})) as (sock, _):
        with pytest.raises(AgentError, match="not for this socket"):
            await AgentClient(sock).ask(EraseAccount(user_id="@a:x.org", requested_by="@a:x.org"))


async def test_a_process_of_another_user_is_refused_before_its_request_is_read(
    community: Path, tmp_path: Path
) -> None:
    # Ours is the other user here: the door lets in someone else only.
    stranger = frozenset({os.getuid() + 1})
    async with agent_on(community, tmp_path, Role.BOT, stranger) as (sock, audit):
        with pytest.raises(AgentError, match="may not use this socket"):
            await AgentClient(sock).ask(TokenGroups(refs=("0" * 24,)))
    (line,) = [json.loads(x) for x in audit.path.read_text().splitlines()]
    assert (line["request"], line["outcome"], line["caller_uid"]) == ("?", "refused", os.getuid())


async def test_only_a_community_moderator_opens_a_group(community: Path, tmp_path: Path) -> None:
    async with agent_on(community, tmp_path, Role.BOT, frozenset({os.getuid()})) as (sock, _):
        client = AgentClient(sock)
        for who in ("@alice:x.org", "@carers-mod:x.org", "@bot:x.org"):
            request = CreateGroup(key="sneaky", name="Sneaky", requested_by=who)
            with pytest.raises(AgentError, match="only the community's moderators"):
                await client.ask(request)


async def test_no_staff_account_nor_the_archive_bot_is_erased(
    community: Path, tmp_path: Path
) -> None:
    async with agent_on(community, tmp_path, Role.BOT, frozenset({os.getuid()})) as (sock, _):
        client = AgentClient(sock)
        for who in protected_accounts(load_community(community)):
            with pytest.raises(AgentError, match="staff or a bot"):
                await client.ask(EraseAccount(user_id=who, requested_by=who))
