"""What handlers decide to do, as data. Only the effector performs these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """An ``m.notice`` in reply to *in_reply_to*."""

    room_id: str
    in_reply_to: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class SendNotice:
    """An ``m.notice`` that replies to nothing."""

    room_id: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class JoinRoom:
    room_id: str


@dataclass(frozen=True)
class Extension:
    """Base of actions that a bot's own adapter performs (registered with the
    effector), e.g. provisioning a new peer group. The adapter returns
    follow-up actions, typically a reply saying how it went."""


Action = Reply | SendNotice | JoinRoom | Extension
