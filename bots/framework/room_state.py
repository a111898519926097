"""Room state as the homeserver holds it, from sync, and from nothing else.

Only events the server served as state count: those of a room's ``state``
block and the timeline's state events. Anything that was decrypted is
skipped, whatever it claims (decrypted_state.py drops those before nio
sees them; this is the second lock on the same door). Each entry keeps
who set it, so the community's room markers can be checked against the
staff who may set them (bots/framework/community.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bots.framework.event_types import CREATE
from bots.framework.events import room_creators


@dataclass(frozen=True)
class StateEntry:
    """One state event's sender and content."""

    sender: str
    content: Mapping[str, Any]


def server_state_event(event: object) -> tuple[str, str, StateEntry] | None:
    """(type, state key, entry) of a nio event the server served as state,
    or None: not state, malformed, or decrypted (never state)."""
    if getattr(event, "decrypted", False):
        return None
    # A nio event, or an event as the client API serves it (GET /state).
    source = event if isinstance(event, Mapping) else getattr(event, "source", None)
    if not isinstance(source, Mapping):
        return None
    event_type, key = source.get("type"), source.get("state_key")
    sender, content = source.get("sender"), source.get("content")
    if not (isinstance(event_type, str) and isinstance(key, str) and isinstance(sender, str)):
        return None
    if not isinstance(content, Mapping):
        return None
    # A copy: nio keeps the source, and features may serialise what they read.
    return event_type, key, StateEntry(sender, dict(content))


class ServerState:
    """The state of the types asked for (and every room's creators), by
    type, room and state key. A counter moves on each change, so views
    derived from it (the verified community) know when to look again."""

    def __init__(self, types: Iterable[str]) -> None:
        self.types = frozenset(types)
        self._by_type: dict[str, dict[str, dict[str, StateEntry]]] = {}
        self._creators: dict[str, frozenset[str]] = {}
        self._create_sender: dict[str, str] = {}
        self.version = 0
        # Views handed to features, made again only after a change.
        self._views: dict[tuple[str, bool], Any] = {}
        self._views_at = 0

    def take(self, room_id: str, events: Iterable[object]) -> None:
        """Note *room_id*'s state events among *events*, in order."""
        for event in events:
            found = server_state_event(event)
            if found is None:
                continue
            event_type, key, entry = found
            if event_type == CREATE and key == "":
                source = event if isinstance(event, Mapping) else getattr(event, "source", {})
                self._creators[room_id] = room_creators(source)
                self._create_sender[room_id] = entry.sender
                self.version += 1
            if event_type in self.types:
                self._by_type.setdefault(event_type, {}).setdefault(room_id, {})[key] = entry
                self.version += 1

    def forget(self, room_id: str) -> None:
        """The bot left *room_id*: what it knew of it no longer holds."""
        for by_room in self._by_type.values():
            by_room.pop(room_id, None)
        self._creators.pop(room_id, None)
        self._create_sender.pop(room_id, None)
        self.version += 1

    def entry(self, event_type: str, room_id: str, key: str = "") -> StateEntry | None:
        return self._by_type.get(event_type, {}).get(room_id, {}).get(key)

    def of_type(self, event_type: str) -> Mapping[str, Mapping[str, StateEntry]]:
        """room → state key → entry."""
        return self._by_type.get(event_type, {})

    def _view(self, event_type: str, keyed: bool) -> Any:
        if self._views_at != self.version:
            self._views, self._views_at = {}, self.version
        found = self._views.get((event_type, keyed))
        if found is None:
            by_room = self._by_type.get(event_type, {})
            if keyed:
                found = {
                    room: {k: e.content for k, e in entries.items() if k != ""}
                    for room, entries in by_room.items()
                    if any(k != "" for k in entries)
                }
            else:
                found = {room: e[""].content for room, e in by_room.items() if "" in e}
            self._views[event_type, keyed] = found
        return found

    def content(self, event_type: str) -> Mapping[str, Mapping[str, Any]]:
        """room → content of the empty-key event of *event_type*."""
        return MappingProxyType(self._view(event_type, keyed=False))

    def keyed_content(self, event_type: str) -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
        """room → state key → content, for the events with a non-empty key."""
        return MappingProxyType(self._view(event_type, keyed=True))

    def creators(self, room_id: str) -> frozenset[str]:
        """Who created *room_id* (m.room.create's sender and additional
        creators): unlike any other state, nobody can change it."""
        return self._creators.get(room_id, frozenset())

    def create_sender(self, room_id: str) -> str | None:
        return self._create_sender.get(room_id)

    def rooms(self) -> frozenset[str]:
        return frozenset(self._create_sender) | frozenset(
            room for by_room in self._by_type.values() for room in by_room
        )
