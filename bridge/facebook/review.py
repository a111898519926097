"""The review file: what would be carried over, one line per post or comment,
for the organiser to read and prune before anything is imported. Pure.

People who did not hand in an export are never named: wherever their name
appears in the text (it is known from titles like "Bob replied to Dana's
post.", or from the roster, which may list anyone), it becomes a
pseudonym, the same one throughout. Contributors
appear as the roster says, or under a pseudonym if it says nothing; an
excluded contributor's own posts and comments are left out, and their
name is treated like a non-contributor's.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bots.base.errors import InputError
from bridge.facebook.merge import Placed, target_of
from bridge.facebook.roster import Roster


@dataclass(frozen=True)
class MediaLine:
    export: str  # the ZIP it is in
    uri: str  # its path inside the export
    kind: str


@dataclass(frozen=True)
class Line:
    id: str
    kind: str
    ts: int
    when: str  # the same instant, readable
    author: str  # as shown: a Matrix ID or a pseudonym
    text: str
    thread_of: str | None
    confidence: float
    media: tuple[MediaLine, ...] = ()
    links: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class Summary:
    contributors: tuple[str, ...]  # as shown
    first: int | None
    last: int | None
    posts: int
    comments: int
    media: int
    media_bytes: int
    unplaced: int  # comments kept as ordinary messages
    missing_media: int
    pseudonymised: int  # people named in text who did not contribute
    groups_seen: Mapping[str, int] = field(default_factory=dict)


class Pseudonyms:
    """ "Member 1", "Member 2"... in order of first appearance."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def of(self, name: str) -> str:
        return self._names.setdefault(name, f"Member {len(self._names) + 1}")

    def __len__(self) -> int:
        return len(self._names)


def _scrubber(replacements: Mapping[str, str]) -> Callable[[str], str]:
    if not replacements:
        return lambda text: text
    # Longest first, whole words only: "Ann" must not eat "Anna".
    names = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?!\w)")
    return lambda text: pattern.sub(lambda m: replacements[m.group(1)], text)


def review(
    placed: Sequence[Placed],
    roster: Roster,
    contributors: Iterable[str],
    group: str,
    media_size: Callable[[str, str], int | None],
) -> tuple[list[Line], Summary]:
    """The review lines for the Facebook group *group*, and their summary.
    *media_size* (export, uri) is the size of a media file, None if the
    export lacks it."""
    pseudonyms = Pseudonyms()
    handed_in = set(contributors)
    kept_people = {
        name for name in handed_in if not ((e := roster.get(name)) is not None and e.exclude)
    }
    shown: dict[str, str] = {}
    for name in sorted(kept_people):
        entry = roster.get(name)
        shown[name] = entry.shown_as if entry and entry.shown_as else pseudonyms.of(name)
    groups_seen = Counter(p.item.group or "?" for p in placed)
    in_group = [p for p in placed if p.item.group == group]
    # Everyone named who is not shown as themselves gets a pseudonym.
    named = {t[0] for p in in_group if p.item.kind == "comment" and (t := target_of(p.item))}
    # The roster may list people who did not contribute, so that their
    # names are caught in the text too (a name in free text is known only
    # from a title or from the roster).
    listed = set(roster.entries)
    others = sorted((named | handed_in | listed) - kept_people)

    def pseudonym(name: str) -> str:
        entry = roster.get(name)
        own = entry.shown_as if entry and entry.shown_as and not entry.matrix_id else None
        return own or pseudonyms.of(name)

    replacements = {n: pseudonym(n) for n in others} | {
        n: s for n, s in shown.items() if not s.startswith("@")
    }
    scrub = _scrubber(replacements)
    dropped: set[str] = set()
    lines: list[Line] = []
    missing = size = count = 0
    for p in in_group:
        item = p.item
        if item.author not in kept_people:
            dropped.add(p.id)
            continue
        parent = p.parent if p.parent not in dropped else None
        media = []
        for m in item.media:
            found = media_size(p.sourced.export, m.uri)
            if found is None:
                missing += 1
                continue
            size += found
            count += 1
            media.append(MediaLine(p.sourced.export, m.uri, m.kind))
        lines.append(
            Line(
                p.id,
                item.kind,
                item.ts,
                datetime.fromtimestamp(item.ts, UTC).isoformat(),
                shown[item.author],
                scrub(item.text),
                parent,
                round(p.confidence if parent or item.kind == "post" else 0.0, 2),
                tuple(media),
                item.links,
            )
        )
    comments = [line for line in lines if line.kind == "comment"]
    summary = Summary(
        contributors=tuple(sorted({line.author for line in lines})),
        first=lines[0].ts if lines else None,
        last=lines[-1].ts if lines else None,
        posts=len(lines) - len(comments),
        comments=len(comments),
        media=count,
        media_bytes=size,
        unplaced=sum(1 for c in comments if c.thread_of is None),
        missing_media=missing,
        pseudonymised=len(others),
        groups_seen=dict(groups_seen),
    )
    return lines, summary


def read_review(text: Iterable[str], source: str, first: int = 1) -> list[Line]:
    """The review file's item lines as the organiser left them (lines may be
    deleted); *first*: the line number of the first of *text*."""
    out: list[Line] = []
    for number, raw in enumerate(text, start=first):
        if not raw.strip():
            continue
        try:
            v: dict[str, Any] = json.loads(raw)
            media = tuple(MediaLine(**m) for m in v.pop("media", []))
            out.append(Line(**{**v, "media": media, "links": tuple(v.get("links", ()))}))
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{source}:{number}: not a review line ({exc})") from None
    return out
