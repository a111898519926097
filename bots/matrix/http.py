"""Every call Hearth makes to the homeserver outside nio, with one retry policy.

The set-up and admin client (`client_api.py`), Synapse's shared-secret
registration (`admin.py`) and the bot's cross-signing uploads all go through
:func:`call`. The bot's room traffic goes through nio and the effector, which
owns its own retries.

The policy:

- 429: the server did nothing, so any request may be repeated; wait as long
  as it asks (at most 30 s; with backoff when it does not say), up to 20 times.
- No connection (refused, no route, no such name): nothing was sent, so any
  request may be repeated. 502, 503 and 504 (a proxy could not reach Synapse)
  are repeated for GET, PUT and DELETE only: a POST such as createRoom may
  have been carried out before the failure, and a second one would make a
  second room. Both are retried with backoff three times (about 3.5 s in
  all): enough to ride out a proxy reload, short enough that a wrong address
  fails promptly.
- Anything else is answered at once: :class:`RequestError` for an HTTP
  error, :class:`HomeserverError` when the server is unreachable or its
  reply unreadable.
"""

from __future__ import annotations

import asyncio
import json
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


def _backoff() -> Backoff:
    return Backoff(base=0.5, cap=RETRY_AFTER_CAP_S)


def _retry_after(data: JsonDict, backoff: Backoff) -> float:
    """How long a 429 asks us to wait: its ``retry_after_ms``, capped."""
    asked = data.get("retry_after_ms")
    if isinstance(asked, int | float) and asked >= 0:
        return min(RETRY_AFTER_CAP_S, asked / 1000)
    return backoff.next_delay()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    token: str | None = None,
    body: Any = None,
    params: Mapping[str, str] | None = None,
    upload: tuple[bytes, str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    """One request, retried as the module's policy says; the reply's JSON: an
    object, or a list for the few endpoints that answer with one (a room's
    whole state).

    *what* names the request in errors ("keys query", "POST /createRoom");
    it never holds a token or a body. *upload*: bytes and their content type,
    sent instead of a JSON *body* (a media upload).

    Raises:
        RequestError: the server answered with an HTTP error.
        HomeserverError: the server could not be reached or its reply read.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload: dict[str, Any] = {"json": body}
    if upload is not None:
        payload = {"data": upload[0]}
        headers["Content-Type"] = upload[1]
    backoff = _backoff()
    rate_limited = unreachable = 0
    while True:
        try:
            async with http.request(method, url, headers=headers, params=params, **payload) as r:
                status = r.status
                raw = await r.read()
        except aiohttp.ClientConnectorError as exc:
            # Not connected, so nothing was sent: safe to repeat any request.
            # A refused certificate stays refused: not worth a retry.
            if unreachable < UNREACHABLE_RETRIES and not isinstance(exc, aiohttp.ClientSSLError):
                unreachable += 1
                await sleep(backoff.next_delay())
                continue
            raise HomeserverError(
                f"{what}: homeserver unreachable ({type(exc).__name__})"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The request may have arrived: repeating it could do it twice.
            raise HomeserverError(
                f"{what}: homeserver unreachable ({type(exc).__name__})"
            ) from None
        data = _json(raw)
        error = data if isinstance(data, dict) else {}
        if status == 429 and rate_limited < RATE_LIMITED_RETRIES:
            rate_limited += 1
            await sleep(_retry_after(error, backoff))
            continue
        if status in PROXY_FAILURES and method in IDEMPOTENT and unreachable < UNREACHABLE_RETRIES:
            unreachable += 1
            await sleep(backoff.next_delay())
            continue
        if status >= 400:
            raise RequestError(what, status, error)
        if data is None:
            raise HomeserverError(f"{what} failed: the reply (HTTP {status}) is not JSON")
        return data


def _json(raw: bytes) -> Any:
    """The reply's JSON ({} for an empty body), or None when it is not JSON
    (an HTML error page from a proxy)."""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return None
