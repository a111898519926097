"""Review lines as archive events: who wrote it, threads, photos, and the
transaction IDs that make a repeated send the same send. Pure."""

from __future__ import annotations

from bridge.facebook.messages import (
    IMPORT_KEY,
    carried,
    import_mark,
    photo_content,
    text_content,
    txn_id,
    video_content,
)
from bridge.facebook.review import Line, MediaLine

T = 1_560_000_000  # 8 June 2019


def line(**changes: object) -> Line:
    values: dict[str, object] = {
        "id": "abc123",
        "kind": "post",
        "ts": T,
        "when": "2019-06-08T13:20:00+00:00",
        "author": "Alicja W.",
        "text": "Our garden <today> & tomorrow\nsecond line",
        "thread_of": None,
        "confidence": 1.0,
    }
    values.update(changes)
    return Line(**values)  # type: ignore[arg-type]


def test_a_post_names_its_author_and_day_and_escapes_what_members_wrote() -> None:
    content = text_content(line(), None)
    assert content["body"] == (
        "Alicja W. · Facebook, 8 June 2019\n\nOur garden <today> & tomorrow\nsecond line"
    )
    assert content["formatted_body"] == (
        "<strong>Alicja W.</strong> · Facebook, 8 June 2019<br><br>"
        "Our garden &lt;today&gt; &amp; tomorrow<br>second line"
    )
    assert content["m.mentions"] == {}
    assert content[IMPORT_KEY] == {"line": "abc123", "part": 0}
    assert "m.relates_to" not in content


def test_a_member_shown_by_matrix_id_is_a_link_that_pings_nobody() -> None:
    content = text_content(line(author="@alicja:example.org"), None)
    assert content["body"].startswith("@alicja:example.org · Facebook")
    assert '<a href="https://matrix.to/#/@alicja:example.org">' in content["formatted_body"]
    assert content["m.mentions"] == {}


def test_a_comment_goes_in_its_post_s_thread() -> None:
    content = text_content(line(kind="comment", thread_of="post1"), "$root")
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": "$root"},
    }
    assert content["body"].startswith("Alicja W. · comment, 8 June 2019")


def test_a_comment_whose_post_is_unknown_says_so_and_stands_alone() -> None:
    content = text_content(line(kind="comment", thread_of=None, confidence=0.0), None)
    assert "its post could not be told for sure" in content["body"]
    assert "m.relates_to" not in content


def test_empty_text_emoji_and_right_to_left_text_are_carried_as_they_are() -> None:
    assert text_content(line(text=""), None)["body"] == "Alicja W. · Facebook, 8 June 2019"
    hebrew = "שלום לכולם 💙"
    assert text_content(line(text=hebrew), None)["body"].endswith(hebrew)


def test_links_follow_the_text_and_files_left_out_are_named() -> None:
    media = (
        MediaLine("a.zip", "media/p.jpg", "photo"),
        MediaLine("a.zip", "media/notes.pdf", "file"),
        MediaLine("a.zip", "media/v.mp4", "video"),
    )
    content = text_content(line(links=("https://example.org/x",), media=media), None)
    assert "https://example.org/x" in content["body"]
    assert "(1 file left out: Hearth cannot remove its metadata)" in content["body"]
    # Photos and videos are carried, in the export's order.
    assert carried(line(media=media)) == (media[0], media[2])


def test_a_video_is_an_encrypted_attachment_in_its_comment_s_thread() -> None:
    file = {"url": "mxc://localhost/v", "key": {"k": "x"}, "iv": "i", "hashes": {}, "v": "v2"}
    content = video_content(line(kind="comment"), 2, file, "video/mp4", 1234, "$post")
    assert content["msgtype"] == "m.video"
    assert content["file"] == file
    assert "url" not in content  # only the encrypted form
    assert content["info"] == {"mimetype": "video/mp4", "size": 1234}
    assert content["m.relates_to"]["rel_type"] == "m.thread"
    assert content["m.relates_to"]["event_id"] == "$post"
    assert import_mark(content) == ("abc123", 2)


def test_a_photo_is_an_encrypted_attachment_in_its_line_s_place() -> None:
    file = {
        "url": "mxc://x/y",
        "key": {"k": "..."},
        "iv": "iv",
        "hashes": {"sha256": "h"},
        "v": "v2",
    }
    content = photo_content(line(kind="comment"), 2, file, "image/jpeg", 1234, 80, 60, "$root")
    assert content["msgtype"] == "m.image"
    assert content["body"] == "photo-2.jpg"
    assert content["file"] == file
    assert "url" not in content  # only the encrypted form
    assert content["info"] == {"mimetype": "image/jpeg", "size": 1234, "w": 80, "h": 60}
    assert content["m.relates_to"]["event_id"] == "$root"
    assert import_mark(content) == ("abc123", 2)


def test_transaction_ids_come_from_the_room_the_line_and_the_part() -> None:
    assert txn_id("!r:x", "abc", 0) == txn_id("!r:x", "abc", 0)
    assert len({txn_id("!r:x", "abc", 0), txn_id("!r:x", "abc", 1), txn_id("!s:x", "abc", 0)}) == 3


def test_an_event_without_the_import_mark_is_not_the_import_s() -> None:
    assert import_mark({"body": "hi"}) is None
    assert import_mark({IMPORT_KEY: {"line": 3, "part": "x"}}) is None
