"""Every export's posts and comments, kept on disk while a plan is made.

Planning must see all of a group's history at once: the same post comes
in several members' exports, and a comment is placed by looking back at
the posts before it. Held in memory, that grows with the group. Staged
in SQLite instead, one export is in memory at a time: its items are
written here, deduplicated by their content ID (the first export's copy
kept, as :func:`bridge.facebook.merge.dedupe` does), and read back one
by one in time order. The database lives in a private temporary folder
(0700) and is deleted with it: it holds what members wrote.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from types import TracebackType

from bridge.facebook.merge import Sourced, item_id
from bridge.facebook.reader import Item, MediaRef

_SCHEMA = """
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    is_comment INTEGER NOT NULL,
    grp TEXT,
    title TEXT NOT NULL,
    export TEXT NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX items_in_order ON items (grp, ts, is_comment, id);
"""
_BATCH = 1000  # items per write


def _item_json(item: Item) -> str:
    return json.dumps(asdict(item), ensure_ascii=False)


def _item(text: str) -> Item:
    v = json.loads(text)
    media = tuple(MediaRef(**m) for m in v.pop("media"))
    return Item(**{**v, "media": media, "links": tuple(v["links"])})


class Staging:
    """Use as a context manager; :meth:`add` each export's items, then read."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="hearth-plan-")
        self._db = sqlite3.connect(Path(self._dir.name) / "items.db")
        # A scratch copy: nothing here must survive a crash.
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._dir.cleanup()

    def add(self, found: Iterable[Sourced]) -> None:
        """Stage *found*, read a batch at a time. Reading an export can fail
        half way (a damaged or hostile entry): the failure comes while a
        batch is read, never inside a write, so :meth:`drop` can take back
        what was written before it (with the journal off, SQLite has no
        rollback to do that)."""
        rows = (
            (
                item_id(s.item),
                s.item.ts,
                s.item.kind != "post",
                s.item.group,
                s.item.title,
                s.export,
                _item_json(s.item),
            )
            for s in found
        )
        while batch := list(itertools.islice(rows, _BATCH)):
            with self._db:
                self._db.executemany(
                    "INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?, ?)", batch
                )

    def drop(self, export: str) -> None:
        """Every item first staged from *export* taken back: it is left out.
        (An item that an earlier export holds too stays, as that export's.)"""
        with self._db:
            self._db.execute("DELETE FROM items WHERE export = ?", (export,))

    def groups(self) -> Counter[str]:
        """How many items each Facebook group has ("?" for none)."""
        rows = self._db.execute("SELECT coalesce(grp, '?'), count(*) FROM items GROUP BY grp")
        return Counter(dict(rows.fetchall()))

    def comment_titles(self, group: str) -> Iterator[str]:
        rows = self._db.execute("SELECT title FROM items WHERE grp = ? AND is_comment", (group,))
        for (title,) in rows:
            yield title

    def in_order(self, group: str) -> Iterator[Sourced]:
        """The group's items, once each, in time order (posts before
        comments made the same second)."""
        rows = self._db.execute(
            "SELECT item, export FROM items WHERE grp = ? ORDER BY ts, is_comment, id", (group,)
        )
        for text, export in rows:
            yield Sourced(_item(text), export)
