"""`hearth import facebook apply` refuses what it cannot carry out, before it
sends anything, and says why. Pure checks, and the archive room it would make."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bots.cli import main
from bridge.facebook.planning import plan_import
from bridge.importer import archive_room_body, check_review
from provisioning.schema import load_community
from tests.support.facebook_exports import Comment, FakeExport, Post, photo

GROUP = "Carers UK"
MEDIA = "your_facebook_activity/posts/media/a.jpg"


def review(tmp_path: Path) -> Path:
    alicja = FakeExport(
        "Alicja",
        posts=[Post(1_600_000_000, "hello", GROUP, media=(MEDIA,))],
        files={MEDIA: photo()},
    )
    bob = FakeExport("Bob", comments=[Comment(1_600_000_100, "hi", GROUP, "Alicja")])
    exports = [alicja.write(tmp_path / "alicja.zip"), bob.write(tmp_path / "bob.zip")]
    out = tmp_path / "review.jsonl"
    plan_import(exports, "carers", None, GROUP, out)
    return out


def community(tmp_path: Path, history: bool = True, bridge: dict[str, str] | None = None) -> Path:
    data = {
        "community": {
            "key": "circle",
            "name": "Circle",
            "homeserver": "http://127.0.0.1:9",
            "admin": {"user_id": "@admin:care.example", "access_token_file": "admin.token"},
            "code_of_conduct": "Be kind.",
            "crisis_resources": "Call 112.",
            "moderators": ["@mod:care.example"],
        },
        "bots": [{"user_id": "@hearth-bot:care.example"}],
        "groups": [
            {"key": "carers", "name": "Carers", "history_before_joining": history},
        ],
        "bridge": bridge or {},
    }
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def apply(tmp_path: Path, review_file: Path, community_file: Path) -> int:
    return main(
        ["import", "facebook", "apply", str(review_file), "--community", str(community_file)]
    )


def test_the_review_is_read_whole_first(tmp_path: Path) -> None:
    checked = check_review(review(tmp_path))
    assert (checked.group, checked.facebook_group, checked.lines) == ("carers", GROUP, 2)
    assert checked.exports == {str(tmp_path / "alicja.zip")}


def test_a_review_naming_an_export_that_is_gone_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = review(tmp_path)
    (tmp_path / "alicja.zip").unlink()
    assert apply(tmp_path, path, community(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "names exports that are not here" in err
    assert "alicja.zip" in err


def test_a_file_that_is_not_a_review_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"hello": 1}\n')
    assert apply(tmp_path, bad, community(tmp_path)) == 2
    assert "not a review file" in capsys.readouterr().err


def test_a_damaged_line_is_named_with_its_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = review(tmp_path)
    path.write_text(path.read_text() + "{not json\n")
    assert apply(tmp_path, path, community(tmp_path)) == 2
    assert f"{path}:4: not a review line" in capsys.readouterr().err


def test_a_group_that_keeps_its_history_from_newcomers_gets_no_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(tmp_path, review(tmp_path), community(tmp_path, history=False)) == 2
    err = capsys.readouterr().err
    assert "history_before_joining: false" in err
    assert "nobody could read an archive" in err


def test_without_the_bridge_s_token_the_import_says_where_to_name_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert apply(tmp_path, review(tmp_path), community(tmp_path)) == 2
    assert "bridge.as_token_file" in capsys.readouterr().err


def test_the_archive_room_is_encrypted_from_its_first_event_and_read_only(
    tmp_path: Path,
) -> None:
    cfg = load_community(community(tmp_path))
    group = cfg.group("carers")
    assert group is not None
    body = archive_room_body(cfg, group, "@hearth-bridge:care.example")
    state = {e["type"]: e["content"] for e in body["initial_state"]}
    assert body["initial_state"][0]["type"] == "m.room.encryption"
    assert state["m.room.history_visibility"] == {"history_visibility": "shared"}
    assert state["m.room.join_rules"] == {"join_rule": "invite"}
    assert state["org.hearth.room"]["kind"] == "archive"
    assert state["org.hearth.room"]["complete"] is False
    power = body["power_level_content_override"]
    assert power["events_default"] == 100  # nobody posts in an archive
    assert power["users"] == {"@hearth-bot:care.example": 100, "@mod:care.example": 50}
    assert body["name"] == "Carers: Facebook archive"
