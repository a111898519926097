"""Many members' exports made into one history: duplicates dropped, and each
comment placed under the post it answers, with how sure that is.

An export gives posts no IDs and comments no parent: only a title like
"Bob replied to Alicja's post." and the time. A comment goes under the
latest post by the person its title names, in the same group, before it;
several candidates close together, or a long gap, make that less sure,
and below :data:`THRESHOLD` the comment is kept as an ordinary message
rather than put in a thread it may not belong to. Pure.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from bridge.facebook.reader import Item
from bridge.facebook.titles import replied_to

THRESHOLD = 0.5
# Candidates this close before the latest one make the choice ambiguous.
CLOSE_S = 48 * 3600
WEEK_S, MONTH_S = 7 * 86400, 30 * 86400


def item_id(item: Item) -> str:
    """The same post from two exports has the same ID."""
    text = "\x1f".join([item.kind, item.author, item.group or "", str(item.ts), item.text])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Sourced:
    """An item and the export it came from (for its media)."""

    item: Item
    export: str

    @property
    def id(self) -> str:
        return item_id(self.item)


@dataclass(frozen=True)
class Placed:
    sourced: Sourced
    parent: str | None  # the post it is a thread reply to
    confidence: float  # how sure the placement is (1.0 for a post)

    @property
    def item(self) -> Item:
        return self.sourced.item

    @property
    def id(self) -> str:
        return self.sourced.id


def dedupe(found: Iterable[Sourced]) -> list[Sourced]:
    """Each item once, from the first export that holds it, in time order."""
    seen: dict[str, Sourced] = {}
    for s in found:
        seen.setdefault(s.id, s)
    return sorted(seen.values(), key=lambda s: (s.item.ts, s.item.kind != "post", s.id))


def target_of(comment: Item) -> tuple[str, str] | None:
    """(whose, what) a comment's title says it answers: ("Alicja", "post")."""
    return target_of_title(comment.title)


def target_of_title(title: str) -> tuple[str, str] | None:
    return replied_to(title)


def place(items: Iterable[Sourced]) -> list[Placed]:
    """Every item with its thread parent and confidence, in time order."""
    return list(placing(items))


def placing(items: Iterable[Sourced]) -> Iterator[Placed]:
    """:func:`place`, one item at a time, in memory that does not grow with
    the history.

    *items* come in time order (:func:`dedupe`), so each author's posts and
    placed comments so far are kept in queues that only grow at the end,
    and only the last :data:`CLOSE_S` of each is ever looked at: older
    entries are dropped as newer ones come.
    """
    # (author, group, kind) → (time, post ID) of each recent post, or of
    # each recent comment the post it was placed under.
    seen: dict[tuple[str, str | None, str], deque[tuple[int, str]]] = {}

    def note(key: tuple[str, str | None, str], ts: int, post_id: str) -> None:
        recent = seen.setdefault(key, deque())
        recent.append((ts, post_id))
        while ts - recent[0][0] > CLOSE_S:
            recent.popleft()

    for s in items:
        item = s.item
        if item.kind == "post":
            note((item.author, item.group, "post"), item.ts, s.id)
            yield Placed(s, None, 1.0)
            continue
        parent, confidence = _parent(item, seen)
        kept = parent if confidence >= THRESHOLD else None
        if kept is not None:
            note((item.author, item.group, "comment"), item.ts, kept)
        yield Placed(s, kept, confidence)


def _parent(
    comment: Item, seen: Mapping[tuple[str, str | None, str], Sequence[tuple[int, str]]]
) -> tuple[str | None, float]:
    target = target_of(comment)
    if target is None:
        return None, 0.0
    whose, what = target
    # A reply to a comment goes under the same post as the comment it answers.
    kind = "comment" if what == "comment" else "post"
    candidates = seen.get((whose, comment.group, kind))
    if not candidates:
        return None, 0.0
    latest_ts = candidates[-1][0]
    close: set[str] = set()
    latest = ""
    for ts, pid in reversed(candidates):
        if latest_ts - ts > CLOSE_S:
            break
        close.add(pid)
        if ts == latest_ts:
            latest = max(latest, pid)
    gap = comment.ts - latest_ts
    timing = 1.0 if gap <= WEEK_S else 0.7 if gap <= MONTH_S else 0.3
    return latest, timing / len(close)
