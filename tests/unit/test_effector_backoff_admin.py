"""Outgoing events, retry delays and Synapse's registration MAC."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
from types import SimpleNamespace
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from bots.base import backoff as backoff_module
from bots.base.backoff import Backoff
from bots.framework.actions import JoinRoom, Reply, SendNotice
from bots.framework.content import message_content
from bots.framework.outbox import effector as effector_module
from bots.framework.outbox.effector import Effector, transaction_id
from bots.matrix.admin import registration_mac

ROOM = "!lounge:example.org"


class FakeClock:
    """Monotonic time that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 5_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(effector_module, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


# --- message content ---


def test_notice_content() -> None:
    content = message_content(SendNotice(ROOM, "Meeting starts soon"))
    assert content["msgtype"] == "m.notice"
    assert content["body"] == "Meeting starts soon"
    assert "m.relates_to" not in content
    assert "format" not in content


def test_reply_content_points_at_the_event() -> None:
    content = message_content(Reply(ROOM, "$question", "pong"))
    assert content["msgtype"] == "m.notice"
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$question"}}


def test_reply_has_no_quoted_fallback() -> None:
    content = message_content(Reply(ROOM, "$question", "pong", html="<b>pong</b>"))
    assert content["body"] == "pong"
    assert content["formatted_body"] == "<b>pong</b>"
    assert "mx-reply" not in content["formatted_body"]


def test_html_content_declares_its_format() -> None:
    content = message_content(SendNotice(ROOM, "hi", html="<i>hi</i>"))
    assert content["format"] == "org.matrix.custom.html"
    assert content["formatted_body"] == "<i>hi</i>"


@pytest.mark.parametrize(
    "action",
    [SendNotice(ROOM, "@room hello @alice:example.org"), Reply(ROOM, "$e", "@alice:example.org")],
)
def test_notices_mention_nobody(action: Reply | SendNotice) -> None:
    assert message_content(action)["m.mentions"] == {}


# --- transaction ids ---


def test_transaction_ids_are_unique_so_repeated_notices_both_arrive() -> None:
    ids = {transaction_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith("hearth-") for i in ids)


# --- effector retries (fake client, fake clock) ---


class FakeClient:
    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.sends: list[dict[str, Any]] = []
        self.joins: list[str] = []

    def _next(self) -> Any:
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def room_send(self, room_id: str, event_type: str, content: Any, **kw: Any) -> Any:
        self.sends.append({"room_id": room_id, "type": event_type, "content": content, **kw})
        return self._next()

    async def join(self, room_id: str) -> Any:
        self.joins.append(room_id)
        return self._next()


SENT = RoomSendResponse("$sent", ROOM)


async def test_effector_sends_the_notice_content(clock: FakeClock) -> None:
    client = FakeClient(SENT)
    action = Reply(ROOM, "$q", "pong")
    await Effector(client).perform([action])
    (send,) = client.sends
    assert send["room_id"] == ROOM
    assert send["type"] == "m.room.message"
    assert send["content"] == message_content(action)
    assert send["tx_id"].startswith("hearth-")


async def test_identical_actions_performed_twice_get_distinct_transactions(
    clock: FakeClock,
) -> None:
    client = FakeClient(SENT, SENT)
    action = SendNotice(ROOM, "Meeting in one hour")
    await Effector(client).perform([action])
    await Effector(client).perform([action])
    assert len({s["tx_id"] for s in client.sends}) == 2


async def test_effector_retries_transient_failures_with_the_same_transaction(
    clock: FakeClock,
) -> None:
    client = FakeClient(OSError("connection reset"), RoomSendError("busy", "M_UNKNOWN"), SENT)
    await Effector(client).perform([SendNotice(ROOM, "hello")])
    assert len(client.sends) == 3
    assert len({s["tx_id"] for s in client.sends}) == 1
    assert len(clock.slept) == 2


async def test_effector_does_not_retry_permanent_errors(clock: FakeClock) -> None:
    client = FakeClient(RoomSendError("no", "M_FORBIDDEN"))
    await Effector(client).perform([SendNotice(ROOM, "hello")])
    assert len(client.sends) == 1


async def test_effector_gives_up_after_max_attempts(clock: FakeClock) -> None:
    client = FakeClient(RoomSendError("odd", "M_UNKNOWN"))
    await Effector(client, max_attempts=4).perform([SendNotice(ROOM, "hello")])
    assert len(client.sends) == 4


async def test_an_outage_is_waited_out_beyond_max_attempts(clock: FakeClock) -> None:
    # A homeserver restarting for a minute: every reply in flight still arrives.
    client = FakeClient(*[OSError("down")] * 12, RoomSendError("bad gateway", "502"), SENT)
    outcome = await Effector(client, max_attempts=4).perform_one(SendNotice(ROOM, "hello"))
    assert outcome.ok
    assert len(client.sends) == 14
    assert len({s["tx_id"] for s in client.sends}) == 1


async def test_an_outage_longer_than_the_bound_is_reported(clock: FakeClock) -> None:
    client = FakeClient(OSError("down"))
    outcome = await Effector(client, max_wait_s=120).perform_one(SendNotice(ROOM, "hello"))
    assert not outcome.ok
    assert outcome.problem is not None
    assert outcome.problem.startswith("unreachable")
    assert sum(clock.slept) <= 120


async def test_effector_joins_rooms(clock: FakeClock) -> None:
    client = FakeClient(SENT)
    await Effector(client).perform([JoinRoom(ROOM)])
    assert client.joins == [ROOM]
    assert client.sends == []


# --- backoff ---


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff_module, "random", SimpleNamespace(uniform=lambda a, b: 1.0))


@pytest.mark.usefixtures("no_jitter")
def test_backoff_starts_at_the_base() -> None:
    assert Backoff(base=0.25, cap=10).next_delay() == 0.25


@pytest.mark.usefixtures("no_jitter")
def test_backoff_doubles_each_time() -> None:
    b = Backoff(base=0.5, cap=1000)
    delays = [b.next_delay() for _ in range(6)]
    assert all(later == 2 * earlier for earlier, later in itertools.pairwise(delays))


@pytest.mark.usefixtures("no_jitter")
def test_backoff_is_capped() -> None:
    b = Backoff(base=0.5, cap=30)
    delays = [b.next_delay() for _ in range(40)]
    assert max(delays) == 30
    assert delays[-10:] == [30] * 10


@pytest.mark.usefixtures("no_jitter")
def test_backoff_reset_starts_over() -> None:
    b = Backoff(base=0.5, cap=30)
    first = b.next_delay()
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.next_delay() == first


def test_backoff_jitter_stays_within_20_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff_module, "random", random.Random(1234))
    base, cap = 0.5, 8.0
    b = Backoff(base=base, cap=cap)
    ratios = []
    for n in range(30):
        nominal = min(cap, base * 2**n)
        delay = b.next_delay()
        assert 0.8 * nominal <= delay <= 1.2 * nominal
        ratios.append(delay / nominal)
    assert len(set(ratios)) > 1


@pytest.mark.usefixtures("no_jitter")
def test_backoff_survives_a_very_long_outage() -> None:
    b = Backoff(base=0.5, cap=30)
    delays = [b.next_delay() for _ in range(2000)]
    assert delays[-1] == 30


# --- shared-secret registration MAC ---


def synapse_mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    """Synapse's documented algorithm: HMAC-SHA1 over NUL-separated fields."""
    message = b"\x00".join(
        [nonce.encode(), user.encode(), password.encode(), b"admin" if admin else b"notadmin"]
    )
    return hmac.new(secret.encode(), message, hashlib.sha1).hexdigest()


@pytest.mark.parametrize("admin", [False, True])
def test_registration_mac_matches_synapse(admin: bool) -> None:
    args = ("shared-secret", "abcdef0123", "hearth-bot", "correct horse", admin)
    assert registration_mac(*args) == synapse_mac(*args)


def test_registration_mac_handles_non_ascii() -> None:
    args = ("sécret", "nonce", "zoë", "пароль🔑", False)
    assert registration_mac(*args) == synapse_mac(*args)


def test_registration_mac_distinguishes_admin() -> None:
    assert registration_mac("s", "n", "u", "p", True) != registration_mac("s", "n", "u", "p", False)


@pytest.mark.parametrize("field", range(4))
def test_registration_mac_depends_on_every_field(field: int) -> None:
    base = ["secret", "nonce", "user", "password"]
    changed = list(base)
    changed[field] += "x"
    assert registration_mac(*base, False) != registration_mac(*changed, False)


def test_registration_mac_separates_fields() -> None:
    shifted = registration_mac("s", "n", "a", "bc", False)
    assert registration_mac("s", "n", "ab", "c", False) != shifted
