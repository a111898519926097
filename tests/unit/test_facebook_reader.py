"""Reading members' Facebook exports: both layouts, the mojibake, and
hostile or wrong files refused with a clear reason. Archives are built by
the tests (tests/support/facebook_exports.py); nothing touches a network."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bots.base.errors import InputError
from bridge.facebook.archive import Export, Limits
from bridge.facebook.jsonstream import Bounds, Refused, list_items, value_at
from bridge.facebook.mojibake import repair
from bridge.facebook.reader import read
from tests.support.facebook_exports import (
    PROFILE_ENTRY,
    Blocks,
    Comment,
    FakeExport,
    Post,
    json_text,
    mojibake,
    photo,
    profile_json,
    write_zip,
)

GROUP = "Brain Tumour Support Zażółć"
POLISH = "Zażółć gęślą jaźń"
ARABIC = "مرحبا بكم في المجموعة"
EMOJI = "Thank you all 💙🙏"
ACTIVITY = "your_facebook_activity/groups/"


def alice(layout: str = "new", **kw: object) -> FakeExport:
    return FakeExport(
        owner="Alicja Wróbel",
        layout=layout,  # type: ignore[arg-type]
        posts=[
            Post(1_600_000_000, POLISH, GROUP, media=("your_facebook_activity/posts/media/a.jpg",)),
            Post(1_600_000_100, ARABIC, GROUP, link="https://example.org/x"),
            Post(1_600_000_200, "", GROUP),
        ],
        comments=[Comment(1_600_000_300, EMOJI, GROUP, "Bob Nowak")],
        joined=[(GROUP, 1_500_000_000)],
        files={"your_facebook_activity/posts/media/a.jpg": photo()},
        **kw,  # type: ignore[arg-type]
    )


def test_mojibake_is_repaired_only_where_the_repair_is_valid() -> None:
    for text in (POLISH, ARABIC, EMOJI, "Ünïcödé", "plain ASCII"):
        assert repair(mojibake(text)) == text
    # Already right, or not Latin-1 at all: left alone.
    assert repair("café") == "café"
    assert repair("💙") == "💙"
    assert repair("Ã") == "Ã"  # no valid UTF-8 behind it
    # Every string read from an export is repaired as it is parsed, keys too.
    raw = json.dumps({"k": {mojibake("ключ"): [mojibake("значение"), 3, None]}}).encode()
    assert value_at(io.BytesIO(raw), "k", Bounds()) == {"ключ": ["значение", 3, None]}


@pytest.mark.parametrize(("layout", "top"), [("new", "facebook-alicja"), ("old", ""), ("new", "")])
def test_both_layouts_read_the_same(tmp_path: Path, layout: str, top: str) -> None:
    path = alice(layout, top=top).write(tmp_path / "alice.zip")
    with Export(path) as export:
        contents = read(export)
        assert contents.owner == "Alicja Wróbel"
        kinds = [(i.kind, i.text) for i in contents.items]
        assert kinds == [("post", POLISH), ("post", ARABIC), ("post", ""), ("comment", EMOJI)]
        first = contents.items[0]
        assert first.author == "Alicja Wróbel"
        assert first.group == GROUP
        assert first.ts == 1_600_000_000
        (media,) = first.media
        assert media.kind == "photo"
        assert export.media(media.uri) is not None
        assert contents.items[1].links == ("https://example.org/x",)
        assert contents.items[3].group == GROUP
        assert [(m.group, m.ts) for m in contents.memberships] == [(GROUP, 1_500_000_000)]


def test_without_a_profile_the_owner_is_the_comments_author(tmp_path: Path) -> None:
    path = alice(profile=False).write(tmp_path / "alice.zip")
    with Export(path) as export:
        contents = read(export)
    assert contents.owner == "Alicja Wróbel"
    assert {i.author for i in contents.items} == {"Alicja Wróbel"}


def test_missing_media_is_found_missing(tmp_path: Path) -> None:
    export = alice()
    export.files = {}
    with Export(export.write(tmp_path / "alice.zip")) as e:
        item = read(e).items[0]
        assert e.media(item.media[0].uri) is None
        assert e.media("../../etc/passwd") is None


def zip_with(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def refused(path: Path, limits: Limits | None = None) -> str:
    with pytest.raises(InputError) as caught, Export(path, limits or Limits()) as e:
        read(e)
    message = str(caught.value)
    assert message.startswith(str(path))
    return message


def test_a_corrupt_zip_is_refused(tmp_path: Path) -> None:
    good = alice().write(tmp_path / "alice.zip").read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good[: len(good) // 2])
    assert "not a readable ZIP file" in refused(broken)


def test_a_zip_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    bomb = zip_with(
        tmp_path / "bomb.zip", {"groups/your_comments_in_groups.json": b"0" * 20_000_000}
    )
    assert "ZIP bomb" in refused(bomb)
    big = zip_with(tmp_path / "big.zip", {"groups/x.json": b"{}"})
    assert "larger than" in refused(big, Limits(json_bytes=1))


@pytest.mark.parametrize("name", ["/etc/cron.d/x", "../../x.json", "a/../../b.json", "C:/x.json"])
def test_entries_pointing_outside_are_refused(tmp_path: Path, name: str) -> None:
    path = zip_with(
        tmp_path / "evil.zip", {name: b"{}", "groups/your_comments_in_groups.json": b"{}"}
    )
    assert "points outside the archive" in refused(path)


def test_an_html_export_asks_for_json(tmp_path: Path) -> None:
    path = zip_with(
        tmp_path / "html.zip",
        {"index.html": b"<html>", "your_facebook_activity/groups/your_posts.html": b"<html>"},
    )
    assert "HTML export" in refused(path)
    assert "Format: JSON" in refused(path)


def test_a_json_file_of_the_wrong_kind_is_named(tmp_path: Path) -> None:
    path = zip_with(
        tmp_path / "wrong.zip",
        {
            "your_facebook_activity/groups/group_posts_and_comments.json": json.dumps(
                {"x": 1}
            ).encode()
        },
    )
    message = refused(path)
    assert "group_posts_and_comments.json" in message
    assert "expected Facebook's group posts" in message
    bad_json = zip_with(
        tmp_path / "bad.zip", {"your_facebook_activity/groups/your_comments_in_groups.json": b"{"}
    )
    assert "is not valid JSON" in refused(bad_json)
    unrelated = zip_with(tmp_path / "other.zip", {"notes.txt": b"hello"})
    assert "no groups folder" in refused(unrelated)


def test_a_lying_entry_fails_instead_of_filling_memory(tmp_path: Path) -> None:
    # An entry whose header declares less than it holds: zipfile stops at
    # the declared size and its CRC check fails.
    path = alice().write(tmp_path / "alice.zip")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo(
            "facebook-export/your_facebook_activity/groups/your_comments_in_groups.json"
        )
    assert info.file_size > 10
    # Corrupt one byte inside that entry's compressed data.
    offset = info.header_offset + 30 + len(info.filename) + 5
    data[offset] ^= 0xFF
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    message = refused(damaged)
    assert "damaged" in message or "not valid JSON" in message


# Hostile exports: JSON that is too deep or too large is refused, naming the
# archive and the entry, in work and memory that do not grow with it.

MiB = 2**20
COMMENTS = "facebook-export/your_facebook_activity/groups/your_comments_in_groups.json"
POSTS = "facebook-export/your_facebook_activity/groups/group_posts_and_comments.json"


def export_with(path: Path, **entries: bytes | Blocks) -> Path:
    """An export of Mallory's with a profile and no comments, and *entries*
    (comments=, posts=, profile=) as given."""
    names = {"comments": COMMENTS, "posts": POSTS, "profile": PROFILE_ENTRY}
    files: dict[str, bytes | Blocks] = {
        PROFILE_ENTRY: profile_json("Mallory"),
        COMMENTS: b'{"group_comments_v2": []}',
    }
    files |= {names[k]: v for k, v in entries.items()}
    return write_zip(path, files)


def comment_json(
    text: str = "hello", title: str = "Mallory replied to Bob's post."
) -> dict[str, Any]:
    return {
        "timestamp": 1_600_000_000,
        "title": title,
        "data": [{"comment": {"timestamp": 1_600_000_000, "comment": text, "group": GROUP}}],
    }


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("entry", "content"),
    [
        # In a comment, a hundred thousand levels deep: 200 kB.
        ("comments", b'{"group_comments_v2": [' + deep(100_000) + b"]}"),
        # Under a key the reader skips, and in the profile, read as one value.
        ("posts", b'{"other": ' + deep(100_000) + b', "group_posts_v2": []}'),
        ("profile", b'{"profile_v2": {"name": ' + deep(100_000) + b"}}"),
    ],
)
def test_deep_nesting_is_refused_naming_the_entry(
    tmp_path: Path, entry: str, content: bytes
) -> None:
    path = export_with(tmp_path / "deep.zip", **{entry: content})
    message = refused(path)
    assert "profile_information.json" in message if entry == "profile" else "groups/" in message
    assert "is nested deeper than 64 levels" in message


def test_nesting_as_deep_as_allowed_is_read(tmp_path: Path) -> None:
    # The list is two levels down, each comment three: 61 more fit in it.
    nested: Any = "deep"
    for _ in range(61):
        nested = [nested]
    comment = comment_json() | {"extra": nested}
    path = export_with(
        tmp_path / "ok.zip", comments=json.dumps({"group_comments_v2": [comment]}).encode()
    )
    with Export(path) as e:
        assert [i.text for i in read(e).items] == ["hello"]
    comment["extra"] = [nested]
    path = export_with(
        tmp_path / "deep.zip", comments=json.dumps({"group_comments_v2": [comment]}).encode()
    )
    assert "nested deeper than 64" in refused(path)


def test_a_huge_value_is_refused_after_reading_a_bound_of_it(tmp_path: Path) -> None:
    """A comment of 256 MiB (passing the ZIP bomb check: it deflates 73 to
    1) is refused once 4 MiB of it have been read, not loaded."""
    head = b'{"group_comments_v2": [{"timestamp": 1, "data": [{"comment": {"comment": "'
    tail = b'"}}]}]}'
    size = 256 * 2**20
    text = json_text(size - len(head) - len(tail))
    path = export_with(tmp_path / "huge.zip", comments=[(head, 1), *text, (tail, 1)])
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(COMMENTS).file_size == size
    message = refused(path)
    assert f"'{COMMENTS}' holds a single value longer than 4 MiB" in message


class Endless:
    """*head*, then *filler* as long as it is read, up to *cap* bytes (so
    that a reader that does not stop fails the test, and fast), counting
    the bytes read."""

    def __init__(self, head: bytes, filler: bytes, cap: int) -> None:
        self.pending, self.filler, self.cap, self.given = head, filler, cap, 0

    def read(self, size: int = -1) -> bytes:
        if self.given >= self.cap:
            return b""
        while len(self.pending) < size:
            self.pending += self.filler * (size // len(self.filler) + 1)
        out, self.pending = self.pending[:size], self.pending[size:]
        self.given += len(out)
        return out


@pytest.mark.parametrize(
    ("head", "filler", "why", "read_at_most"),
    [
        # One string, one number, white space: refused past 4 MiB.
        (b'{"k": ["', b"words " * 100, "a single value longer than 4 MiB", 4 * MiB + 64 * 1024),
        (b'{"k": [', b"1" * 100, "a single value longer than 4 MiB", 4 * MiB + 64 * 1024),
        (b'{"k": [', b" " * 100, "a single value longer than 4 MiB", 4 * MiB + 64 * 1024),
        # Escapes, even a string of nothing but escaped quotes, end no string.
        (b'{"k": ["', b'\\"' * 100, "a single value longer than 4 MiB", 4 * MiB + 64 * 1024),
        (b'{"k": ["', b"\\\\" * 100, "a single value longer than 4 MiB", 4 * MiB + 64 * 1024),
        (
            b'{"k": ["',
            b"\\u00c5\\u0082" * 100,
            "a single value longer than 4 MiB",
            4 * MiB + 64 * 1024,
        ),
        # One comment of endless values, or of endless text in short strings.
        (b'{"k": [[', b"1, " * 100, "an entry of more than 100000 values", 400 * 1024),
        (b'{"k": [["', b"w" * 1000 + b'", "', "an entry of more than 8 Mi characters", 9 * MiB),
        # Endless nesting, inside the list or under a key that is skipped.
        (b'{"k": [', b"[" * 100, "nested deeper than 64 levels", 64 * 1024),
        (b'{"other": ', b'{"a": ' * 100, "nested deeper than 64 levels", 64 * 1024),
    ],
)
def test_reading_stops_at_a_bound_in_bounded_work(
    head: bytes, filler: bytes, why: str, read_at_most: int
) -> None:
    source = Endless(head, filler, cap=read_at_most + 64 * 1024)
    with pytest.raises(Refused, match=why):
        list(list_items(source, "k", Bounds()))
    assert source.given <= read_at_most


class Trickle:
    """*data* a few bytes at a time: every way a chunk can end."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.at = data, step, 0

    def read(self, size: int = -1) -> bytes:
        out = self.data[self.at : self.at + (self.step if size < 0 else min(self.step, size))]
        self.at += len(out)
        return out


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 64])
def test_strings_up_to_the_bound_are_read_however_they_are_split(step: int) -> None:
    bounds = Bounds(value_bytes=100)
    # Each string at most 100 bytes as JSON writes it: escaped quotes and
    # backslashes must not be taken for a string's end.
    fits = ['a\\"b' * 16, "\\" * 50, '"' * 50, "x" * 100, mojibake("żółć") * 2, '\\\\"' * 16]
    raw = json.dumps({"k": fits, "other": [1.5, True, None]}).encode()
    assert list(list_items(Trickle(raw, step), "k", bounds)) == [
        *fits[:4],
        "żółć" * 2,
        fits[5],
    ]
    for longer in ("y" * 101, "\\" * 51, '"' * 51, '\\"' * 34):
        raw = json.dumps({"k": [longer]}).encode()
        with pytest.raises(Refused, match="longer than"):
            list(list_items(Trickle(raw, 1), "k", bounds))


def test_entries_past_their_bounds_are_refused(tmp_path: Path) -> None:
    photos = [{"data": [{"media": {"uri": f"p/{n}.jpg"}} for n in range(200)]}]
    post = {"timestamp": 1, "title": f"Mallory posted in {GROUP}.", "attachments": photos}
    posts = json.dumps({"group_posts_v2": [post]}).encode()
    path = export_with(tmp_path / "many.zip", posts=posts)
    with Export(path) as e:  # about 1,400 values: read
        assert len(read(e).items[0].media) == 200
    small = Limits(json=Bounds(item_values=500))
    assert f"'{POSTS}' has an entry of more than 500 values" in refused(path, small)
    small = Limits(export_json_bytes=len(posts))
    assert "expand to more than" in refused(path, small)


def test_a_number_past_what_json_holds_is_invalid(tmp_path: Path) -> None:
    comments = b'{"group_comments_v2": [{"timestamp": 1' + b"0" * 5000 + b"}]}"
    path = export_with(tmp_path / "big.zip", comments=comments)
    assert f"'{COMMENTS}' is not valid JSON" in refused(path)


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    """Two names for one compressed stream: the way a ZIP bomb makes a
    small file expand many times over."""
    path = export_with(tmp_path / "ok.zip", comments=b'{"group_comments_v2": []}')
    data = bytearray(path.read_bytes())
    # Point the second central directory record at the first local header.
    second = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)
    data[second + 42 : second + 46] = struct.pack("<I", 0)
    path.write_bytes(bytes(data))
    assert "its entries overlap (a ZIP bomb?)" in refused(path)


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = alice().write(tmp_path / "alice.zip")
    assert "entries, more than an export holds (2)" in refused(path, Limits(entries=2))


def test_times_no_date_can_show_are_taken_as_missing(tmp_path: Path) -> None:
    # 9e18 s, 1.5e308 s or before 1970 would fail every date made from them
    # (the review file's, the summary's): such an item is skipped, as one
    # without a time is.
    times = [1_600_000_000, 9e18, 1.5e308, 2**63 - 1, -9e15, True, "1600000000"]
    comments = [comment_json(f"at {t!r}") | {"timestamp": t} for t in times]
    for c in comments:
        del c["data"][0]["comment"]["timestamp"]
    path = export_with(
        tmp_path / "t.zip", comments=json.dumps({"group_comments_v2": comments}).encode()
    )
    with Export(path) as e:
        assert [i.text for i in read(e).items] == ["at 1600000000"]


def entry_with(path: Path, flag: int = 0, method: int = 8, name: bytes = b"") -> Path:
    """The export, its comments entry's central directory record changed."""
    export_with(path)
    data = bytearray(path.read_bytes())
    record = data.index(b"PK\x01\x02")
    while data[record + 46 : record + 46 + len(COMMENTS)] != COMMENTS.encode():
        record = data.index(b"PK\x01\x02", record + 1)
    data[record + 8 : record + 12] = struct.pack("<HH", 0x800 | flag, method)
    if name:
        at = record + 46
        data[at : at + len(name)] = name
    path.write_bytes(bytes(data))
    return path


def test_entries_that_cannot_be_read_as_an_export_is_are_refused(tmp_path: Path) -> None:
    encrypted = entry_with(tmp_path / "e.zip", flag=0x1)
    assert f"'{COMMENTS}' is encrypted, as no export is" in refused(encrypted)
    unknown = entry_with(tmp_path / "m.zip", method=99)
    assert f"'{COMMENTS}' is compressed in a way Hearth does not read (method 99)" in refused(
        unknown
    )
    # A name that says it is UTF-8 and is not: the archive cannot be read.
    garbled = entry_with(tmp_path / "n.zip", name=b"\xff")
    assert "not a readable ZIP file" in refused(garbled)
