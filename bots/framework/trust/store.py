"""nio's crypto store, written in rounds: the layer around nio for key
sharing at community scale.

nio saves its account and then the session for every Olm session it
creates, and the session again for every message it encrypts with one,
each in a transaction of its own, on a database without a write-ahead
log. Sharing a room key with 500 new devices is then some 1,500 commits.
:class:`RoundStore` is nio's default store with two changes:

- the database runs in WAL mode with ``synchronous=NORMAL`` (a commit is
  an append, made durable at checkpoints; a crash loses at most the last
  commits, never the database);
- inside :meth:`RoundStore.round`, saves of the account and of Olm
  sessions are held in memory and written together, in one transaction,
  when the round ends. A session saved twice in the round is written
  once, as it is last; the account once. The sessions go in multi-row
  statements: nio's own save looks the account up and writes one row,
  two statements a session, and for 1,000 sessions that held the event
  loop for most of a second.

A round must end before anything it created or advanced is sent: a peer
must never receive a message from a session the bot has not saved, or a
restart would leave that peer's session wedged. :class:`KeySharer` ends
its round before it sends (and ends it when anything fails, so what was
advanced in memory is kept).

Written for matrix-nio 0.26.0 (constraints.txt):
``tests/unit/test_round_store.py`` fails on another version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from nio.store import DefaultStore
from nio.store.models import OlmSessions
from peewee import SqliteDatabase

NIO_VERSION = "0.26.0"
# Six values a row, well under SQLite's limit on a statement's variables.
ROWS_PER_STATEMENT = 100


class RoundStore(DefaultStore):
    def __post_init__(self) -> None:
        self._held_sessions: dict[tuple[str, str], tuple[str, Any]] | None = None
        self._held_account: Any = None
        self.commits = 0  # rounds written, for the tests and the bench
        super().__post_init__()

    def _create_database(self) -> SqliteDatabase:
        return SqliteDatabase(
            self.database_path,
            pragmas={
                "foreign_keys": 1,
                "secure_delete": 1,
                "journal_mode": "wal",
                "synchronous": 1,  # NORMAL
            },
        )

    @contextlib.contextmanager
    def round(self) -> Iterator[None]:
        """Hold the account's and Olm sessions' saves until the block ends,
        then write them in one transaction (also when the block raises)."""
        if self._held_sessions is not None:  # already in a round: part of it
            yield
            return
        self._held_sessions = {}
        try:
            yield
        finally:
            sessions, account = self._held_sessions, self._held_account
            self._held_sessions, self._held_account = None, None
            self._write(sessions, account)

    def _write(self, sessions: dict[tuple[str, str], tuple[str, Any]], account: Any) -> None:
        if not sessions and account is None:
            return
        with self.database.bind_ctx(self.models), self.database.atomic():
            if account is not None:
                super().save_account(account)
            if sessions:
                owner = self._get_account()
                assert owner is not None, "sessions saved before the account"
                rows = [
                    {
                        "account": owner,
                        "sender_key": curve_key,
                        "session": session.pickle(self.pickle_key),
                        "session_id": session.id,
                        "creation_time": session.creation_time,
                        "last_usage_date": session.use_time,
                    }
                    for curve_key, session in sessions.values()
                ]
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    OlmSessions.replace_many(rows[start : start + ROWS_PER_STATEMENT]).execute()
        self.commits += 1

    def save_session(self, curve_key: str, session: Any) -> None:
        if self._held_sessions is None:
            super().save_session(curve_key, session)
            return
        self._held_sessions[(curve_key, session.id)] = (curve_key, session)

    def save_account(self, account: Any) -> None:
        if self._held_sessions is None:
            super().save_account(account)
            return
        self._held_account = account


@contextlib.contextmanager
def saving_in_rounds(store: Any) -> Iterator[None]:
    """A round of *store* if it is a :class:`RoundStore`; otherwise saves
    go as nio makes them."""
    if isinstance(store, RoundStore):
        with store.round():
            yield
    else:
        yield
