"""The community's rooms, believed only from rooms its staff made. Pure.

Provisioning puts a marker (``org.hearth.room``: community, kind, group,
room) in every room it creates, so the server itself records what belongs
where. But anyone on the server can create a room, put the same marker in
it and invite the bot. A marker therefore counts only when:

- its sender is one who makes the community's rooms: the community's admin
  account (provisioning, and ``!group create`` through the admin agent),
  one of its bots, or, for an archive room, the bridge's account alone;
- the room's ``m.room.create`` sender is one of those too (nobody can change
  who created a room afterwards);
- for a group's room, the community's (verified) Space lists it as a child.

:func:`verify` applies these rules once, for everything the bot does:
features read the community through one accessor, ``ctx.community()``
(a :class:`Community`: the verified rooms, who is who, the rooms the
operator named, the community file), and never see an unchecked marker.
A marker naming this community that fails the staff checks is a
:class:`Forgery`, reported to the moderators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

from bots.framework.event_types import MARKER, SPACE_CHILD
from bots.framework.room_state import StateEntry

# What verify reads, beyond every room's m.room.create.
STATE_TYPES = (MARKER, SPACE_CHILD)
ARCHIVE = "archive"


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[-1]


@dataclass(frozen=True)
class CommunityRoles:
    """Who is who in the community, from its file (which root writes)."""

    key: str
    admin: str
    bots: frozenset[str]
    bridge: str
    moderators: frozenset[str]
    # group → its rooms' keys as declared, the main room first
    room_order: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def makers(self, me: str) -> frozenset[str]:
        """Accounts whose markers and rooms count (the bridge's only for archives)."""
        return frozenset({self.admin, me, *self.bots})

    def inviters(self, me: str) -> frozenset[str]:
        """Accounts whose invitations the bot accepts into any room."""
        return self.makers(me) | self.moderators | {self.bridge}


class StateView(Protocol):
    def of_type(self, event_type: str) -> Mapping[str, Mapping[str, StateEntry]]: ...
    def entry(self, event_type: str, room_id: str, key: str = "") -> StateEntry | None: ...
    def creators(self, room_id: str) -> frozenset[str]: ...
    def create_sender(self, room_id: str) -> str | None: ...


@dataclass(frozen=True)
class Forgery:
    """A room claiming a role in the community that its staff did not give it."""

    room_id: str
    sender: str  # who set the marker, or, if staff did, who created the room
    claimed: str  # the kind it claimed: moderators, group, space...


@dataclass(frozen=True)
class CommunityRooms:
    space: str | None = None
    # group key → room ids, the group's main room first
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    moderators: str | None = None
    moderation_log: str | None = None
    ban_list: str | None = None
    # room → its marker, for the verified rooms only (archives included)
    markers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def group_of(self, room_id: str) -> str | None:
        return next((g for g, rooms in self.groups.items() if room_id in rooms), None)

    def group_rooms(self) -> tuple[str, ...]:
        return tuple(room for rooms in self.groups.values() for room in rooms)

    def main_room(self, group: str) -> str | None:
        rooms = self.groups.get(group, ())
        return rooms[0] if rooms else None


NO_ROOMS = CommunityRooms()

D = TypeVar("D")


@dataclass(frozen=True)
class Community:
    """The community as a feature reads it, through ``ctx.community()``.

    *rooms* holds only the rooms :func:`verify` accepted; *roles* and the
    file come from the same read of the community file (the last good one,
    if it has since broken), so they never disagree.
    """

    # The community's rooms, each checked against the staff who made it;
    # empty for a bot without a community.
    rooms: CommunityRooms = NO_ROOMS
    # Who is who in the community, from its file; None without one.
    roles: CommunityRoles | None = None
    # Rooms the bot's operator named in its config (the moderators' room,
    # followed ban lists): their invitations are accepted whoever sends them.
    named_rooms: frozenset[str] = frozenset()
    # The community file as loaded (provisioning.schema.CommunityFile: this
    # layer is below it, so the type is checked where it is read, by file()).
    document: object = field(default=None, repr=False)

    def file(self, kind: type[D]) -> D:
        """The community file, as *kind* (``CommunityFile``).

        Raises:
            LookupError: the bot has no community file (a feature that needs
                one is not started without it, so this is a programming error).
        """
        if not isinstance(self.document, kind):
            raise LookupError(f"this bot has no community file (wanted {kind.__name__})")
        return self.document


NO_COMMUNITY = Community()


@dataclass(frozen=True)
class CommunitySource:
    """The bot's community file as last read well: who is who, and the file."""

    roles: CommunityRoles
    document: object = field(repr=False)


@dataclass(frozen=True)
class Verdict:
    rooms: CommunityRooms
    forgeries: tuple[Forgery, ...] = ()


def _forgery(
    room_id: str, marker: StateEntry, kind: str, state: StateView, roles: CommunityRoles, me: str
) -> Forgery | None:
    """Why *room_id*'s marker does not count, as a Forgery, or None if it does."""
    if kind == ARCHIVE:
        makers: frozenset[str] = frozenset({roles.bridge})
        creators_ok = state.creators(room_id) == makers
    else:
        makers = roles.makers(me)
        creators_ok = state.create_sender(room_id) in makers
    if marker.sender not in makers:
        return Forgery(room_id, marker.sender, kind)
    if not creators_ok:
        creator = state.create_sender(room_id) or "an unknown account"
        return Forgery(room_id, creator, kind)
    return None


def listed_in(state: StateView, space: str | None, room_id: str) -> bool:
    """Whether *space* lists *room_id* as a child (a child event with a
    non-empty ``via``; an emptied one is a removed child)."""
    if space is None:
        return False
    child = state.entry(SPACE_CHILD, space, room_id)
    via = child.content.get("via") if child is not None else None
    return isinstance(via, list) and bool(via)


def verify(state: StateView, roles: CommunityRoles, me: str) -> Verdict:
    """The community's rooms from *state*'s markers, each checked as the
    module says, and the forgeries found."""
    accepted: dict[str, Mapping[str, Any]] = {}
    forgeries: list[Forgery] = []
    for room_id, keyed in sorted(state.of_type(MARKER).items()):
        marker = keyed.get("")
        if marker is None or marker.content.get("community") != roles.key:
            continue  # another community's room (a followed ban list, say)
        kind = marker.content.get("kind")
        kind = kind if isinstance(kind, str) else "?"
        found = _forgery(room_id, marker, kind, state, roles, me)
        if found is not None:
            forgeries.append(found)
        else:
            accepted[room_id] = marker.content
    by_kind: dict[str, str] = {}
    for room_id, content in accepted.items():
        kind = str(content.get("kind"))
        if kind in ("space", "moderators", "moderation-log", "ban-list"):
            by_kind.setdefault(kind, room_id)  # the first by room id, if ever two
    space = by_kind.get("space")
    found_groups: dict[str, dict[str, str]] = {}
    markers: dict[str, Mapping[str, Any]] = {}
    for room_id, content in accepted.items():
        kind = str(content.get("kind"))
        if kind == "group":
            group, room = content.get("group"), content.get("room")
            # A group's room counts once the Space lists it: staff put it there.
            if not (isinstance(group, str) and isinstance(room, str)):
                continue
            if not listed_in(state, space, room_id):
                continue
            found_groups.setdefault(group, {})[room] = room_id
        elif kind != ARCHIVE and by_kind.get(kind) != room_id:
            continue
        markers[room_id] = content
    groups: dict[str, tuple[str, ...]] = {}
    for key, rooms in found_groups.items():
        declared = roles.room_order.get(key)
        order = [*declared, *sorted(set(rooms) - set(declared))] if declared else sorted(rooms)
        groups[key] = tuple(rooms[r] for r in order if r in rooms)
    return Verdict(
        CommunityRooms(
            space=space,
            groups=MappingProxyType(groups),
            moderators=by_kind.get("moderators"),
            moderation_log=by_kind.get("moderation-log"),
            ban_list=by_kind.get("ban-list"),
            markers=MappingProxyType(markers),
        ),
        tuple(forgeries),
    )


def accepts_invitation(
    inviter: str,
    me: str,
    room_id: str,
    *,
    is_direct: bool,
    roles: CommunityRoles | None,
    named: frozenset[str] = frozenset(),
) -> bool:
    """Whether the bot joins *room_id*, to which *inviter* invited it.

    A room its operator named in its config (*named*: the moderators' room,
    ban lists to follow) is joined whoever invites. Otherwise nobody on
    another server may pull the bot in. A bot of a community joins rooms
    its staff invite it to, and any local member's direct message; a
    member's other rooms are never the community's, whatever their state
    says, so it stays out of them. A bot without a community (the core
    features alone) has no community roles to forge, and joins any local
    user's room.
    """
    if room_id in named:
        return True
    if server_of(inviter) != server_of(me):
        return False
    if roles is None:
        return True
    return inviter in roles.inviters(me) or is_direct


def shared_members_rooms(
    members: Mapping[str, frozenset[str]],
    creator_of: Callable[[str], str | None],
    rooms: CommunityRooms,
    roles: CommunityRoles | None,
    me: str,
    named: frozenset[str] = frozenset(),
) -> list[str]:
    """The rooms a community's bot should leave: a member's direct message
    (joined on its invitation's ``is_direct``) that has become a room of
    more than two, made by someone who is not staff. *members*: each room's
    joined and invited members. The community's own rooms, the rooms the
    config names and rooms staff made are never among them."""
    if roles is None:
        return []
    staff = roles.inviters(me)
    return sorted(
        room
        for room, present in members.items()
        if room not in rooms.markers
        and room not in named
        and creator_of(room) not in staff
        and len(present - {me}) > 1
    )
