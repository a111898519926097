"""Typed events, converted from raw event JSON once, at the boundary (see ``intake``).

Every event is a frozen dataclass. Mappings are read-only views
(``MappingProxyType``) declared ``hash=False``, so instances still hash on
their scalar fields and compare on all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType


def _no_entries() -> Mapping[str, int]:
    return MappingProxyType({})


class MessageKind(Enum):
    TEXT = "text"
    NOTICE = "notice"
    EMOTE = "emote"
    MEDIA = "media"


MEDIA_MSGTYPES = frozenset({"m.image", "m.file", "m.audio", "m.video"})


def message_kind(msgtype: str) -> MessageKind:
    """The spec tells clients to show a msgtype they don't know as text."""
    if msgtype == "m.notice":
        return MessageKind.NOTICE
    if msgtype == "m.emote":
        return MessageKind.EMOTE
    if msgtype in MEDIA_MSGTYPES:
        return MessageKind.MEDIA
    return MessageKind.TEXT


@dataclass(frozen=True)
class EncryptedFile:
    """An attachment in an encrypted room: the ciphertext's mxc URL and how to decrypt it."""

    url: str
    key: Mapping[str, object] = field(hash=False)  # the JWK, read-only; key_ops as a tuple
    iv: str
    sha256: str
    v: str


@dataclass(frozen=True)
class Media:
    msgtype: str
    filename: str
    mimetype: str | None = None
    size: int | None = None
    url: str | None = None  # unencrypted rooms
    file: EncryptedFile | None = None  # encrypted rooms


@dataclass(frozen=True)
class SenderDevice:
    """The keys that an encrypted event proves its sending device holds: the
    Curve25519 key of the Olm channel that delivered its Megolm session, and
    the Ed25519 key that channel claimed. A session forwarded to us by a third
    device proves nothing about the sender."""

    curve25519: str
    ed25519: str
    forwarded: bool = False


@dataclass(frozen=True)
class Message:
    event_id: str
    room_id: str
    sender: str
    body: str
    msgtype: str
    server_ts_ms: int
    encrypted: bool
    formatted_body: str | None = None
    reply_to: str | None = None
    thread_root: str | None = None
    replaces: str | None = None
    media: Media | None = None
    mentions: tuple[str, ...] = ()
    mentions_room: bool = False
    # None for an event that was not encrypted (or whose session is unknown).
    sender_device: SenderDevice | None = None

    @property
    def kind(self) -> MessageKind:
        # Derived, so it can never disagree with msgtype.
        return message_kind(self.msgtype)


# Existing callers construct messages under this name.
IncomingMessage = Message


@dataclass(frozen=True)
class Reaction:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    encrypted: bool
    relates_to: str
    key: str


@dataclass(frozen=True)
class Redaction:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    redacts: str
    reason: str | None = None


class MembershipChange(Enum):
    INVITE = "invite"
    JOIN = "join"
    LEAVE = "leave"
    KICK = "kick"
    BAN = "ban"
    UNBAN = "unban"
    KNOCK = "knock"
    KNOCK_RETRACTED = "knock_retracted"
    KNOCK_REJECTED = "knock_rejected"
    INVITE_REJECTED = "invite_rejected"
    INVITE_REVOKED = "invite_revoked"
    PROFILE = "profile"
    NONE = "none"


@dataclass(frozen=True)
class Membership:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    target: str
    membership: str
    previous: str | None
    change: MembershipChange
    reason: str | None = None
    is_direct: bool = False
    displayname: str | None = None


@dataclass(frozen=True)
class PowerLevels:
    """``m.room.power_levels``; anything the event leaves out has the spec's default."""

    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    users: Mapping[str, int] = field(default_factory=_no_entries, hash=False)
    users_default: int = 0
    events: Mapping[str, int] = field(default_factory=_no_entries, hash=False)
    state_default: int = 50
    events_default: int = 0
    ban: int = 50
    kick: int = 50
    invite: int = 0
    redact: int = 50

    def level_of(self, user_id: str) -> int:
        return self.users.get(user_id, self.users_default)


@dataclass(frozen=True)
class JoinRules:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    join_rule: str
    allow_rooms: tuple[str, ...] = ()


class PollKind(Enum):
    DISCLOSED = "disclosed"
    UNDISCLOSED = "undisclosed"


@dataclass(frozen=True)
class PollAnswer:
    id: str
    text: str


@dataclass(frozen=True)
class PollStart:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    encrypted: bool
    question: str
    kind: PollKind
    max_selections: int
    answers: tuple[PollAnswer, ...]


@dataclass(frozen=True)
class PollResponse:
    """A vote. ``answers`` is empty for an un-vote and for a spoiled (malformed) vote alike."""

    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    encrypted: bool
    poll_id: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class PollEnd:
    event_id: str
    room_id: str
    sender: str
    server_ts_ms: int
    encrypted: bool
    poll_id: str
    text: str


Event = (
    Message
    | Reaction
    | Redaction
    | Membership
    | PowerLevels
    | JoinRules
    | PollStart
    | PollResponse
    | PollEnd
)


@dataclass(frozen=True)
class PowerSnapshot:
    """A sender's power levels where a command's authorisation looks.

    ``in_moderators_room`` is None when the community has no moderators' room
    or the sender is not a member of it.
    """

    in_room: int
    in_moderators_room: int | None = None
    # Whether the command was typed in the moderators' room itself.
    typed_in_moderators_room: bool = False


# Room creators' power in room version 12 and later (MSC4289): above any
# level the power-levels event can give, which may not list them at all.
CREATOR_POWER = 2**53 - 1


def creators_outrank_power_levels(room_version: str) -> bool:
    """Whether *room_version* gives its creators unlimited power (v12 and later)."""
    if room_version.isdigit():
        return int(room_version) >= 12
    return room_version.startswith("org.matrix.hydra")


def room_creators(create_event: Mapping[str, object]) -> frozenset[str]:
    """The sender of ``m.room.create`` and its ``additional_creators``."""
    sender = create_event.get("sender")
    content = create_event.get("content")
    extra = content.get("additional_creators") if isinstance(content, Mapping) else None
    found = {sender} if isinstance(sender, str) else set()
    if isinstance(extra, list):
        found |= {u for u in extra if isinstance(u, str)}
    return frozenset(found)
