"""The Ansible playbook, run for real: a fresh Debian 12 container becomes a Hearth homeserver.

A volunteer's steps: an inventory pointing at the server over SSH, the few
settings in group_vars, the community file, then `ansible-playbook -i
inventory/hosts.yml site.yml` from deploy/ansible. Bad input is tried first
against the untouched server (each must be refused before anything changes),
then a first run is interrupted half-way, the next run completes it and a
third run must change nothing. Everything else is checked from outside the
container, as a member's app and an administrator would.

Needs root, debootstrap and systemd-nspawn (tests/deploy/setup.sh installs
them and Ansible); the first run builds a Debian tree cached in
~/.cache/hearth/deploy. About 10 minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from aiohttp.abc import AbstractResolver, ResolveResult

from bots.base.errors import HomeserverError
from bots.devserver.synapse_config import SYNAPSE_INFO_LOGGERS
from bots.matrix.client_api import ClientAPI
from bots.matrix.transport import Transport
from tests.deploy.container import Container, free_port, port_is_free
from tests.deploy.volunteer import DEPLOY_VENV, DOMAIN, PLAYBOOK_DIR, REPO, Ports, Run, Volunteer
from tests.support.member_client import MemberClient

pytestmark = pytest.mark.deploy

CADDY_ROOT_CA = "var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"
# The first run is interrupted this long after it starts installing Synapse.
INTERRUPT_AT = "TASK [hearth_synapse : Install Synapse in its own virtual environment"
# `systemd-analyze security` exposure each unit must not exceed (0 is the
# most confined, 10 none; up to 2.5 is what systemd calls "OK" at its best).
# Root's two oneshots keep the powers they use (reading every service's files,
# changing the firewall); Synapse keeps writable executable memory for
# pyOpenSSL's callbacks (see synapse.service.j2).
EXPOSURE_TARGETS = {
    "synapse.service": 1.5,
    "hearth-agent.service": 1.5,
    "hearth-bot@hearth-bot.service": 1.5,
    "hearth-backup.service": 2.5,
    "hearth-firewall.service": 2.0,
}
WORKER_EXPOSURE_TARGET = 1.5


# --- set-up ------------------------------------------------------------------


def _tools_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("the deploy test needs root (debootstrap, systemd-nspawn)")
    setup = subprocess.run(
        [str(REPO / "tests/deploy/setup.sh")], capture_output=True, text=True, check=False
    )
    if shutil.which("systemd-nspawn") is None or shutil.which("debootstrap") is None:
        pytest.skip(f"systemd-nspawn could not be installed: {setup.stderr[-500:]}")
    assert setup.returncode == 0, setup.stderr
    assert (DEPLOY_VENV / "bin/ansible-playbook").exists()


def assert_untouched(container: Container) -> None:
    """Nothing of Hearth's on the server: the refusal came before any change."""
    r = container.ssh(
        "for p in /etc/hearth /etc/synapse /var/lib/hearth-deploy /opt/synapse /etc/caddy; do "
        '  test -e "$p" && echo "$p"; done; '
        "dpkg-query -W -f='${Status}\\n' postgresql caddy 2>/dev/null | grep -c installed; true"
    )
    assert r.stdout.split() == ["0"], f"the server was changed: {r.stdout}"


def backups(container: Container) -> list[str]:
    """The server's backup directories, oldest first (each is named by its UTC time)."""
    return container.ssh("ls -1d /var/backups/hearth/20*").stdout.split()


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    _tools_or_skip()
    c = Container.create(tmp_path_factory.mktemp("deploy"))
    try:
        c.boot()
        yield c
    finally:
        c.stop(keep_tree=os.environ.get("HEARTH_DEPLOY_KEEP") == "1")


@pytest.fixture(scope="module")
def volunteer(container: Container, tmp_path_factory: pytest.TempPathFactory) -> Volunteer:
    ports = Ports(free_port(), free_port(), free_port())
    return Volunteer(container, tmp_path_factory.mktemp("volunteer"), ports)


# --- static checks -------------------------------------------------------------


def test_ansible_lint_passes() -> None:
    _tools_or_skip()
    proc = subprocess.run(
        [str(DEPLOY_VENV / "bin/ansible-lint"), "--offline", "--nocolor"],
        cwd=PLAYBOOK_DIR,
        env={**os.environ, "PATH": f"{DEPLOY_VENV / 'bin'}:{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


# --- bad input, against the untouched server --------------------------------------


def refused(run: Run) -> str:
    assert run.rc != 0, run.output[-3000:]
    assert run.recap["changed"] == 0, run.output[-3000:]
    return run.output


def test_missing_and_misspelt_settings_are_named(volunteer: Volunteer) -> None:
    settings = volunteer.settings()
    del settings["hearth_domain"], settings["hearth_admin_email"]
    settings["hearth_federation_enabeld"] = True
    settings["hearth_proxy_https_port"] = "443x"
    # Without provisioning, nothing would tell the bots their moderators' room.
    settings["hearth_provision_enabled"] = False
    out = refused(volunteer.play(volunteer.inventory(settings)))
    assert "hearth_domain is missing" in out
    assert (
        "hearth_app_moderators_room is empty and hearth_provision_enabled is false, "
        "so the bots (hearth-bot) would have no moderators' room"
    ) in out
    assert "hearth_admin_email is missing" in out
    assert "hearth_federation_enabeld is not a Hearth setting" in out
    assert "hearth_proxy_https_port is '443x'" in out
    assert_untouched(volunteer.container)


def test_domain_with_trailing_dot_or_capitals_is_refused(volunteer: Volunteer) -> None:
    settings = volunteer.settings()
    settings["hearth_domain"] = "Hearth.test"
    settings["hearth_matrix_host"] = "hearth.test."
    out = refused(volunteer.play(volunteer.inventory(settings)))
    assert "hearth_domain is 'Hearth.test' and has capital letters: write 'hearth.test'" in out
    assert "hearth_matrix_host is 'hearth.test.' and ends with a dot: write 'hearth.test'" in out
    assert_untouched(volunteer.container)


def test_community_file_errors_are_caught_before_any_change(volunteer: Volunteer) -> None:
    # Not YAML at all.
    out = refused(volunteer.play(volunteer.inventory(community="community: [unclosed\n")))
    assert "is not valid YAML" in out

    # YAML that does not fit this server.
    bad = volunteer.community()
    bad["community"]["homeserver"] = "https://elsewhere.example"
    bad["community"]["admin"]["user_id"] = "@hearth-admin:elsewhere.example"
    bad["bots"].append({"user_id": f"@reminder-bot:{DOMAIN}"})
    bad["community"]["admin"]["access_token_file"] = "secrets/admin.token"
    out = refused(volunteer.play(volunteer.inventory(community=bad)))
    assert f"but this server will answer at '{volunteer.base_url}'" in out
    assert "community.admin.user_id is '@hearth-admin:elsewhere.example'" in out
    assert "bots[1].user_id is '@reminder-bot:hearth.test', but the playbook runs only" in out
    # The bots can read their secrets folder: the admin token goes elsewhere.
    assert "community.admin.access_token_file is 'secrets/admin.token': keep it" in out

    # A schema error only Hearth itself knows about (checked with `hearth
    # provision --validate-only` on the machine running Ansible).
    schema = volunteer.community()
    schema["groups"][0]["key"] = "Newly Diagnosed!"
    out = refused(volunteer.play(volunteer.inventory(community=schema)))
    assert "Hearth found errors in" in out
    assert "groups[0].key" in out or "groups.0.key" in out
    assert_untouched(volunteer.container)


OS_RELEASES = {
    "debian-11": (
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="11"\nVERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n',
        "11.11\n",
    ),
    "ubuntu-24.04": (
        'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
        'VERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\n'
        "ID_LIKE=debian\nUBUNTU_CODENAME=noble\n",
        "trixie/sid\n",
    ),
}


@pytest.mark.parametrize("system", sorted(OS_RELEASES))
def test_other_operating_systems_are_refused(volunteer: Volunteer, system: str) -> None:
    """The server says it is another system (its /etc/os-release is swapped
    for that system's); the playbook must refuse it before any change."""
    root = volunteer.container.root
    os_release = root / "usr/lib/os-release"
    debian_version = root / "etc/debian_version"
    saved = os_release.read_text(), debian_version.read_text()
    os_release.write_text(OS_RELEASES[system][0])
    debian_version.write_text(OS_RELEASES[system][1])
    try:
        out = refused(volunteer.play(volunteer.inventory()))
    finally:
        os_release.write_text(saved[0])
        debian_version.write_text(saved[1])
    name = "Debian 11" if system == "debian-11" else "Ubuntu 24.04"
    assert f"This server runs {name}" in out
    assert "supports only Debian 12" in out
    assert_untouched(volunteer.container)


# --- the real install --------------------------------------------------------------


@dataclass
class Deployed:
    volunteer: Volunteer
    interrupted: Run
    half_state: str
    first: Run
    second: Run
    ca_file: Path

    @property
    def container(self) -> Container:
        return self.volunteer.container

    def tls(self) -> ssl.SSLContext:
        """Trusts only the server's own CA, and checks the host name."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def http(self) -> aiohttp.ClientSession:
        """A client that finds hearth.test on this machine, as DNS would."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=LoopbackResolver(), ssl=self.tls())
        )

    @property
    def address(self) -> str:
        return self.volunteer.base_url

    @property
    def synapse(self) -> str:
        return f"http://127.0.0.1:{self.volunteer.ports.synapse}"


class LoopbackResolver(AbstractResolver):
    """DNS for the test: the homeserver's name is this machine."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        assert host == DOMAIN, f"unexpected host {host}"
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def deployed(volunteer: Volunteer) -> Deployed:
    c = volunteer.container
    inventory = volunteer.inventory()
    # Ctrl-C while Synapse is being installed from PyPI.
    # One second in: with pip's cache warm, Synapse installs in a few seconds.
    interrupted = volunteer.play_and_interrupt(inventory, INTERRUPT_AT, after_s=1)
    half = c.ssh(
        "systemctl is-active postgresql synapse caddy hearth-bot@hearth-bot 2>/dev/null; true"
    ).stdout
    first = volunteer.play(inventory)
    assert first.rc == 0, first.output[-6000:]
    second = volunteer.play(inventory)
    assert second.rc == 0, second.output[-6000:]
    print(
        f"\ninterrupted run {interrupted.seconds:.0f} s, completing run {first.seconds:.0f} s, "
        f"no-op run {second.seconds:.0f} s; memory {c.memory()}"
    )
    return Deployed(volunteer, interrupted, half, first, second, c.root / CADDY_ROOT_CA)


def test_interrupted_run_is_completed_by_the_next(deployed: Deployed) -> None:
    assert INTERRUPT_AT in deployed.interrupted.output
    assert deployed.interrupted.rc != 0
    # Half-way: the database runs, Synapse is not there yet.
    assert deployed.half_state.split()[:2] == ["active", "inactive"], deployed.half_state
    assert deployed.first.recap["failed"] == 0
    state = deployed.container.ssh(
        "systemctl is-active postgresql synapse caddy hearth-agent hearth-bot@hearth-bot"
    )
    assert state.stdout.split() == ["active"] * 5
    assert "Hearth is ready." in deployed.first.output
    assert (
        f"Homeserver address (members type this into Element): {deployed.volunteer.base_url}"
        in (deployed.first.output)
    )


def test_second_run_changes_nothing(deployed: Deployed) -> None:
    assert deployed.second.recap["changed"] == 0, deployed.second.output[-6000:]
    assert deployed.second.recap["failed"] == 0


async def test_https_endpoint_and_well_known(deployed: Deployed) -> None:
    async with deployed.http() as http:
        async with http.get(f"{deployed.address}/_matrix/client/versions") as r:
            assert r.status == 200
            assert "v1.11" in (await r.json())["versions"]
        async with http.get(f"{deployed.address}/.well-known/matrix/client") as r:
            assert r.status == 200
            assert (await r.json(content_type=None)) == {
                "m.homeserver": {"base_url": deployed.volunteer.base_url}
            }
        # The admin API is not offered to the world (only to the server itself,
        # which this test shares a loopback with; so ask Caddy for a path it
        # must never proxy instead).
        async with http.get(f"{deployed.address}/_synapse/metrics") as r:
            assert r.status == 404


TOKEN_FLOW = [{"stages": ["m.login.registration_token", "m.login.dummy"]}]


async def register(
    http: aiohttp.ClientSession, base: str, username: str, password: str, token: str | None
) -> tuple[int, dict[str, Any]]:
    """The registration a member's app does: start, then complete each stage in turn.

    Without a *token*, the token stage is skipped (sent as a dummy stage)."""
    body: dict[str, Any] = {"username": username, "password": password}
    url = f"{base}/_matrix/client/v3/register"
    before: list[str] = []
    for _ in range(20):
        async with http.post(url, json=body) as r:
            data: dict[str, Any] = await r.json()
        if r.status == 429:  # Synapse's registration rate limit
            await asyncio.sleep(data.get("retry_after_ms", 1000) / 1000 + 0.1)
            continue
        if r.status != 401 or "session" not in data:
            return r.status, data
        assert data["flows"] == TOKEN_FLOW, data
        done = data.get("completed", [])
        if "auth" in body and done == before:
            return r.status, data  # the stage just sent was not accepted
        before = done
        stage = next(s for s in TOKEN_FLOW[0]["stages"] if s not in done)
        if stage == "m.login.registration_token" and token is not None:
            body["auth"] = {"type": stage, "token": token, "session": data["session"]}
        else:
            body["auth"] = {"type": "m.login.dummy", "session": data["session"]}
    raise AssertionError("registration kept being rate-limited")


def create_token(deployed: Deployed) -> str:
    """The command the playbook's summary prints, run over SSH as the volunteer would."""
    printed = re.search(r"^\s*(hearth-admin tokens .*)$", deployed.first.output, re.M)
    assert printed, deployed.first.output[-2000:]
    out = deployed.container.ssh(printed.group(1).strip()).stdout.split()
    assert len(out) == 1, out
    return out[0]


@pytest.fixture(scope="module")
async def member_login(deployed: Deployed) -> tuple[str, str]:
    async with deployed.http() as http:
        username, password = f"member-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
        # Without a token (the app skips that stage), with a made-up one: no account.
        for token in (None, "not-a-token"):
            status, data = await register(http, deployed.address, username, password, token)
            assert status == 401, data
            assert "access_token" not in data
            assert "m.login.registration_token" not in data.get("completed", [])
        # With the one the admin created, the account is made.
        token = create_token(deployed)
        status, data = await register(http, deployed.address, username, password, token)
        assert status == 200, data
        return data["user_id"], password


async def test_registration_needs_a_token(member_login: tuple[str, str]) -> None:
    assert member_login[0].endswith(f":{DOMAIN}")


@pytest.fixture
async def api(deployed: Deployed, member_login: tuple[str, str]) -> AsyncIterator[ClientAPI]:
    async with deployed.http() as http:
        token = await ClientAPI.login(
            deployed.address, member_login[0], member_login[1], Transport(http), "t"
        )
        yield ClientAPI(deployed.address, token, Transport(http))


async def ping_bot(deployed: Deployed, api: ClientAPI, user_id: str, password: str) -> str:
    """A direct message with the bot (not asked to be encrypted); `!ping` gets an
    encrypted pong. (The bot joins a member's DM, never a member's other rooms.)"""
    bot = f"@hearth-bot:{DOMAIN}"
    room = await api.create_room(
        {"name": "Deploy test", "preset": "private_chat", "is_direct": True, "invite": [bot]}
    )
    encryption = await api.state(room, "m.room.encryption")
    assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
    deadline = time.monotonic() + 60
    while bot not in await api.joined_members(room):
        assert time.monotonic() < deadline, "the bot did not join"
        await asyncio.sleep(0.5)
    store = deployed.volunteer.workdir / f"store-{secrets.token_hex(3)}"
    member = MemberClient(deployed.address, user_id, store, ssl=deployed.tls())
    member.client.client_session = deployed.http()  # finds hearth.test (see LoopbackResolver)
    try:
        await member.login(password)
        await member.sync_until_joined(room)
        event_id = await member.send(room, "!ping")
        reply = await member.wait_for_reply(event_id, timeout=60)
    finally:
        await member.close()
    assert reply.sender == bot
    assert reply.decrypted
    return str(reply.content["body"])


async def test_new_room_is_encrypted_and_bot_answers_ping(
    deployed: Deployed, api: ClientAPI, member_login: tuple[str, str]
) -> None:
    assert "pong" in await ping_bot(deployed, api, *member_login)


async def test_profiles_are_private(deployed: Deployed, api: ClientAPI) -> None:
    """No profile of someone who shares no room with you (the admin account)."""
    with pytest.raises(HomeserverError, match="HTTP 403"):
        await api.request("GET", f"/_matrix/client/v3/profile/@hearth-admin:{DOMAIN}")
    published = await api.request("GET", "/_matrix/client/v3/publicRooms")
    assert published["chunk"] == []


async def test_federation_is_closed(deployed: Deployed, volunteer: Volunteer) -> None:
    if port_is_free(8448):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 8448), timeout=3).close()
    async with deployed.http() as http:
        for path in ("/_matrix/federation/v1/version", "/_matrix/key/v2/server"):
            async with http.get(f"{deployed.address}{path}") as r:
                assert r.status == 404, path
            async with http.get(f"{deployed.synapse}{path}") as r:
                assert r.status == 404, f"Synapse itself serves {path}"
        async with http.get(f"{deployed.address}/.well-known/matrix/server") as r:
            assert r.status == 404
    rules = (deployed.container.root / "etc/hearth-firewall.nft").read_text()
    assert "8448" not in rules


def test_only_the_admin_agent_can_read_the_admin_token(deployed: Deployed) -> None:
    c = deployed.container
    token = "/etc/hearth/admin/admin.token"
    # The bots' user cannot read it (nor the admin's password beside it)...
    as_bot = c.ssh(f"runuser -u hearth -- cat {token} >/dev/null 2>&1; echo $?")
    assert as_bot.stdout.strip() != "0"
    as_agent = c.ssh(f"runuser -u hearth-agent -- cat {token} >/dev/null 2>&1; echo $?")
    assert as_agent.stdout.strip() == "0"
    # ...and reaches the agent's socket only through its unit's extra group.
    socket = "/run/hearth-agent/agent.sock"
    for who, expected in (
        ("-u hearth -G hearth-agent", "0"),  # as hearth-bot@.service runs
        ("-u hearth", "1"),
        ("-u nobody", "1"),
    ):
        probe = c.ssh(f"runuser {who} -- test -w {socket}; echo $?")
        assert probe.stdout.strip() == expected, (who, probe.stdout)
    # At start the agent lifted the bot's rate limits, and wrote that down.
    audit = c.ssh("cat /var/lib/hearth-agent/audit.log").stdout
    assert '"request": "exempt_from_rate_limits"' in audit
    assert "@hearth-bot" not in audit
    assert c.ssh("stat -c %a /var/lib/hearth-agent/audit.log").stdout.strip() == "600"
    bot_config = c.ssh("cat /etc/hearth/bots/hearth-bot.yaml").stdout
    assert "admin_socket" in bot_config
    assert "admin.token" not in bot_config


def test_logs_are_kept_no_longer_than_synapse_keeps_ip_addresses(deployed: Deployed) -> None:
    root = deployed.container.root
    homeserver = yaml.safe_load((root / "etc/synapse/homeserver.yaml").read_text())
    assert homeserver["user_ips_max_age"] == "7d"
    journal = (root / "etc/systemd/journald.conf.d/hearth.conf").read_text().splitlines()
    assert "MaxRetentionSec=7d" in journal
    # journald deletes whole files: a new one each day, so none outlives that.
    assert "MaxFileSec=1day" in journal
    # Synapse logs warnings and errors, and at INFO only what names nobody:
    # not the line per request (the account and its IP address), nor logins.
    log = yaml.safe_load((root / "etc/synapse/log.yaml").read_text())
    assert log["root"]["level"] == "WARNING"
    chatty = {name for name, logger in log["loggers"].items() if logger["level"] != "WARNING"}
    assert chatty == set(SYNAPSE_INFO_LOGGERS)


def exposure(c: Container, unit: str) -> float:
    out = c.ssh(f"systemd-analyze security --no-pager {unit}").stdout
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m, out[-2000:]
    return float(m.group(1))


def test_every_unit_is_confined(deployed: Deployed) -> None:
    c = deployed.container
    scores = {unit: exposure(c, unit) for unit in EXPOSURE_TARGETS}
    print(f"\nsystemd-analyze security exposure: {scores}")
    over = {u: (score, EXPOSURE_TARGETS[u]) for u, score in scores.items()}
    assert all(score <= target for score, target in over.values()), over
    for unit in EXPOSURE_TARGETS:
        shown = c.ssh(
            f"systemctl show {unit} -p UMask -p ProtectProc -p RestrictNamespaces"
            " -p MemoryDenyWriteExecute -p RestrictAddressFamilies -p SystemCallFilter"
        ).stdout
        props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
        assert props["UMask"] == "0077", (unit, props["UMask"])
        assert props["ProtectProc"] == "invisible", unit
        assert props["RestrictNamespaces"] == "yes", unit
        assert props["RestrictAddressFamilies"], unit
        assert props["SystemCallFilter"], unit
        # Synapse's outgoing HTTPS needs writable executable memory (cffi).
        assert props["MemoryDenyWriteExecute"] == ("no" if unit == "synapse.service" else "yes")


async def test_bots_are_told_the_moderators_room_provisioning_made(deployed: Deployed) -> None:
    """Nobody typed a room ID: `hearth provision --record` told the playbook."""
    c = deployed.container
    bot = yaml.safe_load((c.root / "etc/hearth/bots/hearth-bot.yaml").read_text())
    room = bot["bot"]["moderators_room"]
    record = c.root / "var/lib/hearth-agent/provisioned.json"
    recorded = json.loads(record.read_text())
    assert recorded["moderators_room"] == room
    assert recorded["community"] == deployed.volunteer.community()["community"]["key"]
    assert stat.S_IMODE(record.stat().st_mode) == 0o640
    assert c.ssh(f"stat -c %U /{record.relative_to(c.root)}").stdout.strip() == "hearth-agent"
    # The server agrees: the community's admin made that room as its moderators' room.
    admin_token = (c.root / "etc/hearth/admin/admin.token").read_text().strip()
    async with aiohttp.ClientSession() as http:
        admin = ClientAPI(deployed.synapse, admin_token, Transport(http))
        marker = await admin.state(room, "org.hearth.room")
        create = await admin.request(
            "GET",
            f"/_matrix/client/v3/rooms/{quote(room, safe='')}/state/m.room.create/",
            params={"format": "event"},
        )
    assert marker["kind"] == "moderators"
    assert marker["community"] == recorded["community"]
    assert create["sender"] == f"@hearth-admin:{DOMAIN}"


def test_secrets_are_0600_and_never_printed(deployed: Deployed) -> None:
    root = deployed.container.root
    files = [
        *(root / "etc/synapse/secrets").iterdir(),
        *(root / "etc/hearth/secrets").iterdir(),
        *(root / "etc/hearth/admin").iterdir(),
        root / "etc/synapse/appservices/hearth-bridge.yaml",
    ]
    assert len(files) >= 9
    logs = "".join(p.read_text() for p in deployed.volunteer.workdir.glob("*.log"))
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600, f
        if f.suffix != ".yaml":
            value = f.read_text().strip()
            assert value
            assert value not in logs, f"{f.name} appears in the playbook's output"
    registration = yaml.safe_load((root / "etc/synapse/appservices/hearth-bridge.yaml").read_text())
    assert registration["namespaces"]["users"][0]["regex"] == r"@fb_.*:hearth\.test"
    homeserver = yaml.safe_load((root / "etc/synapse/homeserver.yaml").read_text())
    assert homeserver["app_service_config_files"] == ["/etc/synapse/appservices/hearth-bridge.yaml"]


def test_firewall_lets_in_only_ssh_http_https(deployed: Deployed) -> None:
    """The rules the playbook wrote, loaded in a network namespace of the
    test's own, with a second namespace connecting to it over a veth pair."""
    rules = deployed.container.root / "etc/hearth-firewall.nft"
    ports = deployed.volunteer.ports
    open_ports = [deployed.container.ssh_port, ports.http, ports.https]
    closed = [8448, 5432, ports.synapse, 22]
    tag = f"hfw{os.getpid() % 10000}"
    srv, cli = f"{tag}s", f"{tag}c"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    listener = None
    try:
        ip("netns", "add", srv)
        ip("netns", "add", cli)
        ip("link", "add", f"{tag}a", "netns", srv, "type", "veth", "peer", f"{tag}b", "netns", cli)
        ip("-n", srv, "addr", "add", "10.213.0.1/30", "dev", f"{tag}a")
        ip("-n", cli, "addr", "add", "10.213.0.2/30", "dev", f"{tag}b")
        for ns, dev in ((srv, f"{tag}a"), (cli, f"{tag}b")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", srv, "nft", "-f", str(rules)], check=True)
        listen = (
            "import socket, time\n"
            f"socks = [socket.create_server(('10.213.0.1', p)) for p in {open_ports + closed}]\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n"
        )
        listener = subprocess.Popen(
            ["ip", "netns", "exec", srv, sys.executable, "-c", listen],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        probe = (
            "import socket, json\n"
            "res = {}\n"
            f"for p in {open_ports + closed}:\n"
            "    try:\n"
            "        socket.create_connection(('10.213.0.1', p), timeout=1.5).close()\n"
            "        res[p] = True\n"
            "    except OSError:\n"
            "        res[p] = False\n"
            "print(json.dumps(res))\n"
        )
        out = subprocess.run(
            ["ip", "netns", "exec", cli, sys.executable, "-c", probe],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        reached = {int(k): v for k, v in json.loads(out).items()}
        assert reached == {**dict.fromkeys(open_ports, True), **dict.fromkeys(closed, False)}
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        for ns in (srv, cli):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


async def test_workers_can_be_switched_on_and_off(
    deployed: Deployed, api: ClientAPI, member_login: tuple[str, str]
) -> None:
    """Scale-out: with workers on, members' /sync goes through a worker (over
    Redis replication) and the bot still answers; off again, they are gone."""
    v, c = deployed.volunteer, deployed.container
    on = {
        **v.settings(),
        "hearth_synapse_workers_enabled": True,
        "hearth_synapse_workers_count": 1,
        "hearth_synapse_workers_base_port": free_port(),
        "hearth_synapse_workers_replication_port": free_port(),
    }
    run = v.play(v.inventory(on))
    assert run.rc == 0, run.output[-6000:]
    state = c.ssh("systemctl is-active synapse synapse-worker@generic1 redis-server").stdout
    assert state.split() == ["active"] * 3
    worker_exposure = exposure(c, "synapse-worker@generic1.service")
    print(f"\nsynapse-worker@generic1.service exposure: {worker_exposure}")
    assert worker_exposure <= WORKER_EXPOSURE_TARGET
    assert "pong" in await ping_bot(deployed, api, *member_login)
    caddy_routes = (c.root / "etc/caddy/hearth-workers.caddy").read_text()
    assert f"127.0.0.1:{on['hearth_synapse_workers_base_port']}" in caddy_routes
    again = v.play(v.inventory(on))
    assert again.recap["changed"] == 0, again.output[-6000:]

    off = v.play(v.inventory())
    assert off.rc == 0, off.output[-6000:]
    state = c.ssh("systemctl is-active synapse synapse-worker@generic1 redis-server; true").stdout
    assert state.split() == ["active", "inactive", "inactive"]
    assert not (c.root / "etc/caddy/hearth-workers.caddy").exists()
    assert "pong" in await ping_bot(deployed, api, *member_login)


def test_a_bot_taken_off_the_list_stops(deployed: Deployed) -> None:
    """A second bot runs once listed; taken off the list again it stops and
    stays stopped, and its crypto store is kept for a return."""
    v, c = deployed.volunteer, deployed.container
    two = {**v.settings(), "hearth_app_bots": [{"name": "hearth-bot"}, {"name": "greeter"}]}
    run = v.play(v.inventory(two))
    assert run.rc == 0, run.output[-6000:]
    assert c.ssh("systemctl is-active hearth-bot@greeter").stdout.strip() == "active"

    back = v.play(v.inventory())
    assert back.rc == 0, back.output[-6000:]
    state = c.ssh("systemctl is-active hearth-bot@greeter hearth-bot@hearth-bot; true").stdout
    assert state.split() == ["inactive", "active"]
    assert c.ssh("systemctl is-enabled hearth-bot@greeter; true").stdout.strip() == "disabled"
    assert not (c.root / "etc/hearth/bots/greeter.yaml").exists()
    assert (c.root / "var/lib/hearth/bots/greeter").is_dir()


@pytest.fixture
async def http(deployed: Deployed) -> AsyncIterator[aiohttp.ClientSession]:
    async with deployed.http() as session:
        yield session


async def test_backup_restores_into_an_empty_database(
    deployed: Deployed, api: ClientAPI, http: aiohttp.ClientSession, member_login: tuple[str, str]
) -> None:
    c = deployed.container
    admin_token = (c.root / "etc/hearth/admin/admin.token").read_text().strip()

    async def make_user(name: str) -> str:
        password = secrets.token_urlsafe(12)
        await ClientAPI(deployed.synapse, admin_token, Transport(http)).request(
            "PUT", f"/_synapse/admin/v2/users/@{name}:{DOMAIN}", {"password": password}
        )
        return password

    async def can_log_in(name: str, password: str) -> bool:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": f"@{name}:{DOMAIN}"},
            "password": password,
        }
        for _ in range(30):
            try:
                async with http.post(f"{deployed.address}/_matrix/client/v3/login", json=body) as r:
                    data = await r.json(content_type=None) or {}
            except aiohttp.ClientError:  # Synapse restarting
                await asyncio.sleep(1)
                continue
            if r.status == 429:  # every login here comes from 127.0.0.1
                await asyncio.sleep(data.get("retry_after_ms", 1000) / 1000 + 0.1)
                continue
            if r.status in (502, 503):
                await asyncio.sleep(1)
                continue
            return r.status == 200
        raise AssertionError("login kept being rate-limited")

    before = await make_user("before-backup")
    c.ssh("systemctl start hearth-backup.service", timeout=600)
    made = backups(c)
    assert len(made) == 1, made
    backup = made[0]
    listing = c.ssh(f"ls {backup}; pg_restore --list {backup}/synapse.pgdump").stdout
    assert {"synapse.pgdump", "media_store", "config.tar", "hearth"} <= set(listing.split())
    assert re.search(r"TABLE DATA public users ", listing)
    assert not re.search(r"TABLE DATA public e2e_one_time_keys_json ", listing)
    assert "etc/synapse/secrets/signing.key" in c.ssh(f"tar -tf {backup}/config.tar").stdout

    # The dump, restored into a new, empty database, holds the accounts.
    count = "SELECT count(*) FROM users"
    restored = c.ssh(
        "set -e; cd /; "
        "runuser -u postgres -- createdb --encoding=UTF8 --locale=C --template=template0 "
        "  restore_check; "
        f"runuser -u postgres -- pg_restore --exit-on-error --no-owner -d restore_check "
        f"  < {backup}/synapse.pgdump; "
        f"runuser -u postgres -- psql -XtAc '{count}' restore_check; "
        f"runuser -u postgres -- psql -XtAc '{count}' synapse; "
        "runuser -u postgres -- dropdb restore_check"
    ).stdout.split()
    assert restored[0] == restored[1], restored
    assert int(restored[0]) >= 4, restored

    # The documented full restore: an account made after the backup is gone,
    # one made before it works, and the bot still answers.
    after = await make_user("after-backup")
    assert await can_log_in("after-backup", after)
    out = c.ssh(f"hearth-restore {backup} --yes", timeout=600)
    assert "Restored from" in out.stdout, out.stdout + out.stderr
    assert await can_log_in("before-backup", before)
    assert not await can_log_in("after-backup", after)
    assert c.ssh("systemctl is-active hearth-bot@hearth-bot").stdout.strip() == "active"


async def test_bot_answers_a_new_device_after_a_restore(
    deployed: Deployed, api: ClientAPI, member_login: tuple[str, str]
) -> None:
    assert "pong" in await ping_bot(deployed, api, *member_login)


def test_nightly_backups_keep_a_week(deployed: Deployed) -> None:
    c = deployed.container
    assert c.ssh("systemctl is-enabled hearth-backup.timer").stdout.strip() == "enabled"
    assert c.ssh("systemctl is-active hearth-backup.timer").stdout.strip() == "active"
    # Two backups from earlier nights: a month old and three days old.
    now = dt.datetime.now(dt.UTC)
    month_old, recent = (
        (now - dt.timedelta(days=days)).strftime("%Y%m%dT%H%M%SZ") for days in (30, 3)
    )
    c.ssh(f"mkdir -p /var/backups/hearth/{month_old} /var/backups/hearth/{recent}")

    before = {Path(p).name for p in backups(c)}
    c.ssh("systemctl start hearth-backup.service", timeout=600)
    after = {Path(p).name for p in backups(c)}
    assert month_old not in after
    assert recent in after
    assert len(after - before) == 1, (before, after)  # tonight's


def test_security_updates_install_themselves(deployed: Deployed) -> None:
    c = deployed.container
    periodic = c.ssh("apt-config dump APT::Periodic").stdout
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    timers = c.ssh("systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer").stdout
    assert timers.split() == ["enabled", "enabled"]
    # unattended-upgrades itself reads the configuration and names what it
    # would install from: Debian's security archive for this release.
    dry = c.ssh("unattended-upgrade --dry-run --debug 2>&1", timeout=600).stdout
    allowed = re.search(r"Allowed origins are: (.*)", dry)
    assert allowed, dry[-3000:]
    origins = allowed.group(1).split(", ")
    assert origins == [
        "origin=Debian,codename=bookworm,label=Debian-Security",
        "origin=Debian,codename=bookworm-security,label=Debian-Security",
    ], origins


async def test_a_newcomer_with_a_group_token_is_welcomed(deployed: Deployed) -> None:
    """Synapse loads hearth_synapse, which tells the onboarding bot of the new
    account and its token's group: the welcome arrives in a DM."""
    token = deployed.container.ssh(
        "hearth-admin tokens --config /etc/hearth/community.yaml create --uses 1"
        " --expires 1d --group newly-diagnosed"
    ).stdout.split()
    assert len(token) == 1, token
    username, password = f"newcomer-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    async with deployed.http() as http:
        status, data = await register(http, deployed.address, username, password, token[0])
    assert status == 200, data
    store = deployed.volunteer.workdir / f"store-{secrets.token_hex(3)}"
    newcomer = MemberClient(deployed.address, data["user_id"], store, ssl=deployed.tls())
    newcomer.client.client_session = deployed.http()  # finds hearth.test (see LoopbackResolver)
    try:
        await newcomer.login(password)  # cross-signs, as Element does after sign-up
        deadline = time.monotonic() + 90
        while not newcomer.client.invited_rooms:
            assert time.monotonic() < deadline, "no DM from the bot"
            await asyncio.sleep(0.5)
        dm = next(iter(newcomer.client.invited_rooms))
        await newcomer.join(dm)
        welcome = await newcomer.wait_for(lambda ev: ev.room_id == dm, timeout=60)
    finally:
        await newcomer.close()
    assert welcome.sender == f"@hearth-bot:{DOMAIN}"
    assert welcome.decrypted
    assert "!agree" in welcome.content["body"]
    # Nothing about the newcomer is left in the spool once the bot took it.
    left = deployed.container.ssh("ls -A /var/lib/hearth-registrations").stdout.split()
    assert left == []


async def test_synapse_journal_names_nobody_after_a_sign_up_and_a_login(
    deployed: Deployed,
) -> None:
    """At INFO, Synapse wrote a sign-up's registration token and "Logging in
    user @x on device D" to the journal; now neither it nor anything else does.
    (Last: the account never verifies a device, so its spool entry waits for
    the bot's ten minutes, which the newcomer test must not see.)"""
    c = deployed.container
    token = create_token(deployed)
    localpart, password = f"quiet-{secrets.token_hex(5)}", secrets.token_urlsafe(16)
    async with deployed.http() as http:
        status, signed_up = await register(http, deployed.address, localpart, password, token)
        assert status == 200, signed_up
        user_id = signed_up["user_id"]
        access = await ClientAPI.login(
            deployed.address, user_id, password, Transport(http), "Phone"
        )
        whoami = await ClientAPI(deployed.address, access, Transport(http)).request(
            "GET", "/_matrix/client/v3/account/whoami"
        )
    assert whoami["user_id"] == user_id
    await asyncio.sleep(1)  # journald takes the last lines in
    synapse = c.ssh("journalctl -u synapse --no-pager -o cat").stdout
    everything = c.ssh("journalctl --no-pager -o cat").stdout
    assert "Synapse now listening on TCP port" in synapse  # the log works
    names = {
        "the user ID": user_id,
        "the localpart": localpart,
        "the sign-up's device": signed_up["device_id"],
        "the login's device": whoami["device_id"],
    }
    secrets_ = {
        "the registration token": token,
        "the sign-up's access token": signed_up["access_token"],
        "the login's access token": access,
        "the password": password,
    }
    found = [what for what, value in {**names, **secrets_}.items() if value in synapse]
    assert found == [], f"Synapse's journal holds {', '.join(found)}"
    found = [what for what, value in secrets_.items() if value in everything]
    assert found == [], f"the journal holds {', '.join(found)}"
