"""The one way to the homeserver (bots/matrix/transport.py), without a
server: its retry policy, the account-wide pause on a 429, and the ceiling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from bots.base.errors import HomeserverError
from bots.matrix.transport import (
    RATE_LIMITED_RETRIES,
    UNREACHABLE_RETRIES,
    Ceiling,
    RequestError,
    Transport,
)

URL = "http://hs.example/_matrix/client/v3/x"


def refused() -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="hs.example", port=80, ssl=False)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))  # type: ignore[arg-type]


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.released = False

    async def read(self) -> bytes:
        return self._raw

    def release(self) -> None:
        self.released = True

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Clock:
    """Monotonic time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class FakeHTTP:
    """Answers each request with the next scripted reply (or raises it),
    noting the fake time it was sent at."""

    closed = False

    def __init__(self, *script: Reply | Exception, clock: Clock | None = None) -> None:
        self._script: Iterator[Reply | Exception] = iter(script)
        self.sent: list[dict[str, Any]] = []
        self.clock = clock

    async def request(self, method: str, url: str, **kw: Any) -> Reply:
        at = self.clock.now if self.clock else None
        self.sent.append({"method": method, "url": url, "at": at, **kw})
        step = next(self._script)
        if isinstance(step, Exception):
            raise step
        return step


def transport(http: FakeHTTP, clock: Clock, **kw: Any) -> Transport:
    http.clock = clock
    return Transport(http, clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


async def run(http: FakeHTTP, method: str = "GET", **kw: Any) -> tuple[Any, Clock]:
    clock = Clock()
    data = await transport(http, clock).call(method, URL, what="test call", **kw)
    return data, clock


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
    clock = Clock()
    with pytest.raises(HomeserverError, match="test call: homeserver unreachable"):
        await transport(http, clock).call("GET", URL, what="test call")
    assert len(http.sent) == UNREACHABLE_RETRIES + 1
    assert sum(clock.slept) < 5


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


# --- the account's pause, the bot's transport and the ceiling ---

LIMITED = {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2000}


async def test_a_429_on_one_request_holds_every_other_until_retry_after() -> None:
    clock = Clock()
    http = FakeHTTP(Reply(429, LIMITED), Reply(200, {}), Reply(200, {}))
    t = transport(http, clock)
    # A key query is limited; a room send started meanwhile waits with it.
    await asyncio.gather(
        t.call("POST", URL + "/keys/query", what="keys query"),
        t.call("PUT", URL + "/send", what="send"),
    )
    first, *later = http.sent
    assert first["at"] == 1_000.0
    assert [s["at"] >= 1_002.0 for s in later] == [True, True]
    assert t.rate_limited == 1


async def test_reads_are_not_held_by_the_pause() -> None:
    clock = Clock()
    http = FakeHTTP(Reply(200, {}))
    t = transport(http, clock)
    t.pause(30)
    await t.call("GET", URL, what="sync")
    assert http.sent[0]["at"] == 1_000.0


async def test_a_body_that_cannot_be_sent_twice_comes_back_with_its_429() -> None:
    """A streamed upload: its caller repeats it once the pause is over."""
    clock = Clock()
    http = FakeHTTP(Reply(429, LIMITED))

    async def stream() -> Any:
        yield b"ciphertext"

    resp = await transport(http, clock).send("POST", URL, data=stream())
    assert resp.status == 429
    assert len(http.sent) == 1


async def test_the_bot_s_transport_leaves_an_outage_to_its_callers() -> None:
    """The bot's loops wait out an outage for minutes: no retry inside them."""
    clock = Clock()
    http = FakeHTTP(refused(), Reply(200, {}))
    with pytest.raises(aiohttp.ClientConnectorError):
        await transport(http, clock, unreachable_retries=0).send("PUT", URL)
    assert len(http.sent) == 1


async def test_without_a_ceiling_a_burst_goes_out_at_once() -> None:
    clock = Clock()
    http = FakeHTTP(*[Reply(200, {})] * 100)
    t = transport(http, clock)
    await asyncio.gather(*(t.call("PUT", URL, what="send") for _ in range(100)))
    assert clock.slept == []


async def test_a_ceiling_paces_writes_but_not_reads() -> None:
    clock = Clock()
    http = FakeHTTP(*[Reply(200, {})] * 60)
    t = transport(http, clock, ceiling=10.0)
    for _ in range(50):
        await t.call("PUT", URL, what="send")
    for _ in range(10):
        await t.call("GET", URL, what="read")
    # A burst of 30, then ten a second.
    assert clock.now - 1_000.0 == pytest.approx(20 / 10.0)


async def test_ceiling_allows_a_burst_without_waiting() -> None:
    clock = Clock()
    ceiling = Ceiling(rate=2.0, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await ceiling.take()
    assert clock.slept == []
    await ceiling.take()
    assert sum(clock.slept) == pytest.approx(1 / 2.0)


async def test_ceiling_refills_while_idle_but_not_beyond_the_burst() -> None:
    clock = Clock()
    ceiling = Ceiling(rate=2.0, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await ceiling.take()
    clock.now += 3600
    for _ in range(3):
        await ceiling.take()
    assert clock.slept == []
    await ceiling.take()
    assert sum(clock.slept) == pytest.approx(1 / 2.0)
