"""Many members' exports merged: duplicates dropped, comments placed under
their posts with a confidence, people who did not contribute never named,
the roster read strictly. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.base.errors import InputError
from bridge.facebook.merge import THRESHOLD, Sourced, dedupe, place
from bridge.facebook.reader import Item, MediaRef
from bridge.facebook.review import read_review, review
from bridge.facebook.roster import Roster, read_roster

G = "Carers UK"
ALICJA, BOB, CAROL, DANA = "Alicja Wróbel", "Bob Nowak", "Carol Smith", "Dana Kowalska"


def post(author: str, ts: int, text: str = "a post", group: str = G) -> Item:
    return Item("post", author, group, ts, text, f"{author} posted in {group}.")


def comment(author: str, ts: int, to: str, what: str = "post", text: str = "a reply") -> Item:
    return Item("comment", author, G, ts, text, f"{author} replied to {to}'s {what}.")


def sourced(*items: Item, export: str = "x.zip") -> list[Sourced]:
    return [Sourced(i, export) for i in items]


def test_the_same_post_from_two_exports_is_kept_once() -> None:
    p = post(ALICJA, 1000)
    merged = dedupe([*sourced(p, export="a1.zip"), *sourced(p, export="a2.zip")])
    assert [(s.item, s.export) for s in merged] == [(p, "a1.zip")]


def test_a_comment_goes_under_the_post_its_title_names() -> None:
    items = dedupe(
        sourced(
            post(ALICJA, 1000),
            post(BOB, 1500),
            comment(BOB, 2000, ALICJA),
            comment(CAROL, 2100, BOB, "comment"),  # answers Bob's comment
        )
    )
    placed = place(items)
    alicja_post = placed[0].id
    assert [(p.parent, p.confidence) for p in placed[2:]] == [
        (alicja_post, 1.0),
        (alicja_post, 1.0),
    ]


def test_unsure_comments_become_ordinary_messages() -> None:
    several = [post(ALICJA, 1000 + i * 600) for i in range(3)]  # three within an hour
    placed = place(dedupe(sourced(*several, comment(BOB, 5000, ALICJA))))
    last = placed[-1]
    assert last.confidence == pytest.approx(1 / 3)
    assert last.confidence < THRESHOLD
    assert last.parent is None
    # Answering someone whose posts are not in any export: no thread at all.
    (lonely,) = place(dedupe(sourced(comment(BOB, 5000, DANA))))
    assert (lonely.parent, lonely.confidence) == (None, 0.0)
    # A month and more after the post: less sure, under the threshold.
    (_, late) = place(dedupe(sourced(post(ALICJA, 0), comment(BOB, 40 * 86400, ALICJA))))
    assert late.parent is None


def roster_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_people_who_did_not_contribute_are_never_named(tmp_path: Path) -> None:
    roster = read_roster(
        roster_file(
            tmp_path,
            f"facebook_name,shown_as,exclude\n{ALICJA},@alicja:example.org,\n"
            f"{BOB},Bob N.,\n{CAROL},,yes\n",
        )
    )
    photo = MediaRef("media/a.jpg", "photo")
    items = [
        Item("post", ALICJA, G, 1000, f"{DANA} and {CAROL} said hello", "t", (photo,)),
        comment(BOB, 1100, ALICJA, text=f"Thanks {ALICJA}, and {DANA}!"),
        post(CAROL, 1200, "Carol's own post"),
        comment(BOB, 1300, CAROL, text="nice"),  # under an excluded post
        comment(BOB, 1400, DANA, text="hi Dana Kowalska"),
        post(ALICJA, 1500, "another group", group="Elsewhere"),
    ]
    placed = place(dedupe(sourced(*items)))
    lines, summary = review(
        placed, roster, [ALICJA, BOB, CAROL], G, lambda export, uri: 1234 if uri else None
    )
    texts = [(line.author, line.text, line.thread_of is not None) for line in lines]
    assert texts == [
        ("@alicja:example.org", "Member 2 and Member 1 said hello", False),
        ("Bob N.", "Thanks Alicja Wróbel, and Member 2!", True),
        ("Bob N.", "nice", False),
        ("Bob N.", "hi Member 2", False),
    ]
    assert summary.contributors == ("@alicja:example.org", "Bob N.")
    assert (summary.posts, summary.comments, summary.unplaced) == (1, 3, 2)
    assert (summary.media, summary.media_bytes, summary.missing_media) == (1, 1234, 0)
    assert summary.groups_seen == {G: 5, "Elsewhere": 1}
    assert (summary.first, summary.last) == (1000, 1400)
    # The review file reads back as written; deleted lines are simply gone.
    again = read_review([lines[0].to_json(), "", lines[2].to_json()], "review.jsonl")
    assert again == [lines[0], lines[2]]
    with pytest.raises(InputError, match=r"review\.jsonl:2: not a review line"):
        read_review([lines[0].to_json(), "{oops"], "review.jsonl")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("facebook_name,shown_as,colour\n", ":1: unknown column 'colour'"),
        (
            "facebook_name,shown_as\nAnn,A\nBob,B\nAnn,C\n",
            ":4: 'Ann' is named twice (lines 2 and 4)",
        ),
        ("facebook_name,exclude\nAnn,maybe\n", ":2: exclude must be yes or no"),
        ("facebook_name,shown_as\nAnn,@ann\n", ":2: '@ann' is not a Matrix ID"),
        ("shown_as\nA\n", ":1: the roster needs a facebook_name column"),
        ("", "the roster is empty"),
        ("facebook_name,shown_as\n,Someone\n", ":2: facebook_name is empty"),
    ],
)
def test_roster_errors_name_the_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(InputError) as caught:
        read_roster(roster_file(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "roster.csv"))
    assert needle in str(caught.value)


def test_a_roster_as_spreadsheets_save_it(tmp_path: Path) -> None:
    # Excel's UTF-8 CSV starts with a byte-order mark; header case varies.
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffFacebook_Name,Shown_As,Exclude\nAnn,,no\n".encode())
    assert read_roster(path) == Roster({"Ann": read_roster(path).entries["Ann"]})
    assert read_roster(path).entries["Ann"].exclude is False
