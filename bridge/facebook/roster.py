"""The organiser's roster: how each contributor appears in the archive.

A CSV with a header row and three columns::

    facebook_name,shown_as,exclude
    Alicja Wróbel,@alicja:example.org,
    Bob Nowak,Bob N.,
    Carol Smith,,yes

``shown_as`` is a Matrix ID (the archive credits that account) or a
pseudonym; empty means a pseudonym is made up. ``exclude`` (yes/true/1)
leaves everything that person wrote out of the archive, and their name
out of everyone else's text.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bots.base.errors import InputError
from bots.framework.ids import is_user_id

COLUMNS = ("facebook_name", "shown_as", "exclude")
YES = frozenset({"yes", "y", "true", "1", "x"})
NO = frozenset({"", "no", "n", "false", "0"})


@dataclass(frozen=True)
class Entry:
    facebook_name: str
    shown_as: str  # a Matrix ID, a pseudonym, or "" (one is made up)
    exclude: bool

    @property
    def matrix_id(self) -> str | None:
        return self.shown_as if is_user_id(self.shown_as) else None


@dataclass(frozen=True)
class Roster:
    entries: dict[str, Entry]

    def get(self, name: str) -> Entry | None:
        return self.entries.get(name)


def read_roster(path: Path) -> Roster:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the roster ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise InputError(f"{path}: the roster is empty; its first line names the columns")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InputError(
            f"{path}:1: unknown column {unknown[0]!r}; the columns are {', '.join(COLUMNS)}"
        )
    if "facebook_name" not in header:
        raise InputError(f"{path}:1: the roster needs a facebook_name column")
    entries: dict[str, Entry] = {}
    lines: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise InputError(f"{path}:{number}: more cells than columns")
        cell = dict(zip(header, (c.strip() for c in row), strict=False))
        name = cell.get("facebook_name", "")
        if not name:
            raise InputError(f"{path}:{number}: facebook_name is empty")
        if name in entries:
            raise InputError(
                f"{path}:{number}: {name!r} is named twice (lines {lines[name]} and {number})"
            )
        flag = cell.get("exclude", "").lower()
        if flag not in YES | NO:
            raise InputError(f"{path}:{number}: exclude must be yes or no, not {flag!r}")
        shown = cell.get("shown_as", "")
        if shown.startswith("@") and not is_user_id(shown):
            raise InputError(
                f"{path}:{number}: {shown!r} is not a Matrix ID (like @someone:example.org)"
            )
        entries[name] = Entry(name, shown, flag in YES)
        lines[name] = number
    return Roster(entries)
