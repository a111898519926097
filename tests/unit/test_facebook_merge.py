"""Many members' exports merged: duplicates dropped, comments placed under
their posts with a confidence, people who did not contribute never named,
the roster read strictly. Pure."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from bots.base.errors import InputError
from bridge.facebook.merge import THRESHOLD, Sourced, dedupe, place
from bridge.facebook.reader import Item, MediaRef
from bridge.facebook.review import MAX_NAME, named_in, read_review, review
from bridge.facebook.roster import Roster, read_roster
from bridge.facebook.titles import posted_in, replied_to

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


# Titles are read in time linear in their length (bridge.facebook.titles),
# giving what the regular expressions they replace gave. Those, kept here as
# the reference, backtracked over every split of a title that does not
# match: 4,000 times "a replied to " (52 kB) took 1.7 s, and the cost grows
# with the square of the length.
OLD_REPLIED = (
    re.compile(r"^(?P<who>.+?) (?:replied to|commented on) (?P<target>.+?)'s (?P<what>\w+)\.?$"),
    re.compile(
        r"^(?P<who>.+?) (?:replied to|commented on) (?:his|her|their) own (?P<what>\w+)\.?$"
    ),
)
OLD_POSTED = re.compile(
    r"^(?P<author>.+?) (?:posted|wrote|shared .{1,40}?|updated .{1,40}?) in (?P<group>.+?)\.?$"
)


def old_replied_to(title: str) -> tuple[str, str] | None:
    for pattern in OLD_REPLIED:
        found = pattern.match(title)
        if found:
            return (found.groupdict().get("target") or found["who"], found["what"].lower())
    return None


def old_posted_in(title: str) -> tuple[str, str] | None:
    found = OLD_POSTED.match(title)
    return (found["author"], found["group"]) if found else None


def test_titles_are_read_as_the_old_expressions_read_them() -> None:
    pieces = [
        "A", "b", "ż", "_", "1", " ", ".", "\n", "-", "'s", "'s ", " replied to ",
        " commented on ", "his", "her", "their", " own ", "post", "Comment", " posted in ",
        " wrote in ", " shared ", " updated ", " in ", "in", "a link", "x" * 20,
    ]  # fmt: skip
    rng = random.Random(23)

    def some() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))

    def shaped() -> str:
        """Near what a title is: a part of it changed, left out or added."""
        if rng.random() < 0.5:
            verb = rng.choice([" replied to ", " commented on ", " replied ", "replied to "])
            whose = rng.choice(["'s ", "'s ", " his own ", " their own ", " her own", "s "])
            middle = f"{verb}{some()}{whose}{rng.choice(['post', 'Photo', 'x y', ''])}"
        else:
            verb = rng.choice([" posted in ", " wrote in ", " shared ", " updated ", " in "])
            middle = f"{verb}{some()}{rng.choice([' in ', ' in ', 'in '])}{some()}"
        start, end = rng.choice(["Bob", "", " "]), rng.choice(["", ".", "\n", ".."])
        return f"{start}{some()}{middle}{end}"

    replies = posts = 0
    for n in range(40_000):
        title = shaped() if n % 2 else some() + some() + some()
        assert replied_to(title) == old_replied_to(title), title
        assert posted_in(title) == old_posted_in(title), title
        replies += replied_to(title) is not None
        posts += posted_in(title) is not None
    # The comparison covers titles that match, not only ones that do not.
    assert replies > 500, replies
    assert posts > 500, posts
    for title in (
        "Bob Nowak replied to Alicja Wróbel's post.",
        "Bob commented on his own photo.",
        "Carol replied to Bob's comment",
        "Alicja Wróbel posted in Carers UK.",
        "Alicja shared a link in Carers UK.",
        "Alicja updated her status in Carers UK",
    ):
        assert (replied_to(title), posted_in(title)) == (
            old_replied_to(title),
            old_posted_in(title),
        )
    assert replied_to("Bob replied to Alicja's post.") == ("Alicja", "post")
    assert posted_in("Alicja shared a link in Carers UK.") == ("Alicja", "Carers UK")


def test_hostile_titles_are_read_in_linear_time() -> None:
    """Titles of 2.6 MB that the old expressions would have taken hours on
    (200,000 repetitions: 2,500 times the 1.7 s of 4,000)."""
    n = 200_000
    assert replied_to("a replied to " * n + "x") is None
    assert replied_to("a commented on " * n + "b's\n") is None
    assert posted_in("a posted in " * n + "\nx") is None
    assert posted_in("a shared x in " * n + "\nx") is None
    # Long titles that do say something are read too.
    long_name = "Alicja " * n
    assert replied_to(f"Bob replied to {long_name}'s post.") == (long_name, "post")
    assert posted_in(f"Bob posted in {long_name}.") == ("Bob", long_name)
    # A comment with such a title is kept, as a message of its own.
    hostile = Item("comment", BOB, G, 2000, "hi", "a replied to " * n + "x")
    (_, placed) = place(dedupe(sourced(post(ALICJA, 1000), hostile)))
    assert (placed.parent, placed.confidence) == (None, 0.0)


def test_a_name_longer_than_anyone_has_is_not_taken_from_a_title() -> None:
    """Each name taken from a title goes into the pattern that scrubs the
    text, at about a hundred bytes a character: three titles naming "people"
    of 3 million characters took the plan to 900 MB."""
    invented = "Dana " * 200_000
    titles = [f"Bob replied to {DANA}'s post.", f"Bob replied to {invented}'s post."]
    assert named_in(titles) == {DANA}
    assert named_in([f"Bob replied to {'D' * MAX_NAME}'s post."]) == {"D" * MAX_NAME}
