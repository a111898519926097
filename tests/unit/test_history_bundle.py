"""The MSC4268 bundle as data, and the nio internals the trust layer leans on."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from importlib.metadata import version
from typing import Any

import pytest
from nio import RoomKeyEvent
from nio.crypto.sessions import InboundGroupSession, OutboundGroupSession

from bots.framework.trust.bundle import (
    BUNDLE_EVENT_TYPES,
    HISTORY_NOT_SHARED,
    ExportedSession,
    build_bundle,
    bundle_event_content,
    marked_shareable,
)
from bots.framework.trust.identities import Identities
from bots.framework.trust.policy import Pin

ROOM = "!group:example.org"


def session(session_id: str, key: str | None, room: str = ROOM) -> ExportedSession:
    return ExportedSession(room, "curve-" + session_id, session_id, "ed-" + session_id, key)


def test_bundle_lists_shareable_keys_and_withholds_the_rest() -> None:
    bundle = build_bundle(ROOM, [session("a", "AQkey"), session("b", None)])
    (key,) = bundle["room_keys"]
    assert key == {
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": ROOM,
        "sender_key": "curve-a",
        "session_id": "a",
        "session_key": "AQkey",
        "sender_claimed_keys": {"ed25519": "ed-a"},
    }
    (withheld,) = bundle["withheld"]
    assert withheld["code"] == HISTORY_NOT_SHARED
    assert withheld["session_id"] == "b"
    assert withheld["sender_key"] == "curve-b"


def test_bundle_always_has_both_lists_and_nothing_of_other_rooms() -> None:
    # A receiver rejects a bundle missing either list.
    assert build_bundle(ROOM, []) == {"room_keys": [], "withheld": []}
    other = build_bundle(ROOM, [session("c", "AQx", room="!elsewhere:example.org")])
    assert other == {"room_keys": [], "withheld": []}


def test_bundle_event_points_at_the_file() -> None:
    file = {"url": "mxc://example.org/abc", "v": "v2"}
    assert bundle_event_content(ROOM, file) == {"room_id": ROOM, "file": file}
    assert BUNDLE_EVENT_TYPES[0] == "m.room_key_bundle"


@pytest.mark.parametrize(
    ("content", "shareable"),
    [
        ({"m.shared_history": True}, True),
        ({"org.matrix.msc3061.shared_history": True}, True),
        ({"shared_history": True}, True),
        ({"m.shared_history": "yes"}, False),
        ({"m.shared_history": False}, False),
        ({}, False),
    ],
)
def test_shared_history_flag_is_read_under_each_name(
    content: dict[str, Any], shareable: bool
) -> None:
    assert marked_shareable({"content": content}) is shareable


# --- the nio version this layer was written for ---


def test_nio_is_the_version_the_trust_layer_was_written_for() -> None:
    # bots/framework/trust/ reads nio internals; a new nio must be checked first.
    assert version("matrix-nio") == "0.26.0"


def test_nio_sessions_export_at_the_first_known_index_in_the_bundle_format() -> None:
    outbound = OutboundGroupSession()
    assert {"users_shared_with", "users_ignored", "shared"} <= vars(outbound).keys()
    inbound = InboundGroupSession(outbound.session_key, "ed-key", "curve-key", ROOM)
    assert inbound.id == outbound.id
    assert inbound.first_known_index == 0
    assert inbound.forwarding_chain == []
    exported = inbound.export_session(inbound.first_known_index)
    # A version-1 export (not the signed m.room_key form), unpadded base64.
    assert base64.b64decode(exported + "=" * (-len(exported) % 4))[0] == 1
    assert not exported.endswith("=")


def test_nio_keeps_the_room_key_content_with_its_flag() -> None:
    payload = {
        "sender": "@a:x",
        "keys": {"ed25519": "ed"},
        "type": "m.room_key",
        "content": {
            "algorithm": "m.megolm.v1.aes-sha2",
            "room_id": ROOM,
            "session_id": "s",
            "session_key": "secret",
            "m.shared_history": True,
        },
    }
    event = RoomKeyEvent.from_dict(payload, "@a:x", "curve")
    assert isinstance(event, RoomKeyEvent)
    assert marked_shareable(event.source)
    assert "session_key" not in event.source["content"]


# --- the identity cache ---


class Pins:
    def __init__(self) -> None:
        self.pins: dict[str, Pin] = {}

    async def pins_of(self, users: Sequence[str]) -> dict[str, Pin]:
        return {u: self.pins[u] for u in users if u in self.pins}

    async def store_pins(self, pins: Mapping[str, Pin]) -> None:
        self.pins.update(pins)


class SlowKeysQuery:
    """A /keys/query whose answer is held until released."""

    def __init__(self, identities: list[Identities]) -> None:
        self.calls = 0
        self.during: list[Identities] = identities

    async def query(self, users: Sequence[str], what: str = "keys query") -> Any:
        self.calls += 1
        for identities in self.during:
            identities.forget(["@alice:x"])  # her devices change while we ask
        self.during = []
        return {}


async def test_answer_to_a_query_overtaken_by_a_device_change_is_not_cached() -> None:
    holder: list[Identities] = []
    api = SlowKeysQuery(holder)

    async def report(_: str) -> None:
        return None

    identities = Identities(api, Pins(), holds_power=lambda _: False, report_change=report)
    holder.append(identities)
    await identities.get(["@alice:x"])
    assert identities.cached("@alice:x") is None  # stale: asked again next time
    await identities.get(["@alice:x"])
    assert api.calls == 2
    assert identities.cached("@alice:x") is not None
    await identities.get(["@alice:x"])
    assert api.calls == 2
