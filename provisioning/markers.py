"""The community's rooms as a bot finds them: by the marker state event
provisioning puts in each (``desired.MARKER``), never by name or alias.
Pure: the markers come from the bot's view of room state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioning.schema import CommunityFile


@dataclass(frozen=True)
class CommunityRooms:
    space: str | None
    # group key → room ids, the group's main room first
    groups: Mapping[str, tuple[str, ...]]
    moderators: str | None = None
    moderation_log: str | None = None
    ban_list: str | None = None

    @classmethod
    def from_markers(
        cls, markers: Mapping[str, Mapping[str, Any]], cfg: CommunityFile
    ) -> CommunityRooms:
        """*markers*: room id → its marker's content."""
        community = cfg.community.key
        space: str | None = None
        moderators: str | None = None
        log: str | None = None
        ban_list: str | None = None
        found: dict[str, dict[str, str]] = {}
        for room_id, marker in markers.items():
            if marker.get("community") != community:
                continue
            if marker.get("kind") == "space":
                space = room_id
            elif marker.get("kind") == "moderators":
                moderators = room_id
            elif marker.get("kind") == "moderation-log":
                log = room_id
            elif marker.get("kind") == "ban-list":
                ban_list = room_id
            elif marker.get("kind") == "group":
                group, room = marker.get("group"), marker.get("room")
                if isinstance(group, str) and isinstance(room, str):
                    found.setdefault(group, {})[room] = room_id
        groups: dict[str, tuple[str, ...]] = {}
        for key, rooms in found.items():
            decl = cfg.group(key)
            order = [r.key for r in decl.rooms] if decl else sorted(rooms)
            groups[key] = tuple(rooms[r] for r in order if r in rooms)
        return cls(space, groups, moderators, log, ban_list)

    def group_of(self, room_id: str) -> str | None:
        return next((g for g, rooms in self.groups.items() if room_id in rooms), None)

    def group_rooms(self) -> tuple[str, ...]:
        return tuple(room for rooms in self.groups.values() for room in rooms)

    def main_room(self, group: str) -> str | None:
        rooms = self.groups.get(group, ())
        return rooms[0] if rooms else None
