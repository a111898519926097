"""Typed events, converted from nio's objects once, at the boundary."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IncomingMessage:
    event_id: str
    room_id: str
    sender: str
    body: str
    msgtype: str
    server_ts_ms: int
    encrypted: bool


@dataclass(frozen=True)
class PowerSnapshot:
    """A sender's power levels where a command's authorisation looks.

    ``in_moderators_room`` is None when the community has no moderators' room
    or the sender is not a member of it.
    """

    in_room: int
    in_moderators_room: int | None = None
