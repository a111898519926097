"""``hearth import facebook plan``: members' exports into a review file.

Reads every export, merges them, places comments, applies the roster and
writes the review file (0600: it holds what members wrote) with a first
line saying which Hearth group and which Facebook group it is for. Prints
a summary in which people who did not contribute appear only as a count.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bots.base.errors import InputError
from bridge.facebook.archive import Export
from bridge.facebook.merge import Sourced, dedupe, place
from bridge.facebook.reader import read
from bridge.facebook.review import Line, Summary, review
from bridge.facebook.roster import Roster, read_roster

HEADER = "hearth_review"


@dataclass(frozen=True)
class Planned:
    group: str
    facebook_group: str
    lines: list[Line]
    summary: Summary


def plan_import(
    exports: Sequence[Path], group: str, roster_path: Path | None, facebook_group: str | None
) -> Planned:
    roster = read_roster(roster_path) if roster_path else Roster({})
    found: list[Sourced] = []
    owners: list[str] = []
    with contextlib.ExitStack() as stack:
        opened = {str(p): stack.enter_context(Export(p)) for p in exports}
        for path, export in opened.items():
            contents = read(export)
            if contents.owner is None:
                raise InputError(
                    f"{path}: cannot tell whose export this is (no profile, and no comments to "
                    "read a name from); ask them to export with 'Profile information' ticked"
                )
            owners.append(contents.owner)
            found += (Sourced(i, path) for i in contents.items)
        placed = place(dedupe(found))
        groups = sorted({p.item.group for p in placed if p.item.group})
        chosen = facebook_group or (groups[0] if len(groups) == 1 else None)
        if chosen is None or chosen not in groups:
            listed = "; ".join(groups) or "none"
            raise InputError(
                f"say which Facebook group to carry over with --facebook-group; "
                f"the exports hold posts from: {listed}"
            )

        def size(export: str, uri: str) -> int | None:
            e = opened[export]
            name = e.media(uri)
            return e.size(name) if name else None

        lines, summary = review(placed, roster, owners, chosen, size)
    return Planned(group, chosen, lines, summary)


def write_review(planned: Planned, out: Path) -> None:
    header = {HEADER: 1, "group": planned.group, "facebook_group": planned.facebook_group}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(json.dumps(header, ensure_ascii=False) + "\n")
        for line in planned.lines:
            f.write(line.to_json() + "\n")


def read_header(first: str, source: str) -> dict[str, Any]:
    try:
        header = json.loads(first)
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get(HEADER) != 1:
        raise InputError(
            f"{source}:1: not a review file from `hearth import facebook plan` "
            "(its first line names the group; keep it)"
        )
    return header


def describe(planned: Planned) -> list[str]:
    s = planned.summary

    def day(ts: int | None) -> str:
        return datetime.fromtimestamp(ts, UTC).date().isoformat() if ts is not None else "-"

    return [
        f"Facebook group: {planned.facebook_group} → Hearth group {planned.group}",
        f"Contributors: {len(s.contributors)} ({', '.join(s.contributors)})",
        f"Dates: {day(s.first)} to {day(s.last)}",
        f"Posts: {s.posts}; comments: {s.comments} "
        f"({s.unplaced} kept as messages: their post could not be found for sure)",
        f"Media: {s.media} files, {s.media_bytes / 1024**2:.1f} MB"
        + (f"; {s.missing_media} named but missing from the exports" if s.missing_media else ""),
        f"People named in the text who did not contribute: {s.pseudonymised} (shown as pseudonyms)",
    ]
