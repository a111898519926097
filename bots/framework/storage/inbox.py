"""The inbox: a sync's events written, with the sync position that follows
them, in one transaction, before anything acts on them; and the events
already handled, so each is acted on once even across restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bots.framework.actions import RecordWrite
from bots.framework.storage.outbox import OutboxItem, OutboxStore


@dataclass(frozen=True)
class InboxItem:
    seq: int
    event_id: str
    room_id: str
    source: dict[str, Any]
    encrypted: bool


class InboxStore(OutboxStore):
    """Stands on `OutboxStore` because `settle` marks an event handled and
    queues what was decided about it in one transaction."""

    # --- handled events ---

    async def claim_event(self, event_id: str) -> bool:
        """Record *event_id* as handled; False if it already was."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO handled_events VALUES (?, ?)", (event_id, time.time())
            )
        return cur.rowcount == 1

    async def is_handled(self, event_id: str) -> bool:
        return bool(
            await self._fetch("SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,))
        )

    async def forget_handled_before(self, cutoff: float) -> None:
        async with self.transaction() as db:
            await db.execute("DELETE FROM handled_events WHERE handled_at < ?", (cutoff,))

    async def mark_undecryptable_notified(self, notice_key: str) -> bool:
        """Record that a sender was told; False if they already were."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO undecryptable_notified VALUES (?, ?)",
                (notice_key, time.time()),
            )
        return cur.rowcount == 1

    # --- inbox and sync position ---

    async def sync_token(self) -> str | None:
        rows = await self._fetch("SELECT token FROM sync_position WHERE id = 1")
        return str(rows[0][0]) if rows else None

    async def receive(
        self,
        items: Sequence[tuple[str, str, dict[str, Any], bool]],
        next_token: str | None,
        awaiting: Sequence[tuple[str, str, dict[str, Any]]] = (),
    ) -> list[InboxItem]:
        """Write a sync's events and the position after them in one transaction.

        *next_token* None keeps the position (an event decrypted late).
        Events already handled or already waiting are skipped, so a sync
        replayed after a crash adds nothing twice. *awaiting* are encrypted
        events (event id, room, source) whose keys have not come yet: kept
        with the position, so a restart still waits for them. Returns the
        new items.
        """
        now = time.time()
        added: list[InboxItem] = []
        async with self.transaction() as db:
            for event_id, room_id, source, encrypted in items:
                async with db.execute(
                    "SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,)
                ) as seen:
                    if await seen.fetchone() is not None:
                        continue
                cur = await db.execute(
                    "INSERT OR IGNORE INTO inbox (event_id, room_id, source, encrypted,"
                    " received_at) VALUES (?, ?, ?, ?, ?)",
                    (event_id, room_id, json.dumps(source), int(encrypted), now),
                )
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    added.append(InboxItem(cur.lastrowid, event_id, room_id, source, encrypted))
            await db.executemany(
                "INSERT OR IGNORE INTO awaiting_keys VALUES (?, ?, ?, ?)",
                [(e, r, json.dumps(src), now) for e, r, src in awaiting],
            )
            if next_token is not None:
                await db.execute(
                    "INSERT INTO sync_position VALUES (1, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET token = excluded.token,"
                    " saved_at = excluded.saved_at",
                    (next_token, now),
                )
        return added

    async def awaiting_keys(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Encrypted events still waiting for their keys, oldest first."""
        rows = await self._fetch(
            "SELECT event_id, room_id, source FROM awaiting_keys ORDER BY received_at"
        )
        return [(str(r[0]), str(r[1]), json.loads(r[2])) for r in rows]

    async def release_awaiting(self, event_id: str) -> None:
        """The event was decrypted, or its sender told: stop waiting for it."""
        async with self.transaction() as db:
            await db.execute("DELETE FROM awaiting_keys WHERE event_id = ?", (event_id,))

    async def pending_inbox(self) -> list[InboxItem]:
        rows = await self._fetch(
            "SELECT seq, event_id, room_id, source, encrypted FROM inbox ORDER BY seq"
        )
        return [InboxItem(r[0], r[1], r[2], json.loads(r[3]), bool(r[4])) for r in rows]

    async def settle(
        self,
        item: InboxItem,
        actions: Sequence[tuple[str, str | None, dict[str, Any]]],
        writes: Sequence[RecordWrite] = (),
    ) -> list[OutboxItem]:
        """Mark an event handled, apply the features' record *writes* and
        queue its actions, atomically.

        *actions* are (idempotency key, room id, serialised action). A key
        already queued is not queued again.
        """
        async with self.transaction() as db:
            await self._write_records(writes)
            queued = await self._enqueue(actions)
            await db.execute(
                "INSERT OR IGNORE INTO handled_events VALUES (?, ?)", (item.event_id, time.time())
            )
            await db.execute("DELETE FROM inbox WHERE seq = ?", (item.seq,))
        return queued

    async def drop_inbox(self, item: InboxItem) -> None:
        """Forget an event without acting on it (too old, or not for us)."""
        await self.settle(item, ())
