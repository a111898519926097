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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bots.base.errors import InputError
from bridge.facebook.merge import Placed, target_of_title
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


class Reviewer:
    """Review lines for the Facebook group *group*, one at a time, and their
    summary once all are out.

    *named*: everyone the group's comment titles name ("Bob replied to
    Dana's post." names Dana), known before the first line so that a name
    is scrubbed from the text wherever it first appears. *media_size*
    (export, uri) is the size of a media file, None if the export lacks it.
    """

    def __init__(
        self,
        roster: Roster,
        contributors: Iterable[str],
        named: Iterable[str],
        media_size: Callable[[str, str], int | None],
    ) -> None:
        self.media_size = media_size
        pseudonyms = Pseudonyms()
        handed_in = set(contributors)
        self.kept_people = {
            name for name in handed_in if not ((e := roster.get(name)) is not None and e.exclude)
        }
        self.shown: dict[str, str] = {}
        for name in sorted(self.kept_people):
            entry = roster.get(name)
            self.shown[name] = entry.shown_as if entry and entry.shown_as else pseudonyms.of(name)
        # Everyone named who is not shown as themselves gets a pseudonym. The
        # roster may list people who did not contribute, so that their names
        # are caught in the text too (a name in free text is known only from
        # a title or from the roster).
        self.others = sorted((set(named) | handed_in | set(roster.entries)) - self.kept_people)

        def pseudonym(name: str) -> str:
            entry = roster.get(name)
            own = entry.shown_as if entry and entry.shown_as and not entry.matrix_id else None
            return own or pseudonyms.of(name)

        replacements = {n: pseudonym(n) for n in self.others} | {
            n: s for n, s in self.shown.items() if not s.startswith("@")
        }
        self.scrub = _scrubber(replacements)
        # IDs of posts left out (an excluded author's): their comments stand alone.
        self.dropped: set[str] = set()
        self.authors: set[str] = set()
        self.first: int | None = None
        self.last: int | None = None
        self.posts = self.comments = self.unplaced = 0
        self.missing = self.size = self.count = 0

    def lines(self, placed: Iterable[Placed]) -> Iterator[Line]:
        """*placed*: the group's items, in time order."""
        for p in placed:
            item = p.item
            if item.author not in self.kept_people:
                if item.kind == "post":
                    self.dropped.add(p.id)
                continue
            parent = p.parent if p.parent not in self.dropped else None
            media = []
            for m in item.media:
                found = self.media_size(p.sourced.export, m.uri)
                if found is None:
                    self.missing += 1
                    continue
                self.size += found
                self.count += 1
                media.append(MediaLine(p.sourced.export, m.uri, m.kind))
            line = Line(
                p.id,
                item.kind,
                item.ts,
                datetime.fromtimestamp(item.ts, UTC).isoformat(),
                self.shown[item.author],
                self.scrub(item.text),
                parent,
                round(p.confidence if parent or item.kind == "post" else 0.0, 2),
                tuple(media),
                item.links,
            )
            self.authors.add(line.author)
            self.first = line.ts if self.first is None else self.first
            self.last = line.ts
            if line.kind == "comment":
                self.comments += 1
                self.unplaced += line.thread_of is None
            else:
                self.posts += 1
            yield line

    def summary(self, groups_seen: Mapping[str, int]) -> Summary:
        return Summary(
            contributors=tuple(sorted(self.authors)),
            first=self.first,
            last=self.last,
            posts=self.posts,
            comments=self.comments,
            media=self.count,
            media_bytes=self.size,
            unplaced=self.unplaced,
            missing_media=self.missing,
            pseudonymised=len(self.others),
            groups_seen=dict(groups_seen),
        )


# No one's name is longer (Facebook's own limits are far shorter). A longer
# "name" in a title is an export's invention, and kept out of the scrubbing
# pattern: there each of its characters would cost a hundred bytes.
MAX_NAME = 200


def named_in(titles: Iterable[str]) -> set[str]:
    """Whom comment titles name: "Bob replied to Dana's post." names Dana."""
    return {t[0] for title in titles if (t := target_of_title(title)) and len(t[0]) <= MAX_NAME}


def review(
    placed: Sequence[Placed],
    roster: Roster,
    contributors: Iterable[str],
    group: str,
    media_size: Callable[[str, str], int | None],
) -> tuple[list[Line], Summary]:
    """All of :class:`Reviewer` at once, for histories already in memory."""
    in_group = [p for p in placed if p.item.group == group]
    named = named_in(p.item.title for p in in_group if p.item.kind == "comment")
    reviewer = Reviewer(roster, contributors, named, media_size)
    lines = list(reviewer.lines(in_group))
    return lines, reviewer.summary(Counter(p.item.group or "?" for p in placed))


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
