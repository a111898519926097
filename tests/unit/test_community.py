"""A room's role in the community is believed only from rooms its staff
made; invitations are accepted only from staff, or for direct messages."""

from __future__ import annotations

from typing import Any

from bots.framework.community import (
    MARKER,
    SPACE_CHILD,
    CommunityRoles,
    Forgery,
    accepts_invitation,
    verify,
)
from bots.framework.room_state import ServerState

ADMIN = "@admin:example.org"
BOT = "@bot:example.org"
OTHER_BOT = "@bot2:example.org"
BRIDGE = "@bridge:example.org"
MOD = "@mod:example.org"
MALLORY = "@mallory:example.org"
ROLES = CommunityRoles(
    key="circle",
    admin=ADMIN,
    bots=frozenset({BOT, OTHER_BOT}),
    bridge=BRIDGE,
    moderators=frozenset({MOD}),
    room_order={"carers": ("general", "news")},
)


def ev(event_type: str, sender: str, content: dict[str, Any], key: str = "") -> dict[str, Any]:
    return {"type": event_type, "state_key": key, "sender": sender, "content": content}


def room(
    state: ServerState,
    room_id: str,
    marker: dict[str, Any] | None,
    *,
    creator: str = ADMIN,
    marked_by: str | None = None,
    more: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> None:
    events = [ev("m.room.create", creator, {"room_version": "12"})]
    if marker is not None:
        events.append(ev(MARKER, marked_by or creator, {"community": "circle", **marker}))
    state.take(room_id, [*events, *more])


def community(*extra: tuple[str, dict[str, Any] | None, dict[str, Any]]) -> ServerState:
    """A provisioned community: Space listing two group rooms, moderators'
    room, log, ban list, as the admin made them; then *extra* rooms."""
    state = ServerState({MARKER, SPACE_CHILD})
    children = [
        ev(SPACE_CHILD, ADMIN, {"via": ["example.org"]}, key=r)
        for r in ("!general:x", "!news:x", "!late:x")
    ]
    room(state, "!space:x", {"kind": "space"}, more=children)
    room(state, "!mods:x", {"kind": "moderators"})
    room(state, "!log:x", {"kind": "moderation-log"})
    room(state, "!bans:x", {"kind": "ban-list"})
    room(state, "!news:x", {"kind": "group", "group": "carers", "room": "news"})
    room(state, "!general:x", {"kind": "group", "group": "carers", "room": "general"})
    for room_id, marker, kw in extra:
        room(state, room_id, marker, **kw)
    return state


def test_staff_made_rooms_are_the_community_s() -> None:
    found = verify(community(), ROLES, BOT)
    rooms = found.rooms
    assert (rooms.space, rooms.moderators, rooms.moderation_log, rooms.ban_list) == (
        "!space:x",
        "!mods:x",
        "!log:x",
        "!bans:x",
    )
    # The declared order: the main room first.
    assert rooms.groups == {"carers": ("!general:x", "!news:x")}
    assert found.forgeries == ()
    assert set(rooms.markers) == {
        "!space:x",
        "!mods:x",
        "!log:x",
        "!bans:x",
        "!general:x",
        "!news:x",
    }


def test_a_member_s_room_claiming_to_be_the_moderators_room_is_a_forgery() -> None:
    state = community(("!fake:x", {"kind": "moderators"}, {"creator": MALLORY}))
    found = verify(state, ROLES, BOT)
    assert found.rooms.moderators == "!mods:x"
    assert "!fake:x" not in found.rooms.markers
    assert found.forgeries == (Forgery("!fake:x", MALLORY, "moderators"),)


def test_a_member_s_room_alone_never_becomes_the_moderators_room() -> None:
    state = ServerState({MARKER, SPACE_CHILD})
    room(state, "!fake:x", {"kind": "moderators"}, creator=MALLORY)
    found = verify(state, ROLES, BOT)
    assert found.rooms.moderators is None
    assert found.forgeries == (Forgery("!fake:x", MALLORY, "moderators"),)


def test_a_marker_the_admin_set_in_a_member_s_room_does_not_count() -> None:
    # The room's creator is the member: nobody can change that afterwards.
    state = community(
        ("!taken:x", {"kind": "moderators"}, {"creator": MALLORY, "marked_by": ADMIN})
    )
    found = verify(state, ROLES, BOT)
    assert found.rooms.moderators == "!mods:x"
    assert found.forgeries == (Forgery("!taken:x", MALLORY, "moderators"),)


def test_a_member_s_marker_in_a_staff_room_does_not_count() -> None:
    state = community(("!room:x", {"kind": "moderators"}, {"creator": ADMIN, "marked_by": MALLORY}))
    assert verify(state, ROLES, BOT).forgeries == (Forgery("!room:x", MALLORY, "moderators"),)


def test_a_forged_group_room_is_not_the_group_s() -> None:
    state = community(
        ("!fake:x", {"kind": "group", "group": "carers", "room": "general"}, {"creator": MALLORY})
    )
    found = verify(state, ROLES, BOT)
    assert found.rooms.groups == {"carers": ("!general:x", "!news:x")}
    assert found.rooms.group_of("!fake:x") is None
    assert found.forgeries == (Forgery("!fake:x", MALLORY, "group"),)


def test_a_group_room_counts_only_once_the_space_lists_it() -> None:
    state = community(("!extra:x", {"kind": "group", "group": "carers", "room": "extra"}, {}))
    found = verify(state, ROLES, BOT)
    assert found.rooms.group_of("!extra:x") is None
    assert found.forgeries == ()  # staff made it: not a forgery, just not listed yet
    # Listed (say by !group create), it counts, after the declared rooms.
    state.take("!space:x", [ev(SPACE_CHILD, ADMIN, {"via": ["x"]}, key="!extra:x")])
    assert verify(state, ROLES, BOT).rooms.groups["carers"] == (
        "!general:x",
        "!news:x",
        "!extra:x",
    )
    # An emptied child event is a removed child.
    state.take("!space:x", [ev(SPACE_CHILD, ADMIN, {}, key="!extra:x")])
    assert verify(state, ROLES, BOT).rooms.group_of("!extra:x") is None


def test_groups_need_the_verified_space_not_a_forged_one() -> None:
    state = ServerState({MARKER, SPACE_CHILD})
    child = ev(SPACE_CHILD, MALLORY, {"via": ["x"]}, key="!general:x")
    room(state, "!fakespace:x", {"kind": "space"}, creator=MALLORY, more=[child])
    room(state, "!general:x", {"kind": "group", "group": "carers", "room": "general"})
    found = verify(state, ROLES, BOT)
    assert found.rooms.space is None
    assert found.rooms.groups == {}


def test_rooms_made_by_the_bots_count() -> None:
    state = ServerState({MARKER, SPACE_CHILD})
    room(state, "!mods:x", {"kind": "moderators"}, creator=OTHER_BOT)
    assert verify(state, ROLES, BOT).rooms.moderators == "!mods:x"


def test_archive_rooms_count_only_when_the_bridge_alone_made_them() -> None:
    archive = {"kind": "archive", "group": "carers", "complete": True}
    state = community(
        ("!archive:x", archive, {"creator": BRIDGE}),
        ("!fake-archive:x", archive, {"creator": MALLORY}),
        ("!admin-archive:x", archive, {"creator": ADMIN}),
    )
    found = verify(state, ROLES, BOT)
    assert "!archive:x" in found.rooms.markers
    assert "!fake-archive:x" not in found.rooms.markers
    assert "!admin-archive:x" not in found.rooms.markers
    assert set(found.forgeries) == {
        Forgery("!fake-archive:x", MALLORY, "archive"),
        Forgery("!admin-archive:x", ADMIN, "archive"),
    }
    # The bridge cannot make the community's other rooms.
    state = community(("!bridge-mods:x", {"kind": "moderators"}, {"creator": BRIDGE}))
    assert verify(state, ROLES, BOT).forgeries == (Forgery("!bridge-mods:x", BRIDGE, "moderators"),)


def test_another_community_s_markers_are_ignored_not_forgeries() -> None:
    state = community()
    state.take(
        "!theirs:x",
        [
            ev("m.room.create", MALLORY, {}),
            ev(MARKER, MALLORY, {"community": "harbour", "kind": "ban-list"}),
        ],
    )
    found = verify(state, ROLES, BOT)
    assert found.forgeries == ()
    assert "!theirs:x" not in found.rooms.markers


def test_staff_invitations_are_accepted_and_members_only_for_direct_messages() -> None:
    def accepts(inviter: str, *, direct: bool = False, room_id: str = "!r:x") -> bool:
        return accepts_invitation(
            inviter, BOT, room_id, is_direct=direct, roles=ROLES, named=frozenset({"!list:x"})
        )

    for staff in (ADMIN, OTHER_BOT, MOD, BRIDGE):
        assert accepts(staff)
    assert not accepts(MALLORY)
    assert accepts(MALLORY, direct=True)
    assert not accepts("@mallory:elsewhere.org", direct=True)
    # A room the operator named (a ban list to follow): whoever invites.
    assert accepts("@draupnir:example.org", room_id="!list:x")


def test_a_bot_without_a_community_joins_any_local_room() -> None:
    assert accepts_invitation(MALLORY, BOT, "!r:x", is_direct=False, roles=None)
    assert not accepts_invitation("@x:elsewhere.org", BOT, "!r:x", is_direct=False, roles=None)


def test_a_member_s_direct_message_with_more_people_is_left() -> None:
    from bots.framework.community import CommunityRooms, shared_members_rooms

    members = {
        "!dm:x": frozenset({BOT, MALLORY}),
        "!crowd:x": frozenset({BOT, MALLORY, "@friend:example.org"}),
        "!mods-own:x": frozenset({BOT, MOD, "@friend:example.org"}),
        "!group:x": frozenset({BOT, MALLORY, "@friend:example.org"}),
        "!list:x": frozenset({BOT, MALLORY, "@friend:example.org"}),
    }
    creators = {"!dm:x": MALLORY, "!crowd:x": MALLORY, "!mods-own:x": MOD, "!group:x": ADMIN}
    rooms = CommunityRooms(markers={"!group:x": {"kind": "group"}})
    found = shared_members_rooms(members, creators.get, rooms, ROLES, BOT, frozenset({"!list:x"}))
    assert found == ["!crowd:x"]
    # A bot without a community leaves nothing.
    assert shared_members_rooms(members, creators.get, rooms, None, BOT) == []
