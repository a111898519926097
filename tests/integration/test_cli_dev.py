"""The README's first command: `hearth dev` brings up a usable local Hearth."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from bots.devserver.synapse_config import free_port
from tests.support.homeserver import Homeserver, write_bot_yaml
from tests.support.member_client import MemberClient

pytestmark = pytest.mark.integration

HEARTH = str(Path(sys.executable).with_name("hearth"))


MARKER = "OKAPI-93c1-MARKER"


async def start_dev(state_dir: Path, port: int) -> tuple[asyncio.subprocess.Process, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir.parent / "dev.log").open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            HEARTH,
            "dev",
            "--state-dir",
            str(state_dir),
            "--port",
            str(port),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    banner = ""
    async with asyncio.timeout(120):
        while "Press Ctrl-C to stop." not in banner:
            line = await proc.stdout.readline()
            assert line, f"hearth dev exited early ({await proc.wait()}): {banner}"
            banner += line.decode()
    return proc, banner


async def stop_dev(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        return await proc.wait()


def children(pid: int) -> list[list[str]]:
    """The command lines of *pid*'s child processes that run Hearth's CLI."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == pid and "bots.cli" in cmd:
            found.append(cmd)
    return found


def field(banner: str, pattern: str) -> str:
    m = re.search(pattern, banner)
    assert m, f"{pattern!r} not in banner:\n{banner}"
    return m.group(1)


async def test_dev_runs_prints_logins_answers_help_and_restarts_on_same_state(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    port = free_port(None)
    proc, banner = await start_dev(state_dir, port)
    try:
        # The example community was provisioned: a Space, staff rooms, 3 groups.
        assert 'Community "Rare Disease Circle": 8 to create' in banner
        url = field(banner, r"Homeserver:\s+(http://127\.0\.0\.1:\d+)")
        assert url == f"http://127.0.0.1:{port}"
        member_id = field(banner, r"Member:\s+(@demo-member:localhost)")
        password = field(banner, r"Member:\s+\S+\s+password: (\S+)")
        assert field(banner, r"Moderator:\s+(@demo-moderator:localhost)")
        room = field(banner, r"Demo room:\s+(!\S+)")
        # The admin token's holder is a process of its own, not the bot's.
        (agent,) = children(proc.pid)
        assert "admin-agent" in agent

        m = MemberClient(url, member_id, tmp_path / "member")
        try:
            await m.login(password)
            await m.sync_until_joined(room)
            reply = await m.wait_for_reply(await m.send(room, "!help"), timeout=60)
            assert reply.decrypted
            assert "!ping" in reply.content["body"]
            # What a member writes reaches neither the bot's log nor Synapse's.
            await m.send(room, f"my scan showed {MARKER}")
            await m.wait_for_reply(await m.send(room, f"!ping {MARKER}"), timeout=60)
        finally:
            await m.close()
    finally:
        code = await stop_dev(proc)
    assert code in (0, 130)
    assert free_port(port) == port, "Synapse was left running after Ctrl-C"
    dev_log = (tmp_path / "dev.log").read_text(errors="replace")
    synapse_log = (state_dir / "synapse" / "synapse.log").read_text(errors="replace")
    assert "command handled" in dev_log
    assert synapse_log
    assert MARKER not in dev_log
    assert MARKER not in synapse_log
    # Passwords and keys are owner-only.
    for secret in (state_dir / "secrets").iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret.name

    proc2, banner2 = await start_dev(state_dir, port)
    try:
        assert field(banner2, r"Demo room:\s+(!\S+)") == room
        assert 'Community "Rare Disease Circle": no changes.' in banner2
        assert field(banner2, r"Member:\s+\S+\s+password: (\S+)") == password
    finally:
        await stop_dev(proc2)
    assert os.path.exists(state_dir / "bots" / "hearth-bot" / "credentials.json")


async def test_run_stops_cleanly_on_sigterm_and_refuses_bad_config(
    homeserver: Homeserver, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("bot:\n  homeserver: ftp://nope\n")
    proc = await asyncio.create_subprocess_exec(
        HEARTH, "run", "--config", str(bad), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert f"{bad}:2: bot.homeserver: expected an http:// or https:// URL" in err.decode()

    bot = await homeserver.user("bot")
    config = homeserver.bot_config(bot, tmp_path / "bot")
    good = write_bot_yaml(config, tmp_path / "bot.yaml", log={"format": "json"})
    proc = await asyncio.create_subprocess_exec(
        HEARTH, "run", "--config", str(good), stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    lines: list[bytes] = []
    async with asyncio.timeout(60):
        while b"bot ready" not in (line := await proc.stderr.readline()):
            lines.append(line)
    # It says which features started (the others need settings this file lacks).
    started = [json.loads(x) for x in lines if b'"features started"' in x]
    assert [entry["features"] for entry in started] == [["core"]]
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        assert await proc.wait() == 0
