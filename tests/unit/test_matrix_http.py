"""The one retry policy of Hearth's HTTP calls outside nio, without a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from bots.base.errors import HomeserverError
from bots.matrix.http import RATE_LIMITED_RETRIES, UNREACHABLE_RETRIES, RequestError, call

URL = "http://hs.example/_matrix/client/v3/x"


def refused() -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="hs.example", port=80, ssl=False)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))  # type: ignore[arg-type]


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def read(self) -> bytes:
        return self._raw

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class FakeHTTP:
    """Answers each request with the next scripted reply (or raises it)."""

    def __init__(self, *script: Reply | Exception) -> None:
        self._script: Iterator[Reply | Exception] = iter(script)
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kw: Any) -> Reply:
        self.sent.append({"method": method, "url": url, **kw})
        step = next(self._script)
        if isinstance(step, Exception):
            raise step
        return step


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


async def run(http: FakeHTTP, method: str = "GET", **kw: Any) -> tuple[Any, Sleeps]:
    sleep = Sleeps()
    data = await call(http, method, URL, what="test call", sleep=sleep, **kw)  # type: ignore[arg-type]
    return data, sleep


async def test_a_reply_is_its_json_and_the_token_goes_in_a_header() -> None:
    http = FakeHTTP(Reply(200, {"ok": 1}))
    data, sleep = await run(http, "POST", token="secret-token", body={"a": 1})
    assert data == {"ok": 1}
    assert http.sent[0]["headers"] == {"Authorization": "Bearer secret-token"}
    assert http.sent[0]["json"] == {"a": 1}
    assert sleep.slept == []


async def test_429_waits_as_long_as_the_server_asks_capped() -> None:
    http = FakeHTTP(
        Reply(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 1500}),
        Reply(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 3_600_000}),
        Reply(200, {}),
    )
    # A POST too: a 429 means the server did nothing.
    _, sleep = await run(http, "POST")
    assert sleep.slept == [1.5, 30.0]


async def test_429_without_a_delay_backs_off() -> None:
    http = FakeHTTP(Reply(429, {"errcode": "M_LIMIT_EXCEEDED"}), Reply(200, {}))
    _, sleep = await run(http)
    assert len(sleep.slept) == 1
    assert 0.4 <= sleep.slept[0] <= 0.6


async def test_429_for_ever_ends_in_an_error() -> None:
    limited = Reply(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 10})
    http = FakeHTTP(*[limited] * (RATE_LIMITED_RETRIES + 1))
    with pytest.raises(RequestError) as caught:
        await run(http)
    assert caught.value.status == 429
    assert len(http.sent) == RATE_LIMITED_RETRIES + 1


async def test_a_refused_connection_is_retried_briefly_for_any_method() -> None:
    http = FakeHTTP(refused(), refused(), Reply(200, {"room_id": "!r:x"}))
    data, sleep = await run(http, "POST")
    assert data == {"room_id": "!r:x"}
    assert len(sleep.slept) == 2


async def test_an_unreachable_server_fails_within_seconds() -> None:
    http = FakeHTTP(*[refused()] * (UNREACHABLE_RETRIES + 1))
    sleep = Sleeps()
    with pytest.raises(HomeserverError, match="test call: homeserver unreachable"):
        await call(http, "GET", URL, what="test call", sleep=sleep)  # type: ignore[arg-type]
    assert len(http.sent) == UNREACHABLE_RETRIES + 1
    assert sum(sleep.slept) < 5


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_proxy_failure_is_retried_for_idempotent_methods(method: str) -> None:
    http = FakeHTTP(Reply(502, b"<html>Bad Gateway</html>"), Reply(200, {}))
    _, sleep = await run(http, method)
    assert len(http.sent) == 2
    assert len(sleep.slept) == 1


async def test_a_proxy_failure_is_not_retried_for_a_post() -> None:
    """createRoom may have run before the proxy gave up: a retry could make two rooms."""
    http = FakeHTTP(Reply(502, b"<html>Bad Gateway</html>"), Reply(200, {}))
    with pytest.raises(RequestError, match="HTTP 502"):
        await run(http, "POST")
    assert len(http.sent) == 1


async def test_a_lost_reply_is_not_retried() -> None:
    http = FakeHTTP(aiohttp.ServerDisconnectedError(), Reply(200, {}))
    with pytest.raises(HomeserverError, match="ServerDisconnectedError"):
        await run(http, "PUT")
    assert len(http.sent) == 1


async def test_an_http_error_carries_status_errcode_and_reply() -> None:
    http = FakeHTTP(Reply(401, {"errcode": "M_UNAUTHORIZED", "session": "uia"}))
    with pytest.raises(RequestError) as caught:
        await run(http, "POST")
    err = caught.value
    assert (err.status, err.errcode, err.data["session"]) == (401, "M_UNAUTHORIZED", "uia")
    assert str(err) == "test call failed: HTTP 401 M_UNAUTHORIZED"


async def test_a_reply_that_is_not_json_is_an_error() -> None:
    with pytest.raises(HomeserverError, match="is not JSON"):
        await run(FakeHTTP(Reply(200, b"<html>hello</html>")))
    assert (await run(FakeHTTP(Reply(200, b""))))[0] == {}
    assert (await run(FakeHTTP(Reply(200, [{"type": "m.room.create"}]))))[0] == [
        {"type": "m.room.create"}
    ]
