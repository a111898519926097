"""A message or a join as the protections see it: read once from the
framework's typed event, keeping only what the checks need."""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

from bots.framework.events import Message, MessageKind

# Enough to tell a link from prose; a missed exotic URL only means no warning.
# RE2, linear in the message: with Python's re, "<a " repeated over a 60 KB
# message scans on from every "<a" in turn, seconds on the event loop.
_LINK = re2.compile(r"(?i)\b(?:https?://|www\.)\S|<a\s[^>]*href=")
_USER_ID = re.compile(r"@[a-z0-9._=/+-]+:[a-z0-9.-]+", re.IGNORECASE)

ROOM_MENTION_WEIGHT = 10  # an @room pings everyone: as bad as ten mentions


@dataclass(frozen=True)
class Seen:
    """One message in a protected room."""

    event_id: str
    room_id: str
    sender: str
    ts: float  # seconds, the server's clock
    body: str
    mentions: int  # people it mentions (an @room counts as many)
    link: bool
    media: bool


@dataclass(frozen=True)
class Joined:
    room_id: str
    user_id: str
    ts: float


def seen_of(event: Message) -> Seen:
    formatted = event.formatted_body or ""
    return Seen(
        event.event_id,
        event.room_id,
        event.sender,
        event.server_ts_ms / 1000,
        event.body,
        _mentions(event),
        bool(_LINK.search(event.body) or _LINK.search(formatted)),
        event.kind is MessageKind.MEDIA or event.msgtype == "m.sticker",
    )


def _mentions(event: Message) -> int:
    weight = ROOM_MENTION_WEIGHT if event.mentions_room else 0
    if event.mentions or event.mentions_room:
        return len(event.mentions) + weight
    # Clients older than m.mentions: pills and plain IDs in the text.
    found = len(set(_USER_ID.findall(event.body)))
    return found + (ROOM_MENTION_WEIGHT if "@room" in event.body else 0)
