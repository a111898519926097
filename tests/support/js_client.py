"""matrix-js-sdk with its Rust crypto (what Element uses) as test members:
`tests/interop/js/send_and_wait.mjs` (one device) and `many_readers.mjs`
(many members in one process) driven from Python."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tests.support.homeserver import Homeserver, User

JS_DIR = Path(__file__).resolve().parents[1] / "interop" / "js"


def node() -> str:
    found = os.environ.get("HEARTH_NODE") or shutil.which("node")
    assert found, "Node.js is required for the interop test (scripts/test.sh installs it)"
    assert (JS_DIR / "node_modules" / "matrix-js-sdk").exists(), (
        f"run `npm ci` in {JS_DIR} first (scripts/test.sh does)"
    )
    return found


async def run_script(
    script: str, args: Sequence[str], password: str, timeout: float = 600
) -> dict[str, Any]:
    """One of the Node scripts, run to its end; its last JSON line. The
    account's password goes in the environment: argv is visible to every
    local user."""
    proc = await asyncio.create_subprocess_exec(
        node(),
        script,
        *args,
        cwd=JS_DIR,
        env={**os.environ, "HEARTH_JS_PASSWORD": password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, problems = await asyncio.wait_for(proc.communicate(), timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed: {problems.decode()[-2000:]}")
    line: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return line


class JsReaders:
    """Many members, each with one Element-like device, joined to *room* in
    one Node process; :meth:`result` says how many decrypted *expect_from*'s
    message *body* (see the script's header)."""

    def __init__(
        self,
        hs: Homeserver,
        users: list[User],
        room: str,
        expect_from: str,
        body: str = "pong",
        timeout: int = 300,
    ) -> None:
        self.args = [
            "--homeserver", hs.base_url, "--room", room, "--expect-from", expect_from,
            "--body", body, "--timeout", str(timeout),
        ]  # fmt: skip
        self.users = [[u.user_id, u.password] for u in users]
        self.timeout = timeout
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> dict[str, Any]:
        """Start them; once all are set up and in the room, the ready line."""
        self.proc = await asyncio.create_subprocess_exec(
            node(),
            "many_readers.mjs",
            *self.args,
            cwd=JS_DIR,
            env={**os.environ, "HEARTH_JS_USERS": json.dumps(self.users)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return await self._line()

    async def _line(self) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout + 60)
        if not raw:
            assert self.proc.stderr is not None
            raise AssertionError((await self.proc.stderr.read()).decode()[-2000:])
        line: dict[str, Any] = json.loads(raw)
        return line

    async def result(self) -> dict[str, Any]:
        line = await self._line()
        assert self.proc is not None
        await self.proc.wait()
        return line


class JsMember:
    """One js-sdk device of *user*, sending *sends* into *room* in turn and
    waiting for *expect_from*'s answer to each (see the script's header)."""

    def __init__(
        self,
        hs: Homeserver,
        user: User,
        room: str,
        expect_from: str,
        *,
        sends: tuple[str, ...] = ("!ping",),
        cross_signing: Literal["new", "none"] = "new",
        isolation: Literal["only-signed", "all"] = "only-signed",
        expect: Literal["reply", "withheld", "none"] = "reply",
        timeout: int = 60,
        go_file: Path | None = None,
        history_from: str | None = None,
        history_count: int = 0,
        vote: str | None = None,
        read_only: bool = False,
    ) -> None:
        self.args = [
            "--homeserver", hs.base_url, "--user", user.user_id, "--room", room,
            "--expect-from", expect_from, "--timeout", str(timeout),
            "--cross-signing", cross_signing, "--isolation", isolation, "--expect", expect,
        ]  # fmt: skip
        # An empty list keeps the script's default (!ping); a newcomer sends nothing.
        self.args += [a for text in sends for a in ("--send", text)]
        if go_file is not None:
            self.args += ["--go-file", str(go_file)]
        if history_from is not None:
            self.args += ["--history-from", history_from, "--history-count", str(history_count)]
        if vote is not None:
            self.args += ["--vote", vote]
        if read_only:
            self.args.append("--read-only")
        self.go_file = go_file
        self.password = user.password
        self.timeout = timeout
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            node(),
            "send_and_wait.mjs",
            *self.args,
            cwd=JS_DIR,
            # Not on the command line: argv is visible to every local user.
            env={**os.environ, "HEARTH_JS_PASSWORD": self.password},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def _line(self) -> dict[str, Any] | None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout + 60)
            if not raw:
                return None
            text = raw.decode().strip()
            if text.startswith("{"):
                line: dict[str, Any] = json.loads(text)
                self.lines.append(line)
                return line

    async def step(self) -> dict[str, Any]:
        """The next step's outcome (or the final result, if it ended early)."""
        line = await self._line()
        assert line is not None, await self._stderr()
        return line

    def go(self, step: int) -> None:
        assert self.go_file is not None
        Path(f"{self.go_file}.{step}").touch()

    async def result(self) -> dict[str, Any]:
        """Wait for the script to end; its last line."""
        while await self._line() is not None:
            pass
        assert self.proc is not None
        await self.proc.wait()
        assert self.lines, f"no result from the js client: {await self._stderr()}"
        return self.lines[-1]

    async def _stderr(self) -> str:
        assert self.proc is not None
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()[-2000:]


async def run_js_client(
    hs: Homeserver, user: User, room: str, bot: User, **kw: Any
) -> dict[str, Any]:
    """Run one js-sdk device to completion without blocking the test's event loop."""
    js = JsMember(hs, user, room, bot.user_id, **kw)
    await js.start()
    return await js.result()
