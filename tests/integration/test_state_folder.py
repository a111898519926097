"""A bot whose state folder is on a read-only filesystem stops at once with
exit status 4 and a message naming the folder, and changes nothing in it.
(A full folder mid-run: tests/integration/test_platform.py.)"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bots.framework.secrets import write_secret

HEARTH = str(Path(sys.executable).with_name("hearth"))


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of the test's own; the test remounts it read-only."""
    folder = tmp_path / "state"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount here: {made.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def earlier_run(state: Path) -> None:
    """A database, as a bot that ran before leaves in its folder."""
    state.mkdir(mode=0o700)
    with contextlib.closing(sqlite3.connect(state / "bot.db")) as db, db:
        db.execute("CREATE TABLE kept (what TEXT)")
        db.execute("INSERT INTO kept VALUES ('a member was welcomed')")


def test_a_read_only_state_folder_stops_the_bot_clearly_and_changes_nothing(
    mounted: Path, tmp_path: Path
) -> None:
    state = mounted / "bot"
    earlier_run(state)
    before = digests(mounted)
    subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
    write_secret(tmp_path / "bot.password", "not used: the bot stops before logging in")
    config = tmp_path / "bot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "bot": {
                    "homeserver": "http://127.0.0.1:9",
                    "user_id": "@bot:localhost",
                    "password_file": str(tmp_path / "bot.password"),
                    "state_dir": str(state),
                }
            }
        )
    )
    run = subprocess.run(
        [HEARTH, "run", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 4, run.stderr
    assert f"cannot use the state folder {state}: Read-only file system" in run.stderr
    assert digests(mounted) == before
