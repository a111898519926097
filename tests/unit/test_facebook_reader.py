"""Reading members' Facebook exports: both layouts, the mojibake, and
hostile or wrong files refused with a clear reason. Archives are built by
the tests (tests/support/facebook_exports.py); nothing touches a network."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from bots.base.errors import InputError
from bridge.facebook.archive import Export, Limits
from bridge.facebook.mojibake import repair, repair_all
from bridge.facebook.reader import read
from tests.support.facebook_exports import Comment, FakeExport, Post, mojibake, photo

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
    assert repair_all({mojibake("ключ"): [mojibake("значение"), 3, None]}) == {
        "ключ": ["значение", 3, None]
    }


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
