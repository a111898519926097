"""``hearth import facebook plan``: members' exports into a review file.

Reads every export, merges them, places comments, applies the roster and
writes the review file (0600: it holds what members wrote) with a first
line saying which Hearth group and which Facebook group it is for. Prints
a summary in which people who did not contribute appear only as a count.

An export that cannot be read, damaged, of the wrong kind or hostile
(past a bound of :mod:`bridge.facebook.archive`), is left out whole and
named in the summary with the reason: one member's bad file must not cost
the others their history, and half of an export read up to a broken entry
is not what its member handed in. Only when no export can be read does
the plan fail.
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
from bridge.facebook.merge import Sourced, placing
from bridge.facebook.reader import stream
from bridge.facebook.review import Reviewer, Summary, named_in
from bridge.facebook.roster import Roster, read_roster
from bridge.facebook.staging import Staging

HEADER = "hearth_review"


@dataclass(frozen=True)
class Planned:
    group: str
    facebook_group: str
    lines: int  # written to the review file
    summary: Summary
    left_out: tuple[str, ...] = ()  # why each export not read was left out


def _stage(path: Path, staged: Staging) -> tuple[Export, str]:
    """Read one export into *staged*: (the export, still open for its
    media, and whose it is)."""
    export = Export(path)
    try:
        owner, items = stream(export)
        if owner is None:
            raise InputError(
                f"{path}: cannot tell whose export this is (no profile, and no comments to "
                "read a name from); ask them to export with 'Profile information' ticked"
            )
        staged.add(Sourced(i, str(path)) for i in items)
    except BaseException:
        export.close()
        raise
    return export, owner


def plan_import(
    exports: Sequence[Path],
    group: str,
    roster_path: Path | None,
    facebook_group: str | None,
    out: Path,
) -> Planned:
    """Read *exports*, merge them and write the review file *out*.

    One export is in memory at a time: what they hold is staged on disk
    (:mod:`bridge.facebook.staging`) and the review is written as it is
    made, so planning a long history takes no more memory than a short one.
    """
    roster = read_roster(roster_path) if roster_path else Roster({})
    owners: list[str] = []
    left_out: list[str] = []
    with contextlib.ExitStack() as stack:
        staged = stack.enter_context(Staging())
        opened: dict[str, Export] = {}
        for p in exports:
            try:
                export, owner = _stage(p, staged)
            except InputError as exc:
                staged.drop(str(p))
                left_out.append(str(exc))
                continue
            stack.callback(export.close)
            opened[str(p)] = export
            owners.append(owner)
        if not opened:
            raise InputError("no export could be read:\n" + "\n".join(left_out))
        seen = staged.groups()
        groups = sorted(g for g in seen if g != "?")
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

        reviewer = Reviewer(roster, owners, named_in(staged.comment_titles(chosen)), size)
        header = {HEADER: 1, "group": group, "facebook_group": chosen}
        count = 0
        # Written beside it and moved into place when whole: a failure half
        # way leaves an earlier review (and the organiser's edits) as it was.
        partial = out.with_name(f".{out.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                f.write(json.dumps(header, ensure_ascii=False) + "\n")
                for line in reviewer.lines(placing(staged.in_order(chosen))):
                    f.write(line.to_json() + "\n")
                    count += 1
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    return Planned(group, chosen, count, reviewer.summary(seen), tuple(left_out))


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
        *(
            [
                f"Left out, nothing of them in the review: {len(planned.left_out)} "
                f"export{'s' if len(planned.left_out) > 1 else ''}"
            ]
            + [f"  {why}" for why in planned.left_out]
            if planned.left_out
            else []
        ),
    ]
