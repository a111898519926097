"""The one way to the homeserver: every request Hearth makes goes through a
:class:`Transport`, which owns the account's rate limits, the retries and
the timeouts.

nio's requests come here too (:mod:`bots.matrix.nio_client` hands nio's
``send`` to :meth:`Transport.send`, with nio's own retries off), as do
Hearth's own calls (:class:`bots.matrix.client_api.ClientAPI`,
:mod:`bots.matrix.admin`). No caller retries what the transport retries, so
no retry loop runs inside another.

The policy:

- 429: the server did nothing, so the request is repeated, as many as
  :data:`RATE_LIMITED_RETRIES` times. The limit is the account's, not the
  request's: until its ``retry_after_ms`` has passed (at most 30 s; backoff
  when it does not say), nothing but reads leaves this transport. A request
  whose body cannot be sent twice (a streamed upload) is handed back with
  its 429 instead, and its caller repeats it after the pause.
- No connection (refused, no route, no such name): nothing was sent, so any
  request may be repeated. 502, 503 and 504 (a proxy could not reach Synapse)
  are repeated for GET, PUT and DELETE only: a POST such as createRoom may
  have been carried out before the failure, and a second one would make a
  second room. Both are retried with backoff *unreachable_retries* times
  (three, about 3.5 s in all: enough to ride out a proxy reload, short
  enough that a wrong address fails promptly). The bot's transport retries
  none: its own loops wait out a homeserver outage for minutes.
- Pacing: as fast as the homeserver accepts. An optional ceiling (requests
  per second, the bot's ``send_rate_limit``) is for a server that limits the
  bot and answers with 429s too slowly to steer by. Reads (GET) are never
  held back: Synapse limits actions, not reads, and a held sync would hold
  up everything the bot hears.
- Anything else is answered at once: :class:`RequestError` for an HTTP
  error, :class:`HomeserverError` when the server is unreachable or its
  reply unreadable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp

from bots.base.backoff import Backoff
from bots.base.errors import HomeserverError

JsonDict = dict[str, Any]

RATE_LIMITED_RETRIES = 20
UNREACHABLE_RETRIES = 3
RETRY_AFTER_CAP_S = 30.0
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE"})
PROXY_FAILURES = frozenset({502, 503, 504})


class RequestError(HomeserverError):
    """The homeserver answered with an HTTP error."""

    def __init__(self, what: str, status: int, data: JsonDict) -> None:
        self.status = status
        self.errcode = str(data.get("errcode", ""))
        # The whole reply: a 401 carries the user-interactive auth session.
        self.data = data
        reason = f"{self.errcode} {data.get('error', '')}".strip()
        super().__init__(f"{what} failed: HTTP {status} {reason}".rstrip())


def open_session(
    *,
    connector: aiohttp.BaseConnector | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> aiohttp.ClientSession:
    """The one place an HTTP session is made (the admin agent's socket and
    the dev server's health checks use one too, without a Transport)."""
    if timeout is None:
        return aiohttp.ClientSession(connector=connector)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


class Ceiling:
    """At most *rate* requests a second, *burst* at once after a quiet spell."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self.tokens = float(burst)
        self.updated = clock()

    async def take(self) -> None:
        while True:
            now = self._clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            # (Within rounding of a whole token: a sleep too short to move
            # the clock would otherwise repeat for ever.)
            if self.tokens >= 1 - 1e-9:
                self.tokens = max(0.0, self.tokens - 1)
                return
            await self._sleep((1 - self.tokens) / self.rate)


def _retry_after(data: Any, backoff: Backoff) -> float:
    """How long a 429 asks us to wait: its ``retry_after_ms``, capped."""
    asked = data.get("retry_after_ms") if isinstance(data, dict) else None
    if isinstance(asked, int | float) and asked >= 0:
        return min(RETRY_AFTER_CAP_S, asked / 1000)
    return backoff.next_delay()


def _json(raw: bytes) -> Any:
    """The reply's JSON ({} for an empty body), or None when it is not JSON
    (an HTML error page from a proxy)."""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None


class Transport:
    """One account's way to the homeserver (or a tool's, when it has no
    account yet). *http*: a session to send through, kept open for its
    owner; without one the transport opens its own and closes it."""

    def __init__(
        self,
        http: aiohttp.ClientSession | None = None,
        *,
        ceiling: float | None = None,
        unreachable_retries: int = UNREACHABLE_RETRIES,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._owned = http is None
        self.unreachable_retries = unreachable_retries
        self.timeout_s = timeout_s
        self._clock, self._sleep = clock, sleep
        # A burst of a few seconds' worth, so a ceiling does not slow a
        # reply that comes after a quiet spell.
        self.ceiling = (
            None
            if ceiling is None
            else Ceiling(ceiling, max(1, round(3 * ceiling)), clock=clock, sleep=sleep)
        )
        # Monotonic time before which nothing but reads is sent: the
        # homeserver's Retry-After applies to the account, so every request waits.
        self._resume_at = 0.0
        self.rate_limited = 0  # 429s met, for tests and benches

    @property
    def session(self) -> aiohttp.ClientSession:
        # A session of its own is opened again after close() (nio's way); a
        # caller's closed session stays closed, and fails loudly.
        if self._http is None or (self._owned and self._http.closed):
            self._http = open_session()
            self._owned = True
        return self._http

    async def close(self) -> None:
        if self._owned and self._http is not None:
            await self._http.close()
        self._http = None

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def pause(self, seconds: float) -> None:
        """Hold every request but reads for *seconds* (a 429's Retry-After)."""
        self._resume_at = max(self._resume_at, self._clock() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._resume_at - self._clock())

    async def _wait_out_pause(self) -> None:
        # A 429 that arrives while waiting pushes _resume_at further.
        while (pause := self._resume_at - self._clock()) > 0:
            await self._sleep(pause)

    async def _ready(self, method: str) -> None:
        if method == "GET":
            return
        await self._wait_out_pause()
        if self.ceiling is not None:
            await self.ceiling.take()

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        ssl: Any = None,
    ) -> aiohttp.ClientResponse:
        """One request, repeated as the module's policy says; the response,
        for the caller to read and release (a 429 or an error included, once
        the policy has given up on it)."""
        resendable = data is None or isinstance(data, str | bytes)
        backoff = Backoff(base=0.5, cap=RETRY_AFTER_CAP_S)
        rate_limited = unreachable = 0
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = aiohttp.ClientTimeout(total=timeout)
        if ssl is not None:
            extra["ssl"] = ssl
        while True:
            await self._ready(method)
            try:
                resp = await self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    data=data,
                    json=json_body,
                    params=params,
                    **extra,
                )
            except aiohttp.ClientConnectorError as exc:
                # Not connected, so nothing was sent: safe to repeat any request.
                # A refused certificate stays refused: not worth a retry.
                if (
                    unreachable < self.unreachable_retries
                    and resendable
                    and not isinstance(exc, aiohttp.ClientSSLError)
                ):
                    unreachable += 1
                    await self._sleep(backoff.next_delay())
                    continue
                raise
            if resp.status == 429:
                raw = await resp.read()
                self.rate_limited += 1
                self.pause(_retry_after(_json(raw), backoff))
                if resendable and rate_limited < RATE_LIMITED_RETRIES:
                    rate_limited += 1
                    resp.release()
                    await self._wait_out_pause()  # a read too, once limited
                    continue
                return resp
            if (
                resp.status in PROXY_FAILURES
                and method in IDEMPOTENT
                and resendable
                and unreachable < self.unreachable_retries
            ):
                unreachable += 1
                resp.release()
                await self._sleep(backoff.next_delay())
                continue
            return resp

    async def call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        token: str | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        upload: tuple[bytes, str] | None = None,
    ) -> Any:
        """One JSON API call; the reply's JSON: an object, or a list for the
        few endpoints that answer with one (a room's whole state).

        *what* names the request in errors ("keys query", "POST /createRoom");
        it never holds a token or a body. *upload*: bytes and their content
        type, sent instead of a JSON *body* (a media upload).

        Raises:
            RequestError: the server answered with an HTTP error.
            HomeserverError: the server could not be reached or its reply read.
        """
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        payload: dict[str, Any] = {"json_body": body}
        if upload is not None:
            payload = {"data": upload[0]}
            headers["Content-Type"] = upload[1]
        try:
            resp = await self.send(method, url, headers=headers, params=params, **payload)
            async with resp:
                status = resp.status
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Not retried here: the request may have arrived, and repeating
            # it could do it twice.
            raise HomeserverError(
                f"{what}: homeserver unreachable ({type(exc).__name__})"
            ) from None
        data = _json(raw)
        if status >= 400:
            raise RequestError(what, status, data if isinstance(data, dict) else {})
        if data is None:
            raise HomeserverError(f"{what} failed: the reply (HTTP {status}) is not JSON")
        return data
