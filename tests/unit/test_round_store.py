"""The crypto store that saves Olm sessions a round at a time (the layer
around nio's store), on real vodozemac sessions and a real SQLite file."""

from __future__ import annotations

import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest
from nio.crypto import OlmAccount, OutboundSession

from bots.framework.trust.store import NIO_VERSION, RoundStore, saving_in_rounds

USER, DEVICE = "@bot:example.org", "BOTDEVICE"


def store(tmp_path: Path) -> RoundStore:
    s = RoundStore(USER, DEVICE, str(tmp_path), "pickle key")
    s.save_account(OlmAccount())
    return s


def sessions(tmp_path: Path, n: int) -> list[tuple[str, OutboundSession]]:
    ours = OlmAccount()
    out = []
    for _ in range(n):
        peer = OlmAccount()
        peer.generate_one_time_keys(1)
        otk = next(iter(peer.one_time_keys["curve25519"].values()))
        key = peer.identity_keys["curve25519"]
        out.append((key, OutboundSession(ours, key, otk)))
    return out


def rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / f"{USER}_{DEVICE}.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM olmsessions").fetchone()[0])


def test_the_nio_it_was_written_for_is_installed() -> None:
    # The store overrides nio's save_session and save_account: another nio
    # may save elsewhere, and rounds would then silently stop batching.
    assert version("matrix-nio") == NIO_VERSION


def test_the_database_keeps_a_write_ahead_log(tmp_path: Path) -> None:
    store(tmp_path)
    with sqlite3.connect(tmp_path / f"{USER}_{DEVICE}.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_round_writes_its_sessions_together_when_it_ends(tmp_path: Path) -> None:
    s = store(tmp_path)
    made = sessions(tmp_path, 250)  # more than one multi-row statement's worth
    with s.round():
        for key, session in made:
            s.save_account(OlmAccount())  # as nio's create_session does, each time
            s.save_session(key, session)
            s.save_session(key, session)  # and again after encrypting
        assert rows(tmp_path) == 0  # nothing written yet
    assert rows(tmp_path) == 250
    assert s.commits == 1
    loaded = s.load_sessions()
    assert all(loaded.get(key).id == session.id for key, session in made)


def test_a_round_that_fails_still_keeps_what_it_advanced(tmp_path: Path) -> None:
    s = store(tmp_path)
    made = sessions(tmp_path, 3)

    def interrupted_round() -> None:
        with s.round():
            for key, session in made:
                s.save_session(key, session)
            raise RuntimeError("the homeserver went away")

    with pytest.raises(RuntimeError):
        interrupted_round()
    assert rows(tmp_path) == 3


def test_outside_a_round_saves_go_at_once_and_rounds_nest(tmp_path: Path) -> None:
    s = store(tmp_path)
    (first, second) = sessions(tmp_path, 2)
    s.save_session(*first)
    assert rows(tmp_path) == 1
    with saving_in_rounds(s), saving_in_rounds(s):
        s.save_session(*second)
        assert rows(tmp_path) == 1
    assert rows(tmp_path) == 2
    assert s.commits == 1
