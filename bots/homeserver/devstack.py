"""`hearth dev`: a private homeserver on loopback with demo accounts and a bot.

Everything lives under one state folder, so a second run reuses the same
homeserver, accounts, room and bot device.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml

from bots.errors import HomeserverError
from bots.framework.config import BotConfig
from bots.framework.secrets import ensure_secret, read_secret, write_secret
from bots.homeserver.admin import register_user
from bots.homeserver.client_api import ClientAPI
from bots.homeserver.supervisor import SynapseProcess
from bots.homeserver.synapse_config import (
    HOMESERVER_YAML,
    configured_port,
    free_port,
    write_dev_config,
)

SERVER_NAME = "localhost"
BOT = "hearth-bot"
MODERATOR = "demo-moderator"
MEMBER = "demo-member"
DEFAULT_PORT = 8008


@dataclass(frozen=True)
class Account:
    localpart: str
    password: str

    @property
    def user_id(self) -> str:
        return f"@{self.localpart}:{SERVER_NAME}"


@dataclass(frozen=True)
class DevStack:
    state_dir: Path
    synapse: SynapseProcess
    base_url: str
    bot: Account
    moderator: Account
    member: Account
    room_id: str

    def bot_config(self) -> BotConfig:
        return BotConfig(
            homeserver=self.base_url,
            user_id=self.bot.user_id,
            password_file=self.state_dir / "secrets" / f"{BOT}.password",
            state_dir=self.state_dir / "bots" / BOT,
        )


def prepare_synapse(state_dir: Path, port: int | None = None) -> SynapseProcess:
    """Write the homeserver config on first run; reuse it afterwards."""
    hs_dir = state_dir / "synapse"
    config = hs_dir / HOMESERVER_YAML
    if not config.exists() or port is not None:
        write_dev_config(hs_dir, free_port(port or DEFAULT_PORT), SERVER_NAME)
    elif free_port(configured_port(config)) != configured_port(config):
        # The saved port is taken by something else now: move.
        write_dev_config(hs_dir, free_port(None), SERVER_NAME)
    url = f"http://127.0.0.1:{configured_port(config)}"
    return SynapseProcess(config, url, hs_dir / "synapse.log")


async def ensure_account(
    base_url: str, hs_dir: Path, secrets_dir: Path, localpart: str, http: aiohttp.ClientSession
) -> Account:
    password = ensure_secret(secrets_dir / f"{localpart}.password", nbytes=12)
    shared = read_secret(hs_dir / "registration_shared_secret", what="registration shared secret")
    await register_user(base_url, shared, localpart, password, server_name=SERVER_NAME, http=http)
    return Account(localpart, password)


async def _api_for(
    base_url: str, account: Account, state_dir: Path, http: aiohttp.ClientSession
) -> ClientAPI:
    token_file = state_dir / "secrets" / f"{account.localpart}.setup-token"
    if token_file.exists():
        api = ClientAPI(base_url, read_secret(token_file), http)
        with contextlib.suppress(HomeserverError):
            await api.whoami()
            return api
    token = await ClientAPI.login(
        base_url, account.user_id, account.password, http, "Hearth set-up"
    )
    write_secret(token_file, token)
    return ClientAPI(base_url, token, http)


async def ensure_demo_room(
    base_url: str,
    state_dir: Path,
    bot: Account,
    moderator: Account,
    member: Account,
    http: aiohttp.ClientSession,
) -> str:
    """One encrypted, invite-only room with the three demo accounts."""
    record = state_dir / "demo-room.json"
    mod_api = await _api_for(base_url, moderator, state_dir, http)
    if record.exists():
        room_id = str(json.loads(record.read_text())["room_id"])
    else:
        room_id = await mod_api.create_room(
            {
                "name": "Hearth demo",
                "topic": "Try !help and !ping",
                "preset": "private_chat",
                "visibility": "private",
                # Encrypted from its first event: no plaintext window.
                "initial_state": [
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    },
                    {
                        "type": "m.room.history_visibility",
                        "state_key": "",
                        "content": {"history_visibility": "joined"},
                    },
                    {
                        "type": "m.room.guest_access",
                        "state_key": "",
                        "content": {"guest_access": "forbidden"},
                    },
                ],
                # The creator (the moderator) holds top power by room version 12's
                # rules; the bot needs enough to run the room.
                "power_level_content_override": {"users": {bot.user_id: 100}},
            }
        )
        record.write_text(json.dumps({"room_id": room_id}))
    joined = await mod_api.joined_members(room_id)
    for account in (bot, member):
        if account.user_id not in joined:
            # Refused when already invited: that is the state we want anyway.
            with contextlib.suppress(HomeserverError):
                await mod_api.invite(room_id, account.user_id)
    if member.user_id not in joined:
        member_api = await _api_for(base_url, member, state_dir, http)
        await member_api.join(room_id)
    return room_id


async def start_dev_stack(state_dir: Path, port: int | None = None) -> DevStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    synapse = prepare_synapse(state_dir, port)
    await synapse.start()
    secrets_dir = state_dir / "secrets"
    hs_dir = state_dir / "synapse"
    try:
        async with aiohttp.ClientSession() as http:
            bot, moderator, member = [
                await ensure_account(synapse.base_url, hs_dir, secrets_dir, name, http)
                for name in (BOT, MODERATOR, MEMBER)
            ]
            room_id = await ensure_demo_room(
                synapse.base_url, state_dir, bot, moderator, member, http
            )
    except BaseException:
        await synapse.stop()
        raise
    stack = DevStack(state_dir, synapse, synapse.base_url, bot, moderator, member, room_id)
    # A config a user can run by hand too: `hearth run --config <state>/bot.yaml`.
    cfg = stack.bot_config()
    (state_dir / "bot.yaml").write_text(
        yaml.safe_dump(
            {
                "bot": {
                    "homeserver": cfg.homeserver,
                    "user_id": cfg.user_id,
                    "password_file": str(cfg.password_file),
                    "state_dir": str(cfg.state_dir),
                }
            },
            sort_keys=False,
        )
    )
    return stack


def login_banner(stack: DevStack) -> str:
    return "\n".join(
        [
            "",
            "Hearth is running.",
            f"  Homeserver:  {stack.base_url}   (server name: {SERVER_NAME})",
            f"  Moderator:   {stack.moderator.user_id}   password: {stack.moderator.password}",
            f"  Member:      {stack.member.user_id}   password: {stack.member.password}",
            f"  Demo room:   {stack.room_id}",
            f"  Bot:         {stack.bot.user_id}",
            "",
            "Sign in with Element (or any Matrix client) using the homeserver address above,",
            "open the 'Hearth demo' room and send !help. Press Ctrl-C to stop.",
            f"State (passwords 0600) is kept in {stack.state_dir}; run again to reuse it.",
            "",
        ]
    )


async def run_dev(state_dir: Path, port: int | None = None) -> None:
    from bots.core.commands import core_commands
    from bots.framework.runtime import BotRuntime

    stack = await start_dev_stack(state_dir, port)
    runtime = BotRuntime(stack.bot_config(), core_commands())
    bot_task = asyncio.create_task(runtime.run())
    try:
        ready = asyncio.create_task(runtime.ready.wait())
        done, _ = await asyncio.wait({bot_task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if bot_task in done:
            bot_task.result()
        print(login_banner(stack), flush=True)
        await bot_task
    finally:
        bot_task.cancel()
        await asyncio.gather(bot_task, return_exceptions=True)
        await stack.synapse.stop()
