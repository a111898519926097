"""The one connection every store shares, and the lock that keeps one
coroutine's transaction from interleaving with another's statements."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite
import peewee

from bots.base.errors import StateError

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


class StoreBase:
    """What every store stands on: the connection, transactions and reads.

    Each concern's store (inbox, outbox, records...) is a mixin over this
    class, and `Storage` composes them over one connection, as Synapse
    composes its `DataStore`.
    """

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

    async def close(self) -> None:
        await self._db.close()
