"""The bot's SQLite database: numbered, described migrations applied on start.

The framework and each feature keep their own migration series, named by a
namespace, so two features can never collide on a version number.

Besides the framework's bookkeeping (handled events, undecryptable notices)
this holds the two queues that make the bot lose nothing across a crash:

- the *inbox*: events written, with the sync position that follows them, in
  one transaction, before anything acts on them;
- the *outbox*: the actions a handler decided, written in the same
  transaction that marks its event handled, before any of them is performed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import peewee

from bots.base.errors import StateError
from bots.framework.actions import PutRecord, RecordWrite
from bots.framework.logging import get_logger
from bots.framework.scheduler import SCHEMA as SCHEDULER_SCHEMA
from bots.framework.trust.policy import Pin, SessionFlag

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


@dataclass(frozen=True)
class InboxItem:
    seq: int
    event_id: str
    room_id: str
    source: dict[str, Any]
    encrypted: bool


@dataclass(frozen=True)
class OutboxItem:
    id: int
    key: str
    room_id: str | None
    action: dict[str, Any]


# SQLite's words for a folder or disk that cannot take writes, as opposed to
# a bug in a query or a migration.
_STATE_PROBLEMS = ("readonly", "read-only", "disk", "full", "unable to open", "locked")


def is_state_problem(exc: Exception) -> bool:
    return any(word in str(exc).lower() for word in _STATE_PROBLEMS)


def as_state_error(exc: BaseException) -> StateError | None:
    """The StateError a failure amounts to when the state folder is at fault
    (read-only, full, locked); None for anything else."""
    if isinstance(exc, StateError):
        return exc
    # nio's crypto store is SQLite through peewee, which re-raises SQLite's
    # error as its own class with the same message.
    if isinstance(exc, sqlite3.OperationalError | peewee.OperationalError) and is_state_problem(
        exc
    ):
        return StateError(f"the bot's state cannot be written: {exc}")
    return None


def check_series(migrations: Sequence[Migration]) -> None:
    by_namespace: dict[str, list[int]] = {}
    for m in migrations:
        by_namespace.setdefault(m.namespace, []).append(m.version)
    for namespace, versions in by_namespace.items():
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(
                f"migrations of {namespace!r} must be numbered 1, 2, 3... without gaps or repeats"
            )


class Storage:
    """A thin async wrapper; every query the framework makes lives here."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Room workers share this connection: a transaction must not
        # interleave with another coroutine's statements.
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN ... COMMIT, rolled back on any error, one at a time."""
        async with self._lock:
            # IMMEDIATE takes the write lock up front: a deferred BEGIN that
            # reads first fails at once ("database is locked") if the
            # scheduler's connection commits in between.
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read, taken under the same lock as transactions: a SELECT whose
        cursor is still open when another coroutine's BEGIN IMMEDIATE runs
        on this connection turns that into an upgrade of a stale read, which
        SQLite refuses at once ("database is locked") instead of waiting."""
        async with self._lock, self._db.execute(sql, args) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A feature's read of its own tables (see FeatureTables)."""
        return await self._fetch(sql, args)

    async def write(self, sql: str, args: Sequence[Any] = ()) -> int:
        """A feature's one-statement write to its own tables, committed."""
        async with self.transaction() as db:
            cur = await db.execute(sql, args)
        return cur.rowcount

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection, for features' handlers to read their own tables."""
        return self._db

    @classmethod
    async def open(cls, path: Path, migrations: Sequence[Migration] = MIGRATIONS) -> Storage:
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

    async def close(self) -> None:
        await self._db.close()

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

    # --- outbox ---

    async def _enqueue(
        self, actions: Sequence[tuple[str, str | None, dict[str, Any]]]
    ) -> list[OutboxItem]:
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

    # --- features' records ---

    async def _write_records(self, writes: Sequence[RecordWrite]) -> None:
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

    # --- direct messages ---

    async def direct_room(self, user_id: str) -> str | None:
        rows = await self._fetch("SELECT room_id FROM direct_rooms WHERE user_id = ?", (user_id,))
        return str(rows[0][0]) if rows else None

    # --- pinned identities ---

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

    # --- shareable room key sessions ---

    async def record_sessions(self, sessions: Sequence[SessionFlag]) -> None:
        """Whether each received (or own) Megolm session may go to later members.
        The first record of a session stands: a re-sent key cannot widen it."""
        if not sessions:
            return
        now = time.time()
        async with self.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO shareable_sessions VALUES (?, ?, ?, ?, ?)",
                [(s.room_id, s.sender_key, s.session_id, int(s.shareable), now) for s in sessions],
            )

    async def shareable_sessions(self, room_id: str) -> set[tuple[str, str]]:
        """(sender key, session id) of the room's sessions marked shareable."""
        rows = await self._fetch(
            "SELECT sender_key, session_id FROM shareable_sessions"
            " WHERE room_id = ? AND shareable = 1",
            (room_id,),
        )
        return {(str(r[0]), str(r[1])) for r in rows}

    async def direct_rooms(self) -> dict[str, str]:
        """Every DM room the bot keeps, with the member it is with."""
        rows = await self._fetch("SELECT room_id, user_id FROM direct_rooms")
        return {str(r[0]): str(r[1]) for r in rows}

    async def remember_direct_room(self, user_id: str, room_id: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO direct_rooms VALUES (?, ?, ?) ON CONFLICT (user_id)"
                " DO UPDATE SET room_id = excluded.room_id, created_at = excluded.created_at",
                (user_id, room_id, time.time()),
            )
