"""The bot's SQLite database opened, and its numbered, described migrations
applied on start.

The framework and each feature keep their own migration series, named by a
namespace, so two features can never collide on a version number.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import aiosqlite

from bots.base.errors import StateError
from bots.framework.logging import get_logger
from bots.framework.scheduler import SCHEMA as SCHEDULER_SCHEMA
from bots.framework.storage.base import StoreBase, is_state_problem

log = get_logger(__name__)

FRAMEWORK = "framework"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str
    namespace: str = FRAMEWORK


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
    Migration(
        3,
        "inbox of events not yet handled, and the sync position that follows them",
        """
        CREATE TABLE inbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            room_id TEXT NOT NULL,
            source TEXT NOT NULL,
            encrypted INTEGER NOT NULL,
            received_at REAL NOT NULL
        );
        CREATE TABLE sync_position (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            token TEXT NOT NULL,
            saved_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        4,
        "outbox of decided actions, each with its idempotency key",
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            room_id TEXT,
            action TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL,
            finished_at REAL,
            problem TEXT
        );
        CREATE INDEX outbox_state ON outbox (state, id);
        CREATE TABLE direct_rooms (
            user_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
    Migration(5, "scheduled jobs of every feature", SCHEDULER_SCHEMA),
    Migration(
        6,
        "each user's pinned cross-signing identity, and a changed one already reported",
        """
        CREATE TABLE identity_pins (
            user_id TEXT PRIMARY KEY,
            master_key TEXT NOT NULL,
            reported_key TEXT,
            pinned_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "room key sessions whose sender marked them shareable with later members (MSC4268)",
        """
        CREATE TABLE shareable_sessions (
            room_id TEXT NOT NULL,
            sender_key TEXT NOT NULL,
            session_id TEXT NOT NULL,
            shareable INTEGER NOT NULL,
            recorded_at REAL NOT NULL,
            PRIMARY KEY (room_id, sender_key, session_id)
        );
        """,
    ),
    Migration(
        8,
        "messages not yet decryptable, kept (still encrypted) until their keys come",
        """
        CREATE TABLE awaiting_keys (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            source TEXT NOT NULL,
            received_at REAL NOT NULL
        );
        """,
    ),
    Migration(
        9,
        "each feature's own records, written with the decision that changed them",
        """
        CREATE TABLE feature_records (
            feature TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (feature, kind, key)
        );
        """,
    ),
)


def check_series(migrations: Sequence[Migration]) -> None:
    by_namespace: dict[str, list[int]] = {}
    for m in migrations:
        by_namespace.setdefault(m.namespace, []).append(m.version)
    for namespace, versions in by_namespace.items():
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(
                f"migrations of {namespace!r} must be numbered 1, 2, 3... without gaps or repeats"
            )


class MigrationStore(StoreBase):
    """Opens the database and brings every namespace's schema up to date."""

    @classmethod
    async def open(cls, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> Self:
        check_series(migrations)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every transaction is an explicit BEGIN in transaction().
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the bot's database {path}: {exc}") from None
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # The scheduler writes through its own connection: wait for it
            # rather than fail with "database is locked".
            await db.execute("PRAGMA busy_timeout=10000")
            await db.execute("PRAGMA foreign_keys=ON")
            # WAL with NORMAL stays consistent on power loss and saves an
            # fsync per command on the reply path.
            await db.execute("PRAGMA synchronous=NORMAL")
            # Inbox and outbox rows can hold decrypted text for a moment:
            # overwrite them on delete rather than leave them in free pages.
            await db.execute("PRAGMA secure_delete=ON")
            store = cls(db)
            await store.migrate(migrations)
        except sqlite3.OperationalError as exc:
            await db.close()
            if is_state_problem(exc):
                raise StateError(f"the bot's database {path} cannot be written: {exc}") from None
            raise
        except BaseException:
            # aiosqlite's thread would otherwise keep the process alive.
            await db.close()
            raise
        return store

    async def schema_version(self, namespace: str = FRAMEWORK) -> int:
        rows = await self._fetch(
            "SELECT COALESCE(MAX(version), 0) FROM applied_migrations WHERE namespace = ?",
            (namespace,),
        )
        return int(rows[0][0]) if rows else 0

    async def _adopt_old_bookkeeping(self) -> None:
        """Databases made before namespaces kept one series in schema_migrations."""
        if not await self._fetch(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        ):
            return
        async with self.transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO applied_migrations"
                " SELECT ?, version, description, applied_at FROM schema_migrations",
                (FRAMEWORK,),
            )
            await db.execute("DROP TABLE schema_migrations")

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        check_series(migrations)
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS applied_migrations ("
            " namespace TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL,"
            " applied_at REAL NOT NULL, PRIMARY KEY (namespace, version))"
        )
        await self._adopt_old_bookkeeping()
        current: dict[str, int] = {}
        for m in migrations:
            if m.namespace not in current:
                current[m.namespace] = await self.schema_version(m.namespace)
            if m.version <= current[m.namespace]:
                continue
            # Each migration and its bookkeeping row commit together, so a
            # crash leaves the database at a whole version.
            async with self.transaction() as db:
                for statement in filter(str.strip, m.sql.split(";")):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO applied_migrations VALUES (?, ?, ?, ?)",
                    (m.namespace, m.version, m.description, time.time()),
                )
            log.info(
                "database migrated",
                namespace=m.namespace,
                version=m.version,
                migration=m.description,
            )
