"""Reading the server: `parse_sync` on handcrafted /sync responses, and the filter."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning.desired import MARKER, MODERATION_LOG, MODERATORS, SPACE, group_label
from provisioning.state import (
    STATE_TYPES,
    RoomSnapshot,
    ServerState,
    label_of,
    parse_sync,
    sync_filter,
)

JsonDict = dict[str, Any]

ADMIN = "@hearth-admin:example.org"
OTHER = "@other-admin:example.org"


def ev(etype: str, content: JsonDict, state_key: str = "", sender: str = ADMIN) -> JsonDict:
    return {
        "type": etype,
        "state_key": state_key,
        "content": content,
        "sender": sender,
        "event_id": f"${etype}:{state_key}",
        "origin_server_ts": 1,
    }


def create(version: str = "12", sender: str = ADMIN, **extra: Any) -> JsonDict:
    return ev("m.room.create", {"room_version": version, **extra}, sender=sender)


def marker(community: str = "circle", kind: str = "space", **extra: Any) -> JsonDict:
    return ev(MARKER, {"community": community, "kind": kind, **extra})


def group_marker(group: str, room: str, community: str = "circle") -> JsonDict:
    return marker(community, "group", group=group, room=room, room_kind="chat")


def room(*state: JsonDict, timeline: list[JsonDict] | None = None) -> JsonDict:
    out: JsonDict = {"state": {"events": list(state)}}
    if timeline is not None:
        out["timeline"] = {"events": timeline, "limited": False}
    return out


def sync(**rooms: JsonDict) -> JsonDict:
    """A /sync response; room IDs are the keyword names prefixed with '!'."""
    return {"next_batch": "s1", "rooms": {"join": {f"!{k}": v for k, v in rooms.items()}}}


# --- which rooms are ours -------------------------------------------------------------------


def test_rooms_are_found_by_their_marker() -> None:
    state = parse_sync(
        sync(
            a=room(create(), marker(kind="space")),
            b=room(create(), marker(kind="moderators")),
            c=room(create(), marker(kind="moderation-log")),
            d=room(create(), group_marker("carers", "general")),
        ),
        "circle",
    )
    assert {label: snap.room_id for label, snap in state.rooms.items()} == {
        SPACE: "!a",
        MODERATORS: "!b",
        MODERATION_LOG: "!c",
        group_label("carers", "general"): "!d",
    }
    assert state.duplicates == {}
    assert state.room_id(SPACE) == "!a"
    assert state.room_id("group/none/none") is None


def test_rooms_of_another_community_are_ignored() -> None:
    state = parse_sync(
        sync(
            mine=room(create(), marker("circle")),
            theirs=room(create(), marker("other")),
            theirs_group=room(create(), group_marker("carers", "general", community="other")),
        ),
        "circle",
    )
    assert list(state.rooms) == [SPACE]
    assert state.rooms[SPACE].room_id == "!mine"
    assert list(parse_sync(sync(theirs=room(create(), marker("other"))), "other").rooms) == [SPACE]


def test_rooms_without_a_marker_are_ignored() -> None:
    state = parse_sync(
        sync(
            dm=room(create(), ev("m.room.name", {"name": "Chat"})),
            cleared=room(create(), ev(MARKER, {})),  # a marker removed by hand
            bare={},
        ),
        "circle",
    )
    assert state == ServerState()


@pytest.mark.parametrize(
    "content",
    [
        {"community": "circle"},
        {"community": "circle", "kind": "lobby"},
        {"community": "circle", "kind": "group", "group": "carers"},
        {"community": "circle", "kind": "group", "group": "carers", "room": 3},
        {"community": "circle", "kind": "group", "group": None, "room": "general"},
        {"community": "Circle", "kind": "space"},
        {"kind": "space"},
    ],
)
def test_malformed_markers_are_ignored(content: JsonDict) -> None:
    assert label_of(content, "circle") is None
    assert parse_sync(sync(x=room(create(), ev(MARKER, content))), "circle").rooms == {}


def test_label_of_names_each_kind() -> None:
    assert label_of({"community": "c", "kind": "space"}, "c") == SPACE
    assert label_of({"community": "c", "kind": "moderators"}, "c") == MODERATORS
    assert label_of({"community": "c", "kind": "moderation-log"}, "c") == MODERATION_LOG
    group = {"community": "c", "kind": "group", "group": "g", "room": "r", "room_kind": "chat"}
    assert label_of(group, "c") == "group/g/r"
    assert label_of(group, "d") is None


def test_only_joined_rooms_are_read() -> None:
    data = sync(joined=room(create(), marker()))
    data["rooms"]["invite"] = {
        "!invited": {"invite_state": {"events": [marker(kind="moderators")]}}
    }
    data["rooms"]["leave"] = {"!left": room(create(), marker(kind="moderation-log"))}
    assert list(parse_sync(data, "circle").rooms) == [SPACE]


@pytest.mark.parametrize("data", [{}, {"rooms": None}, {"rooms": {}}, {"rooms": {"join": None}}])
def test_an_empty_sync_holds_nothing(data: JsonDict) -> None:
    assert parse_sync(data, "circle") == ServerState()


# --- what a room holds -----------------------------------------------------------------------


def test_state_is_kept_by_type_and_state_key() -> None:
    state = parse_sync(
        sync(
            a=room(
                create(),
                marker(),
                ev("m.room.join_rules", {"join_rule": "invite"}),
                ev("m.room.member", {"membership": "join"}, ADMIN),
                ev("m.room.member", {"membership": "invite"}, "@mod:example.org"),
                ev("m.space.child", {"via": ["example.org"]}, "!child"),
                {**ev("m.room.topic", {}), "content": None},
            )
        ),
        "circle",
    )
    snap = state.rooms[SPACE]
    assert snap.get("m.room.join_rules") == {"join_rule": "invite"}
    assert snap.get("m.space.child", "!child") == {"via": ["example.org"]}
    assert snap.get("m.space.child", "!other") is None
    assert snap.get("m.room.topic") == {}  # null content reads as empty
    assert snap.membership(ADMIN) == "join"
    assert snap.membership("@mod:example.org") == "invite"
    assert snap.membership("@nobody:example.org") is None


def test_creators_come_from_the_create_event_sender_and_additional_creators() -> None:
    extra = ["@co1:example.org", "@co2:example.org"]
    state = parse_sync(
        sync(a=room(create("12", sender=OTHER, additional_creators=extra), marker())),
        "circle",
    )
    snap = state.rooms[SPACE]
    assert snap.creators == frozenset({OTHER, *extra})
    assert snap.version == "12"
    assert snap.creators_implicit


@pytest.mark.parametrize(("version", "implicit"), [("12", True), ("11", False), ("10", False)])
def test_room_version_is_read_from_the_create_event(version: str, implicit: bool) -> None:
    snap = parse_sync(sync(a=room(create(version), marker())), "circle").rooms[SPACE]
    assert snap.version == version
    assert snap.creators_implicit is implicit
    assert snap.creators == {ADMIN}


def test_a_room_without_a_create_event_is_version_1_without_creators() -> None:
    snap = parse_sync(sync(a=room(marker())), "circle").rooms[SPACE]
    assert snap.version == "1"
    assert snap.creators == frozenset()
    assert not snap.creators_implicit
    # A create event without room_version is version 1 too.
    old = parse_sync(sync(a=room(ev("m.room.create", {}), marker())), "circle").rooms[SPACE]
    assert old.version == "1"
    assert old.creators == {ADMIN}


def test_state_events_in_the_timeline_are_read_and_win() -> None:
    timeline = [
        {"type": "m.room.message", "content": {"body": "hi"}, "sender": ADMIN},
        ev("m.room.join_rules", {"join_rule": "public"}),
        marker(kind="moderators"),
    ]
    snap = parse_sync(
        sync(a=room(create(), ev("m.room.join_rules", {"join_rule": "invite"}), timeline=timeline)),
        "circle",
    ).rooms[MODERATORS]
    assert snap.get("m.room.join_rules") == {"join_rule": "public"}
    assert ("m.room.message", "") not in snap.state


def test_a_create_event_only_in_the_timeline_still_gives_creators_and_version() -> None:
    snap = parse_sync(
        sync(a=room(marker(), timeline=[create("12", sender=OTHER)])), "circle"
    ).rooms[SPACE]
    assert snap.creators == {OTHER}
    assert snap.version == "12"


# --- duplicates ------------------------------------------------------------------------------


def test_duplicates_are_recorded_and_the_first_room_id_is_used() -> None:
    general = group_label("carers", "general")
    state = parse_sync(
        sync(
            c=room(create(), group_marker("carers", "general")),
            a=room(create(), group_marker("carers", "general")),
            b=room(create(), group_marker("carers", "general")),
            s=room(create(), marker()),
        ),
        "circle",
    )
    assert state.rooms[general].room_id == "!a"
    assert state.duplicates == {general: ["!a", "!b", "!c"]}
    assert state.rooms[SPACE].room_id == "!s"


def test_the_same_room_is_not_a_duplicate_of_itself() -> None:
    state = parse_sync(sync(a=room(create(), marker(), timeline=[marker()])), "circle")
    assert state.duplicates == {}


# --- snapshots -------------------------------------------------------------------------------


def test_room_snapshot_defaults() -> None:
    snap = RoomSnapshot("!r", {})
    assert snap.version == "1"
    assert snap.creators == frozenset()
    assert not snap.creators_implicit
    assert snap.membership(ADMIN) is None
    assert RoomSnapshot("!r", {}, version="12").creators_implicit


# --- the /sync filter ------------------------------------------------------------------------


def test_the_filter_asks_for_state_only() -> None:
    f = sync_filter()
    assert f["room"]["timeline"] == {"limit": 0}
    assert f["room"]["state"]["types"] == STATE_TYPES
    assert f["room"]["state"]["lazy_load_members"] is False
    assert f["room"]["include_leave"] is False
    assert f["presence"] == {"not_types": ["*"]}
    assert f["account_data"] == {"not_types": ["*"]}
    assert f["room"]["ephemeral"] == {"not_types": ["*"]}
    assert f["room"]["account_data"] == {"not_types": ["*"]}


def test_the_filter_covers_every_managed_state_type() -> None:
    for etype in (
        "m.room.create",
        "m.room.encryption",
        "m.room.name",
        "m.room.topic",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.power_levels",
        "m.room.member",
        "m.space.child",
        "m.space.parent",
        MARKER,
    ):
        assert etype in sync_filter()["room"]["state"]["types"]


def test_each_filter_is_distinct_so_synapse_does_not_answer_from_its_cache() -> None:
    first, second = sync_filter(), sync_filter()
    assert first != second
    (nonce_1,) = first["room"]["not_rooms"]
    (nonce_2,) = second["room"]["not_rooms"]
    assert nonce_1 != nonce_2
    # A made-up room that cannot exist: the filter excludes nothing real.
    for nonce in (nonce_1, nonce_2):
        assert nonce.startswith("!")
        assert nonce.endswith(":invalid")
    # Apart from the nonce, the filters are the same.
    first["room"].pop("not_rooms")
    second["room"].pop("not_rooms")
    assert first == second
