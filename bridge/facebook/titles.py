"""What Facebook's English titles say: "Alice posted in Carers UK." (who
posted, and where) and "Bob replied to Alicja's post." (whose post or
comment a comment answers). Pure.

Read with plain string operations, in time linear in the title. A title is
the export's own text, as long as a member's file makes it, and the
regular expressions these replace, ``^(.+?) (?:replied to|commented on)
(.+?)'s (\\w+)\\.?$`` and ``^(.+?) (?:posted|wrote|shared .{1,40}?|updated
.{1,40}?) in (.+?)\\.?$``, backtracked over every split of a long title
that does not match: 50 kB of "a replied to " took two seconds, and each
doubling four times as long. The functions here give what those
expressions gave, title for title (the unit tests compare them).
"""

from __future__ import annotations

import re

_REPLIED = (" replied to ", " commented on ")
_OWN = tuple(f"{verb}{whose} own " for verb in _REPLIED for whose in ("his", "her", "their"))
_POSTED = (" posted in ", " wrote in ")
# "Alice shared a link in Carers UK.": the verb, up to 40 characters, " in ".
_SHARED = (" shared ", " updated ")
_SHARED_WHAT = 40
_IN = " in "
_WORD = re.compile(r"\w*")  # a run of word characters, matched from where it starts


def _one_line(title: str) -> str | None:
    """The title without its final newline; None if it has more lines (no
    part of a title spans lines, as ``.`` did not)."""
    line = title.removesuffix("\n")
    return None if "\n" in line else line


def _last_word(text: str) -> int:
    """Where the run of word characters ending *text* starts."""
    # Matched on the reversed text, from its start: one pass, where a search
    # for r"\w+$" would retry at every character.
    return len(text) - _WORD.match(text[::-1]).end()  # type: ignore[union-attr]


def _split_at_verb(text: str, verbs: tuple[str, ...]) -> tuple[str, str] | None:
    """(before, after) the earliest of *verbs* with text on both sides."""
    best: tuple[str, str] | None = None
    at_best = len(text)
    for verb in verbs:
        # The first occurrence is the one: a later one ends later, so if
        # nothing follows the first, nothing follows any.
        at = text.find(verb, 1)
        if 0 < at < at_best and at + len(verb) < len(text):
            best, at_best = (text[:at], text[at + len(verb) :]), at
    return best


def replied_to(title: str) -> tuple[str, str] | None:
    """(whose, what) a comment's title says it answers: ("Alicja", "post");
    for "Bob replied to his own post.", Bob's."""
    line = _one_line(title)
    if line is None:
        return None
    body = line.removesuffix(".")
    start = _last_word(body)
    what = body[start:]
    if not what:
        return None
    head = body[:start]
    if head.endswith("'s "):
        split = _split_at_verb(head[:-3], _REPLIED)
        if split is not None:
            return split[1], what.lower()
    for own in _OWN:
        if head.endswith(own) and len(head) > len(own):
            return head[: -len(own)], what.lower()
    return None


def _group(rest: str) -> str:
    """The group's name: what follows " in ", without its final full stop."""
    return rest[:-1] if len(rest) > 1 and rest.endswith(".") else rest


def posted_in(title: str) -> tuple[str, str] | None:
    """(author, group) of a post's title: ("Alice", "Carers UK")."""
    line = _one_line(title)
    if line is None:
        return None
    found: tuple[int, str, str] | None = None  # (where the verb is, author, group)
    split = _split_at_verb(line, _POSTED)
    if split is not None:
        found = (len(split[0]), split[0], _group(split[1]))
    for verb in _SHARED:
        at = line.find(verb, 1)
        while at > 0 and (found is None or at < found[0]):
            # The shortest "what" (1 to 40 characters) that " in " and a
            # group follow, as the lazy .{1,40}? took it.
            after = at + len(verb)
            into = line.find(_IN, after + 1, after + _SHARED_WHAT + len(_IN))
            if into >= 0 and into + len(_IN) < len(line):
                found = (at, line[:at], _group(line[into + len(_IN) :]))
                break
            at = line.find(verb, at + 1)
    return None if found is None else (found[1], found[2])
