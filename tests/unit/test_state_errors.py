"""A state folder that cannot be written is a StateError (exit 4), whichever
store found it: the bot's own database or nio's crypto store."""

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee
import pytest

from bots.base.errors import StateError
from bots.framework.storage import as_state_error


def fill(execute: Callable[[str], Any], *, cap: int) -> None:
    """Insert until the page cap gives SQLite's own "disk is full" error."""
    execute(f"PRAGMA max_page_count = {cap}")
    for _ in range(1000):
        execute("INSERT INTO t VALUES (randomblob(4000))")


def test_a_full_bot_database_is_a_state_error(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "bot.db")
    db.execute("CREATE TABLE t (b BLOB)")
    with pytest.raises(sqlite3.OperationalError) as caught:
        fill(db.execute, cap=8)
    error = as_state_error(caught.value)
    assert isinstance(error, StateError)
    assert "cannot be written" in str(error)


def test_a_full_crypto_store_is_a_state_error(tmp_path: Path) -> None:
    # nio's store is SQLite through peewee, which re-raises as its own class.
    db = peewee.SqliteDatabase(str(tmp_path / "crypto.db"))
    db.execute_sql("CREATE TABLE t (b BLOB)")
    with pytest.raises(peewee.OperationalError) as caught:
        fill(db.execute_sql, cap=8)
    error = as_state_error(caught.value)
    assert isinstance(error, StateError)
    assert "full" in str(error)


def test_other_database_errors_are_not_blamed_on_the_folder(tmp_path: Path) -> None:
    db = peewee.SqliteDatabase(str(tmp_path / "crypto.db"))
    with pytest.raises(peewee.OperationalError) as caught:
        db.execute_sql("SELECT * FROM no_such_table")
    assert as_state_error(caught.value) is None
    assert as_state_error(ValueError("disk")) is None
