"""Headless Chromium, driven through `tests/interop/js/browser.mjs`
(puppeteer-core), one browser per test module; and Element Web served from
`../shared/element-web/webapp`, pointed at the test Synapse.

A step that fails keeps a screenshot of the page under the test's temporary
folder and names it in the failure, so what the person would have seen is
there to look at."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.js_client import JS_DIR, node

ROOT = Path(__file__).resolve().parents[2]
# Where the built Element Web is kept beside the project (its README says
# how it was built); HEARTH_ELEMENT_WEB names another copy.
ELEMENT_WEB = Path(os.environ.get("HEARTH_ELEMENT_WEB", ROOT.parent / "shared" / "element-web"))
CHROMIUM = os.environ.get("HEARTH_CHROMIUM", "/usr/bin/chromium")
STEP_TIMEOUT_MS = 30_000


def missing() -> str | None:
    """Why the browser tests cannot run here, in one line; None if they can."""
    if not (ELEMENT_WEB / "webapp" / "index.html").exists():
        return f"no built Element Web at {ELEMENT_WEB}/webapp (see ../shared/element-web/README.md)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (scripts/test.sh installs Debian's chromium)"
    if not (JS_DIR / "node_modules" / "puppeteer-core").exists():
        return f"puppeteer-core is not installed in {JS_DIR} (scripts/test.sh runs npm ci)"
    return None


class StepFailed(AssertionError):
    pass


class Browser:
    """The Node process that holds the browser; :meth:`session` opens one
    person's Element in a context of its own."""

    def __init__(self, proc: asyncio.subprocess.Process, shots: Path) -> None:
        self._proc = proc
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.shots = shots

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, shots: Path) -> AsyncIterator[Browser]:
        proc = await asyncio.create_subprocess_exec(
            node(),
            "browser.mjs",
            "--chromium",
            CHROMIUM,
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=2**22,
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not first:
            problem = await proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(f"the browser did not start: {problem.decode()[-2000:]}")
        shots.mkdir(parents=True, exist_ok=True)
        browser = cls(proc, shots)
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                await browser._send({"op": "quit"}, wait=False)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _send(self, request: dict[str, Any], wait: bool = True) -> dict[str, Any]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        async with self._lock:
            request = {"id": next(self._ids), **request}
            self._proc.stdin.write((json.dumps(request) + "\n").encode())
            await self._proc.stdin.drain()
            if not wait:
                return {}
            line = await asyncio.wait_for(self._proc.stdout.readline(), 300)
        if not line:
            raise RuntimeError("the browser process ended")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def session(self, name: str, url: str) -> Session:
        session = Session(self, name, url)
        await session.call("open", url=url)
        return session


class Session:
    """One person's browser tab. Each call is a step: if it fails, the page
    is photographed and the failure names the picture."""

    def __init__(self, browser: Browser, name: str, base_url: str) -> None:
        self.browser = browser
        self.name = name
        self.base_url = base_url
        self._shots = itertools.count(1)

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        reply = await self.browser._send({"op": op, "session": self.name, **args})
        if not reply.get("ok"):
            shot = await self.screenshot(f"failed-{op}")
            raise StepFailed(f"{self.name}: {op} {args}: {reply.get('error')} (screenshot: {shot})")
        return reply

    async def screenshot(self, label: str) -> Path:
        path = self.browser.shots / f"{self.name}-{next(self._shots):02d}-{label}.png"
        await self.browser._send({"op": "screenshot", "session": self.name, "path": str(path)})
        return path

    async def click(self, selector: str, timeout: int = STEP_TIMEOUT_MS) -> None:
        await self.call("click", selector=selector, timeout=timeout)

    async def click_if_there(self, selector: str, timeout: int = 2_000) -> bool:
        """Click *selector* if it shows within *timeout*: for what Element
        shows only sometimes (a toast, a popover)."""
        reply = await self.browser._send(
            {"op": "click", "session": self.name, "selector": selector, "timeout": timeout}
        )
        return bool(reply.get("ok"))

    async def fill(self, selector: str, text: str, timeout: int = STEP_TIMEOUT_MS) -> None:
        await self.call("fill", selector=selector, text=text, timeout=timeout)

    async def press(self, key: str) -> None:
        await self.call("press", key=key)

    async def wait(self, selector: str, timeout: int = STEP_TIMEOUT_MS) -> None:
        await self.call("wait", selector=selector, timeout=timeout)

    async def present(self, selector: str) -> bool:
        return bool((await self.call("present", selector=selector))["present"])

    async def wait_text(self, selector: str, text: str, timeout: int = STEP_TIMEOUT_MS) -> None:
        await self.call("waitText", selector=selector, text=text, timeout=timeout)

    async def wait_count(self, selector: str, count: int, timeout: int = STEP_TIMEOUT_MS) -> None:
        await self.call("waitCount", selector=selector, count=count, timeout=timeout)

    async def texts(self, selector: str) -> list[str]:
        return list((await self.call("texts", selector=selector))["texts"])

    async def html(self, selector: str) -> list[str]:
        return list((await self.call("html", selector=selector))["html"])

    async def close(self) -> None:
        await self.call("close")


def element_copy(dest: Path, homeserver_url: str, server_name: str) -> Path:
    """A copy of Element Web whose config points at *homeserver_url*."""
    webapp = dest / "element"
    if not webapp.exists():
        shutil.copytree(ELEMENT_WEB / "webapp", webapp)
    config_path = webapp / "config.json"
    config = json.loads(config_path.read_text())
    config["default_server_config"]["m.homeserver"] = {
        "base_url": homeserver_url,
        "server_name": server_name,
    }
    config_path.write_text(json.dumps(config))
    return webapp


@contextlib.asynccontextmanager
async def serving(folder: Path) -> AsyncIterator[str]:
    """*folder* served on a free loopback port; yields its base URL."""
    app = web.Application()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    app.router.add_get("/", index)
    app.router.add_static("/", folder)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = _port(site)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _port(site: web.TCPSite) -> int:
    server = site._server
    assert server is not None
    sockets: Iterator[Any] = iter(getattr(server, "sockets", ()))
    return int(next(sockets).getsockname()[1])
