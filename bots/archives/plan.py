"""What the community bot does for a group's archive rooms. Pure.

An archive room is trusted only when the archive bot (the bridge's
account, from the community file) created it alone: anyone on the server
can make a room carrying the same marker and invite the bot, and the bot
must not list such a room in the Space or pull a group's members into it.

Once its import is complete, an archive is listed in the Space after its
group's rooms, and everyone in the group's rooms is invited, each invite
carrying the archive's keys (the runtime's history bundles). Each step is
submitted under its own key, so it is done once: a member who leaves the
archive is not invited back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import Action, Invite, SetState
from bots.framework.community import CommunityRooms
from bots.framework.event_types import SPACE_CHILD
from provisioning.schema import CommunityFile

ARCHIVE_KIND = "archive"


@dataclass(frozen=True)
class Archive:
    room_id: str
    group: str


def archives(
    markers: Mapping[str, Mapping[str, Any]],
    cfg: CommunityFile,
    creators: Callable[[str], frozenset[str]],
) -> list[Archive]:
    """The community's complete archive rooms that the archive bot made."""
    bridge = cfg.bridge_user()
    found = []
    for room_id, marker in sorted(markers.items()):
        group = marker.get("group")
        if (
            marker.get("community") == cfg.community.key
            and marker.get("kind") == ARCHIVE_KIND
            and marker.get("complete") is True
            and isinstance(group, str)
            and (decl := cfg.group(group)) is not None
            and decl.history_before_joining
            and creators(room_id) == frozenset({bridge})
        ):
            found.append(Archive(room_id, group))
    return found


def steps(
    archive: Archive,
    cfg: CommunityFile,
    rooms: CommunityRooms,
    listed: Mapping[str, Mapping[str, Any]],
    members: Callable[[str], frozenset[str]],
) -> list[tuple[str, Sequence[Action]]]:
    """(idempotency key, actions) for one archive: its listing in the Space
    (*listed*: the Space's m.space.child events by child), then an invite
    for each member of its group's rooms who is not in it yet."""
    room = archive.room_id
    server = cfg.community.admin.user_id.split(":", 1)[1]
    out: list[tuple[str, Sequence[Action]]] = []
    if rooms.space is not None and not listed.get(room):
        index = next(i for i, g in enumerate(cfg.groups) if g.key == archive.group)
        child = {"via": [server], "order": f"{index:03d}.99", "suggested": False}
        parent = {"via": [server], "canonical": True}
        out.append(
            (
                f"archive-listed:{room}",
                [
                    SetState(rooms.space, SPACE_CHILD, child, state_key=room),
                    SetState(room, "m.space.parent", parent, state_key=rooms.space),
                ],
            )
        )
    staff = {b.user_id for b in cfg.bots} | {cfg.bridge_user()}
    in_group = frozenset().union(*(members(r) for r in rooms.groups.get(archive.group, ())))
    for user in sorted(in_group - members(room) - staff):
        out.append((f"archive-invite:{room}:{user}", [Invite(room, user)]))
    return out
