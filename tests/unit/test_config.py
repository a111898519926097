"""Bot config files: every mistake is reported with file, key path and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bots.app import FEATURES, load_config, select_features
from bots.base.errors import ConfigError, ConfigProblems
from bots.cli import main
from bots.core.feature import FEATURE as CORE
from bots.framework.config import load_bot_config
from bots.framework.feature import Feature, FeatureConfig

_REPO = Path(__file__).resolve().parents[2]

GOOD = """\
bot:
  homeserver: https://matrix.example.org/
  user_id: "@hearth-bot:example.org"
  password_file: secrets/bot.password
  state_dir: state/bot
  log:
    level: info
"""


def write(tmp_path: Path, text: str, name: str = "bot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_bot_config(path)
    return info.value


def replaced(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def line_of(text: str, needle: str) -> int:
    (number,) = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


# --- a good file ---


def test_good_file_loads(tmp_path: Path) -> None:
    config = load_bot_config(write(tmp_path, GOOD))
    assert config.user_id == "@hearth-bot:example.org"
    assert config.log.level == "info"


def test_trailing_slash_is_removed_from_the_homeserver(tmp_path: Path) -> None:
    assert load_bot_config(write(tmp_path, GOOD)).homeserver == "https://matrix.example.org"


def test_defaults_fill_optional_keys(tmp_path: Path) -> None:
    config = load_bot_config(write(tmp_path, GOOD))
    assert config.command_prefix == "!"
    assert config.moderators_room is None


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "hearth"
    folder.mkdir(parents=True)
    config = load_bot_config(write(folder, GOOD))
    assert config.password_file == folder / "secrets" / "bot.password"
    assert config.state_dir == folder / "state" / "bot"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "pw"
    config = load_bot_config(write(tmp_path, replaced("secrets/bot.password", str(elsewhere))))
    assert config.password_file == elsewhere


def test_room_version_12_moderators_room_is_accepted(tmp_path: Path) -> None:
    config = load_bot_config(write(tmp_path, GOOD + '  moderators_room: "!abcDEF123"\n'))
    assert config.moderators_room == "!abcDEF123"


def test_example_config_in_the_repository_loads() -> None:
    example = _REPO / "config" / "bot.example.yaml"
    config = load_bot_config(example)
    assert config.password_file.is_relative_to(example.parent)


# --- file-level problems ---


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    err = error_for(path)
    assert str(err).startswith(f"{path}: ")
    assert "does not exist" in str(err)


def test_empty_file_reports_the_missing_bot_section(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    err = error_for(path)
    assert str(err).startswith(str(path))
    assert err.key_path == "bot"
    assert "required key is missing" in str(err)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a sentence\n", "42\n"])
def test_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert str(error_for(path)) == (
        f"{path}:1: (top level): expected a mapping of keys at the top level"
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    text = replaced("  state_dir: state/bot\n", "  state_dir: [state/bot\n")
    path = write(tmp_path, text)
    err = error_for(path)
    assert err.line == line_of(text, "state_dir") + 1
    assert str(err).startswith(f"{path}:{err.line}: ")
    assert "is not valid YAML" in str(err)


def test_tab_indentation_names_the_line(tmp_path: Path) -> None:
    text = GOOD + "\tdevice_name: x\n"
    err = error_for(write(tmp_path, text))
    assert err.line == line_of(text, "device_name")
    assert "is not valid YAML" in str(err)


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.yaml"
    path.write_bytes(b"bot:\n  device_name: \xff\xfe\n")
    assert "cannot be read as UTF-8 text" in str(error_for(path))


def test_duplicate_key_is_refused_at_its_line(tmp_path: Path) -> None:
    text = GOOD + "  homeserver: https://other.example.org\n"
    path = write(tmp_path, text)
    err = error_for(path)
    assert err.line == len(text.splitlines())
    assert "duplicate key 'homeserver'" in str(err)
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_yaml_merge_keys_are_accepted(tmp_path: Path) -> None:
    text = (
        "bot:\n"
        "  <<: {homeserver: 'https://matrix.example.org'}\n"
        '  user_id: "@hearth-bot:example.org"\n'
        "  password_file: pw\n"
        "  state_dir: state\n"
    )
    assert yaml.safe_load(text)["bot"]["homeserver"] == "https://matrix.example.org"
    config = load_bot_config(write(tmp_path, text))
    assert config.homeserver == "https://matrix.example.org"


# --- key-level problems ---


def test_misspelt_optional_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = replaced("    level: info", "    levle: info")
    path = write(tmp_path, text)
    err = error_for(path)
    assert err.key_path == "bot.log.levle"
    assert err.line == line_of(text, "levle")
    assert str(err) == (
        f"{path}:{err.line}: bot.log.levle: unknown key "
        "(check its spelling against the example config)"
    )


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    text = GOOD + "bots: {}\n"
    err = error_for(write(tmp_path, text))
    assert err.key_path == "bots"
    assert err.line == line_of(text, "bots:")
    assert "unknown key" in str(err)


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, replaced("  state_dir: state/bot\n", "")))
    assert err.key_path == "bot.state_dir"
    assert "required key is missing" in str(err)
    assert err.line == 1


def test_wrong_choice_names_key_line_and_choices(tmp_path: Path) -> None:
    text = replaced("level: info", "level: loud")
    path = write(tmp_path, text)
    err = error_for(path)
    assert str(err).startswith(f"{path}:{line_of(text, 'loud')}: bot.log.level: ")
    assert "'debug'" in str(err)
    assert "(got 'loud')" in str(err)


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    text = GOOD + "  sync_timeout_ms: soon\n"
    err = error_for(write(tmp_path, text))
    assert err.key_path == "bot.sync_timeout_ms"
    assert err.line == line_of(text, "sync_timeout_ms")
    assert "valid integer" in str(err)


def test_section_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    text = replaced("  log:\n    level: info\n", "  log: verbose\n")
    err = error_for(write(tmp_path, text))
    assert err.key_path == "bot.log"
    assert err.line == line_of(text, "log:")


def test_out_of_range_number_is_refused(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + "  sync_timeout_ms: 10\n"))
    assert err.key_path == "bot.sync_timeout_ms"
    assert "greater than or equal to 1000" in str(err)


@pytest.mark.parametrize("url", ["matrix.example.org", "ftp://matrix.example.org", "https://"])
def test_bad_homeserver_url_is_explained(tmp_path: Path, url: str) -> None:
    text = replaced("https://matrix.example.org/", url)
    path = write(tmp_path, text)
    err = error_for(path)
    assert str(err).startswith(f"{path}:2: bot.homeserver: expected an http:// or https:// URL")


@pytest.mark.parametrize("user", ["hearth-bot", "@hearth-bot", "hearth-bot:example.org"])
def test_bad_user_id_is_explained(tmp_path: Path, user: str) -> None:
    text = replaced('"@hearth-bot:example.org"', f'"{user}"')
    err = error_for(write(tmp_path, text))
    assert err.key_path == "bot.user_id"
    assert err.line == 3
    assert "expected a Matrix user ID" in str(err)


def test_bad_moderators_room_is_explained(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + "  moderators_room: mods\n"))
    assert err.key_path == "bot.moderators_room"
    assert "expected a room ID" in str(err)


def test_command_prefix_starting_with_slash_is_refused(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + '  command_prefix: "/"\n'))
    assert err.key_path == "bot.command_prefix"


def test_inline_password_is_refused_pointing_to_password_file(tmp_path: Path) -> None:
    secret = "hunter2-correct-horse"
    err = error_for(write(tmp_path, GOOD + f"  password: {secret}\n"))
    assert err.key_path == "bot"
    assert "'password' must not be written inline" in str(err)
    assert "password_file" in str(err)
    assert secret not in str(err)


def test_inline_access_token_is_refused(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + "  access_token: syt_abcdef\n"))
    assert "access_token_file" in str(err)
    assert "syt_abcdef" not in str(err)


def test_config_error_exits_with_status_2() -> None:
    assert ConfigError("f", "k", "e").exit_code == 2


def test_config_error_without_line_names_file_and_key() -> None:
    assert str(ConfigError("bot.yaml", "bot.user_id", "bad")) == "bot.yaml: bot.user_id: bad"


def test_config_error_with_line() -> None:
    assert str(ConfigError("bot.yaml", "", "bad", 4)) == "bot.yaml:4: (top level): bad"


# --- the CLI ---


def test_check_config_reports_a_bad_file_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replaced("https://matrix.example.org/", "matrix.example.org")
    path = write(tmp_path, text)
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"hearth: error: {path}:2: bot.homeserver: ")


def test_check_config_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert str(path) in captured.out
    assert captured.err == ""


def test_check_config_reports_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.yaml"
    assert main(["check-config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"hearth: error: {path}: ")


# --- choosing features ---


class NotesConfig(FeatureConfig):
    """A throwaway feature section, standing in for any feature's own."""

    greeting: str = "hello"
    nudge_after_s: float = 1.0


NOTES = Feature("notes", "notes for the tests", NotesConfig)
SECTIONS = {"core": CORE.config_model, "notes": NotesConfig}


def chosen(path: Path, available: tuple[Feature, ...] = FEATURES) -> tuple[list[str], list[str]]:
    sections = {f.name: f.config_model for f in available}
    config = load_bot_config(path, sections)
    features, notes = select_features(config, available, source=str(path))
    return [f.name for f in features], notes


def test_listed_features_are_the_only_ones_run(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  features: [core]\n")
    assert chosen(path) == (["core"], [])


def test_by_default_every_feature_that_can_run_is_run(tmp_path: Path) -> None:
    names, _ = chosen(write(tmp_path, GOOD))
    assert names == ["core"]


def test_by_default_a_feature_that_cannot_run_is_noted_with_the_reason(tmp_path: Path) -> None:
    _, notes = chosen(write(tmp_path, GOOD))
    room_note, onboarding_note, moderation_note, meetings_note, archives_note = notes
    assert room_note.startswith("roomkeeping not started: ")
    assert "admin_socket" in room_note
    assert onboarding_note.startswith("onboarding not started: ")
    assert "onboarding section" in onboarding_note
    assert moderation_note.startswith("moderation not started: ")
    assert "moderation section" in moderation_note
    assert meetings_note.startswith("meetings not started: ")
    assert "meetings section" in meetings_note
    assert archives_note.startswith("archives not started: ")
    assert "an archives section" in archives_note


def test_with_the_admin_agent_roomkeeping_runs_too(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + '  admin_socket: agent.sock\n  moderators_room: "!mods:x.org"\n')
    features, notes = chosen(path)
    assert features == ["core", "roomkeeping"]
    assert [n.split(":")[0] for n in notes] == [
        "onboarding not started",
        "moderation not started",
        "meetings not started",
        "archives not started",
    ]


def test_with_its_section_onboarding_runs_too(tmp_path: Path) -> None:
    community = tmp_path / "community.yaml"
    shutil.copy(EXAMPLE_COMMUNITY, community)
    text = GOOD + '  admin_socket: agent.sock\n  moderators_room: "!mods:x.org"\n'
    text += f"onboarding:\n  community: {community}\n  registrations: {tmp_path}/spool\n"
    text += f"moderation:\n  community: {community}\n"
    text += f"meetings:\n  community: {community}\n"
    text += f"archives:\n  community: {community}\n"
    features = ["core", "roomkeeping", "onboarding", "moderation", "meetings", "archives"]
    assert chosen(write(tmp_path, text)) == (features, [])


def test_a_feature_set_up_with_an_unreadable_community_file_is_an_error(tmp_path: Path) -> None:
    # Its section says the operator wants it: leaving it out would be a surprise.
    text = GOOD + '  admin_socket: agent.sock\n  moderators_room: "!mods:x.org"\n'
    text += f"onboarding:\n  community: {tmp_path}/missing.yaml\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        chosen(path)
    assert info.value.key_path == "onboarding"
    assert str(info.value).startswith(f"{path}: onboarding: onboarding cannot run: ")
    assert "community file cannot be read" in str(info.value)


def test_a_feature_without_a_section_is_left_out_with_a_note(tmp_path: Path) -> None:
    features, notes = chosen(write(tmp_path, GOOD + "  admin_socket: agent.sock\n"))
    assert "onboarding" not in features
    assert any(
        n.startswith("onboarding not started: it needs an onboarding section") for n in notes
    )


def test_unknown_features_are_listed_with_the_file_s_other_problems(tmp_path: Path) -> None:
    text = (
        GOOD.replace("https://matrix.example.org", "matrix") + "  features: [chat, core, bogus]\n"
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigProblems) as info:
        chosen(path)
    found = [(p.key_path, p.line) for p in info.value.problems]
    assert [k for k, _ in found] == ["bot.homeserver", "bot.features[0]", "bot.features[2]"]
    assert all(line is not None for _, line in found)
    assert "'bogus'" in str(info.value)


def test_an_unknown_feature_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  features: [core, chat]\n")
    with pytest.raises(ConfigError) as info:
        chosen(path)
    err = info.value
    assert err.key_path == "bot.features[1]"
    assert str(err).startswith(f"{path}")
    assert "'chat'" in str(err)
    assert "core, roomkeeping" in str(err)


def test_roomkeeping_without_a_moderators_room_is_noted(tmp_path: Path) -> None:
    _, notes = chosen(write(tmp_path, GOOD + "  admin_socket: agent.sock\n"))
    note = next(n for n in notes if n.startswith("roomkeeping"))
    assert "moderators_room" in note


def test_a_list_as_a_key_is_a_clear_error(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, "? [a, b]\n: 1\n" + GOOD))
    assert "key" in str(err)
    assert err.line == 1


def test_a_listed_feature_that_cannot_run_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  features: [core, roomkeeping]\n")
    with pytest.raises(ConfigError) as info:
        chosen(path)
    assert info.value.key_path == "bot.features[1]"
    assert "roomkeeping cannot run" in str(info.value)
    assert "admin_socket" in str(info.value)


def test_a_feature_listed_twice_is_refused(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + "  features: [core, core]\n"))
    assert err.key_path == "bot.features"
    assert "listed twice" in str(err)


def test_load_config_refuses_an_unknown_feature(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  features: [chat]\n")
    with pytest.raises(ConfigError, match=r"bot\.features\[0\]"):
        load_config(path)


# --- feature sections ---


def test_a_feature_section_is_validated_with_its_model(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "notes:\n  greeting: hi there\n")
    config = load_bot_config(path, SECTIONS)
    assert config.feature_sections["notes"] == NotesConfig(greeting="hi there")


def test_an_empty_feature_section_takes_the_defaults(tmp_path: Path) -> None:
    config = load_bot_config(write(tmp_path, GOOD + "notes:\n"), SECTIONS)
    assert config.feature_sections["notes"] == NotesConfig()


def test_a_wrong_type_in_a_feature_section_names_key_and_line(tmp_path: Path) -> None:
    text = GOOD + "notes:\n  nudge_after_s: soon\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_bot_config(path, SECTIONS)
    err = info.value
    assert err.key_path == "notes.nudge_after_s"
    assert err.line == line_of(text, "nudge_after_s")
    assert str(err).startswith(f"{path}:{err.line}: notes.nudge_after_s: ")


def test_an_unknown_key_in_a_feature_section_is_named(tmp_path: Path) -> None:
    text = GOOD + "notes:\n  greetng: hi\n"
    with pytest.raises(ConfigError) as info:
        load_bot_config(write(tmp_path, text), SECTIONS)
    assert info.value.key_path == "notes.greetng"
    assert info.value.line == line_of(text, "greetng")
    assert "unknown key" in str(info.value)


def test_an_unknown_top_level_key_names_the_known_sections(tmp_path: Path) -> None:
    text = GOOD + "nots:\n  greeting: hi\n"
    with pytest.raises(ConfigError) as info:
        load_bot_config(write(tmp_path, text), SECTIONS)
    assert info.value.key_path == "nots"
    assert info.value.line == line_of(text, "nots:")
    assert "(core, notes)" in str(info.value)


def test_feature_sections_belong_at_the_top_level(tmp_path: Path) -> None:
    err = error_for(write(tmp_path, GOOD + "  feature_sections: {notes: {}}\n"))
    assert err.key_path == "bot"
    assert "top level" in str(err)


def test_a_section_of_a_feature_not_enabled_is_a_note(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  features: [core]\nnotes:\n  greeting: hi\n")
    config = load_bot_config(path, SECTIONS)
    features, notes = select_features(config, (CORE, NOTES))
    assert [f.name for f in features] == ["core"]
    (note,) = notes
    assert "'notes'" in note
    assert "not enabled" in note


def test_a_section_of_an_enabled_feature_is_no_note(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "notes:\n  greeting: hi\n")
    config = load_bot_config(path, SECTIONS)
    assert select_features(config, (CORE, NOTES)) == ([CORE, NOTES], [])


# --- several problems at once ---

SEVERAL = """\
bot:
  homeserver: matrix.example.org
  user_id: "@hearth-bot:example.org"
  password_file: secrets/bot.password
  state_dir: state/bot
notes:
  nudge_after_s: soon
bots: {}
"""


def several_problems(tmp_path: Path) -> tuple[Path, ConfigProblems]:
    path = write(tmp_path, SEVERAL)
    with pytest.raises(ConfigProblems) as info:
        load_bot_config(path, SECTIONS)
    return path, info.value


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    _, err = several_problems(tmp_path)
    assert [(p.key_path, p.line) for p in err.problems] == [
        ("bot.homeserver", 2),
        ("notes.nudge_after_s", 7),
        ("bots", 8),
    ]


def test_several_problems_are_one_complete_line_each(tmp_path: Path) -> None:
    path, err = several_problems(tmp_path)
    lines = str(err).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:2: bot.homeserver: expected an http:// or https:// URL")
    assert lines[1].startswith(f"{path}:7: notes.nudge_after_s: ")
    assert lines[2].startswith(f"{path}:8: bots: unknown key")


def test_several_problems_still_read_as_the_first_one(tmp_path: Path) -> None:
    path, err = several_problems(tmp_path)
    assert (err.file, err.key_path, err.line) == (str(path), "bot.homeserver", 2)
    assert err.exit_code == 2


@pytest.mark.parametrize("age", [0, 59])
def test_a_maximum_event_age_under_a_minute_is_refused(tmp_path: Path, age: int) -> None:
    err = error_for(write(tmp_path, GOOD + f"  max_event_age_s: {age}\n"))
    assert err.key_path == "bot.max_event_age_s"
    assert "greater than or equal to 60" in str(err)


def test_a_maximum_event_age_of_a_minute_is_accepted(tmp_path: Path) -> None:
    config = load_bot_config(write(tmp_path, GOOD + "  max_event_age_s: 60\n"))
    assert config.max_event_age_s == 60


# --- check-config with features and a community file ---

EXAMPLE_COMMUNITY = _REPO / "config" / "community.example.yaml"


def test_check_config_prints_the_features_and_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "features: core" in out
    assert f"{path}: OK" in out
    assert any(line.startswith("note: roomkeeping not started") for line in out)


def test_check_config_prints_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace("https://matrix.example.org/", "matrix") + "bots: {}\n")
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0].startswith(f"hearth: error: {path}:2: bot.homeserver: ")
    assert lines[1].startswith(f"{path}:{line_of(GOOD, 'level') + 1}: bots: unknown key")
    assert len(lines) == 2


def test_check_config_refuses_an_unknown_feature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD + "  features: [chat]\n")
    assert main(["check-config", str(path)]) == 2
    assert "bot.features[0]" in capsys.readouterr().err


def test_check_config_validates_the_community_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["check-config", str(path), "--community", str(EXAMPLE_COMMUNITY)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{EXAMPLE_COMMUNITY}: OK" in out
    assert f"{path}: OK" in out


def test_check_config_names_a_broken_community_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLE_COMMUNITY.read_text(encoding="utf-8")
    broken = write(tmp_path, example.replace("http://127.0.0.1:8008", "matrix"), "community.yaml")
    path = write(tmp_path, GOOD)
    assert main(["check-config", str(path), "--community", str(broken)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"hearth: error: {broken}:")
    assert "community.homeserver" in captured.err
    assert f"{path}: OK" not in captured.out


def test_community_config_is_no_longer_a_bot_setting(tmp_path: Path) -> None:
    # The bot holds no admin token: group creation goes through the admin
    # agent, which alone reads the community file's admin token.
    err = error_for(write(tmp_path, GOOD + "  community_config: community.yaml\n"))
    assert err.key_path == "bot.community_config"
    assert "unknown key" in str(err)


def test_check_config_fails_on_a_broken_community_file_a_section_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLE_COMMUNITY.read_text(encoding="utf-8")
    broken = write(tmp_path, example.replace("http://127.0.0.1:8008", "matrix"), "community.yaml")
    text = GOOD + '  admin_socket: agent.sock\n  moderators_room: "!mods:x.org"\n'
    path = write(tmp_path, text + f"moderation:\n  community: {broken}\n")
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"hearth: error: {path}: moderation: moderation cannot run")
    assert f"{path}: OK" not in captured.out


def test_check_config_reports_both_files_problems_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLE_COMMUNITY.read_text(encoding="utf-8")
    broken = write(tmp_path, example.replace("http://127.0.0.1:8008", "matrix"), "community.yaml")
    path = write(tmp_path, GOOD.replace("https://matrix.example.org", "matrix"))
    assert main(["check-config", str(path), "--community", str(broken)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0].startswith(f"hearth: error: {path}:2: bot.homeserver")
    assert any(e.startswith(f"hearth: error: {broken}:") for e in errors)
