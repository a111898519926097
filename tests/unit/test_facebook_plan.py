"""`hearth import facebook plan`: exports in, a 0600 review file and a summary
out, with people who did not contribute never named."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bots.cli import main
from bridge.facebook.planning import read_header
from bridge.facebook.review import read_review
from tests.support.facebook_exports import (
    PROFILE_ENTRY,
    Comment,
    FakeExport,
    Post,
    photo,
    profile_json,
    write_zip,
)

GROUP = "Carers UK"
MEDIA = "your_facebook_activity/posts/media/a.jpg"
COMMENTS = "facebook-export/your_facebook_activity/groups/your_comments_in_groups.json"


def exports(tmp_path: Path) -> list[Path]:
    alicja = FakeExport(
        "Alicja Wróbel",
        posts=[Post(1_600_000_000, "Hello from Dana Kowalska's sister", GROUP, media=(MEDIA,))],
        files={MEDIA: photo()},
    )
    bob = FakeExport(
        "Bob Nowak",
        layout="old",
        comments=[Comment(1_600_000_100, "Welcome 💙", GROUP, "Alicja Wróbel")],
        posts=[Post(1_600_000_200, "Elsewhere", "Another group")],
    )
    again = alicja  # Alicja handed in her export twice
    return [
        alicja.write(tmp_path / "alicja.zip"),
        bob.write(tmp_path / "bob.zip"),
        again.write(tmp_path / "alicja-again.zip"),
    ]


def test_plan_writes_a_private_review_file_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.csv"
    # Dana did not contribute: listed so her name is caught in the text.
    roster.write_text("facebook_name,shown_as\nAlicja Wróbel,@alicja:example.org\nDana Kowalska,\n")
    out = tmp_path / "review.jsonl"
    code = main(
        ["import", "facebook", "plan", *map(str, exports(tmp_path)), "--group", "carers",
         "--roster", str(roster), "--facebook-group", GROUP, "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    said = capsys.readouterr().out
    assert "Contributors: 2 (@alicja:example.org, Member 1)" in said
    assert "Posts: 1; comments: 1 (0 kept as messages" in said
    assert "Media: 1 files" in said
    assert "Dana" not in said
    first, *rest = out.read_text().splitlines()
    assert read_header(first, str(out))["group"] == "carers"
    lines = read_review(rest, str(out), first=2)
    assert [(line.kind, line.author, line.text) for line in lines] == [
        ("post", "@alicja:example.org", "Hello from Member 2's sister"),
        ("comment", "Member 1", "Welcome 💙"),
    ]
    assert lines[1].thread_of == lines[0].id
    assert "Dana" not in out.read_text()


def test_plan_asks_which_facebook_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["import", "facebook", "plan", *map(str, exports(tmp_path)), "--group", "carers",
         "--out", str(tmp_path / "r.jsonl")]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "--facebook-group" in err
    assert "Another group; Carers UK" in err


def test_plan_refuses_an_export_it_cannot_attribute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nameless = FakeExport("X", posts=[Post(1, "hi", GROUP)], profile=False)
    path = nameless.write(tmp_path / "nameless.zip")
    code = main(["import", "facebook", "plan", str(path), "--group", "g", "--out", "r.jsonl"])
    assert code == 2
    assert "cannot tell whose export this is" in capsys.readouterr().err


def test_a_staged_plan_writes_what_the_merge_in_memory_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planning stages the exports on disk and streams the review: the lines
    are the ones the in-memory merge (dedupe, place, review) gives, for a
    history with duplicates, unsure and orphan comments, an excluded member
    and posts older than the placement window."""
    from bridge.facebook.archive import Export
    from bridge.facebook.merge import Sourced, dedupe, place
    from bridge.facebook.planning import plan_import
    from bridge.facebook.reader import read
    from bridge.facebook.review import review
    from bridge.facebook.roster import read_roster

    day = 86_400
    t0 = 1_600_000_000
    names = ["Alicja Wróbel", "Bob Nowak", "Carol Smith", "Ewa Nowak"]
    posts: dict[str, list[Post]] = {n: [] for n in names}
    comments: dict[str, list[Comment]] = {n: [] for n in names}
    for i in range(120):
        author = names[i % 4]
        ts = t0 + i * day // 3 + (i % 7) * 600
        posts[author].append(Post(ts, f"post {i} about Dana Kowalska", GROUP))
        if i % 2:
            replier = names[(i + 1) % 4]
            comments[replier].append(Comment(ts + 300 + i, f"reply {i}", GROUP, author))
    comments["Bob Nowak"].append(Comment(t0 + 5, "to someone absent", GROUP, "Dana Kowalska"))
    zips = [
        FakeExport(n, posts=posts[n], comments=comments[n]).write(tmp_path / f"{k}.zip")
        for k, n in enumerate(names)
    ]
    zips.append(FakeExport(names[0], posts=posts[names[0]][:10]).write(tmp_path / "again.zip"))
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text("facebook_name,shown_as,exclude\nEwa Nowak,,yes\n")

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    out = tmp_path / "review.jsonl"
    out.write_text("an earlier review\n")
    planned = plan_import(zips, "carers", roster_path, GROUP, out)
    written = read_review(out.read_text().splitlines()[1:], str(out), first=2)

    found, owners = [], []
    for z in zips:
        with Export(z) as export:
            contents = read(export)
            owners.append(contents.owner)
            found += [Sourced(i, str(z)) for i in contents.items]
    expected, summary = review(
        place(dedupe(found)), read_roster(roster_path), owners, GROUP, lambda e, u: None
    )
    assert written == expected
    assert planned.lines == len(expected)
    assert planned.summary == summary
    assert any(line.thread_of for line in written)  # threads were placed
    assert any(line.kind == "comment" and not line.thread_of for line in written)
    assert not any("Ewa" in line.author or "Ewa" in line.text for line in written)
    # The staging folder is gone, and no partial file is left beside the review.
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_failed_plan_leaves_an_earlier_review_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "review.jsonl"
    out.write_text("the organiser's edited review\n")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    nameless = FakeExport("X", posts=[Post(1, "hi", GROUP)], profile=False)
    code = main(
        ["import", "facebook", "plan", str(broken), str(nameless.write(tmp_path / "x.zip")),
         "--group", "carers", "--facebook-group", GROUP, "--out", str(out)]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "no export could be read" in err
    assert f"{broken}: not a readable ZIP file" in err
    assert f"{tmp_path / 'x.zip'}: cannot tell whose export this is" in err
    assert out.read_text() == "the organiser's edited review\n"


def test_an_export_that_cannot_be_read_is_left_out_whole_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken export, and a hostile one of Alicja's whose first 1,500
    comments read well (a batch of them staged) before one nested too deep:
    both left out, nothing of them in the review, the others' all there."""
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    staged = [
        {
            "timestamp": 1_600_000_050 + n,
            "title": "Alicja Wróbel replied to Bob Nowak's post.",
            "data": [
                {"comment": {"comment": f"staged {n}", "author": "Alicja Wróbel", "group": GROUP}}
            ],
        }
        for n in range(1500)
    ]
    nested = b"[" * 1000 + b"]" * 1000
    comments = json.dumps({"group_comments_v2": staged})[:-2].encode() + b", " + nested + b"]}"
    hostile = write_zip(
        tmp_path / "alicja-hostile.zip",
        {PROFILE_ENTRY: profile_json("Alicja Wróbel"), COMMENTS: comments},
    )
    out = tmp_path / "review.jsonl"
    code = main(
        ["import", "facebook", "plan", *map(str, exports(tmp_path)), str(broken), str(hostile),
         "--group", "carers", "--facebook-group", GROUP, "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    said = capsys.readouterr().out.splitlines()
    assert said[:1] == [f"Facebook group: {GROUP} → Hearth group carers"]
    assert "Contributors: 2 (Member 1, Member 2)" in said
    left = said.index("Left out, nothing of them in the review: 2 exports")
    assert said[left + 1].startswith(f"  {broken}: not a readable ZIP file")
    assert said[left + 2] == (
        f"  {hostile}: '{COMMENTS}' is nested deeper than 64 levels "
        "(Facebook's own files nest about 12); not read"
    )
    lines = read_review(out.read_text().splitlines()[1:], str(out), first=2)
    assert [line.text for line in lines] == ["Hello from Dana Kowalska's sister", "Welcome 💙"]
