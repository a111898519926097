"""`hearth dev`: a private homeserver on loopback with demo accounts and a bot.

Everything lives under one state folder, so a second run reuses the same
homeserver, accounts, room and bot device.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bots.archives.config import ArchivesConfig
from bots.base.errors import HomeserverError
from bots.base.tasks import StopHook
from bots.devserver.supervisor import SynapseProcess, stop_process
from bots.devserver.synapse_config import (
    BRIDGE_AS_TOKEN,
    HOMESERVER_YAML,
    configured_port,
    free_port,
    registrations_dir,
    write_dev_config,
)
from bots.framework.config import BotConfig
from bots.framework.secrets import ensure_secret, read_secret, write_secret
from bots.matrix.admin import register_user
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from bots.meetings.config import MeetingsConfig
from bots.moderation.config import ModerationConfig
from bots.onboarding.config import OnboardingConfig
from bridge.registration import DEFAULT_SENDER
from provisioning.desired import MODERATORS, SPACE
from provisioning.provision import provision
from provisioning.schema import load_community

SERVER_NAME = "localhost"
ADMIN = "hearth-admin"
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
    room_ids: dict[str, str]

    def bot_config(self) -> BotConfig:
        return BotConfig(
            homeserver=self.base_url,
            user_id=self.bot.user_id,
            password_file=self.state_dir / "secrets" / f"{BOT}.password",
            state_dir=self.state_dir / "bots" / BOT,
            moderators_room=self.room_ids[MODERATORS],
            admin_socket=self.admin_socket,
            feature_sections={
                "onboarding": OnboardingConfig.model_validate(self.onboarding_section()),
                "moderation": ModerationConfig.model_validate(self.moderation_section()),
                "meetings": MeetingsConfig.model_validate(self.meetings_section()),
                "archives": ArchivesConfig.model_validate(self.archives_section()),
            },
        )

    def onboarding_section(self) -> dict[str, str]:
        """The community file, and where the Synapse module tells of new accounts."""
        return {
            "community": str(self.state_dir / "community.yaml"),
            "registrations": str(registrations_dir(self.state_dir / "synapse")),
        }

    def moderation_section(self) -> dict[str, str]:
        """The community file, whose groups declare their protections."""
        return {"community": str(self.state_dir / "community.yaml")}

    def meetings_section(self) -> dict[str, str]:
        """The community file: which rooms are groups', and their time zones."""
        return {"community": str(self.state_dir / "community.yaml")}

    def archives_section(self) -> dict[str, str]:
        """The community file: its groups and the archive bot's account."""
        return {"community": str(self.state_dir / "community.yaml")}

    @property
    def admin_socket(self) -> Path:
        return self.state_dir / "admin-agent" / "agent.sock"


def prepare_synapse(state_dir: Path, port: int | None = None) -> SynapseProcess:
    """Write the homeserver config: its port kept from the last run if free."""
    hs_dir = state_dir / "synapse"
    config = hs_dir / HOMESERVER_YAML
    if not config.exists() or port is not None:
        write_dev_config(hs_dir, free_port(port or DEFAULT_PORT), SERVER_NAME)
    elif free_port(configured_port(config)) != configured_port(config):
        # The saved port is taken by something else now: move.
        write_dev_config(hs_dir, free_port(None), SERVER_NAME)
    else:
        # Written afresh (its secrets are kept), so a state folder made by
        # an older Hearth gets what this one's homeserver needs.
        write_dev_config(hs_dir, configured_port(config), SERVER_NAME)
    url = f"http://127.0.0.1:{configured_port(config)}"
    return SynapseProcess(config, url, hs_dir / "synapse.log")


async def ensure_account(
    base_url: str,
    hs_dir: Path,
    secrets_dir: Path,
    localpart: str,
    transport: Transport,
    admin: bool = False,
) -> Account:
    password = ensure_secret(secrets_dir / f"{localpart}.password", nbytes=12)
    shared = read_secret(hs_dir / "registration_shared_secret", what="registration shared secret")
    await register_user(
        base_url,
        shared,
        localpart,
        password,
        server_name=SERVER_NAME,
        admin=admin,
        transport=transport,
    )
    return Account(localpart, password)


async def _api_for(
    base_url: str, account: Account, state_dir: Path, transport: Transport
) -> ClientAPI:
    token_file = state_dir / "secrets" / f"{account.localpart}.setup-token"
    if token_file.exists():
        api = ClientAPI(base_url, read_secret(token_file), transport)
        with contextlib.suppress(HomeserverError):
            await api.whoami()
            return api
    token = await ClientAPI.login(
        base_url, account.user_id, account.password, transport, "Hearth set-up"
    )
    write_secret(token_file, token)
    return ClientAPI(base_url, token, transport)


EXAMPLE_COMMUNITY = Path(__file__).resolve().parents[2] / "config" / "community.example.yaml"
# The example community's room where the demo member is joined and can try !help.
DEMO_ROOM = "group/newly-diagnosed/general"


def write_dev_community(example: Path, state_dir: Path, base_url: str, token_file: Path) -> Path:
    """The example community, pointed at this homeserver and admin token."""
    data = yaml.safe_load(example.read_text(encoding="utf-8"))
    data["community"]["homeserver"] = base_url
    data["community"]["admin"]["user_id"] = f"@{ADMIN}:{SERVER_NAME}"
    data["community"]["admin"]["access_token_file"] = str(token_file)
    data["bridge"] = {
        "user_id": f"@{DEFAULT_SENDER}:{SERVER_NAME}",
        "as_token_file": str(state_dir / "synapse" / BRIDGE_AS_TOKEN),
        "state_dir": str(state_dir / "bridge"),
    }
    path = state_dir / "community.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


async def provision_example(
    base_url: str,
    state_dir: Path,
    example: Path,
    member: Account,
    admin_api: ClientAPI,
    member_api: ClientAPI,
) -> dict[str, str]:
    """Provision the example community and bring the demo member into it."""
    token_file = state_dir / "secrets" / f"{ADMIN}.token"
    write_secret(token_file, admin_api.access_token)
    path = write_dev_community(example, state_dir, base_url, token_file)
    # Check the example before touching anything (exit 2 with the key path).
    cfg = load_community(path)
    outcome = await provision(cfg, path, out=sys.stdout)
    ids = outcome.room_ids
    for label in (SPACE, DEMO_ROOM):
        room_id = ids[label]
        if member.user_id in await admin_api.joined_members(room_id):
            continue
        if label == SPACE:
            # Members reach the Space by invitation; the group room is open to
            # everyone in the Space.
            with contextlib.suppress(HomeserverError):
                await admin_api.invite(room_id, member.user_id)
        await member_api.join(room_id)
    return ids


async def start_dev_stack(
    state_dir: Path, port: int | None = None, example: Path = EXAMPLE_COMMUNITY
) -> DevStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    synapse = prepare_synapse(state_dir, port)
    await synapse.start()
    secrets_dir = state_dir / "secrets"
    hs_dir = state_dir / "synapse"
    url = synapse.base_url
    try:
        async with Transport() as http:
            admin = await ensure_account(url, hs_dir, secrets_dir, ADMIN, http, admin=True)
            bot, moderator, member = [
                await ensure_account(url, hs_dir, secrets_dir, name, http)
                for name in (BOT, MODERATOR, MEMBER)
            ]
            admin_api = await _api_for(url, admin, state_dir, http)
            member_api = await _api_for(url, member, state_dir, http)
            ids = await provision_example(url, state_dir, example, member, admin_api, member_api)
    except BaseException:
        await synapse.stop()
        raise
    stack = DevStack(state_dir, synapse, url, bot, moderator, member, ids[DEMO_ROOM], ids)
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
                    "moderators_room": cfg.moderators_room,
                    "admin_socket": str(cfg.admin_socket),
                },
                "onboarding": stack.onboarding_section(),
                "moderation": stack.moderation_section(),
                "meetings": stack.meetings_section(),
                "archives": stack.archives_section(),
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
            f"  Demo room:   {stack.room_id}   ('Newly diagnosed' in the community's Space)",
            f"  Bot:         {stack.bot.user_id}",
            "",
            "Sign in with Element (or any Matrix client) using the homeserver address above,",
            "open the 'Newly diagnosed' room and send !help. The moderator has invitations",
            "to every room, including the moderators' room. New members need a token:",
            f"  hearth tokens --config {stack.state_dir / 'community.yaml'} create --uses 5",
            "Press Ctrl-C to stop.",
            f"State (passwords 0600) is kept in {stack.state_dir}; run again to reuse it.",
            "",
        ]
    )


async def run_dev(
    state_dir: Path,
    port: int | None = None,
    example: Path = EXAMPLE_COMMUNITY,
    hook: StopHook | None = None,
) -> None:
    """Synapse, the admin agent and the bot, until stopped; Ctrl-C (through
    *hook*) stops the bot as systemd's stop does, then the rest."""
    from bots.app import build_bot
    from bots.base.tasks import until_ready

    stack = await start_dev_stack(state_dir, port, example)
    # The admin agent, as in production the only holder of the admin token:
    # a process of its own, so the bot's never reads it.
    agent = await start_admin_agent(
        state_dir / "community.yaml", stack.admin_socket, state_dir / "admin-agent" / "audit.log"
    )
    try:
        runtime = build_bot(stack.bot_config())
        bot_task = asyncio.create_task(runtime.run())
        if hook is not None:
            hook.offer(runtime.stop)
        try:
            await until_ready(bot_task, runtime.ready, "the bot")
            print(login_banner(stack), flush=True)
            await bot_task
        finally:
            bot_task.cancel()
            await asyncio.gather(bot_task, return_exceptions=True)
    finally:
        await stop_process(agent)
        await stack.synapse.stop()


async def start_admin_agent(
    community: Path, socket_path: Path, audit_log: Path, timeout: float = 60.0
) -> asyncio.subprocess.Process:
    """`hearth admin-agent` in a process of its own, once its sockets are open
    (0600: in development the bot runs as the same user). The operator's
    socket sits beside the bots' one, as admin.sock."""
    admin_socket = socket_path.with_name("admin.sock")
    for old in (socket_path, admin_socket):
        with contextlib.suppress(FileNotFoundError):
            old.unlink()  # a previous run's, which would look ready
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "admin-agent", "--community", str(community),
        "--socket", str(socket_path), "--audit-log", str(audit_log), "--socket-mode", "600",
        "--admin-socket", str(admin_socket),
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    # Each socket is made with no access at all, then opened: ready at 0600.
    while not all(
        p.exists() and p.stat().st_mode & 0o777 == 0o600 for p in (socket_path, admin_socket)
    ):
        if proc.returncode is not None or time.monotonic() > deadline:
            await stop_process(proc)
            raise HomeserverError(
                f"the admin agent did not start (exit status {proc.returncode}); see its log above"
            )
        await asyncio.sleep(0.05)
    return proc
