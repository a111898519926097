"""The outbox: the actions a handler decided, each under its idempotency key,
written before any of them is performed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import RecordWrite
from bots.framework.storage.records import RecordStore


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    room_id: str | None
    action: dict[str, Any]


class OutboxStore(RecordStore):
    """Queues actions with the record writes decided with them: it stands on
    `RecordStore` because the two commit in one transaction."""

    async def _enqueue(
        self, actions: Sequence[tuple[str, str | None, dict[str, Any]]]
    ) -> list[OutboxItem]:
        """Queue *actions* inside the caller's transaction; a key already
        queued is not queued again."""
        queued: list[OutboxItem] = []
        now = time.time()
        for key, room_id, action in actions:
            cur = await self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, room_id, action, created_at)"
                " VALUES (?, ?, ?, ?)",
                (key, room_id, json.dumps(action), now),
            )
            if cur.rowcount == 1 and cur.lastrowid is not None:
                queued.append(OutboxItem(cur.lastrowid, key, room_id, action))
        return queued

    async def enqueue(
        self,
        actions: Sequence[tuple[str, str | None, dict[str, Any]]],
        writes: Sequence[RecordWrite] = (),
    ) -> list[OutboxItem]:
        """Queue actions not tied to an inbox event (scheduled jobs,
        services), with their record *writes*, atomically."""
        async with self.transaction():
            await self._write_records(writes)
            return await self._enqueue(actions)

    async def pending_outbox(self) -> list[OutboxItem]:
        rows = await self._fetch(
            "SELECT id, key, room_id, action FROM outbox WHERE state = 'pending' ORDER BY id"
        )
        return [OutboxItem(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def finish(self, item: OutboxItem, problem: str | None = None) -> None:
        """Record an action's end. Its content is cleared: only the key stays,
        so a retried decision is still recognised."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET state = ?, finished_at = ?, problem = ?, action = '{}'"
                " WHERE id = ?",
                ("failed" if problem else "done", time.time(), problem, item.id),
            )

    async def forget_outbox_before(self, cutoff: float) -> None:
        async with self.transaction() as db:
            await db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?", (cutoff,)
            )
