"""The bot's SQLite database: numbered, described migrations applied on start."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bots.framework.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "handled events, so each event is acted on once even across restarts",
        """
        CREATE TABLE handled_events (
            event_id TEXT PRIMARY KEY,
            handled_at REAL NOT NULL
        );
        CREATE INDEX handled_events_at ON handled_events (handled_at);
        """,
    ),
    Migration(
        2,
        "undecryptable messages whose sender we already told (one notice per sender and session)",
        """
        CREATE TABLE undecryptable_notified (
            notice_key TEXT PRIMARY KEY,
            notified_at REAL NOT NULL
        );
        """,
    ),
)


class Storage:
    """A thin async wrapper; every query the framework makes lives here."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> Storage:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            # WAL with NORMAL stays consistent on power loss and saves an
            # fsync per command on the reply path.
            await db.execute("PRAGMA synchronous=NORMAL")
            store = cls(db)
            await store.migrate(migrations)
        except BaseException:
            # aiosqlite's thread would otherwise keep the process alive.
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError("migrations must be numbered 1, 2, 3... without gaps or repeats")
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        current = await self.schema_version()
        for m in migrations:
            if m.version <= current:
                continue
            # Each migration and its bookkeeping row commit together, so a
            # crash leaves the database at a whole version.
            await self._db.execute("BEGIN")
            try:
                for statement in filter(str.strip, m.sql.split(";")):
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (m.version, m.description, time.time()),
                )
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise
            log.info("database migrated", version=m.version, migration=m.description)

    async def claim_event(self, event_id: str) -> bool:
        """Record *event_id* as handled; False if it already was."""
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO handled_events VALUES (?, ?)", (event_id, time.time())
        )
        await self._db.commit()
        return cur.rowcount == 1

    async def forget_handled_before(self, cutoff: float) -> None:
        await self._db.execute("DELETE FROM handled_events WHERE handled_at < ?", (cutoff,))
        await self._db.commit()

    async def mark_undecryptable_notified(self, notice_key: str) -> bool:
        """Record that a sender was told; False if they already were."""
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO undecryptable_notified VALUES (?, ?)", (notice_key, time.time())
        )
        await self._db.commit()
        return cur.rowcount == 1
