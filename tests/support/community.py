"""Communities for provisioning tests, each owned by its own admin account."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bots.base.tasks import until_ready
from bots.framework.secrets import write_secret
from provisioning.schema import CommunityFile, load_community
from tests.support.homeserver import Homeserver, User


@dataclass
class Community:
    path: Path
    admin: User
    data: dict[str, Any]

    def load(self) -> CommunityFile:
        return load_community(self.path)

    def save(self) -> None:
        self.path.write_text(yaml.safe_dump(self.data, sort_keys=False))


async def make_community(
    hs: Homeserver,
    tmp: Path,
    groups: list[dict[str, Any]],
    moderators: Sequence[User] = (),
    bots: Sequence[User] = (),
    key: str = "circle",
    extra: dict[str, Any] | None = None,
) -> Community:
    admin = await hs.user("admin", admin=True)
    token = (await hs.api(admin)).access_token
    write_secret(tmp / "admin.token", token)
    data = {
        "community": {
            "key": key,
            "name": "Test Circle" if key == "circle" else f"Test {key.title()}",
            "homeserver": hs.base_url,
            "admin": {"user_id": admin.user_id, "access_token_file": "admin.token"},
            "code_of_conduct": "Be kind.",
            "crisis_resources": "Call 112.",
            "moderators": [m.user_id for m in moderators],
        },
        "bots": [{"user_id": b.user_id, "power_level": 100} for b in bots],
        "groups": groups,
        **(extra or {}),
    }
    community = Community(tmp / "community.yaml", admin, data)
    community.save()
    return community


@dataclass
class RunningAgent:
    socket: Path  # the bots'
    admin_socket: Path  # the operator's
    audit: Path


@contextlib.asynccontextmanager
async def running_agent(community: Community, tmp: Path) -> AsyncIterator[RunningAgent]:
    """The admin agent for *community*, on sockets in *tmp*, until the block
    ends. As in `hearth dev`, the bots and the operator are this process's
    user, each on their own socket."""
    from bots.adminagent.server import serve_agent

    folder = tmp / "agent"
    agent = RunningAgent(folder / "agent.sock", folder / "admin.sock", folder / "audit.log")
    ready = asyncio.Event()
    task = asyncio.create_task(
        serve_agent(
            community.path,
            agent.socket,
            agent.audit,
            socket_mode=0o600,
            admin_socket=agent.admin_socket,
            ready=ready,
        )
    )
    try:
        await until_ready(task, ready, "the admin agent", timeout=30)
        yield agent
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
