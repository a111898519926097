"""JSON from a member's export, read a piece at a time and within bounds.

An export is a file a member hands in, so it is read as if written by an
attacker: however large or deep an entry is, reading it takes memory that
does not grow with it, and no step recurses. The parser (ijson's yajl2_c)
sees the bytes through :class:`_Guarded`, which refuses a token longer than
:attr:`Bounds.value_bytes` before the parser has buffered it; the events
that come out are built into values here, iteratively, one list element at
a time, with their nesting depth and size counted as they grow. Every
string, keys too, has its mojibake repaired as it is built.

What breaks a bound raises :class:`Refused`, whose message says which bound
and never quotes the content; the caller names the archive and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson

from bridge.facebook.mojibake import repair

MiB = 1024**2


@dataclass(frozen=True)
class Bounds:
    """What one JSON entry of an export may hold, far beyond what Facebook
    writes (the numbers are in each field's comment), so that a real export
    never meets them and a hostile one costs little."""

    # Facebook's deepest path is about 12 levels: group_posts_v2 / a post /
    # attachments / [] / data / [] / media / media_metadata /
    # photo_metadata / exif_data / [] / {}.
    depth: int = 64
    # One string or number. The longest Facebook writes is a post's text:
    # 63,206 characters, at most 24 bytes each as the export escapes them
    # (a 4-byte character as four \u00XX escapes), about 1.5 MB.
    value_bytes: int = 4 * MiB
    # One element of a list (a post, a comment; or the whole profile), its
    # values counted with their keys and ends: a post with a hundred photos
    # and their metadata has about 3,000.
    item_values: int = 100_000
    # ... and the characters of its strings and keys together: the longest
    # post's text is 63,206.
    item_chars: int = 8 * MiB


class Refused(Exception):
    """The JSON breaks a bound (or ends wrongly); says which, not what."""


class NotFound(Exception):
    """The JSON is not an object with the key asked for."""


_BACKSLASHES = re.compile(rb"\\*")
# Escaped quotes looked past before a chunk is read the slow, sure way.
_TRIES = 8


class _Guarded:
    """A binary stream handed on unchanged, but refused once the bytes since
    the last string delimiter (an unescaped ``"``) exceed *limit* at the end
    of a chunk read, before that chunk reaches the parser.

    Between two delimiters lies one string, or what separates strings
    (punctuation, white space, numbers, ``true``...), so no token the
    parser must hold whole is longer than *limit*, and a huge string or
    number is refused before it is in memory. Only each chunk's last
    delimiter is needed: found from the end, a quote is one when the run
    of backslashes before it is even (a run always starts a fresh escape:
    ``\\\\"`` ends a string, ``\\"`` does not). A chunk with many
    escaped quotes at its end is read the slow, sure way instead, every
    escape blanked in two passes in C, so that none costs a step of Python.
    """

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._end = 0  # bytes handed on so far
        self._last = 0  # where the last delimiter ended (the start counts as one)
        self._tail = 0  # backslashes ending the bytes so far

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if not data:
            return data
        back = data[::-1]
        quote = self._last_quote(data, back)
        if quote >= 0:
            self._last = self._end + quote + 1
        tail = _BACKSLASHES.match(back).end()  # type: ignore[union-attr]
        self._tail = self._tail + tail if tail == len(data) else tail
        self._end += len(data)
        if self._end - self._last > self._limit:
            raise Refused(
                f"holds a single value longer than {_size(self._limit)} "
                "(the longest Facebook writes, a post's text, is under 2 MB)"
            )
        return data

    def _last_quote(self, data: bytes, back: bytes) -> int:
        """Where in *data* (*back* reversed) its last delimiter is; -1 for none."""
        at = back.find(b'"')
        for _ in range(_TRIES):
            if at < 0:
                return -1
            after = _BACKSLASHES.match(back, at + 1).end()  # type: ignore[union-attr]
            run = after - at - 1 + (self._tail if after == len(data) else 0)
            if run % 2 == 0:
                return len(data) - 1 - at
            at = back.find(b'"', after)
        # Blank every escape, pairing from the chunk's start (whose first
        # byte ends an escape when the bytes before end in an odd run):
        # escaped backslashes first, left to right as JSON pairs them, and
        # then every backslash left escapes what follows it.
        skip = self._tail % 2
        plain = data[skip:].replace(b"\\\\", b"__").replace(b'\\"', b"__")
        quote = plain.rfind(b'"')
        return quote + skip if quote >= 0 else -1


_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})


class _Events:
    """The parser's events, with the depth of nesting counted."""

    def __init__(self, raw: IO[bytes], bounds: Bounds) -> None:
        self._events = ijson.basic_parse(_Guarded(raw, bounds.value_bytes), use_float=True)
        self.bounds = bounds
        self.depth = 0

    def _pull(self) -> tuple[str, Any] | None:
        try:
            event, value = next(self._events)
        except StopIteration:
            return None
        if event in _OPEN:
            self.depth += 1
            if self.depth > self.bounds.depth:
                raise _too_deep(self.bounds)
        elif event in _CLOSE:
            self.depth -= 1
        return event, value

    def next(self) -> tuple[str, Any]:
        pulled = self._pull()
        if pulled is None:  # the parser says so first; this is a backstop
            raise Refused("ends before its JSON does")
        return pulled

    def skip(self, event: str) -> None:
        """The rest of a value that began with *event*, read and dropped."""
        if event in _OPEN:
            outside = self.depth - 1
            while self.depth > outside:
                self.next()

    def build(self, event: str, value: Any) -> Any:
        """The value that began with *event*, built (strings repaired),
        within :attr:`Bounds.item_values` and :attr:`Bounds.item_chars`.
        One loop with its counts in locals: it runs for every value of an
        export."""
        bounds = self.bounds
        if event not in _OPEN:
            if event == "string" and len(value) > bounds.item_chars:
                raise _too_long(bounds)
            return repair(value) if event == "string" else value
        root: list[Any] | dict[str, Any] = [] if event == "start_array" else {}
        stack = [root]
        keys = [""]  # the key the next value of each open object goes under
        pull = self._events.__next__
        depth, values, chars = self.depth, 1, 0
        while True:
            try:
                event, value = pull()
            except StopIteration:
                raise Refused("ends before its JSON does") from None
            values += 1
            if values > bounds.item_values:
                raise Refused(
                    f"has an entry of more than {bounds.item_values} values "
                    "(a post with a hundred photos has about 3,000)"
                )
            if event == "string" or event == "map_key":
                chars += len(value)
                if chars > bounds.item_chars:
                    raise _too_long(bounds)
                if not value.isascii():
                    value = repair(value)
                if event == "map_key":
                    keys[-1] = value
                    continue
            elif event in _CLOSE:
                depth -= 1
                stack.pop()
                keys.pop()
                if not stack:
                    self.depth = depth
                    return root
                continue
            elif event in _OPEN:
                depth += 1
                if depth > bounds.depth:
                    raise _too_deep(bounds)
                value = {} if event == "start_map" else []
            top = stack[-1]
            if isinstance(top, list):
                top.append(value)
            else:
                top[keys[-1]] = value
            if event in _OPEN:
                stack.append(value)
                keys.append("")

    def finish(self) -> None:
        """Read to the end, so that what follows the value is checked too."""
        while self._pull() is not None:
            pass


def _too_deep(bounds: Bounds) -> Refused:
    return Refused(
        f"is nested deeper than {bounds.depth} levels (Facebook's own files nest about 12)"
    )


def _too_long(bounds: Bounds) -> Refused:
    return Refused(
        f"has an entry of more than {_size(bounds.item_chars, 'characters')} "
        "(Facebook's longest post is 63,206)"
    )


def _size(n: int, unit: str = "bytes") -> str:
    """4 MiB, 8 Mi characters; 100 bytes."""
    if n % MiB:
        return f"{n} {unit}"
    return f"{n // MiB} MiB" if unit == "bytes" else f"{n // MiB} Mi {unit}"


def _top_keys(events: _Events) -> Iterator[tuple[str, str, Any]]:
    """(key, first event, its value) of each member of the top-level
    object; the caller reads or skips each member's value before the next."""
    event, _ = events.next()
    if event != "start_map":
        raise NotFound
    while True:
        event, key = events.next()
        if event == "end_map":
            return
        first, value = events.next()
        yield key, first, value


def list_items(raw: IO[bytes], key: str, bounds: Bounds) -> Iterator[Any]:
    """Each element of the list under *key* in the top-level object, built,
    one at a time; :class:`NotFound` (after the whole file is read) if
    there is no such list. Everything else in the file is read and dropped."""
    events = _Events(raw, bounds)
    found = False
    for name, first, value in _top_keys(events):
        if name == key and first == "start_array":
            found = True
            while True:
                event, value = events.next()
                if event == "end_array":
                    break
                yield events.build(event, value)
        else:
            events.skip(first)
    events.finish()
    if not found:
        raise NotFound


def value_at(raw: IO[bytes], key: str, bounds: Bounds) -> Any:
    """The value under *key* in the top-level object, built as one list
    element would be; None without it. Reading stops there."""
    events = _Events(raw, bounds)
    try:
        for name, first, value in _top_keys(events):
            if name == key:
                return events.build(first, value)
            events.skip(first)
    except NotFound:
        return None
    return None
