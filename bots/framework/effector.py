"""The one place actions meet the homeserver. Owns retries and rate limits."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from nio import AsyncClient, ErrorResponse, JoinError, RoomSendError

from bots.framework.actions import Action, Extension, JoinRoom, Reply, SendNotice
from bots.framework.backoff import Backoff
from bots.framework.logging import get_logger
from bots.framework.session import TRANSIENT

log = get_logger(__name__)

# Errors that will not go away by retrying.
PERMANENT_ERRCODES = frozenset(
    {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE", "M_UNKNOWN_TOKEN"}
)


def message_content(action: Reply | SendNotice) -> dict[str, Any]:
    """The event content for a notice; replies carry no quoted fallback."""
    content: dict[str, Any] = {"msgtype": "m.notice", "body": action.body}
    if action.html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = action.html
    if isinstance(action, Reply):
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": action.in_reply_to}}
    # Notices should not ping anyone.
    content["m.mentions"] = {}
    return content


def transaction_id() -> str:
    """A new id for each action performed, reused by its retries, so the
    server drops a retry whose first attempt got through, yet two identical
    notices sent at different times both arrive."""
    return f"hearth-{uuid.uuid4().hex}"


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


Performer = Callable[[Any], Awaitable[Sequence[Action]]]


class Effector:
    def __init__(
        self,
        client: AsyncClient,
        *,
        max_attempts: int = 6,
        rate: float = 10.0,
        burst: int = 30,
        performers: Mapping[type[Extension], Performer] | None = None,
    ) -> None:
        self.client = client
        self.max_attempts = max_attempts
        self.bucket = TokenBucket(rate, burst)
        self.performers = dict(performers or {})

    async def perform(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Extension):
                performer = self.performers.get(type(action))
                if performer is None:
                    log.error("no performer for action", action=type(action).__name__)
                    continue
                # The adapter owns its own retries; what it reports is sent here.
                await self.perform(await performer(action))
            else:
                await self._perform_one(action)

    async def _perform_one(self, action: Reply | SendNotice | JoinRoom) -> None:
        backoff = Backoff(base=0.5, cap=15.0)
        txn = transaction_id()
        kind = type(action).__name__
        for attempt in range(1, self.max_attempts + 1):
            await self.bucket.take()
            try:
                resp = await self._call(action, txn)
            except TRANSIENT:
                errcode = "unreachable"
            else:
                if not isinstance(resp, ErrorResponse):
                    return
                errcode = resp.status_code or "unknown"
                if errcode in PERMANENT_ERRCODES:
                    log.warning("action refused", action=kind, errcode=errcode)
                    return
            if attempt < self.max_attempts:
                delay = backoff.next_delay()
                log.info(
                    "action failed, retrying",
                    action=kind,
                    errcode=errcode,
                    retry_in_s=round(delay, 1),
                )
                await asyncio.sleep(delay)
        log.error("action abandoned", action=kind, attempts=self.max_attempts)

    async def _call(
        self, action: Reply | SendNotice | JoinRoom, txn: str
    ) -> RoomSendError | JoinError | object:
        if isinstance(action, JoinRoom):
            return await self.client.join(action.room_id)
        return await self.client.room_send(
            action.room_id,
            "m.room.message",
            message_content(action),
            tx_id=txn,
            # Members' devices are trusted on first use; cross-signing
            # verification of members is left to their own clients.
            ignore_unverified_devices=True,
        )
