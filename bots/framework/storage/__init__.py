"""The bot's SQLite database: one small store per concern over one connection.

Besides the framework's bookkeeping (handled events, undecryptable notices)
this holds the two queues that make the bot lose nothing across a crash:

- the *inbox* (`inbox.py`): events written, with the sync position that
  follows them, in one transaction, before anything acts on them;
- the *outbox* (`outbox.py`): the actions a handler decided, written in the
  same transaction that marks its event handled (`InboxStore.settle`),
  before any of them is performed.

Features' records (`records.py`), members' DM rooms (`direct_rooms.py`),
pinned identities (`pins.py`) and shareable room key sessions
(`sessions.py`) each have their own store; `migrations.py` opens the
connection and applies the numbered migrations. `Storage` composes them all
over the one connection, as Synapse composes its `DataStore`.
"""

from __future__ import annotations

from bots.framework.storage.base import as_state_error, is_state_problem
from bots.framework.storage.direct_rooms import DirectRoomStore
from bots.framework.storage.inbox import InboxItem, InboxStore
from bots.framework.storage.migrations import (
    FRAMEWORK,
    MIGRATIONS,
    Migration,
    MigrationStore,
    check_series,
)
from bots.framework.storage.outbox import OutboxItem
from bots.framework.storage.pins import PinStore
from bots.framework.storage.sessions import SessionStore

__all__ = [
    "FRAMEWORK",
    "MIGRATIONS",
    "InboxItem",
    "Migration",
    "OutboxItem",
    "Storage",
    "as_state_error",
    "check_series",
    "is_state_problem",
]


class Storage(InboxStore, DirectRoomStore, PinStore, SessionStore, MigrationStore):
    """Every query the framework makes, over one connection and one lock.

    `InboxStore` brings the outbox and the records with it: `settle` writes
    all three in one transaction.
    """
