"""Performers of redactions: one event, or a user's latest messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nio import ErrorResponse, RoomMessagesResponse

from bots.framework.actions import Redact, RedactRecent
from bots.framework.outbox.means import DONE, Means
from bots.framework.outbox.registry import performs

# How far back !redact looks, in events of that user, whatever the limit.
REDACT_SCAN_LIMIT = 5000


def _redactable(source: Mapping[str, Any], user_id: str) -> bool:
    """A message-like event of *user_id*'s that is not redacted yet."""
    return (
        source.get("sender") == user_id
        and "state_key" not in source
        and source.get("type") != "m.room.redaction"
        and "redacted_because" not in (source.get("unsigned") or {})
    )


@performs(Redact)
async def redact(means: Means, action: Redact, txn: str) -> Any:
    return await means.client.room_redact(action.room_id, action.event_id, action.reason, txn)


@performs(RedactRecent)
async def redact_recent(means: Means, action: RedactRecent, txn: str) -> Any:
    """Page back through the room for the user's events, then redact them
    one by one, as fast as the account's transport allows. Repeating it
    after a failure redacts nothing twice: redacted events are skipped."""
    client = means.client
    found: list[str] = []
    start: str | None = None
    scanned = 0
    only_theirs = {"senders": [action.user_id]}
    while len(found) < action.limit and scanned < REDACT_SCAN_LIMIT:
        page = await client.room_messages(
            action.room_id, start=start, limit=100, message_filter=only_theirs
        )
        if not isinstance(page, RoomMessagesResponse):
            return page
        for event in page.chunk:
            source = getattr(event, "source", {})
            scanned += 1
            if (action.since_ms or 0) > source.get("origin_server_ts", 0):
                scanned = REDACT_SCAN_LIMIT  # older than wanted: so are the rest
                break
            if len(found) < action.limit and _redactable(source, action.user_id):
                found.append(str(source.get("event_id")))
        if not page.end or page.end == start or not page.chunk:
            break
        start = page.end
    for n, event_id in enumerate(found):
        resp = await client.room_redact(action.room_id, event_id, action.reason, f"{txn}-{n}")
        if isinstance(resp, ErrorResponse) and resp.status_code != "M_NOT_FOUND":
            return resp
    return DONE
