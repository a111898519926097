"""A real Synapse for the test session, and helpers to populate it."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import yaml

from bots.app import build_bot
from bots.base.tasks import until_ready
from bots.devserver.supervisor import SynapseProcess
from bots.devserver.synapse_config import free_port, write_dev_config
from bots.framework.config import BotConfig
from bots.framework.feature import Feature
from bots.framework.runtime import BotRuntime
from bots.framework.secrets import read_secret, write_secret
from bots.matrix.admin import register_user
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from tests.support.member_client import MemberClient

SERVER_NAME = "localhost"


@dataclass
class User:
    user_id: str
    localpart: str
    password: str


@dataclass
class Homeserver:
    """One running Synapse plus the state the tests create in it."""

    dir: Path
    process: SynapseProcess
    http: aiohttp.ClientSession | None = None
    _apis: dict[str, ClientAPI] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @classmethod
    async def start(cls, directory: Path, overrides: dict[str, Any] | None = None) -> Homeserver:
        config = write_dev_config(directory, free_port(None), SERVER_NAME, overrides)
        from bots.devserver.synapse_config import configured_port

        url = f"http://127.0.0.1:{configured_port(config)}"
        proc = SynapseProcess(config, url, directory / "synapse.log")
        await proc.start()
        hs = cls(directory, proc)
        hs.http = aiohttp.ClientSession()
        return hs

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.process.stop()

    async def user(self, prefix: str = "user", *, admin: bool = False) -> User:
        localpart = f"{prefix}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        shared = read_secret(self.dir / "registration_shared_secret")
        reg = await register_user(
            self.base_url,
            shared,
            localpart,
            password,
            server_name=SERVER_NAME,
            admin=admin,
            transport=Transport(self.http),
        )
        return User(reg.user_id, localpart, password)

    async def exempt_from_rate_limits(self, *users: User) -> None:
        """Let test members send as fast as they like (Synapse's admin API),
        so only the bot meets the limits under test."""
        admin = await self.user("admin", admin=True)
        api = await self.api(admin)
        for user in users:
            await api.request(
                "POST",
                f"/_synapse/admin/v1/users/{quote(user.user_id)}/override_ratelimit",
                {"messages_per_second": 0, "burst_count": 0},
            )

    async def users(self, *prefixes: str) -> list[User]:
        return [await self.user(p) for p in prefixes]

    async def api(self, user: User) -> ClientAPI:
        assert self.http is not None
        if user.user_id not in self._apis:
            token = await ClientAPI.login(
                self.base_url, user.user_id, user.password, Transport(self.http), "test set-up"
            )
            self._apis[user.user_id] = ClientAPI(self.base_url, token, Transport(self.http))
        return self._apis[user.user_id]

    async def encrypted_room(
        self,
        creator: User,
        invite: list[User],
        power: dict[str, int] | None = None,
        alias: str | None = None,
        history: str | None = None,
    ) -> str:
        """*history*: the room's history visibility (private_chat's default is "shared")."""
        api = await self.api(creator)
        body: dict[str, Any] = {
            "preset": "private_chat",
            "initial_state": [
                {
                    "type": "m.room.encryption",
                    "state_key": "",
                    "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                }
            ],
            "invite": [u.user_id for u in invite],
        }
        if history:
            body["initial_state"].append(
                {
                    "type": "m.room.history_visibility",
                    "state_key": "",
                    "content": {"history_visibility": history},
                }
            )
        if power:
            body["power_level_content_override"] = {"users": power}
        if alias:
            body["room_alias_name"] = alias
        return await api.create_room(body)

    def bot_config(self, user: User, state_dir: Path, **overrides: Any) -> BotConfig:
        password_file = state_dir.parent / f"{user.localpart}.password"
        write_secret(password_file, user.password)
        values: dict[str, Any] = {
            "homeserver": self.base_url,
            "user_id": user.user_id,
            "password_file": password_file,
            "state_dir": state_dir,
            "sync_timeout_ms": 10_000,
        }
        values.update(overrides)
        return BotConfig(**values)


@contextlib.asynccontextmanager
async def running_bot(
    config: BotConfig,
    features: Sequence[Feature] | None = None,
    timeout: float = 30,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[BotRuntime]:
    """The bot with the app's features, or with *features* (e.g. one defined
    only in a test), running until the block ends. *clock* replaces the
    bot's wall clock (for event ages)."""
    runtime = BotRuntime(config, features) if features is not None else build_bot(config)
    if clock is not None:
        runtime.clock = clock
    task = asyncio.create_task(runtime.run())
    try:
        await until_ready(task, runtime.ready, "the bot", timeout)
        yield runtime
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


M = TypeVar("M", bound=MemberClient)


@contextlib.asynccontextmanager
async def member(
    hs: Homeserver,
    user: User,
    store: Path,
    *,
    cross_sign: bool = True,
    kind: type[M] = MemberClient,  # type: ignore[assignment]
) -> AsyncIterator[M]:
    """*user*'s client, logged in with a new device; *kind*: a modified one
    (tests/support/attacker.py)."""
    client = kind(hs.base_url, user.user_id, store)
    await client.login(user.password, cross_sign=cross_sign)
    try:
        yield client
    finally:
        await client.close()


async def wait_joined(hs: Homeserver, any_member: User, room_id: str, user_id: str) -> None:
    api = await hs.api(any_member)
    for _ in range(200):
        if user_id in await api.joined_members(room_id):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{user_id} did not join")


async def until_membership(api: ClientAPI, room: str, user: str, wanted: str) -> None:
    """Until *user*'s membership of *room* is *wanted* (a ban, say)."""
    async with asyncio.timeout(30):
        while (await api.state(room, "m.room.member", user)).get("membership") != wanted:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


@dataclass
class Cast:
    """A bot, a moderator and a member invited to an encrypted room where the
    bot has power; nobody is running yet."""

    bot: User
    mod: User
    alice: User
    room: str
    config: BotConfig


async def cast(hs: Homeserver, state: Path, **config: Any) -> Cast:
    bot, mod, alice = await hs.users("bot", "mod", "alice")
    room = await hs.encrypted_room(mod, [bot, alice], power={bot.user_id: 100})
    return Cast(bot, mod, alice, room, hs.bot_config(bot, state / "bot", **config))


@dataclass
class Scene:
    """A bot and a member together in an encrypted room, both running."""

    room: str
    member: MemberClient
    bot: User
    alice: User
    runtime: BotRuntime


@contextlib.asynccontextmanager
async def bot_and_member(
    hs: Homeserver, state: Path, features: Sequence[Feature] | None = None, **config: Any
) -> AsyncIterator[Scene]:
    c = await cast(hs, state, **config)
    async with (
        running_bot(c.config, features) as runtime,
        member(hs, c.alice, state / "alice") as m,
    ):
        await wait_joined(hs, c.mod, c.room, c.bot.user_id)
        await m.join(c.room)
        yield Scene(c.room, m, c.bot, c.alice, runtime)


def write_bot_yaml(config: BotConfig, path: Path, **extra: Any) -> Path:
    """*config* as a bots YAML file, for `hearth run` in its own process."""
    bot = {
        "homeserver": config.homeserver,
        "user_id": config.user_id,
        "password_file": str(config.password_file),
        "state_dir": str(config.state_dir),
        **extra,
    }
    path.write_text(yaml.safe_dump({"bot": bot}))
    return path
