"""A reverse proxy in front of the test's real Synapse that answers chosen
requests with 429, as a homeserver under load would, or passes one on and
never answers (a crash between the homeserver acting and the bot hearing). Synapse itself
rate-limits no to-device sends, so this is how a test meets one half-way
through a key-sharing round; everything else is Synapse's own answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bots.devserver.synapse_config import free_port

# Headers that describe one hop, not the message.
_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}
_HOP_BACK = _HOP | {"content-encoding"}


@dataclass
class FlakyProxy:
    upstream: str
    # (method, path, how many such requests came before) → answer 429?
    refuse: Callable[[str, str, int], bool]
    retry_after_ms: int = 500
    # (method, path, how many came before) → pass it on, then never answer
    # (the homeserver acted on it; its answer is lost, as in a crash).
    hold: Callable[[str, str, int], bool] = lambda _m, _p, _n: False
    held: list[str] = field(default_factory=list)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when the proxy closes: a held request then ends (unanswered), so
    # closing does not wait out aiohttp's shutdown timeout for it.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    url: str = ""

    def _kind(self, path: str) -> str:
        # /sendToDevice/{type}/{txn}: counted by type, whatever the transaction.
        parts = path.split("/")
        if "sendToDevice" in parts:
            return "/".join(parts[: parts.index("sendToDevice") + 2])
        return path

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = (request.method, self._kind(request.path))
        count = self.seen.get(key, 0)
        self.seen[key] = count + 1
        if self.refuse(request.method, request.path, count):
            self.refused.append(f"{request.method} {request.path}")
            return web.json_response(
                {
                    "errcode": "M_LIMIT_EXCEEDED",
                    "error": "Too Many Requests",
                    "retry_after_ms": self.retry_after_ms,
                },
                status=429,
            )
        held = self.hold(request.method, request.path, count)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout, auto_decompress=True) as http,
            http.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=body or None,
            ) as upstream,
        ):
            data = await upstream.read()
            if held:
                self.held.append(f"{request.method} {request.path}")
                self.holding.set()
                await self.closing.wait()
                raise ConnectionResetError("held until the proxy closed")
            back = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BACK}
            return web.Response(status=upstream.status, body=data, headers=back)


@contextlib.asynccontextmanager
async def flaky_proxy(
    upstream: str,
    refuse: Callable[[str, str, int], bool] = lambda _m, _p, _n: False,
    hold: Callable[[str, str, int], bool] = lambda _m, _p, _n: False,
) -> AsyncIterator[FlakyProxy]:
    proxy = FlakyProxy(upstream, refuse, hold=hold)
    app = web.Application(client_max_size=64 * 1024**2)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port(None)
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        proxy.closing.set()
        await runner.cleanup()
