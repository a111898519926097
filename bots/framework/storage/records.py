"""Each feature's own records, written with the decision that changed them."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from bots.framework.actions import PutRecord, RecordWrite
from bots.framework.storage.base import StoreBase


class RecordStore(StoreBase):
    async def _write_records(self, writes: Sequence[RecordWrite]) -> None:
        """Apply *writes* inside the caller's transaction (see `settle`)."""
        now = time.time()
        for w in writes:
            if isinstance(w, PutRecord):
                await self._db.execute(
                    "INSERT INTO feature_records VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (feature, kind, key) DO UPDATE"
                    " SET value = excluded.value, updated_at = excluded.updated_at",
                    (w.feature, w.kind, w.key, json.dumps(dict(w.value)), now),
                )
            else:
                await self._db.execute(
                    "DELETE FROM feature_records WHERE feature = ? AND kind = ? AND key = ?",
                    (w.feature, w.kind, w.key),
                )

    async def record(self, feature: str, kind: str, key: str) -> dict[str, Any] | None:
        rows = await self._fetch(
            "SELECT value FROM feature_records WHERE feature = ? AND kind = ? AND key = ?",
            (feature, kind, key),
        )
        return json.loads(rows[0][0]) if rows else None

    async def records(self, feature: str, kind: str) -> dict[str, dict[str, Any]]:
        """Every record of one kind, by key, in the order they were written."""
        rows = await self._fetch(
            "SELECT key, value FROM feature_records WHERE feature = ? AND kind = ?"
            " ORDER BY updated_at, key",
            (feature, kind),
        )
        return {str(r[0]): json.loads(r[1]) for r in rows}
