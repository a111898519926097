"""What the server holds now, read from one filtered /sync. Parsing is pure."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from provisioning.desired import BAN_LIST, MARKER, MODERATION_LOG, MODERATORS, SPACE, group_label
from provisioning.meetings import MEETING
from provisioning.protections import OVERRIDES

JsonDict = dict[str, Any]

# Room versions in which creators hold unlimited power and must not be listed
# in m.room.power_levels' users.
CREATORS_IMPLICIT = frozenset({"12"})

STATE_TYPES = [
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
    OVERRIDES,  # a group's protections as changed in chat: shown as drift, kept
    MEETING,  # a group's declared meetings, for the meetings bot
]


def sync_filter() -> JsonDict:
    """Only the state Hearth manages: no timelines, receipts or presence.

    Synapse caches identical /sync responses for a while
    (``sync_response_cache_duration``), so a read right after an apply could
    return the state from before it. Excluding a made-up room makes every
    request distinct without changing what it returns.
    """
    nonce = f"!hearth-{secrets.token_hex(8)}:invalid"
    return {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "timeline": {"limit": 0},
            "state": {"types": STATE_TYPES, "lazy_load_members": False},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "include_leave": False,
            "not_rooms": [nonce],
        },
    }


@dataclass(frozen=True)
class RoomSnapshot:
    room_id: str
    state: dict[tuple[str, str], JsonDict]
    creators: frozenset[str] = frozenset()
    version: str = "1"

    def get(self, event_type: str, state_key: str = "") -> JsonDict | None:
        return self.state.get((event_type, state_key))

    def membership(self, user_id: str) -> str | None:
        content = self.state.get(("m.room.member", user_id))
        return str(content.get("membership")) if content else None

    @property
    def creators_implicit(self) -> bool:
        return self.version in CREATORS_IMPLICIT


@dataclass(frozen=True)
class ServerState:
    """The community's rooms on the server, by label."""

    rooms: dict[str, RoomSnapshot] = field(default_factory=dict)
    # Labels found more than once (two rooms claim the same key).
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    def room_id(self, label: str) -> str | None:
        snap = self.rooms.get(label)
        return snap.room_id if snap else None


def label_of(marker: JsonDict, community: str) -> str | None:
    if marker.get("community") != community:
        return None
    kind = marker.get("kind")
    if kind == "space":
        return SPACE
    if kind in (MODERATORS, MODERATION_LOG, BAN_LIST):
        return str(kind)
    if (
        kind == "group"
        and isinstance(marker.get("group"), str)
        and isinstance(marker.get("room"), str)
    ):
        return group_label(marker["group"], marker["room"])
    return None


def parse_sync(sync: JsonDict, community: str) -> ServerState:
    rooms: dict[str, RoomSnapshot] = {}
    duplicates: dict[str, list[str]] = {}
    joined = (sync.get("rooms") or {}).get("join") or {}
    for room_id, room in sorted(joined.items()):
        events = ((room.get("state") or {}).get("events") or []) + [
            e for e in ((room.get("timeline") or {}).get("events") or []) if "state_key" in e
        ]
        state: dict[tuple[str, str], JsonDict] = {}
        creators: set[str] = set()
        version = "1"
        for ev in events:
            state[(ev["type"], ev["state_key"])] = ev.get("content") or {}
            if ev["type"] == "m.room.create":
                creators.add(ev.get("sender", ""))
                content = ev.get("content") or {}
                creators.update(content.get("additional_creators") or [])
                version = str(content.get("room_version", "1"))
        label = label_of(state.get((MARKER, ""), {}), community)
        if label is None:
            continue
        snap = RoomSnapshot(room_id, state, frozenset(creators), version)
        if label in rooms:
            duplicates.setdefault(label, [rooms[label].room_id]).append(room_id)
            continue
        rooms[label] = snap
    return ServerState(rooms, duplicates)
