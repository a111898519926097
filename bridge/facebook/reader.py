"""What one member's export says: their posts and comments in groups, as
typed items, and the groups they joined. Pure but for the archive reads.

An export names people by display name only and gives posts no IDs; the
exporter is the author of every post in it (it holds only their own), so
their name is read from the profile, else from their comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bots.base.errors import InputError
from bridge.facebook.archive import Export
from bridge.facebook.titles import posted_in


@dataclass(frozen=True)
class MediaRef:
    """An attachment as the export lists it; only what the import needs is
    kept (never ``upload_ip``, ``taken_timestamp`` or places)."""

    uri: str
    kind: Literal["photo", "video", "file"]
    description: str = ""


@dataclass(frozen=True)
class Item:
    kind: Literal["post", "comment"]
    author: str
    group: str | None
    ts: int
    text: str
    title: str
    media: tuple[MediaRef, ...] = ()
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Membership:
    group: str
    ts: int


@dataclass(frozen=True)
class Contents:
    """One export, read: whose it is, what they wrote, where they belong."""

    owner: str | None
    items: tuple[Item, ...]
    memberships: tuple[Membership, ...]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# Times a post can have: from 1970 to the end of the year 9999, the last
# that Python's dates (the review file's, the archive's) can show.
LATEST = 253_402_300_799


def _time(value: Any) -> int | None:
    """A time in seconds, if *value* is one; None otherwise, as for a time
    missing: 1e300 or -9e15 would fail every date made from it."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return int(value) if 0 <= value <= LATEST else None


def attachments(entry: Mapping[str, Any]) -> tuple[tuple[MediaRef, ...], tuple[str, ...]]:
    media: list[MediaRef] = []
    links: list[str] = []
    for attachment in _list(entry.get("attachments")):
        for data in _list(_map(attachment).get("data")):
            d = _map(data)
            m = _map(d.get("media"))
            uri = _str(m.get("uri"))
            if uri:
                kind: Literal["photo", "video", "file"] = (
                    "video"
                    if "video_metadata" in _map(m.get("media_metadata")) or uri.endswith(".mp4")
                    else "photo"
                    if uri.lower().endswith((".jpg", ".jpeg", ".png", ".gif", ".webp"))
                    else "file"
                )
                media.append(MediaRef(uri, kind, _str(m.get("description"))))
            url = _str(_map(d.get("external_context")).get("url"))
            if url:
                links.append(url)
    return tuple(media), tuple(links)


POSTS_KEY, COMMENTS_KEY = "group_posts_v2", "group_comments_v2"


def posts(entries: Iterable[Any], owner: str | None) -> Iterator[Item]:
    for entry in entries:
        e = _map(entry)
        ts = _time(e.get("timestamp"))
        if ts is None:
            continue
        title = _str(e.get("title"))
        text = next(
            (_str(_map(d).get("post")) for d in _list(e.get("data")) if "post" in _map(d)), ""
        )
        # English titles: "Alice posted in Carers UK.", "Alice shared a link in Carers UK."
        found = posted_in(title)
        author = owner or (found[0] if found else "")
        media, links = attachments(e)
        yield Item("post", author, found[1] if found else None, ts, text, title, media, links)


def comments(entries: Iterable[Any]) -> Iterator[Item]:
    for entry in entries:
        e = _map(entry)
        title = _str(e.get("title"))
        media, links = attachments(e)
        for d in _list(e.get("data")):
            c = _map(_map(d).get("comment"))
            ts = _time(c.get("timestamp")) or _time(e.get("timestamp"))
            if ts is None:
                continue
            author, group = _str(c.get("author")), _str(c.get("group")) or None
            yield Item("comment", author, group, ts, _str(c.get("comment")), title, media, links)


MEMBERSHIPS_KEY = "groups_joined_v2"


def memberships(entries: Iterable[Any]) -> Iterator[Membership]:
    for entry in entries:
        e = _map(entry)
        ts = _time(e.get("timestamp"))
        for d in _list(e.get("data")):
            name = _str(_map(d).get("name"))
            if name and ts is not None:
                yield Membership(name, ts)


def stream(export: Export) -> tuple[str | None, Iterator[Item]]:
    """Whose export it is, and their posts and comments, read from the
    archive as they are used (one entry in memory at a time)."""
    if export.groups_dir is None:
        raise InputError(
            f"{export.path}: no groups folder: not a Facebook export in JSON, or one made "
            "without 'Groups' ticked"
        )
    owner = _owner(export)
    return owner, _items(export, owner)


def _owner(export: Export) -> str | None:
    """The profile's name; without a profile, the one author of the comments."""
    profile_file = export.profile_file()
    profile = export.read_value(profile_file, "profile_v2") if profile_file else None
    name = _str(_map(_map(profile).get("name")).get("full_name"))
    if name:
        return name
    authors = {i.author for i in _comments(export) if i.author}
    return authors.pop() if len(authors) == 1 else None


def _comments(export: Export) -> Iterator[Item]:
    name = export.comments_file()
    if name:
        yield from comments(export.read_list(name, COMMENTS_KEY, "group comments"))


def _items(export: Export, owner: str | None) -> Iterator[Item]:
    yield from _comments(export)
    name = export.posts_file()
    if name:
        yield from posts(export.read_list(name, POSTS_KEY, "group posts"), owner)


def read(export: Export) -> Contents:
    """Everything the import uses from one export, in memory, in time order."""
    owner, items = stream(export)
    found = sorted(items, key=lambda i: (i.ts, i.kind != "post"))
    membership_file = export.membership_file()
    joined = (
        list(memberships(export.read_list(membership_file, MEMBERSHIPS_KEY, "group memberships")))
        if membership_file
        else []
    )
    return Contents(owner, tuple(found), tuple(joined))
