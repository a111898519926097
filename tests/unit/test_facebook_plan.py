"""`hearth import facebook plan`: exports in, a 0600 review file and a summary
out, with people who did not contribute never named."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bots.cli import main
from bridge.facebook.planning import read_header
from bridge.facebook.review import read_review
from tests.support.facebook_exports import Comment, FakeExport, Post, photo

GROUP = "Carers UK"
MEDIA = "your_facebook_activity/posts/media/a.jpg"


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
