"""Each person's pinned cross-signing identity, and a changed one already
reported to the moderators."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from bots.framework.storage.base import StoreBase
from bots.framework.trust.policy import Pin


class PinStore(StoreBase):
    async def pins_of(self, users: Sequence[str]) -> dict[str, Pin]:
        out: dict[str, Pin] = {}
        for start in range(0, len(users), 500):  # SQLite's variable limit
            chunk = list(users[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = await self._fetch(
                "SELECT user_id, master_key, reported_key FROM identity_pins"
                f" WHERE user_id IN ({marks})",
                chunk,
            )
            for row in rows:
                out[str(row[0])] = Pin(str(row[1]), row[2])
        return out

    async def store_pins(self, pins: Mapping[str, Pin]) -> None:
        """Store each user's pin, all in one transaction."""
        if not pins:
            return
        now = time.time()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO identity_pins VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE"
                " SET master_key = excluded.master_key, reported_key = excluded.reported_key,"
                " pinned_at = excluded.pinned_at",
                [(user, pin.master, pin.reported, now) for user, pin in pins.items()],
            )
