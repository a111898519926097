"""Secret files on disk and the bot's SQLite database."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bots.base.errors import SecretFileError, StateError
from bots.framework.actions import DeleteRecord, PutRecord
from bots.framework.secrets import ensure_secret, read_secret, write_secret
from bots.framework.storage import MIGRATIONS, Migration, Storage
from bots.framework.storage import migrations as opening
from bots.framework.trust.policy import Pin, SessionFlag


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- secrets ---


def test_written_secret_is_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "bot.password"
    write_secret(path, "correct horse")
    assert mode(path) == 0o600
    assert read_secret(path) == "correct horse"


def test_write_secret_accepts_bytes(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_secret(path, b"raw-bytes-value")
    assert path.read_bytes() == b"raw-bytes-value"


def test_write_secret_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "token"
    write_secret(path, "value123")
    assert read_secret(path) == "value123"


def test_overwriting_a_too_open_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old")
    path.chmod(0o644)
    write_secret(path, "new-value")
    assert mode(path) == 0o600
    assert read_secret(path) == "new-value"


def test_write_secret_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_secret(tmp_path / "token", "value123")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]


def test_write_secret_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_secret(tmp_path / "token", "value123")
    finally:
        os.umask(old)
    assert mode(tmp_path / "token") == 0o600


@pytest.mark.parametrize("too_open", [0o644, 0o640, 0o604, 0o660])
def test_read_secret_refuses_a_file_others_can_read(tmp_path: Path, too_open: int) -> None:
    path = tmp_path / "bot.password"
    path.write_text("correct horse")
    path.chmod(too_open)
    with pytest.raises(SecretFileError) as info:
        read_secret(path, what="bot password")
    message = str(info.value)
    assert message.startswith(f"bot password file {path} is readable by other users")
    assert f"mode {too_open:04o}" in message
    assert f"chmod 600 {path}" in message
    assert "correct horse" not in message


def test_read_secret_accepts_a_read_only_owner_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("value123")
    path.chmod(0o400)
    assert read_secret(path) == "value123"


def test_read_secret_strips_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write_secret(path, "value123\n")
    assert read_secret(path) == "value123"


@pytest.mark.parametrize("content", ["", "\n", "  \n\t"])
def test_read_secret_refuses_an_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "token"
    write_secret(path, content)
    with pytest.raises(SecretFileError, match="is empty"):
        read_secret(path, what="access token")


def test_read_secret_refuses_a_missing_file_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(SecretFileError) as info:
        read_secret(path, what="bot password")
    assert str(info.value) == f"bot password file {path} does not exist"


def test_secret_file_errors_exit_with_status_2() -> None:
    assert SecretFileError("x").exit_code == 2


def test_ensure_secret_generates_a_private_secret(tmp_path: Path) -> None:
    path = tmp_path / "pickle.key"
    value = ensure_secret(path)
    assert len(value) >= 32
    assert mode(path) == 0o600


def test_ensure_secret_is_stable_across_calls(tmp_path: Path) -> None:
    path = tmp_path / "pickle.key"
    assert ensure_secret(path) == ensure_secret(path)


def test_ensure_secret_differs_between_files(tmp_path: Path) -> None:
    assert ensure_secret(tmp_path / "a") != ensure_secret(tmp_path / "b")


def test_ensure_secret_keeps_an_existing_secret(tmp_path: Path) -> None:
    path = tmp_path / "log-salt"
    write_secret(path, "chosen-by-admin")
    assert ensure_secret(path) == "chosen-by-admin"


def test_ensure_secret_still_refuses_a_too_open_file(tmp_path: Path) -> None:
    path = tmp_path / "log-salt"
    path.write_text("chosen-by-admin")
    path.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        ensure_secret(path)


# --- storage ---


def applied(db_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT version, description, applied_at FROM applied_migrations"
            " WHERE namespace = 'framework' ORDER BY version"
        ).fetchall()


def tables(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "bot.db"


async def test_migrations_are_applied_in_order_with_descriptions(db_path: Path) -> None:
    store = await Storage.open(db_path)
    assert await store.schema_version() == MIGRATIONS[-1].version
    await store.close()
    rows = applied(db_path)
    assert [(v, d) for v, d, _ in rows] == [(m.version, m.description) for m in MIGRATIONS]
    assert [t for _, _, t in rows] == sorted(t for _, _, t in rows)


async def test_migrations_create_their_tables(db_path: Path) -> None:
    await (await Storage.open(db_path)).close()
    assert {"handled_events", "undecryptable_notified"} <= tables(db_path)


async def test_reopening_applies_nothing_new(db_path: Path) -> None:
    await (await Storage.open(db_path)).close()
    before = applied(db_path)
    store = await Storage.open(db_path)
    await store.close()
    assert applied(db_path) == before


async def test_new_migrations_are_applied_on_upgrade(db_path: Path) -> None:
    await (await Storage.open(db_path, MIGRATIONS[:1])).close()
    assert "undecryptable_notified" not in tables(db_path)
    first = applied(db_path)
    store = await Storage.open(db_path)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    assert applied(db_path)[:1] == first
    assert "undecryptable_notified" in tables(db_path)


BAD = Migration(
    len(MIGRATIONS) + 1,
    "half-done change",
    "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1)",
)


@pytest.fixture
def opened_connections(monkeypatch: pytest.MonkeyPatch) -> list[aiosqlite.Connection]:
    """Every connection Storage.open makes, so none outlives its test."""
    opened: list[aiosqlite.Connection] = []
    real_connect = aiosqlite.connect

    def spy(*args: Any, **kwargs: Any) -> aiosqlite.Connection:
        conn = real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(opening.aiosqlite, "connect", spy)
    return opened


async def _close_all(connections: list[aiosqlite.Connection]) -> list[aiosqlite.Connection]:
    """Close every connection; return those that were still open."""
    still_open = []
    for conn in connections:
        try:
            await conn.execute("SELECT 1")
        except ValueError:  # aiosqlite: "Connection closed"
            continue
        still_open.append(conn)
        await conn.close()
    return still_open


async def test_failed_migration_rolls_back_to_the_previous_version(
    db_path: Path, opened_connections: list[aiosqlite.Connection]
) -> None:
    await (await Storage.open(db_path)).close()
    try:
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            await Storage.open(db_path, (*MIGRATIONS, BAD))
    finally:
        await _close_all(opened_connections)
    assert [v for v, _, _ in applied(db_path)] == [m.version for m in MIGRATIONS]
    assert "half_done" not in tables(db_path)


async def test_database_still_opens_after_a_failed_migration(
    db_path: Path, opened_connections: list[aiosqlite.Connection]
) -> None:
    try:
        with pytest.raises(sqlite3.OperationalError):
            await Storage.open(db_path, (*MIGRATIONS, BAD))
    finally:
        await _close_all(opened_connections)
    store = await Storage.open(db_path)
    assert await store.schema_version() == MIGRATIONS[-1].version
    assert await store.claim_event("$after")
    await store.close()


async def test_failed_open_closes_its_connection(
    db_path: Path, opened_connections: list[aiosqlite.Connection]
) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await Storage.open(db_path, (*MIGRATIONS, BAD))
    assert await _close_all(opened_connections) == []


@pytest.mark.parametrize(
    "versions",
    [(2, 3), (1, 1), (2, 1), (1, 3, 2)],
    ids=["not-from-1", "repeat", "reversed", "unordered"],
)
async def test_badly_numbered_migrations_are_refused(
    db_path: Path,
    opened_connections: list[aiosqlite.Connection],
    versions: tuple[int, ...],
) -> None:
    migrations = [
        Migration(v, f"m{v}", f"CREATE TABLE t{v}_{i} (x)") for i, v in enumerate(versions)
    ]
    try:
        with pytest.raises(ValueError, match="numbered 1, 2, 3"):
            await Storage.open(db_path, migrations)
    finally:
        await _close_all(opened_connections)


async def test_migrations_with_a_gap_are_refused(
    db_path: Path, opened_connections: list[aiosqlite.Connection]
) -> None:
    migrations = [
        Migration(1, "one", "CREATE TABLE a (x)"),
        Migration(3, "three", "CREATE TABLE c (x)"),
    ]
    try:
        with pytest.raises(ValueError, match="without gaps"):
            await Storage.open(db_path, migrations)
    finally:
        await _close_all(opened_connections)


async def test_claim_event_is_true_only_once(db_path: Path) -> None:
    store = await Storage.open(db_path)
    try:
        assert await store.claim_event("$one") is True
        assert await store.claim_event("$one") is False
        assert await store.claim_event("$two") is True
    finally:
        await store.close()


async def test_claimed_event_stays_claimed_after_reopening(db_path: Path) -> None:
    store = await Storage.open(db_path)
    assert await store.claim_event("$one")
    await store.close()
    store = await Storage.open(db_path)
    try:
        assert await store.claim_event("$one") is False
    finally:
        await store.close()


async def test_forgotten_events_can_be_claimed_again(db_path: Path) -> None:
    store = await Storage.open(db_path)
    try:
        assert await store.claim_event("$one")
        await store.forget_handled_before(float("inf"))
        assert await store.claim_event("$one") is True
    finally:
        await store.close()


async def test_recent_events_are_not_forgotten(db_path: Path) -> None:
    store = await Storage.open(db_path)
    try:
        assert await store.claim_event("$one")
        await store.forget_handled_before(0.0)
        assert await store.claim_event("$one") is False
    finally:
        await store.close()


async def test_undecryptable_notice_is_recorded_once(db_path: Path) -> None:
    store = await Storage.open(db_path)
    try:
        assert await store.mark_undecryptable_notified("alice|session1") is True
        assert await store.mark_undecryptable_notified("alice|session1") is False
        assert await store.mark_undecryptable_notified("alice|session2") is True
    finally:
        await store.close()


async def test_undecryptable_notice_survives_reopening(db_path: Path) -> None:
    store = await Storage.open(db_path)
    assert await store.mark_undecryptable_notified("alice|session1")
    await store.close()
    store = await Storage.open(db_path)
    try:
        assert await store.mark_undecryptable_notified("alice|session1") is False
    finally:
        await store.close()


async def test_each_namespace_has_its_own_series(db_path: Path) -> None:
    feature = Migration(1, "a feature's first table", "CREATE TABLE f_one (x)", "feature")
    store = await Storage.open(db_path, (*MIGRATIONS, feature))
    assert await store.schema_version("feature") == 1
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    assert "f_one" in tables(db_path)


async def test_a_feature_added_later_gets_its_migrations(db_path: Path) -> None:
    await (await Storage.open(db_path)).close()
    feature = Migration(1, "later", "CREATE TABLE later_one (x)", "later")
    store = await Storage.open(db_path, (*MIGRATIONS, feature))
    assert await store.schema_version("later") == 1
    await store.close()


async def test_a_database_from_before_namespaces_is_adopted(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as db:
        db.executescript(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL, applied_at REAL NOT NULL);"
            "INSERT INTO schema_migrations VALUES (1, 'old one', 1.0);"
            "INSERT INTO schema_migrations VALUES (2, 'old two', 2.0);"
            + MIGRATIONS[0].sql
            + MIGRATIONS[1].sql
        )
    store = await Storage.open(db_path)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    assert [d for _, d, _ in applied(db_path)][:2] == ["old one", "old two"]
    assert "schema_migrations" not in tables(db_path)


async def test_a_read_only_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can write to read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StateError, match="bot's database"):
            await Storage.open(folder / "bot.db")
    finally:
        folder.chmod(0o700)


async def test_a_full_disk_loses_nothing_already_received(db_path: Path) -> None:
    store = await Storage.open(db_path)
    first = [("$one", "!r:x", {"type": "m.room.message", "content": {"body": "hi"}}, True)]
    await store.receive(first, "token-1")
    # SQLite's page cap stands in for a full disk: same error, same path.
    async with store.db.execute("PRAGMA page_count") as cur:
        row = await cur.fetchone()
    assert row is not None
    await store.db.execute(f"PRAGMA max_page_count = {row[0]}")
    big = [
        (f"$big{i}", "!r:x", {"type": "m.room.message", "content": {"body": "x" * 4000}}, True)
        for i in range(50)
    ]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        await store.receive(big, "token-2")
    # The batch was all or nothing: the position did not move past it.
    assert await store.sync_token() == "token-1"
    assert [i.event_id for i in await store.pending_inbox()] == ["$one"]
    await store.close()


async def test_pins_are_read_and_stored_in_bulk(db_path: Path) -> None:
    store = await Storage.open(db_path)
    users = [f"@u{i}:example.org" for i in range(700)]  # past SQLite's variable limit
    await store.store_pins({u: Pin(f"key-{u}") for u in users})
    await store.store_pins({users[0]: Pin("key-0", reported="new-key")})
    pins = await store.pins_of([*users, "@stranger:example.org"])
    await store.close()
    assert len(pins) == 700
    assert pins[users[0]] == Pin("key-0", reported="new-key")
    assert pins[users[1]] == Pin(f"key-{users[1]}")


async def test_messages_awaiting_keys_survive_a_restart_until_released(db_path: Path) -> None:
    store = await Storage.open(db_path)
    source = {"type": "m.room.encrypted", "event_id": "$e", "content": {"ciphertext": "x"}}
    await store.receive([], "token-1", [("$e", "!r:example.org", source)])
    await store.close()
    store = await Storage.open(db_path)
    assert await store.awaiting_keys() == [("$e", "!r:example.org", source)]
    assert await store.sync_token() == "token-1"
    await store.release_awaiting("$e")
    assert await store.awaiting_keys() == []
    await store.close()


async def test_first_shareable_flag_of_a_session_stands(db_path: Path) -> None:
    store = await Storage.open(db_path)
    room = "!r:example.org"
    await store.record_sessions([SessionFlag(room, "curve", "s1", True)])
    await store.record_sessions(
        [SessionFlag(room, "curve", "s1", False), SessionFlag(room, "curve", "s2", False)]
    )
    assert await store.shareable_sessions(room) == {("curve", "s1")}
    await store.close()


async def test_a_features_records_are_written_with_its_decision_or_not_at_all(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Storage.open(db_path)
    source = {"type": "m.room.message", "event_id": "$e", "content": {}}
    (item,) = await store.receive([("$e", "!r:example.org", source, True)], "t")
    put = PutRecord("tally", "count", "@a:example.org", {"count": 1})

    async def broken(*_: object) -> list[object]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_enqueue", broken)
    with pytest.raises(sqlite3.OperationalError):
        await store.settle(item, [("event:$e/0", "!r:example.org", {"type": "Reply"})], [put])
    assert await store.record("tally", "count", "@a:example.org") is None
    assert [i.event_id for i in await store.pending_inbox()] == ["$e"]

    monkeypatch.undo()
    await store.settle(item, [], [put])
    assert await store.record("tally", "count", "@a:example.org") == {"count": 1}
    assert await store.records("tally", "count") == {"@a:example.org": {"count": 1}}
    await store.settle(item, [], [DeleteRecord("tally", "count", "@a:example.org")])
    assert await store.records("tally", "count") == {}
    await store.close()
