"""What the server should hold for a community: pure, from the YAML alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bots.framework.community import MARKER
from provisioning.meetings import MEETING
from provisioning.schema import CommunityFile, GroupDecl, JoinRule, RoomDecl, RoomKind

ROOM_VERSION = "12"
MODERATOR_LEVEL = 50
# Group moderators in the moderators' room: they review applications to
# their group there (bots.framework.commands.spec.REVIEWER), no more.
REVIEWER_LEVEL = 25

JsonDict = dict[str, Any]


def placeholder(label: str) -> str:
    """Stands for the room ID of *label* until the applier knows it."""
    return f"$ref:{label}"


SPACE = "space"
MODERATORS = "moderators"
MODERATION_LOG = "moderation-log"
BAN_LIST = "ban-list"


def group_label(group: str, room: str) -> str:
    return f"group/{group}/{room}"


@dataclass(frozen=True)
class DesiredRoom:
    label: str
    name: str
    topic: str
    marker: JsonDict
    is_space: bool
    join: JoinRule
    history: str  # "joined" or "shared"
    users: dict[str, int]  # power levels besides the creator's
    events_default: int
    members: tuple[str, ...]  # to be joined or invited
    child_order: str | None  # set for rooms listed in the Space
    # The group's declared meetings (in its first room): (key, content).
    meetings: tuple[tuple[str, JsonDict], ...] = ()

    def managed_state(self, server_name: str) -> dict[tuple[str, str], JsonDict]:
        """State events this room must hold, keyed by (type, state_key).

        Contents may contain placeholders for room IDs (see :func:`placeholder`).
        """
        space = placeholder(SPACE)
        state: dict[tuple[str, str], JsonDict] = {
            ("m.room.encryption", ""): {"algorithm": "m.megolm.v1.aes-sha2"},
            ("m.room.name", ""): {"name": self.name},
            ("m.room.topic", ""): {"topic": self.topic},
            ("m.room.join_rules", ""): join_rules(self.join, space),
            ("m.room.history_visibility", ""): {"history_visibility": self.history},
            ("m.room.guest_access", ""): {"guest_access": "forbidden"},
            (MARKER, ""): self.marker,
        }
        if self.child_order is not None:
            state[("m.space.parent", space)] = {"via": [server_name], "canonical": True}
        for key, content in self.meetings:
            state[(MEETING, key)] = content
        return state


def join_rules(rule: JoinRule, space: str) -> JsonDict:
    if rule is JoinRule.SPACE:
        return {
            "join_rule": "restricted",
            "allow": [{"type": "m.room_membership", "room_id": space}],
        }
    return {"join_rule": rule.value}


def power_levels(users: dict[str, int], events_default: int) -> JsonDict:
    """The power levels Hearth manages. Only moderators invite, remove or
    change a room; settings that weaken privacy need the top level."""
    mod, top = MODERATOR_LEVEL, 100
    return {
        "users": dict(sorted(users.items())),
        "users_default": 0,
        "events_default": events_default,
        "state_default": mod,
        "invite": mod,
        "kick": mod,
        "ban": mod,
        "redact": mod,
        "events": {
            "m.room.name": mod,
            "m.room.topic": mod,
            "m.room.avatar": mod,
            "m.room.pinned_events": mod,
            "m.space.child": mod,
            "m.space.parent": top,
            "m.room.power_levels": top,
            "m.room.join_rules": top,
            "m.room.history_visibility": top,
            "m.room.guest_access": top,
            "m.room.encryption": top,
            "m.room.server_acl": top,
            "m.room.tombstone": top,
            "m.room.canonical_alias": top,
            MARKER: top,
            # Members may react and remove their own messages, even where
            # only moderators post.
            "m.reaction": 0,
            "m.room.redaction": 0,
        },
        "notifications": {"room": mod},
    }


def _marker(
    community: str, kind: str, group: str | None = None, room: str | None = None
) -> JsonDict:
    marker: JsonDict = {"community": community, "kind": kind}
    if group is not None:
        marker["group"] = group
        marker["room"] = room
    return marker


def desired_rooms(cfg: CommunityFile) -> list[DesiredRoom]:
    """Every managed room, the Space first (the others refer to it)."""
    c = cfg.community
    key = c.key
    bots = {b.user_id: b.power_level for b in cfg.bots}
    mods = {m: MODERATOR_LEVEL for m in c.moderators}
    base_users = {**mods, **bots}
    everyone_staff = tuple(dict.fromkeys([*c.moderators, *bots]))
    reviewers = {m: REVIEWER_LEVEL for g in cfg.groups for m in g.moderators if m not in base_users}
    rooms = [
        DesiredRoom(
            label=SPACE,
            name=c.name,
            topic=c.topic,
            marker=_marker(key, "space"),
            is_space=True,
            join=JoinRule.INVITE,
            history="joined",
            # Group moderators are members of the Space but get no power there:
            # they would otherwise be able to unlist other groups.
            users=base_users,
            events_default=MODERATOR_LEVEL,
            members=tuple(
                dict.fromkeys([*everyone_staff, *(m for g in cfg.groups for m in g.moderators)])
            ),
            child_order=None,
        ),
        _staff_room(
            MODERATORS,
            f"{c.name}: moderators",
            "Community moderators, and groups' moderators for their applications",
            key,
            {**reviewers, **base_users},
            tuple(dict.fromkeys([*everyone_staff, *reviewers])),
        ),
        _staff_room(
            MODERATION_LOG,
            f"{c.name}: moderation log",
            "Every moderation action, recorded by the bots",
            key,
            base_users,
            everyone_staff,
        ),
    ]
    if cfg.ban_list is not None:
        # Followers (other communities' bots) read the rules; posting them,
        # state events, needs a moderator's level.
        followers = tuple(dict.fromkeys([*everyone_staff, *cfg.ban_list.share_with]))
        rooms.append(
            _staff_room(
                BAN_LIST,
                f"{c.name}: ban list",
                "Who this community bans, as a Matrix policy list other communities can follow",
                key,
                base_users,
                followers,
            )
        )
    for gi, group in enumerate(cfg.groups):
        for ri, room in enumerate(group.rooms):
            zone = group.timezone or c.timezone
            here = ri == meetings_room(group)
            meetings = tuple((m.key, m.content(zone)) for m in group.meetings) if here else ()
            rooms.append(
                _group_room(key, gi, group, ri, room, base_users, everyone_staff, meetings)
            )
    return rooms


def meetings_room(group: GroupDecl) -> int:
    """Where a group's declared meetings live: its meetings room, if it has
    one, else its first room."""
    return next((i for i, r in enumerate(group.rooms) if r.kind is RoomKind.MEETINGS), 0)


def _staff_room(
    label: str,
    name: str,
    topic: str,
    community: str,
    users: dict[str, int],
    members: tuple[str, ...],
) -> DesiredRoom:
    # Moderators joining later should see what was decided before them.
    return DesiredRoom(
        label,
        name,
        topic,
        _marker(community, label),
        False,
        JoinRule.INVITE,
        "shared",
        users,
        0,
        members,
        None,
    )


def _group_room(
    community: str,
    gi: int,
    group: GroupDecl,
    ri: int,
    room: RoomDecl,
    base_users: dict[str, int],
    staff: tuple[str, ...],
    meetings: tuple[tuple[str, JsonDict], ...],
) -> DesiredRoom:
    # Bots and community moderators keep their level if also a group moderator.
    users = {m: MODERATOR_LEVEL for m in group.moderators} | base_users
    name = group.name if len(group.rooms) == 1 else f"{group.name}: {room.name}"
    return DesiredRoom(
        label=group_label(group.key, room.key),
        name=name,
        topic=room.topic or group.topic,
        marker=_marker(community, "group", group.key, room.key) | {"room_kind": room.kind.value},
        is_space=False,
        join=group.join,
        history="shared" if group.history_before_joining else "joined",
        users=users,
        events_default=MODERATOR_LEVEL if room.kind is RoomKind.ANNOUNCEMENTS else 0,
        members=tuple(dict.fromkeys([*staff, *group.moderators])),
        child_order=f"{gi:03d}.{ri:02d}",
        meetings=meetings,
    )
