"""What an import has done so far, in the archive bot's state folder
(aiosqlite), so an interrupted import resumes where it stopped.

- ``imports``: one row per Hearth group and Facebook group: the archive
  room and whether the import finished.
- ``sent``: each part of each review line already in the archive (a post
  is its text and then one event per photo), with its event ID and the
  event ID of the thread it belongs to.
  A part is recorded after its send; a kill in between leaves it in the
  archive but not here, so a resumed import first reads the archive's
  last events back (`bridge.importer`) instead of sending it twice.
- ``identity_pins``: who the archive bot has seen as the community bot's
  owner identity (`bots.framework.trust` pins identities on first sight).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bots.framework.trust.policy import Pin

SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    key TEXT PRIMARY KEY, room_id TEXT NOT NULL, complete INTEGER NOT NULL DEFAULT 0,
    started_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
    import_key TEXT NOT NULL, line_id TEXT NOT NULL, part INTEGER NOT NULL,
    event_id TEXT NOT NULL, root TEXT NOT NULL,
    PRIMARY KEY (import_key, line_id, part)
);
CREATE TABLE IF NOT EXISTS identity_pins (
    user_id TEXT PRIMARY KEY, master_key TEXT NOT NULL, reported_key TEXT
);
"""


@dataclass(frozen=True)
class Part:
    line_id: str
    part: int


@dataclass(frozen=True)
class Placed:
    """Where a line's first part landed: its event, and its thread's root."""

    event_id: str
    root: str


class Progress:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path) -> Progress:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        path.chmod(0o600)
        # One commit per event sent: WAL makes that cheap, and what a crash
        # loses is found again by reading the archive back.
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def room(self, key: str) -> tuple[str, bool] | None:
        async with self.db.execute(
            "SELECT room_id, complete FROM imports WHERE key = ?", (key,)
        ) as cur:
            row = await cur.fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    async def start(self, key: str, room_id: str) -> None:
        await self.db.execute(
            "INSERT INTO imports (key, room_id, started_at) VALUES (?, ?, ?)",
            (key, room_id, time.time()),
        )
        await self.db.commit()

    async def finish(self, key: str) -> None:
        await self.db.execute("UPDATE imports SET complete = 1 WHERE key = ?", (key,))
        await self.db.commit()

    async def done(self, key: str, part: Part) -> bool:
        async with self.db.execute(
            "SELECT 1 FROM sent WHERE import_key = ? AND line_id = ? AND part = ?",
            (key, part.line_id, part.part),
        ) as cur:
            return await cur.fetchone() is not None

    async def placed(self, key: str, line_id: str) -> Placed | None:
        async with self.db.execute(
            "SELECT event_id, root FROM sent WHERE import_key = ? AND line_id = ? AND part = 0",
            (key, line_id),
        ) as cur:
            row = await cur.fetchone()
        return Placed(str(row[0]), str(row[1])) if row else None

    async def count(self, key: str) -> int:
        async with self.db.execute("SELECT COUNT(*) FROM sent WHERE import_key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def sent(self, key: str, part: Part, event_id: str, root: str) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO sent VALUES (?, ?, ?, ?, ?)",
            (key, part.line_id, part.part, event_id, root),
        )
        await self.db.commit()

    # --- identity pins (bots.framework.trust.identities.Pins) ---

    async def pins_of(self, users: Sequence[str]) -> dict[str, Pin]:
        out: dict[str, Pin] = {}
        for user in users:
            async with self.db.execute(
                "SELECT master_key, reported_key FROM identity_pins WHERE user_id = ?", (user,)
            ) as cur:
                row = await cur.fetchone()
            if row:
                out[user] = Pin(str(row[0]), row[1])
        return out

    async def store_pins(self, pins: Mapping[str, Pin]) -> None:
        await self.db.executemany(
            "INSERT OR REPLACE INTO identity_pins VALUES (?, ?, ?)",
            [(u, p.master, p.reported) for u, p in pins.items()],
        )
        await self.db.commit()
