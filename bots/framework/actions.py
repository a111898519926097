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


Action = Reply | SendNotice | JoinRoom
