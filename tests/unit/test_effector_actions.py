"""What the effector sends for each action, and how it waits out rate limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from nio import RoomSendError, RoomSendResponse

from bots.base.errors import HomeserverError
from bots.framework.actions import (
    Action,
    Ban,
    Edit,
    Extension,
    Invite,
    Kick,
    React,
    Redact,
    Reply,
    SendNotice,
    SendPoll,
    SetState,
    Unban,
)
from bots.framework.outbox import effector as effector_module
from bots.framework.outbox import membership
from bots.framework.outbox.effector import Effector, transaction_id
from bots.framework.trust.history import HistoryOutcome
from tests.unit.test_effector_backoff_admin import FakeClient, FakeClock

ROOM = "!lounge:example.org"
OTHER_ROOM = "!garden:example.org"
ALICE = "@alice:example.org"
BOB = "@bob:example.org"
SENT = RoomSendResponse("$sent", ROOM)


def limited(retry_after_ms: int | None = 2000) -> RoomSendError:
    return RoomSendError("Too Many Requests", "M_LIMIT_EXCEEDED", retry_after_ms=retry_after_ms)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(effector_module, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


class TimedClient(FakeClient):
    """Records when each send happened, by the fake clock."""

    def __init__(self, clock: FakeClock, *outcomes: Any) -> None:
        super().__init__(*outcomes)
        self.clock = clock

    async def room_send(self, room_id: str, event_type: str, content: Any, **kw: Any) -> Any:
        return await super().room_send(room_id, event_type, content, at=self.clock.now, **kw)


class AdminClient(FakeClient):
    """Also records the membership, redaction and state calls."""

    def __init__(self, *outcomes: Any) -> None:
        super().__init__(*outcomes)
        self.calls: list[tuple[Any, ...]] = []

    async def room_redact(
        self, room_id: str, event_id: str, reason: str | None = None, tx_id: Any = None
    ) -> Any:
        self.calls.append(("redact", room_id, event_id, reason, tx_id))
        return self._next()

    async def room_kick(self, room_id: str, user_id: str, reason: str | None = None) -> Any:
        self.calls.append(("kick", room_id, user_id, reason))
        return self._next()

    async def room_ban(self, room_id: str, user_id: str, reason: str | None = None) -> Any:
        self.calls.append(("ban", room_id, user_id, reason))
        return self._next()

    async def room_unban(self, room_id: str, user_id: str) -> Any:
        self.calls.append(("unban", room_id, user_id))
        return self._next()

    async def room_put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> Any:
        self.calls.append(("state", room_id, event_type, content, state_key))
        return self._next()


async def sent_content(action: Action) -> dict[str, Any]:
    client = FakeClient(SENT)
    assert (await Effector(client).perform_one(action)).ok
    (send,) = client.sends
    content: dict[str, Any] = send["content"]
    return content


# --- transaction ids ---


def test_the_same_key_gives_the_same_transaction_id() -> None:
    assert transaction_id("$ping/0") == transaction_id("$ping/0")


def test_different_keys_give_different_transaction_ids() -> None:
    assert transaction_id("$ping/0") != transaction_id("$ping/1")


def test_without_a_key_each_transaction_id_is_fresh() -> None:
    assert transaction_id() != transaction_id()


async def test_an_action_with_a_key_is_sent_with_that_key_s_transaction_id(
    clock: FakeClock,
) -> None:
    client = FakeClient(SENT)
    effector = Effector(client)
    await effector.perform_one(SendNotice(ROOM, "hello"), "$e/0")
    await effector.perform_one(SendNotice(ROOM, "hello"), "$e/0")
    assert [s["tx_id"] for s in client.sends] == [transaction_id("$e/0")] * 2


# --- rate limits (429): the transport's, but for what it hands back ---


async def test_a_429_handed_back_is_tried_again_without_a_wait_of_its_own(
    clock: FakeClock,
) -> None:
    """The transport paused the account and holds the next try: the effector
    neither sleeps nor counts it as a failed attempt."""
    client = FakeClient(*[limited(1000)] * 5, SENT)
    outcome = await Effector(client, max_attempts=2).perform_one(SendNotice(ROOM, "hello"), "$e")
    assert outcome.ok
    assert [s["tx_id"] for s in client.sends] == [transaction_id("$e")] * 6
    assert clock.slept == []


async def test_429s_past_the_bound_give_up_with_a_problem(clock: FakeClock) -> None:
    client = FakeClient(limited())
    outcome = await Effector(client, max_wait_s=60).perform_one(SendNotice(ROOM, "hello"))
    assert not outcome.ok
    assert outcome.problem is not None
    assert "M_LIMIT_EXCEEDED" in outcome.problem


# --- what each action sends ---


async def test_react_sends_an_annotation(clock: FakeClock) -> None:
    client = FakeClient(SENT)
    await Effector(client).perform_one(React(ROOM, "$question", "✅"))
    (send,) = client.sends
    assert send["room_id"] == ROOM
    assert send["type"] == "m.reaction"
    assert send["content"] == {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": "$question", "key": "✅"}
    }


async def test_edit_replaces_the_notice(clock: FakeClock) -> None:
    content = await sent_content(Edit(ROOM, "$notice", "Meeting moved to 19:00"))
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$notice"}
    assert content["m.new_content"]["body"] == "Meeting moved to 19:00"
    assert content["m.new_content"]["msgtype"] == "m.notice"
    assert content["body"] == "* Meeting moved to 19:00"


async def test_edit_with_html_replaces_the_formatted_body_too(clock: FakeClock) -> None:
    content = await sent_content(Edit(ROOM, "$notice", "19:00", html="<b>19:00</b>"))
    assert content["m.new_content"]["formatted_body"] == "<b>19:00</b>"
    assert content["formatted_body"] == "* <b>19:00</b>"


async def test_redact_passes_the_transaction_id(clock: FakeClock) -> None:
    client = AdminClient(SENT)
    await Effector(client).perform_one(Redact(ROOM, "$spam", reason="spam"), "$cmd/0")
    assert client.calls == [("redact", ROOM, "$spam", "spam", transaction_id("$cmd/0"))]


@pytest.mark.parametrize(
    ("action", "call"),
    [
        (Kick(ROOM, BOB, reason="code of conduct"), ("kick", ROOM, BOB, "code of conduct")),
        (Ban(ROOM, BOB, reason="abuse"), ("ban", ROOM, BOB, "abuse")),
        (Unban(ROOM, BOB), ("unban", ROOM, BOB)),
        (
            SetState(ROOM, "m.room.topic", {"topic": "Thursdays at 7"}),
            ("state", ROOM, "m.room.topic", {"topic": "Thursdays at 7"}, ""),
        ),
        (
            SetState(ROOM, "org.hearth.group", {"key": "parents"}, state_key="parents"),
            ("state", ROOM, "org.hearth.group", {"key": "parents"}, "parents"),
        ),
    ],
    # Invites go through Hearth's HTTP layer (with their reason and the
    # history bundle first): tests/integration/test_history.py.
    ids=["kick", "ban", "unban", "state", "state-with-key"],
)
async def test_membership_and_state_actions_call_the_homeserver(
    clock: FakeClock, action: Action, call: tuple[Any, ...]
) -> None:
    client = AdminClient(SENT)
    assert (await Effector(client).perform_one(action)).ok
    assert client.calls == [call]
    assert client.sends == []


async def test_poll_is_sent_as_an_element_poll(clock: FakeClock) -> None:
    client = FakeClient(SENT)
    poll = SendPoll(ROOM, "Next meeting?", ("Monday", "Friday"), max_selections=1)
    await Effector(client).perform_one(poll)
    (send,) = client.sends
    assert send["type"] == "org.matrix.msc3381.poll.start"
    start = send["content"]["org.matrix.msc3381.poll.start"]
    assert start["question"] == {"org.matrix.msc1767.text": "Next meeting?"}
    assert start["kind"] == "org.matrix.msc3381.poll.disclosed"
    assert start["max_selections"] == 1
    assert [a["org.matrix.msc1767.text"] for a in start["answers"]] == ["Monday", "Friday"]
    assert len({a["id"] for a in start["answers"]}) == 2


async def test_poll_has_a_text_fallback(clock: FakeClock) -> None:
    content = await sent_content(SendPoll(ROOM, "Next meeting?", ("Monday", "Friday")))
    assert content["body"] == "Next meeting?\n1. Monday\n2. Friday"
    assert content["org.matrix.msc1767.text"] == content["body"]


async def test_undisclosed_poll_says_so(clock: FakeClock) -> None:
    content = await sent_content(SendPoll(ROOM, "Q?", ("a", "b"), disclosed=False))
    assert content["org.matrix.msc3381.poll.start"]["kind"] == "org.matrix.msc3381.poll.undisclosed"


async def test_reply_in_a_thread_stays_in_the_thread(clock: FakeClock) -> None:
    content = await sent_content(Reply(ROOM, "$question", "pong", thread_root="$root"))
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$question"},
    }


async def test_notice_mentions_exactly_the_named_users(clock: FakeClock) -> None:
    content = await sent_content(SendNotice(ROOM, "Alice and Bob, welcome", mentions=(BOB, ALICE)))
    assert content["m.mentions"] == {"user_ids": [ALICE, BOB]}


async def test_notice_without_mentions_mentions_nobody(clock: FakeClock) -> None:
    content = await sent_content(SendNotice(ROOM, "@room welcome @alice:example.org"))
    assert content["m.mentions"] == {}


# --- HTML is sanitised ---


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">click</a>',
        '<b onclick="alert(1)">click</b>',
    ],
    ids=["script", "onerror", "javascript-link", "onclick"],
)
async def test_hostile_html_is_removed(clock: FakeClock, hostile: str) -> None:
    content = await sent_content(SendNotice(ROOM, "hi", html=f"Hi {hostile}"))
    formatted = content["formatted_body"]
    assert formatted.startswith("Hi ")
    for bad in ("<script", "alert", "onerror", "onclick", "javascript:"):
        assert bad not in formatted


async def test_matrix_html_survives(clock: FakeClock) -> None:
    html = (
        '<b>Welcome</b> — see <a href="https://example.org/guide">the guide</a> '
        'and <code class="language-text">!help</code>'
    )
    content = await sent_content(SendNotice(ROOM, "Welcome", html=html))
    assert content["formatted_body"] == html


async def test_reply_html_is_sanitised_too(clock: FakeClock) -> None:
    content = await sent_content(Reply(ROOM, "$q", "x", html="<b>x</b><script>x()</script>"))
    assert content["formatted_body"] == "<b>x</b>"


async def test_edit_html_is_sanitised_in_both_bodies(clock: FakeClock) -> None:
    content = await sent_content(Edit(ROOM, "$n", "x", html="<i>x</i><script>x()</script>"))
    assert "script" not in content["formatted_body"]
    assert "script" not in content["m.new_content"]["formatted_body"]


# --- extensions and refusals ---


@dataclass(frozen=True)
class OpenGroup(Extension):
    room_id: str
    event_id: str
    name: str


async def test_an_extension_s_followups_are_returned(clock: FakeClock) -> None:
    async def open_group(action: OpenGroup) -> Sequence[Action]:
        return [Reply(action.room_id, action.event_id, f"Opened {action.name}")]

    client = FakeClient(SENT)
    effector = Effector(client, performers={OpenGroup: open_group})
    outcome = await effector.perform_one(OpenGroup(ROOM, "$cmd", "Parents"))
    assert outcome.ok
    assert outcome.followups == (Reply(ROOM, "$cmd", "Opened Parents"),)
    assert client.sends == []


async def test_an_extension_without_a_performer_fails(clock: FakeClock) -> None:
    outcome = await Effector(FakeClient(SENT)).perform_one(OpenGroup(ROOM, "$cmd", "Parents"))
    assert not outcome.ok
    assert outcome.problem == "no performer"


async def test_a_forbidden_action_is_not_retried_and_fails(clock: FakeClock) -> None:
    client = FakeClient(RoomSendError("You are not allowed", "M_FORBIDDEN"))
    outcome = await Effector(client).perform_one(SendNotice(ROOM, "hello"), "$e/0")
    assert outcome == effector_module.Outcome(False, "M_FORBIDDEN")
    assert len(client.sends) == 1
    assert clock.slept == []


# --- invites and the history bundle ---


class Bundles:
    """A history gate whose first *failures* bundles fail half-way."""

    def __init__(self, log: list[str], failures: int, outcome: HistoryOutcome) -> None:
        self.log, self.failures, self.outcome = log, failures, outcome

    async def before_invite(self, room_id: str, invitee: str) -> HistoryOutcome:
        if self.failures:
            self.failures -= 1
            self.log.append("bundle failed")
            raise HomeserverError("uploading the history bundle failed")
        self.log.append("bundle sent")
        return self.outcome


class Homeserver:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.bodies: list[Any] = []

    async def request(self, method: str, path: str, body: Any = None, *, what: str = "") -> Any:
        self.log.append("invite")
        self.bodies.append(body)
        return {}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Homeserver:
    hs = Homeserver([])
    monkeypatch.setattr(membership, "api_of", lambda client: hs)
    return hs


async def test_invite_waits_for_the_whole_bundle_and_is_retried_with_it(
    clock: FakeClock, server: Homeserver
) -> None:
    gate = Bundles(server.log, failures=2, outcome=HistoryOutcome.SENT)
    effector = Effector(FakeClient(), history=gate)
    assert (await effector.perform_one(Invite(ROOM, ALICE, reason="approved"))).ok
    # Never an invite without its bundle: the failed tries sent no invite.
    assert server.log == ["bundle failed", "bundle failed", "bundle sent", "invite"]
    assert server.bodies == [{"user_id": ALICE, "reason": "approved"}]


async def test_invite_of_someone_already_in_the_room_sends_nothing(
    clock: FakeClock, server: Homeserver
) -> None:
    gate = Bundles(server.log, failures=0, outcome=HistoryOutcome.ALREADY_JOINED)
    assert (await Effector(FakeClient(), history=gate).perform_one(Invite(ROOM, ALICE))).ok
    assert server.log == ["bundle sent"]


async def test_invitee_without_verified_device_gets_the_note_in_the_invite(
    clock: FakeClock, server: Homeserver
) -> None:
    gate = Bundles(server.log, failures=0, outcome=HistoryOutcome.NO_SIGNED_DEVICE)
    await Effector(FakeClient(), history=gate).perform_one(Invite(ROOM, ALICE, reason="welcome"))
    assert server.bodies == [
        {"user_id": ALICE, "reason": f"welcome\n\n{membership.HISTORY_NOT_SHARED_NOTE}"}
    ]
