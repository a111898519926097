"""A decrypted payload never becomes room state, checked against nio's own
parsing and nio's own handling of a timeline (matrix-nio 0.26.0, pinned).

The Olm machine here is nio's class with its Megolm decryption replaced by
nio's own parser of the plaintext, which is what the real one runs after
decrypting: so each test feeds nio exactly what a member's modified client
would make it decrypt, without a homeserver.
"""

from __future__ import annotations

from typing import Any

import pytest
from nio import AsyncClient, Event, MatrixRoom, MegolmEvent, PowerLevelsEvent, RoomCreateEvent
from nio.crypto import Olm

from bots.framework.decrypted_state import ForgedState, claimed_state, guard_decryption
from bots.framework.room_state import ServerState

ROOM = "!room:example.org"
ME = "@bot:example.org"
MALLORY = "@mallory:example.org"
OWNER = "@owner:example.org"


def megolm(event_id: str = "$forged") -> MegolmEvent:
    return MegolmEvent.from_dict(
        {
            "type": "m.room.encrypted",
            "event_id": event_id,
            "sender": MALLORY,
            "origin_server_ts": 1_700_000_000_000,
            "room_id": ROOM,
            "content": {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "AwgA",
                "sender_key": "curve",
                "session_id": "session",
                "device_id": "DEVICE",
            },
        }
    )


def nio_olm(plaintext: dict[str, Any]) -> Any:
    """nio's Olm whose Megolm decryption yields *plaintext*, parsed as nio
    parses a decrypted payload (olm_machine.py, decrypt_megolm_event)."""
    olm = object.__new__(Olm)

    def decrypt(event: MegolmEvent, room_id: str | None = None) -> Any:
        parsed = dict(plaintext, event_id=event.event_id, sender=event.sender)
        parsed["origin_server_ts"] = event.server_timestamp
        new = Event.parse_decrypted_event(parsed)
        new.decrypted = True
        new.room_id = room_id or event.room_id
        return new

    olm.decrypt_megolm_event = decrypt  # type: ignore[method-assign]
    return olm


def client_with(olm: Any) -> tuple[AsyncClient, MatrixRoom]:
    client = AsyncClient("https://example.org", ME)
    client.olm = olm
    room = MatrixRoom(ROOM, ME, encrypted=True)
    room.power_levels.users[OWNER] = 100
    return client, room


POWER = {
    "type": "m.room.power_levels",
    "state_key": "",
    "room_id": ROOM,
    "content": {"users": {MALLORY: 100, OWNER: 100}, "events_default": 0},
}
CREATE = {
    "type": "m.room.create",
    "state_key": "",
    "room_id": ROOM,
    "content": {"creator": MALLORY, "room_version": "12"},
}
MEMBER = {
    "type": "m.room.member",
    "state_key": "@ghost:example.org",
    "room_id": ROOM,
    "content": {"membership": "join"},
}


def test_nio_itself_would_apply_forged_state_from_a_decrypted_payload() -> None:
    """What the guard is for: without it, nio 0.26's parsing and timeline
    handling take a member's encrypted power levels and room version."""
    for plaintext, kind in ((POWER, PowerLevelsEvent), (CREATE, RoomCreateEvent)):
        fields = {"event_id": "$x", "sender": MALLORY, "origin_server_ts": 1}
        parsed = Event.parse_decrypted_event(dict(plaintext, **fields))
        assert isinstance(parsed, kind)
    client, room = client_with(nio_olm(POWER))
    client._handle_timeline_event(megolm(), ROOM, room, set())
    assert room.power_levels.get_user_level(MALLORY) == 100
    client, room = client_with(nio_olm(CREATE))
    client._handle_timeline_event(megolm(), ROOM, room, set())
    assert room.room_version == "12"


@pytest.mark.parametrize("plaintext", [POWER, CREATE, MEMBER])
def test_the_guard_keeps_forged_state_out_of_nio_s_room(plaintext: dict[str, Any]) -> None:
    olm = nio_olm(plaintext)
    seen: list[ForgedState] = []
    guard_decryption(olm, seen.append)
    client, room = client_with(olm)
    before = (room.power_levels.get_user_level(MALLORY), room.room_version, set(room.users))
    decrypted = client._handle_timeline_event(megolm(), ROOM, room, set())
    after = (room.power_levels.get_user_level(MALLORY), room.room_version, set(room.users))
    assert after == before == (0, "1", set())
    assert isinstance(decrypted, ForgedState)
    assert [(s.sender, s.room_id, s.claimed) for s in seen] == [(MALLORY, ROOM, plaintext["type"])]
    # The stand-in carries who and where, never what was sent.
    assert "content" not in str(decrypted.source["content"])
    assert MALLORY not in str(decrypted.source["content"])
    assert "users" not in str(decrypted.source)


def test_the_guard_lets_messages_through_untouched() -> None:
    message = {
        "type": "m.room.message",
        "room_id": ROOM,
        "content": {"msgtype": "m.text", "body": "!lock"},
    }
    olm = nio_olm(message)
    seen: list[ForgedState] = []
    guard_decryption(olm, seen.append)
    client, room = client_with(olm)
    decrypted = client._handle_timeline_event(megolm(), ROOM, room, set())
    assert decrypted is not None
    assert decrypted.source["content"]["body"] == "!lock"
    assert seen == []


def test_the_guard_wraps_once() -> None:
    olm = nio_olm(POWER)
    seen: list[ForgedState] = []
    guard_decryption(olm, seen.append)
    guard_decryption(olm, seen.append)
    olm.decrypt_megolm_event(megolm(), ROOM)
    assert len(seen) == 1


def test_every_payload_nio_parses_as_state_is_claimed_state() -> None:
    """Whatever nio 0.26 would make a state event of, the guard refuses."""
    nio_state_types = [
        "m.room.create", "m.room.member", "m.room.power_levels", "m.room.join_rules",
        "m.room.history_visibility", "m.room.guest_access", "m.room.encryption",
        "m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias",
        "m.room.tombstone", "m.space.child", "m.space.parent",
    ]  # fmt: skip
    for event_type in nio_state_types:
        assert claimed_state({"type": event_type, "content": {}}) == event_type
        assert claimed_state({"type": event_type, "state_key": "", "content": {}}) == event_type


@pytest.mark.parametrize(
    ("payload", "claimed"),
    [
        ({"type": "org.hearth.room", "content": {}}, "org.hearth.room"),
        ({"type": "org.hearth.protections", "state_key": ""}, "org.hearth.protections"),
        ({"type": "m.policy.rule.user", "state_key": "rule"}, "m.policy.rule.user"),
        ({"type": "m.room.whatever_new", "content": {}}, "m.room.whatever_new"),
        # A state key makes any type a claim of state.
        ({"type": "m.room.message", "state_key": "", "content": {}}, "m.room.message"),
        ({"type": "com.example.custom", "state_key": "x"}, "com.example.custom"),
        ({"type": 7, "state_key": ""}, "?"),
        # Ordinary encrypted events.
        ({"type": "m.room.message", "content": {"body": "hi"}}, None),
        ({"type": "m.reaction", "content": {}}, None),
        ({"type": "org.matrix.msc3381.poll.response", "content": {}}, None),
        ({"type": "com.example.custom", "content": {}}, None),
    ],
)
def test_claimed_state(payload: dict[str, Any], claimed: str | None) -> None:
    assert claimed_state(payload) == claimed


def test_a_feature_s_own_state_type_is_claimed_state() -> None:
    assert claimed_state({"type": "com.example.meeting"}, {"com.example.meeting"}) == (
        "com.example.meeting"
    )


def test_server_state_skips_anything_decrypted_and_keeps_senders() -> None:
    state = ServerState({"m.room.power_levels", "org.hearth.room"})
    served = Event.parse_event(
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "event_id": "$real",
            "sender": OWNER,
            "origin_server_ts": 1,
            "content": {"users": {OWNER: 100}},
        }
    )
    forged = Event.parse_decrypted_event(
        dict(POWER, event_id="$forged", sender=MALLORY, origin_server_ts=2)
    )
    forged.decrypted = True
    create = {
        "type": "m.room.create",
        "state_key": "",
        "sender": OWNER,
        "content": {"room_version": "12", "additional_creators": [ME]},
    }
    state.take(ROOM, [served, forged, create])
    entry = state.entry("m.room.power_levels", ROOM)
    assert entry is not None
    assert entry.sender == OWNER
    assert entry.content["users"] == {OWNER: 100}
    assert state.creators(ROOM) == {OWNER, ME}
    assert state.create_sender(ROOM) == OWNER
    state.forget(ROOM)
    assert state.entry("m.room.power_levels", ROOM) is None
    assert state.creators(ROOM) == frozenset()


def test_the_claimed_type_is_kept_short_and_plain() -> None:
    """The type is the attacker's own text, quoted to the moderators: a
    link or 60 KB of it must not reach their room."""
    long = "m.room.power_levels " + "[click](https://evil.example/) " * 2000
    olm = nio_olm({"type": long, "state_key": "", "room_id": ROOM, "content": {}})
    seen: list[ForgedState] = []
    guard_decryption(olm, seen.append)
    olm.decrypt_megolm_event(megolm(), ROOM)
    (forged,) = seen
    assert len(forged.claimed) <= 80
    assert forged.claimed.startswith("m.room.power_levels")
    assert "/" not in forged.claimed  # no link: "https?evil.example" is plain text
    assert "[" not in forged.claimed
